//! The write-combining writer: concurrent SCIM writes (POST, PUT, PATCH and DELETE of
//! Users and Groups) are gathered into ONE store transaction and ONE durable flush.
//!
//! Each request queues its parsed input (a PUT or PATCH also its computed effect, see
//! [`super::write`]) and waits for its [`Pending`] outcome: a blocking caller on its
//! thread, an HTTP write as a future ([`Directory::queue_create`] and its kin), so it
//! holds no thread while its batch commits and flushes (a thread per waiting write
//! cost about a third of a create's CPU in hand-offs, bench/README.md). Whoever queues
//! into an idle queue becomes the leader and commits batches until the queue is empty
//! (an HTTP write hands this to the blocking pool). Each batch takes what is queued
//! (at most [`MAX_BATCH`], never waiting for more, so a lone write is not delayed),
//! takes the directory's writer lock, and runs each write against a [`BatchView`]: the
//! store overlaid with the writes of the batch's earlier writes, so uniqueness,
//! `If-Match` and member lists stay exact. A write that
//! fails validation is dropped alone (its [`super::view::Savepoint`] is discarded) and
//! gets its error; the others commit. The leader then commits everything in one
//! transaction, together with each write's audit and outbox entry, flushes once, and
//! only then hands every request its answer: a 2xx still means on disk. The next
//! batch starts when this flush ends, so it takes everything that queued meanwhile:
//! with sled 0.34 a commit cannot overlap a flush, and leading earlier only made
//! more, smaller transactions (each writes sled's log twice).
//!
//! A batch stops taking writes once it writes [`WRITE_BUDGET`] keys (a group
//! deletion or a big PATCH of members); the rest go back to the front of the queue.
//!
//! A leader gathers before it takes: when more writers were in flight since the last
//! batch was taken (queued plus being committed) than are queued now, or the last
//! batch was bigger, it waits at most [`GATHER_MAX`] for the queue to reach that
//! many ([`gather_target`]). Without this, 8 concurrent clients settle into two
//! groups of 4 that take turns (one flushes while the other's answers travel), and
//! every batch pays the transaction's fixed cost and a flush for 3-4 writes. A lone
//! writer is never held: its last batch was 1 and nobody else was in flight.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde_json::Value;

use crate::scim::{patch, resource, ResourceKind};
use crate::store::{StoreError, TxError, TxFail, Txn, WriteIntent};

use super::view::BatchView;
use super::write::{BatchCtx, Change, Edit};
use super::{Caller, Directory, DirectoryError, Precondition, Written};

mod reply;
pub use reply::Pending;
use reply::Reply;

/// Most writes one batch commits.
pub const MAX_BATCH: usize = 64;
/// A batch takes no further write once it writes this many keys.
pub const WRITE_BUDGET: usize = 20_000;
/// Longest a leader waits for the writers it expects (see [`gather_target`]).
pub const GATHER_MAX: Duration = Duration::from_millis(1);

/// How many queued writes a leader waits for before it takes a batch: the most
/// writers in flight at once since the last batch was taken (`peak`), or the size
/// of that batch if it was bigger (so a regime of full batches keeps itself), at
/// most [`MAX_BATCH`]. A load that shrinks costs one wait of at most [`GATHER_MAX`],
/// after which the smaller batch is the new size.
pub fn gather_target(peak: usize, last_batch: usize) -> usize {
    peak.max(last_batch).min(MAX_BATCH)
}

type Outcome = Result<Written, DirectoryError>;

/// A write waiting for a batch.
pub(super) struct Job {
    subject: String,
    request_id: Option<String>,
    /// The requester's trace context, for the outbox entry its write queues.
    trace: Option<String>,
    change: Change,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(u64, Job)>,
    /// Where each queued or active write's outcome goes, by ticket.
    replies: HashMap<u64, Arc<Reply<Outcome>>>,
    /// Whether somebody is leading batches (see [`Directory::lead`]).
    leading: bool,
    next_ticket: u64,
    /// Writes in the batch being committed and flushed.
    active: usize,
    /// Most writes in flight (queued plus active) since the last batch was taken.
    peak: usize,
    /// Size of the last batch taken.
    last_batch: usize,
    /// While a leader gathers: the queue length it waits for (0 otherwise).
    gathering_for: usize,
}

