//! Group commit: many writers waiting for durability share one flush.
//!
//! A caller needs a flush that *started* after its write committed. Each commit
//! records the generation of the next flush to start (its ticket); a sync waits until
//! a flush of at least the latest ticket has finished, running it itself if nobody
//! else is flushing.
//!
//! Writers may announce themselves before they commit ([`GroupCommit::begin_write`]).
//! A flush leader first waits, for at most [`GATHER_MAX`], until no announced writer
//! is still committing, so that one flush covers a whole burst of concurrent writes.
//! This matters with sled 0.34, where a flush holds a lock that keeps every
//! transaction out until the disk write ends: flushing as soon as the first writer
//! commits would cost one flush per write.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// Longest a flush leader waits for announced writers to commit.
pub const GATHER_MAX: Duration = Duration::from_millis(2);

#[derive(Default)]
struct State {
    /// Generation of the most recently started flush.
    started: u64,
    /// Generation of the most recently finished flush.
    finished: u64,
    /// Whether a flush leader is gathering or flushing now.
    running: bool,
    /// The generation a flush must have to cover every commit so far.
    ticket: u64,
    /// Announced writers that have not finished committing.
    pending: usize,
    /// The outcome of the most recent failed flush and its generation.
    last_error: Option<(u64, String)>,
}

/// Coordinates flushes of one database.
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
    idle: Condvar,
    gather: Duration,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self::new(GATHER_MAX)
    }
}

impl GroupCommit {
    /// A coordinator whose flush leaders wait at most `gather` for announced writers.
    pub fn new(gather: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            idle: Condvar::new(),
            gather,
        }
    }

    /// Announces a writer that will commit soon and then sync.
    pub fn begin_write(&self) {
        self.state.lock().pending += 1;
    }

    /// Ends an announcement (committed, aborted or failed).
    pub fn end_write(&self) {
        let mut state = self.state.lock();
        state.pending = state.pending.saturating_sub(1);
        if state.pending == 0 {
            self.idle.notify_all();
        }
    }

    /// Records that a transaction committed: only a flush that starts from now on
    /// covers it.
    pub fn committed(&self) {
        let mut state = self.state.lock();
        state.ticket = state.started + 1;
    }

    /// Returns once a flush that started after every commit recorded so far has
    /// finished, running it ourselves if nobody else is. `flush` performs the actual
    /// flush.
    pub fn sync<E>(&self, flush: impl FnOnce() -> Result<(), E>) -> Result<(), String>
    where
        E: std::fmt::Display,
    {
        let mut state = self.state.lock();
        let needed = state.ticket;
        loop {
            if state.finished >= needed {
                return match &state.last_error {
                    Some((generation, message)) if *generation >= needed => Err(message.clone()),
                    _ => Ok(()),
                };
            }
            if !state.running {
                state.running = true;
                // Let announced writers commit first, so this flush covers them too.
                // Their commits take the ticket this flush is about to get.
                let deadline = Instant::now() + self.gather;
                while state.pending > 0 {
                    if self.idle.wait_until(&mut state, deadline).timed_out() {
                        break;
                    }
                }
                state.started += 1;
                let generation = state.started;
                drop(state);
                let outcome = flush().map_err(|e| e.to_string());
                let mut relock = self.state.lock();
                relock.running = false;
                relock.finished = generation;
                if let Err(message) = &outcome {
                    relock.last_error = Some((generation, message.clone()));
                }
                self.done.notify_all();
                return outcome;
            }
            self.done.wait(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_share_flushes() {
        let gc = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let gc = gc.clone();
                let flushes = flushes.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        gc.begin_write();
                        gc.committed();
                        gc.end_write();
                        gc.sync(|| {
                            flushes.fetch_add(1, Ordering::SeqCst);
                            Ok::<(), String>(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!((1..=1600).contains(&n), "flushes: {n}");
    }

    #[test]
    fn a_failed_flush_is_reported_to_its_waiters() {
        let gc = GroupCommit::default();
        gc.committed();
        let err = gc.sync(|| Err::<(), _>("disk full")).unwrap_err();
        assert_eq!(err, "disk full");
        gc.committed();
        assert!(gc.sync(|| Ok::<(), String>(())).is_ok());
    }

    #[test]
    fn a_commit_after_a_flush_started_needs_the_next_flush() {
        let gc = GroupCommit::default();
        gc.committed();
        let mut flushes = 0;
        gc.sync(|| {
            flushes += 1;
            // A write that commits while this flush runs is not covered by it.
            gc.committed();
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(flushes, 1);
        let mut again = 0;
        gc.sync(|| {
            again += 1;
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(again, 1, "the second sync must flush again");
    }

    #[test]
    fn a_sync_with_nothing_committed_since_the_last_flush_returns_at_once() {
        let gc = GroupCommit::default();
        gc.committed();
        gc.sync(|| Ok::<(), String>(())).unwrap();
        let mut flushed = false;
        gc.sync(|| {
            flushed = true;
            Ok::<(), String>(())
        })
        .unwrap();
        assert!(!flushed);
    }

    #[test]
    fn a_flush_waits_for_announced_writers_and_covers_them() {
        // A window long enough that only the writer's commit can end the wait.
        let gc = Arc::new(GroupCommit::new(Duration::from_secs(60)));
        let flushes = Arc::new(AtomicUsize::new(0));
        // Writer A has committed and syncs while writer B is still committing.
        gc.begin_write();
        gc.committed();
        gc.end_write();
        gc.begin_write();
        let leader = {
            let gc = gc.clone();
            let flushes = flushes.clone();
            std::thread::spawn(move || {
                gc.sync(|| {
                    flushes.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), String>(())
                })
                .unwrap();
            })
        };
        // Wait (without sleeping) until A leads and gathers, then let B commit.
        loop {
            let state = gc.state.lock();
            if state.running {
                assert_eq!(
                    state.started, 0,
                    "the leader must not flush while B commits"
                );
                break;
            }
            drop(state);
            std::thread::yield_now();
        }
        gc.committed();
        gc.end_write();
        leader.join().unwrap();
        // B's sync is covered by A's flush.
        gc.sync(|| {
            flushes.fetch_add(1, Ordering::SeqCst);
            Ok::<(), String>(())
        })
        .unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_writer_that_never_commits_delays_a_flush_only_briefly() {
        let gc = GroupCommit::new(Duration::from_millis(1));
        gc.committed();
        gc.begin_write();
        let mut flushed = false;
        gc.sync(|| {
            flushed = true;
            Ok::<(), String>(())
        })
        .unwrap();
        assert!(flushed);
        gc.end_write();
    }
}
