//! The write-combining writer for user creates: concurrent `POST /Users` requests
//! are gathered into ONE store transaction and ONE durable flush.
//!
//! Each request queues its parsed input and waits. Whoever finds no batch running
//! becomes the leader: it takes what is queued (at most [`MAX_BATCH`], without ever
//! waiting for more, so a lone create is not delayed), takes the directory's writer
//! lock, and runs every create in one transaction, each inside a [`Savepoint`]: a
//! create sees the writes of the creates before it (so `userName` uniqueness stays
//! exact), and one that fails validation is dropped alone while the others commit.
//! The leader then flushes once and only then hands every request its answer: a 2xx
//! still means on disk. While a batch commits and flushes, new requests queue up and
//! form the next batch.
//!
//! A user create reads only single keys through the transaction (the unique indexes,
//! counters, the audit head, the outbox sequence), which is what makes it safe to
//! combine. Other writes keep their own transaction under the same writer lock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use parking_lot::{Condvar, Mutex};

use crate::scim::resource::InputResource;
use crate::scim::ResourceKind;
use crate::store::{StoreError, Table, TxError, TxFail, Txn, WriteIntent};

use super::records::{table, Record};
use super::{Caller, Directory, DirectoryError, ResolvedMembers, Written};

/// Most creates one batch commits.
pub const MAX_BATCH: usize = 64;

/// A create waiting for a batch.
struct Job {
    subject: String,
    request_id: Option<String>,
    /// The requester's trace context, for the outbox entry its create queues.
    trace: Option<String>,
    input: InputResource,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(u64, Job)>,
    done: HashMap<u64, Result<Written, DirectoryError>>,
    leading: bool,
    next_ticket: u64,
}

/// The queue of creates and who is committing them.
#[derive(Default)]
pub(super) struct Combiner {
    state: Mutex<State>,
    finished: Condvar,
}

/// Reads and writes of one create inside the batch's transaction: reads see its own
/// writes, then the transaction's (earlier creates of the batch); writes reach the
/// transaction only when the create succeeded.
struct Savepoint<'t> {
    inner: &'t mut dyn Txn,
    writes: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
}

impl<'t> Savepoint<'t> {
    fn new(inner: &'t mut dyn Txn) -> Self {
        Self {
            inner,
            writes: BTreeMap::new(),
        }
    }

    fn release(self) -> Result<(), TxError> {
        for ((table, key), value) in self.writes {
            match value {
                Some(v) => self.inner.insert(table, &key, &v)?,
                None => self.inner.remove(table, &key)?,
            }
        }
        Ok(())
    }
}