/// The queue of writes and who is committing them.
pub(super) struct Combiner {
    state: Mutex<State>,
    /// Wakes a gathering leader once the queue holds what it waits for.
    arrived: Condvar,
    /// Longest a leader gathers ([`GATHER_MAX`] outside tests).
    gather: Duration,
}

impl Default for Combiner {
    fn default() -> Self {
        Self::with_gather(GATHER_MAX)
    }
}

impl Combiner {
    /// A combiner whose leaders gather for at most `gather`.
    pub(super) fn with_gather(gather: Duration) -> Self {
        Self {
            state: Mutex::default(),
            arrived: Condvar::new(),
            gather,
        }
    }
}

/// A store failure, once per waiting request (store errors are not `Clone`).
fn shared_failure(message: &str) -> DirectoryError {
    DirectoryError::Store(StoreError::Io(std::io::Error::other(message.to_string())))
}

fn store_stop(e: TxError) -> DirectoryError {
    match e {
        TxError::Store(e) => DirectoryError::Store(e),
        TxError::Abort | TxError::Conflict => shared_failure("a batched write stopped"),
    }
}

/// A batch after its transaction: the outcomes, and whether they wait for a flush.
struct Committed {
    outcomes: Vec<(u64, Outcome)>,
    sync: bool,
}

/// A write queued with [`Directory::queue_create`] and its kin.
#[must_use = "the write's outcome arrives through `pending`, and `lead` must run"]
pub struct Queued {
    /// The write's outcome, once its batch is on disk.
    pub pending: Pending<Outcome>,
    /// Present when nobody was leading batches: [`Lead::run`] it on a thread that may
    /// block (the blocking pool), or the write never commits.
    pub lead: Option<Lead>,
}

/// Which update a `PUT` or `PATCH` makes (see [`Directory::queue_update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// `PUT`: the body replaces the resource.
    Replace,
    /// `PATCH`: the body's operations apply to the resource.
    Patch,
}

/// The duty to commit the queued batches (see [`Queued::lead`]). Dropping it runs
/// it too, so the queue never stalls; [`Lead::run`] says where.
pub struct Lead(Arc<Directory>);

impl Lead {
    /// Commits batches until the queue is empty. Blocks on the store.
    pub fn run(self) {
        drop(self);
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.0.lead();
    }
}

impl Directory {
    /// `POST /Users` and `POST /Groups` for a caller that awaits the outcome instead
    /// of blocking a thread on it: the body is parsed here, the write queued, and
    /// the returned [`Queued::pending`] resolves once its batch is on disk. When
    /// nobody leads batches, [`Queued::lead`] must be run on a thread that may block.
    pub fn queue_create(
        self: &Arc<Self>,
        caller: Caller<'_>,
        kind: ResourceKind,
        body: Value,
    ) -> Result<Queued, DirectoryError> {
        let change = self.creating(kind, body)?;
        Ok(self.queue(caller, change))
    }

    /// `PUT` or `PATCH`, queued like [`Directory::queue_create`]. The update is
    /// applied to the stored record before it queues, so this reads the store: call
    /// it where blocking is fine.
    pub fn queue_update(
        self: &Arc<Self>,
        caller: Caller<'_>,
        how: UpdateKind,
        kind: ResourceKind,
        id: &str,
        body: Value,
        precondition: &Precondition,
    ) -> Result<Queued, DirectoryError> {
        let change = self.updating(how, kind, id, body, precondition)?;
        Ok(self.queue(caller, change))
    }

