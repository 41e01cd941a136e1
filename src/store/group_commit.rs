//! Group commit: many writers waiting for durability share one flush.
//!
//! A caller needs a flush that *started* after its write committed. If none is
//! running, it becomes the leader and flushes; otherwise it waits for the running
//! flush to end and, if that flush started too early for it, for the next one.

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct State {
    /// Generation of the most recently started flush.
    started: u64,
    /// Generation of the most recently finished flush.
    finished: u64,
    /// Whether a flush is running now.
    running: bool,
    /// The outcome of the most recent finished flush and its generation.
    last_error: Option<(u64, String)>,
}

/// Coordinates flushes of one database.
#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Returns once a flush that started after this call has finished, running it
    /// ourselves if nobody else is. `flush` performs the actual flush.
    pub fn sync<E>(&self, flush: impl FnOnce() -> Result<(), E>) -> Result<(), String>
    where
        E: std::fmt::Display,
    {
        let mut state = self.state.lock();
        // Any flush that starts from now on covers our write.
        let needed = state.started + 1;
        loop {
            if state.finished >= needed {
                return match &state.last_error {
                    Some((generation, message)) if *generation >= needed => Err(message.clone()),
                    _ => Ok(()),
                };
            }
            if !state.running {
                state.running = true;
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
        let err = gc.sync(|| Err::<(), _>("disk full")).unwrap_err();
        assert_eq!(err, "disk full");
        assert!(gc.sync(|| Ok::<(), String>(())).is_ok());
    }
}