impl Txn for Savepoint<'_> {
    fn get(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, TxError> {
        match self.writes.get(&(table, key.to_vec())) {
            Some(pending) => Ok(pending.clone()),
            None => self.inner.get(table, key),
        }
    }

    fn insert(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), TxError> {
        self.writes
            .insert((table, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    fn remove(&mut self, table: Table, key: &[u8]) -> Result<(), TxError> {
        self.writes.insert((table, key.to_vec()), None);
        Ok(())
    }
}

/// A store failure, once per waiting request (store errors are not `Clone`).
fn shared_failure(message: &str) -> DirectoryError {
    DirectoryError::Store(StoreError::Io(std::io::Error::other(message.to_string())))
}

impl Directory {
    /// `POST /Users`, combined with concurrent ones (see the module docs).
    pub(super) fn create_combined(
        &self,
        caller: Caller<'_>,
        input: InputResource,
    ) -> Result<Written, DirectoryError> {
        let combiner = &self.combiner;
        let mut state = combiner.state.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back((
            ticket,
            Job {
                subject: caller.subject.to_string(),
                request_id: caller.request_id.map(str::to_string),
                trace: crate::telemetry::propagation::current_traceparent(),
                input,
            },
        ));
        loop {
            if let Some(result) = state.done.remove(&ticket) {
                return result;
            }
            if !state.leading {
                state.leading = true;
                let take = state.queue.len().min(MAX_BATCH);
                let batch: Vec<(u64, Job)> = state.queue.drain(..take).collect();
                drop(state);
                let results = self.commit_batch(&batch);
                state = combiner.state.lock();
                for ((ticket, _), result) in batch.iter().zip(results) {
                    state.done.insert(*ticket, result);
                }
                state.leading = false;
                combiner.finished.notify_all();
                continue;
            }
            combiner.finished.wait(&mut state);
        }
    }

    /// Commits a batch of user creates in one transaction and one flush.
    fn commit_batch(&self, batch: &[(u64, Job)]) -> Vec<Result<Written, DirectoryError>> {
        let kind = ResourceKind::User;
        let committed = {
            let _intent = WriteIntent::new(self.store.as_ref());
            let _writer = self.writer.lock();
            let now = self.clock.now();
            let mut ids = Vec::with_capacity(batch.len());
            for _ in batch {
                match self.ids.next(self.clock.now_millis()) {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        let message = e.to_string();
                        return batch
                            .iter()
                            .map(|_| Err(shared_failure(&message)))
                            .collect();
                    }
                }
            }
            let records: Vec<Record> = batch
                .iter()
                .map(|(_, job)| Record::new(job.input.document.clone(), now))
                .collect();
            // Ids grow with time, so new users are normally last in list order; one
            // that sorts earlier (a clock stepped back) shifts known positions.
            let shifts = match (self.store.last(table(kind), b""), ids.first()) {
                (Ok(Some((last, _))), Some(first)) => last.as_slice() > first.as_bytes(),
                (Ok(_), _) => false,
                (Err(e), _) => {
                    let message = e.to_string();
                    return batch
                        .iter()
                        .map(|_| Err(shared_failure(&message)))
                        .collect();
                }
            };
            let no_members = ResolvedMembers::default();
            let outcomes: std::cell::RefCell<Vec<Result<Written, DirectoryError>>> =
                std::cell::RefCell::new(Vec::new());
            let run = |txn: &mut dyn Txn| -> Result<(), TxError> {
                let mut results = Vec::with_capacity(batch.len());
                for (((_, job), id), record) in batch.iter().zip(&ids).zip(&records) {
                    let caller = Caller {
                        subject: &job.subject,
                        request_id: job.request_id.as_deref(),
                    };
                    let mut savepoint = Savepoint::new(txn);
                    let created =
                        crate::telemetry::propagation::queued_as(job.trace.clone(), || {
                            self.create_in(
                                &mut savepoint,
                                caller,
                                kind,
                                id,
                                record,
                                &job.input,
                                &no_members,
                                now,
                            )
                        });
                    match created {
                        Ok(written) => {
                            savepoint.release()?;
                            results.push(Ok(written));
                        }
                        // This create fails alone; its writes are dropped.
                        Err(TxFail::Domain(e)) => results.push(Err(e)),
                        Err(TxFail::Store(e)) => return Err(e),
                    }
                }
                *outcomes.borrow_mut() = results;
                Ok(())
            };
            let result = self.store.transact(&run);
            if shifts {
                self.positions.forget(kind);
            }
            match result {
                Ok(()) => outcomes.into_inner(),
                Err(e) => {
                    let message = e.to_string();
                    return batch
                        .iter()
                        .map(|_| Err(shared_failure(&message)))
                        .collect();
                }
            }
        };
        // One flush for the batch; only then does any request get its 2xx.
        let wrote_any = committed.iter().any(Result::is_ok);
        if wrote_any {
            if let Err(e) = self.store.sync() {
                let message = e.to_string();
                return committed
                    .into_iter()
                    .map(|r| r.and(Err(shared_failure(&message))))
                    .collect();
            }
        }
        committed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::UnknownMembers;
    use crate::scim::{resource, SchemaRegistry, ScimError};
    use crate::store::conformance::backends;

    fn job(dir: &Directory, name: &str) -> (u64, Job) {
        let input = resource::parse_input(
            dir.registry(),
            ResourceKind::User,
            json!({"userName": name}),
            crate::scim::UnknownAttributes::Reject,
        )
        .unwrap();
        (
            0,
            Job {
                subject: "okta".into(),
                request_id: None,
                trace: None,
                input,
            },
        )
    }

    #[test]
    fn a_batch_commits_together_and_a_duplicate_in_it_fails_alone() {
        for (name, store, _tmp) in backends() {
            let dir = Directory::new(
                store,
                Arc::new(SchemaRegistry::builtin().unwrap()),
                Arc::new(ManualClock::at_epoch_2026()),
                UnknownMembers::Skip,
            );
            let batch = vec![
                job(&dir, "a@example.com"),
                job(&dir, "b@example.com"),
                job(&dir, "A@example.com"),
                job(&dir, "c@example.com"),
            ];
            let results = dir.commit_batch(&batch);
            assert!(results[0].is_ok(), "{name}");
            assert!(results[1].is_ok(), "{name}");
            assert!(
                matches!(
                    results[2],
                    Err(DirectoryError::Scim(ScimError::Uniqueness(_)))
                ),
                "{name}: the duplicate sees the earlier create of its batch"
            );
            assert!(results[3].is_ok(), "{name}");
            assert_eq!(dir.counts().unwrap().0, 3, "{name}");
            let audited = crate::audit::list(dir.store().as_ref(), None, 0, 100).unwrap();
            assert_eq!(audited.len(), 3, "{name}: one audit entry per created user");
            assert!(
                crate::audit::verify_store(dir.store().as_ref()).unwrap().ok,
                "{name}: the chain verifies"
            );
            assert_eq!(
                crate::outbox::backlog(dir.store().as_ref()).unwrap().0,
                3,
                "{name}"
            );
            for (result, user) in results.iter().zip(["a", "b", "", "c"]) {
                if let Ok(w) = result {
                    assert_eq!(
                        dir.user_id_by_name(&format!("{user}@example.com")).unwrap(),
                        Some(w.id.clone()),
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn concurrent_creates_all_commit_and_each_name_once() {
        for (name, store, _tmp) in backends() {
            let dir = Arc::new(Directory::new(
                store,
                Arc::new(SchemaRegistry::builtin().unwrap()),
                Arc::new(ManualClock::at_epoch_2026()),
                UnknownMembers::Skip,
            ));
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let dir = dir.clone();
                    std::thread::spawn(move || {
                        (0..25)
                            .map(|i| {
                                // Every thread also tries one shared name.
                                let user = if i == 0 {
                                    "shared@example.com".to_string()
                                } else {
                                    format!("t{t}-{i}@example.com")
                                };
                                dir.create(
                                    Caller {
                                        subject: "okta",
                                        request_id: None,
                                    },
                                    ResourceKind::User,
                                    json!({"userName": user}),
                                )
                                .is_ok()
                            })
                            .filter(|ok| *ok)
                            .count()
                    })
                })
                .collect();
            let created: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(created, 8 * 24 + 1, "{name}");
            assert_eq!(dir.counts().unwrap().0, created as u64, "{name}");
            assert!(
                crate::audit::verify_store(dir.store().as_ref()).unwrap().ok,
                "{name}"
            );
        }
    }
}