    /// `DELETE`, queued like [`Directory::queue_create`]. Cheap on any thread: what
    /// it removes is read in its batch.
    pub fn queue_delete(
        self: &Arc<Self>,
        caller: Caller<'_>,
        kind: ResourceKind,
        id: &str,
        precondition: &Precondition,
    ) -> Queued {
        self.queue(caller, Change::delete(kind, id, precondition))
    }

    /// A POST's change: the body parsed.
    pub(super) fn creating(
        &self,
        kind: ResourceKind,
        body: Value,
    ) -> Result<Change, DirectoryError> {
        let input = resource::parse_input(&self.registry, kind, body, self.unknown_attributes)?;
        Ok(Change::Create { kind, input })
    }

    /// A PUT's or PATCH's change: the body parsed and applied to the stored record.
    pub(super) fn updating(
        &self,
        how: UpdateKind,
        kind: ResourceKind,
        id: &str,
        body: Value,
        precondition: &Precondition,
    ) -> Result<Change, DirectoryError> {
        let (registry, unknown) = (&self.registry, self.unknown_attributes);
        let edit = match how {
            UpdateKind::Replace => {
                Edit::Replace(resource::parse_input(registry, kind, body, unknown)?)
            }
            UpdateKind::Patch => Edit::Patch(patch::parse(registry, kind, body, unknown)?),
        };
        self.update(kind, id, precondition, edit)
    }

    fn queue(self: &Arc<Self>, caller: Caller<'_>, change: Change) -> Queued {
        let (pending, lead) = self.enqueue(caller, change);
        Queued {
            pending,
            lead: lead.then(|| Lead(self.clone())),
        }
    }

    /// Queues one write and returns its outcome once its batch is on disk, leading
    /// batches on this thread if nobody is.
    pub(super) fn submit(&self, caller: Caller<'_>, change: Change) -> Outcome {
        let (pending, lead) = self.enqueue(caller, change);
        if lead {
            self.lead();
        }
        pending.wait()
    }

    /// Queues one write without waiting for it. `true` means nobody is leading: the
    /// caller must call [`Directory::lead`] (on a thread that may block) or the write
    /// is never committed.
    pub(super) fn enqueue(&self, caller: Caller<'_>, change: Change) -> (Pending<Outcome>, bool) {
        let combiner = &self.combiner;
        let (reply, pending) = Reply::new();
        let mut state = combiner.state.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back((
            ticket,
            Job {
                subject: caller.subject.to_string(),
                request_id: caller.request_id.map(str::to_string),
                trace: crate::telemetry::propagation::current_traceparent(),
                change,
            },
        ));
        state.replies.insert(ticket, reply);
        let load = state.queue.len() + state.active;
        state.peak = state.peak.max(load);
        if state.gathering_for > 0 && state.queue.len() >= state.gathering_for {
            combiner.arrived.notify_one();
        }
        let lead = !state.leading;
        state.leading = true;
        (pending, lead)
    }

    /// Commits batches until the queue is empty, handing each write its outcome as
    /// its batch is on disk. Only the caller that [`Directory::enqueue`] told to lead
    /// calls this.
    pub(super) fn lead(&self) {
        let combiner = &self.combiner;
        let mut state = combiner.state.lock();
        loop {
            if state.queue.is_empty() {
                state.leading = false;
                return;
            }
            let target = gather_target(state.peak, state.last_batch);
            if state.queue.len() < target {
                state.gathering_for = target;
                let deadline = Instant::now() + combiner.gather;
                while state.queue.len() < target {
                    if combiner
                        .arrived
                        .wait_until(&mut state, deadline)
                        .timed_out()
                    {
                        break;
                    }
                }
                state.gathering_for = 0;
            }
            let take = state.queue.len().min(MAX_BATCH);
            let batch: Vec<(u64, Job)> = state.queue.drain(..take).collect();
            state.active = take;
            state.last_batch = take;
            state.peak = 0;
            drop(state);
            let (committed, rest) = self.commit_batch(batch);
            let outcomes = self.flush_batch(committed);
            state = combiner.state.lock();
            for job in rest.into_iter().rev() {
                state.queue.push_front(job);
            }
            // The next batch starts only now: a sled 0.34 commit cannot overlap a
            // flush anyway, and what queued during this one becomes one batch.
            state.active = 0;
            let answered: Vec<_> = outcomes
                .into_iter()
                .filter_map(|(ticket, outcome)| {
                    state.replies.remove(&ticket).map(|reply| (reply, outcome))
                })
                .collect();
            drop(state);
            for (reply, outcome) in answered {
                reply.fill(outcome);
            }
            state = combiner.state.lock();
        }
    }

    /// Validates a batch against the view and commits it in one transaction. Returns
    /// the writes it did not take (over [`WRITE_BUDGET`]), untouched.
    fn commit_batch(&self, batch: Vec<(u64, Job)>) -> (Committed, Vec<(u64, Job)>) {
        // Announced before queueing for the lock, so a flush waits for this commit too.
        let _intent = WriteIntent::new(self.store.as_ref());
        let _writer = self.writer.lock();
        let mut ctx = BatchCtx::new(self.clock.now());
        let mut view = BatchView::new(self.store.as_ref());
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut jobs = batch.into_iter();
        for (ticket, job) in jobs.by_ref() {
            let caller = Caller {
                subject: &job.subject,
                request_id: job.request_id.as_deref(),
            };
            let before = ctx.trails.len();
            let outcome = match self.apply_change(&mut view, &mut ctx, caller, job.change) {
                Ok(written) => Ok(written),
                // This write fails alone; its writes were dropped.
                Err(TxFail::Domain(e)) => Err(e),
                Err(TxFail::Store(e)) => Err(store_stop(e)),
            };
            for trail in &mut ctx.trails[before..] {
                trail.trace.clone_from(&job.trace);
            }
            outcomes.push((ticket, outcome));
            if view.len() >= WRITE_BUDGET {
                break;
            }
        }
        let rest: Vec<(u64, Job)> = jobs.collect();
        let writes = view.into_writes();
        if writes.is_empty() && ctx.trails.is_empty() {
            // Nothing to write, but what the answers saw may be a batch still
            // flushing: the flush below waits for it (and returns at once if none is).
            return (
                Committed {
                    outcomes,
                    sync: true,
                },
                rest,
            );
        }
        let now = ctx.now;
        let trails = &ctx.trails;
        let run = |txn: &mut dyn Txn| -> Result<(), TxError> {
            for ((table, key), value) in &writes {
                match value {
                    Some(v) => txn.insert(*table, key, v)?,
                    None => txn.remove(*table, key)?,
                }
            }
            for trail in trails {
                trail.append(txn, now)?;
            }
            Ok(())
        };
        let result = self.store.transact(&run);
        for (kind, forget) in [
            crate::scim::ResourceKind::User,
            crate::scim::ResourceKind::Group,
        ]
        .into_iter()
        .zip(ctx.forget)
        {
            if forget {
                self.positions.forget(kind);
            }
        }
        if let Err(e) = result {
            let message = e.to_string();
            for (_, outcome) in &mut outcomes {
                if outcome.is_ok() {
                    *outcome = Err(shared_failure(&message));
                }
            }
            return (
                Committed {
                    outcomes,
                    sync: false,
                },
                rest,
            );
        }
        (
            Committed {
                outcomes,
                sync: true,
            },
            rest,
        )
    }

    /// One flush for the batch; only then does any request get its 2xx.
    fn flush_batch(&self, committed: Committed) -> Vec<(u64, Outcome)> {
        let Committed { mut outcomes, sync } = committed;
        if sync {
            if let Err(e) = self.store.sync() {
                let message = e.to_string();
                for (_, outcome) in &mut outcomes {
                    if outcome.is_ok() {
                        *outcome = Err(shared_failure(&message));
                    }
                }
            }
        }
        outcomes
    }
}

#[cfg(test)]
mod tests;
