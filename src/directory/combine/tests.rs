//! Tests of the combining writer: batches of mixed writes, each validated against
//! the writes before it, failing alone, and committed (or refused) together.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::clock::ManualClock;
use crate::config::UnknownMembers;
use crate::scim::{patch, resource, ResourceKind, SchemaRegistry, ScimError, UnknownAttributes};
use crate::store::conformance::backends;
use crate::store::memory::MemoryStore;
use crate::store::{Entry, Store, TxBody, Visit};

use super::super::write::{self, Edit, Update};
use super::super::{Precondition, RenderOptions};

fn directory(store: Arc<dyn Store>) -> Directory {
    Directory::new(
        store,
        Arc::new(SchemaRegistry::builtin().unwrap()),
        Arc::new(ManualClock::at_epoch_2026()),
        UnknownMembers::Skip,
    )
}

fn caller() -> Caller<'static> {
    Caller {
        subject: "okta",
        request_id: None,
    }
}

fn job(change: Change) -> (u64, Job) {
    (
        0,
        Job {
            subject: "okta".into(),
            request_id: None,
            trace: None,
            change,
        },
    )
}

fn create(dir: &Directory, kind: ResourceKind, body: Value) -> (u64, Job) {
    let input =
        resource::parse_input(dir.registry(), kind, body, UnknownAttributes::Reject).unwrap();
    job(Change::Create { kind, input })
}

fn user_create(dir: &Directory, name: &str) -> (u64, Job) {
    create(dir, ResourceKind::User, json!({ "userName": name }))
}

/// A PATCH as the caller would queue it: computed on the record as it is now.
fn patch_job(
    dir: &Directory,
    kind: ResourceKind,
    id: &str,
    body: Value,
    if_match: Option<&str>,
) -> (u64, Job) {
    let request = patch::parse(dir.registry(), kind, body, UnknownAttributes::Reject).unwrap();
    let edit = Edit::Patch(request);
    let (seen_version, computed) = match dir.record(kind, id).unwrap() {
        Some(seen) => (seen.version, dir.compute(kind, id, &edit, &seen).unwrap()),
        // The caller would have answered 404 itself; queue it anyway to see the
        // batch refuse it alone.
        None => (
            0,
            write::Computed {
                doc: json!({}),
                member_ops: Vec::new(),
                changed: Default::default(),
                unknown: Default::default(),
            },
        ),
    };
    job(Change::Update(Box::new(Update {
        kind,
        id: id.to_string(),
        precondition: Precondition {
            if_match: if_match.map(str::to_string),
        },
        edit,
        seen_version,
        computed,
    })))
}

fn delete_job(kind: ResourceKind, id: &str) -> (u64, Job) {
    job(Change::Delete {
        kind,
        id: id.to_string(),
        precondition: Precondition::default(),
    })
}

fn run(dir: &Directory, batch: Vec<(u64, Job)>) -> Vec<Outcome> {
    let batch: Vec<(u64, Job)> = batch
        .into_iter()
        .enumerate()
        .map(|(i, (_, j))| (i as u64, j))
        .collect();
    let (committed, rest) = dir.commit_batch(batch);
    assert!(rest.is_empty());
    dir.flush_batch(committed)
        .into_iter()
        .map(|(_, o)| o)
        .collect()
}

fn display_of(dir: &Directory, kind: ResourceKind, id: &str) -> Option<String> {
    dir.record(kind, id)
        .unwrap()
        .and_then(|r| r.str_attr("displayName").map(str::to_string))
}

fn chain_ok(dir: &Directory) -> bool {
    crate::audit::verify_store(dir.store().as_ref()).unwrap().ok
}

#[test]
fn a_batch_commits_together_and_a_duplicate_in_it_fails_alone() {
    for (name, store, _tmp) in backends() {
        let dir = directory(store);
        let results = run(
            &dir,
            vec![
                user_create(&dir, "a@example.com"),
                user_create(&dir, "b@example.com"),
                user_create(&dir, "A@example.com"),
                user_create(&dir, "c@example.com"),
            ],
        );
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
        assert!(chain_ok(&dir), "{name}: the chain verifies");
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
fn failing_writes_in_a_mixed_batch_fail_alone_and_the_others_commit() {
    for (name, store, _tmp) in backends() {
        let dir = directory(store);
        let kept = dir.create(
            caller(),
            ResourceKind::User,
            json!({"userName": "kept@example.com"}),
        );
        let kept = kept.unwrap().id;
        let gone = dir.create(
            caller(),
            ResourceKind::User,
            json!({"userName": "gone@example.com"}),
        );
        let gone = gone.unwrap().id;
        let entries_before = crate::audit::list(dir.store().as_ref(), None, 0, 100)
            .unwrap()
            .len();
        let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Kept"}]});
        let results = run(
            &dir,
            vec![
                user_create(&dir, "new@example.com"),
                // 404: no such user.
                patch_job(&dir, ResourceKind::User, "nobody", rename.clone(), None),
                // 409: taken by a stored user.
                user_create(&dir, "KEPT@example.com"),
                // 412: an ETag that is not the current one.
                patch_job(
                    &dir,
                    ResourceKind::User,
                    &kept,
                    rename.clone(),
                    Some("W/\"7\""),
                ),
                patch_job(&dir, ResourceKind::User, &kept, rename, Some("W/\"1\"")),
                delete_job(ResourceKind::User, &gone),
                // 404: deleted earlier in this batch.
                delete_job(ResourceKind::User, &gone),
            ],
        );
        assert!(results[0].is_ok(), "{name}");
        assert!(
            matches!(
                results[1],
                Err(DirectoryError::Scim(ScimError::NotFound(_)))
            ),
            "{name}"
        );
        assert!(
            matches!(
                results[2],
                Err(DirectoryError::Scim(ScimError::Uniqueness(_)))
            ),
            "{name}"
        );
        assert!(
            matches!(
                results[3],
                Err(DirectoryError::Scim(ScimError::PreconditionFailed(_)))
            ),
            "{name}"
        );
        assert!(results[4].is_ok(), "{name}");
        assert!(results[5].is_ok(), "{name}");
        assert!(
            matches!(
                results[6],
                Err(DirectoryError::Scim(ScimError::NotFound(_)))
            ),
            "{name}: the second delete sees the first"
        );
        assert_eq!(
            display_of(&dir, ResourceKind::User, &kept).as_deref(),
            Some("Kept"),
            "{name}"
        );
        assert!(
            dir.record(ResourceKind::User, &gone).unwrap().is_none(),
            "{name}"
        );
        assert_eq!(
            dir.user_id_by_name("gone@example.com").unwrap(),
            None,
            "{name}"
        );
        assert_eq!(dir.counts().unwrap().0, 2, "{name}: kept and new");
        let entries = crate::audit::list(dir.store().as_ref(), None, 0, 100).unwrap();
        assert_eq!(
            entries.len(),
            entries_before + 3,
            "{name}: one entry per success"
        );
        assert!(chain_ok(&dir), "{name}");
    }
}

#[test]
fn later_writes_of_a_batch_see_the_memberships_earlier_ones_made() {
    for (name, store, _tmp) in backends() {
        let dir = directory(store);
        let u = dir
            .create(
                caller(),
                ResourceKind::User,
                json!({"userName": "u@example.com"}),
            )
            .unwrap()
            .id;
        let g = dir
            .create(
                caller(),
                ResourceKind::Group,
                json!({"displayName": "Pilot"}),
            )
            .unwrap()
            .id;
        let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": u}]}]});
        // The group gains the user, then the user is deleted: the delete must find and
        // remove the membership the PATCH made in the same batch.
        let results = run(
            &dir,
            vec![
                patch_job(&dir, ResourceKind::Group, &g, add, None),
                delete_job(ResourceKind::User, &u),
            ],
        );
        assert!(results.iter().all(Result::is_ok), "{name}");
        assert!(dir.members(&g).unwrap().is_empty(), "{name}");
        assert!(dir.member_of(&u).unwrap().is_empty(), "{name}");
        let group = dir.record(ResourceKind::Group, &g).unwrap().unwrap();
        assert_eq!(group.member_count, 0, "{name}");
        assert_eq!(dir.counts().unwrap(), (0, 1, 0), "{name}");

        // A group renamed in a batch: a member added earlier in it gets the new name.
        let v = dir
            .create(
                caller(),
                ResourceKind::User,
                json!({"userName": "v@example.com"}),
            )
            .unwrap()
            .id;
        let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": v}]}]});
        let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Pilot 2"}]});
        let first = patch_job(&dir, ResourceKind::Group, &g, add, None);
        // Computed on the version before `first`: recomputed in the batch.
        let second = patch_job(&dir, ResourceKind::Group, &g, rename, None);
        let results = run(&dir, vec![first, second]);
        assert!(results.iter().all(Result::is_ok), "{name}");
        let rendered = dir
            .get(
                ResourceKind::User,
                &v,
                &RenderOptions::all("https://sync.example.com/scim/v2"),
            )
            .unwrap();
        assert_eq!(
            rendered.body["groups"][0]["display"], "Pilot 2",
            "{name}: {}",
            rendered.body
        );
        assert_eq!(dir.members(&g).unwrap().len(), 1, "{name}");
        assert!(chain_ok(&dir), "{name}");
    }
}

#[test]
fn concurrent_creates_of_one_user_name_give_exactly_one_success() {
    for (name, store, _tmp) in backends() {
        let dir = Arc::new(directory(store));
        let outcomes: Vec<Outcome> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let dir = dir.clone();
                    s.spawn(move || {
                        // Differently cased: userName is unique case-insensitively.
                        let user = if t % 2 == 0 {
                            "same@example.com"
                        } else {
                            "SAME@example.com"
                        };
                        dir.create(caller(), ResourceKind::User, json!({ "userName": user }))
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let ok = outcomes.iter().filter(|o| o.is_ok()).count();
        let conflicts = outcomes
            .iter()
            .filter(|o| matches!(o, Err(DirectoryError::Scim(ScimError::Uniqueness(_)))))
            .count();
        assert_eq!((ok, conflicts), (1, 7), "{name}");
        assert_eq!(dir.counts().unwrap().0, 1, "{name}");
    }
}

#[test]
fn concurrent_patches_with_one_if_match_give_exactly_one_success() {
    for (name, store, _tmp) in backends() {
        let dir = Arc::new(directory(store));
        let id = dir
            .create(
                caller(),
                ResourceKind::User,
                json!({"userName": "race@example.com"}),
            )
            .unwrap()
            .id;
        let etag = dir.record(ResourceKind::User, &id).unwrap().unwrap().etag();
        let outcomes: Vec<Outcome> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let dir = dir.clone();
                    let (id, etag) = (id.clone(), etag.clone());
                    s.spawn(move || {
                        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "replace", "path": "displayName", "value": format!("T{t}")}]});
                        dir.patch(
                            caller(),
                            ResourceKind::User,
                            &id,
                            body,
                            &Precondition {
                                if_match: Some(etag),
                            },
                        )
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let ok: Vec<&Written> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        let refused = outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    Err(DirectoryError::Scim(ScimError::PreconditionFailed(_)))
                )
            })
            .count();
        assert_eq!((ok.len(), refused), (1, 7), "{name}");
        let stored = dir.record(ResourceKind::User, &id).unwrap().unwrap();
        assert_eq!(stored.version, 2, "{name}");
        assert_eq!(
            stored.doc["displayName"], ok[0].record.doc["displayName"],
            "{name}"
        );
    }
}

#[test]
fn concurrent_mixed_writes_all_commit_and_each_name_once() {
    for (name, store, _tmp) in backends() {
        let dir = Arc::new(directory(store));
        let group = dir
            .create(caller(), ResourceKind::Group, json!({"displayName": "All"}))
            .unwrap()
            .id;
        let created: usize = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let dir = dir.clone();
                    let group = group.clone();
                    s.spawn(move || {
                        let mut created = 0;
                        for i in 0..20 {
                            // Every thread also tries one shared name.
                            let user = if i == 0 {
                                "shared@example.com".to_string()
                            } else {
                                format!("t{t}-{i}@example.com")
                            };
                            let Ok(w) = dir.create(
                                caller(),
                                ResourceKind::User,
                                json!({ "userName": user }),
                            ) else {
                                continue;
                            };
                            created += 1;
                            let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": [{"op": "add", "path": "members", "value": [{"value": w.id}]}]});
                            dir.patch(caller(), ResourceKind::Group, &group, add, &Precondition::default())
                                .unwrap();
                            if i % 5 == 0 {
                                dir.delete(caller(), ResourceKind::User, &w.id, &Precondition::default())
                                    .unwrap();
                                created -= 1;
                            }
                        }
                        created
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        // 8 threads x 19 own names + the shared one, less the deleted (i = 5, 10, 15
        // per thread, and i = 0 for the thread whose shared create won).
        assert_eq!(created, 8 * 19 + 1 - 8 * 3 - 1, "{name}");
        let (users, groups, memberships) = dir.counts().unwrap();
        assert_eq!((users, groups), (created as u64, 1), "{name}");
        assert_eq!(memberships, created as u64, "{name}");
        assert_eq!(dir.members(&group).unwrap().len(), created, "{name}");
        let record = dir.record(ResourceKind::Group, &group).unwrap().unwrap();
        assert_eq!(record.member_count, created as u64, "{name}");
        assert!(chain_ok(&dir), "{name}");
    }
}

/// A memory store whose commits or flushes fail on demand.
struct Failing {
    inner: MemoryStore,
    fail_commit: AtomicBool,
    fail_sync: AtomicBool,
}

impl Store for Failing {
    fn get(&self, table: crate::store::Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(table, key)
    }
    fn scan(
        &self,
        table: crate::store::Table,
        prefix: &[u8],
        from: Option<&[u8]>,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        self.inner.scan(table, prefix, from, visit)
    }
    fn last(&self, table: crate::store::Table, prefix: &[u8]) -> Result<Option<Entry>, StoreError> {
        self.inner.last(table, prefix)
    }
    fn transact(&self, body: &TxBody<'_>) -> Result<(), StoreError> {
        if self.fail_commit.load(Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other("commit failed")));
        }
        self.inner.transact(body)
    }
    fn sync(&self) -> Result<(), StoreError> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(StoreError::Io(std::io::Error::other("flush failed")));
        }
        Ok(())
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[test]
fn a_batch_whose_commit_or_flush_fails_acknowledges_none_of_its_writes() {
    let store = Arc::new(Failing {
        inner: MemoryStore::new(),
        fail_commit: AtomicBool::new(false),
        fail_sync: AtomicBool::new(false),
    });
    let dir = directory(store.clone());
    store.fail_commit.store(true, Ordering::SeqCst);
    let results = run(
        &dir,
        vec![
            user_create(&dir, "a@example.com"),
            user_create(&dir, "b@example.com"),
        ],
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(DirectoryError::Store(_)))),
        "a failed commit fails every write of the batch"
    );
    assert_eq!(dir.counts().unwrap().0, 0, "and writes nothing");
    store.fail_commit.store(false, Ordering::SeqCst);
    store.fail_sync.store(true, Ordering::SeqCst);
    let results = run(
        &dir,
        vec![
            user_create(&dir, "a@example.com"),
            user_create(&dir, "a@example.com"),
        ],
    );
    assert!(
        matches!(results[0], Err(DirectoryError::Store(_))),
        "no 2xx before the batch is on disk"
    );
    assert!(
        matches!(
            results[1],
            Err(DirectoryError::Scim(ScimError::Uniqueness(_)))
        ),
        "a write refused on its own merits keeps its own error"
    );
}

#[test]
fn a_batch_over_its_write_budget_hands_the_rest_back_untouched() {
    let dir = directory(Arc::new(MemoryStore::new()));
    let members: Vec<Value> = (0..WRITE_BUDGET / 2)
        .map(|i| {
            let id = dir
                .create(
                    caller(),
                    ResourceKind::User,
                    json!({"userName": format!("m{i}@example.com")}),
                )
                .unwrap()
                .id;
            json!({ "value": id })
        })
        .collect();
    let big = create(
        &dir,
        ResourceKind::Group,
        json!({"displayName": "Big", "members": members}),
    );
    let batch: Vec<(u64, Job)> = vec![big, user_create(&dir, "after@example.com")]
        .into_iter()
        .enumerate()
        .map(|(i, (_, j))| (i as u64, j))
        .collect();
    let (committed, rest) = dir.commit_batch(batch);
    assert_eq!(committed.outcomes.len(), 1);
    assert!(committed.outcomes[0].1.is_ok());
    assert_eq!(
        rest.len(),
        1,
        "the create after the big group waits for the next batch"
    );
    assert_eq!(rest[0].0, 1);
    assert_eq!(dir.user_id_by_name("after@example.com").unwrap(), None);
}

#[test]
fn a_leader_gathers_as_many_writes_as_were_in_flight_and_no_more() {
    // Nobody else in flight: a lone write is taken at once.
    assert_eq!(gather_target(1, 1), 1);
    assert_eq!(gather_target(0, 0), 0);
    // Eight in flight while the last batch of four flushed: wait for eight.
    assert_eq!(gather_target(8, 4), 8);
    // Eight were taken together last time and the first comes back: wait for the rest.
    assert_eq!(gather_target(1, 8), 8);
    // Never more than a batch holds.
    assert_eq!(gather_target(500, 3), MAX_BATCH);
}

#[test]
fn a_gathering_leader_takes_the_write_it_waits_for_into_its_batch() {
    let mut dir = directory(Arc::new(MemoryStore::new()));
    // A window only the second write's arrival can end.
    dir.combiner = Combiner::with_gather(std::time::Duration::from_secs(60));
    dir.combiner.state.lock().last_batch = 2;
    let dir = Arc::new(dir);
    std::thread::scope(|s| {
        let first = {
            let dir = dir.clone();
            s.spawn(move || {
                dir.create(
                    caller(),
                    ResourceKind::User,
                    json!({"userName": "a@example.com"}),
                )
            })
        };
        // Wait (without sleeping) until the first write's leader gathers.
        while dir.combiner.state.lock().gathering_for != 2 {
            std::thread::yield_now();
        }
        assert_eq!(
            dir.counts().unwrap().0,
            0,
            "nothing commits while gathering"
        );
        let second = dir.create(
            caller(),
            ResourceKind::User,
            json!({"userName": "b@example.com"}),
        );
        assert!(second.is_ok());
        assert!(first.join().unwrap().is_ok());
    });
    assert_eq!(dir.combiner.state.lock().last_batch, 2, "one batch of both");
    assert_eq!(dir.counts().unwrap().0, 2);
}

#[test]
fn a_lone_write_after_a_burst_waits_once_and_the_next_not_at_all() {
    let dir = directory(Arc::new(MemoryStore::new()));
    dir.combiner.state.lock().last_batch = 8;
    dir.create(
        caller(),
        ResourceKind::User,
        json!({"userName": "a@example.com"}),
    )
    .unwrap();
    // The window ran out; the batch of one is the new size.
    assert_eq!(dir.combiner.state.lock().last_batch, 1);
    assert_eq!(gather_target(1, 1), 1);
    dir.create(
        caller(),
        ResourceKind::User,
        json!({"userName": "b@example.com"}),
    )
    .unwrap();
    assert_eq!(dir.counts().unwrap().0, 2);
}

/// A user create queued the way an HTTP create queues it.
fn queue_user(dir: &Arc<Directory>, name: &str) -> Queued {
    dir.queue_create(caller(), ResourceKind::User, json!({ "userName": name }))
        .unwrap()
}

#[test]
fn queued_creates_wait_without_a_thread_and_one_lead_commits_them_together() {
    let dir = Arc::new(directory(Arc::new(MemoryStore::new())));
    let first = queue_user(&dir, "a@example.com");
    let second = queue_user(&dir, "b@example.com");
    assert!(
        first.lead.is_some(),
        "nobody was leading: the first must lead"
    );
    assert!(second.lead.is_none(), "one leader at a time");
    assert_eq!(
        dir.counts().unwrap().0,
        0,
        "nothing commits before the lead runs"
    );
    first.lead.unwrap().run();
    let a = futures_executor::block_on(first.pending).unwrap();
    let b = futures_executor::block_on(second.pending).unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(dir.combiner.state.lock().last_batch, 2, "one batch of both");
    assert_eq!(dir.counts().unwrap().0, 2);
    assert!(chain_ok(&dir));
}

#[test]
fn a_dropped_lead_still_commits_and_a_queued_duplicate_fails_alone() {
    let dir = Arc::new(directory(Arc::new(MemoryStore::new())));
    let queued = queue_user(&dir, "a@example.com");
    // Whoever holds the lead and drops it commits the queue: it never stalls.
    drop(queued.lead);
    assert!(futures_executor::block_on(queued.pending).is_ok());

    // Two creates of one userName queued together: one batch, the second fails alone.
    let queued = queue_user(&dir, "b@example.com");
    let lead = queued.lead.expect("the queue was idle");
    let duplicate = queue_user(&dir, "b@example.com");
    assert!(duplicate.lead.is_none());
    lead.run();
    assert!(futures_executor::block_on(queued.pending).is_ok());
    assert!(
        futures_executor::block_on(duplicate.pending).is_err(),
        "the second of one userName fails alone"
    );
    // The queue is idle again: a blocking writer leads its own batch.
    let later = dir.create(
        caller(),
        ResourceKind::User,
        json!({"userName": "c@example.com"}),
    );
    assert!(later.is_ok());
    assert_eq!(dir.counts().unwrap().0, 3);
}

#[test]
fn queued_patches_replaces_and_deletes_ride_one_batch_and_fail_alone() {
    let dir = Arc::new(directory(Arc::new(MemoryStore::new())));
    let ids: Vec<String> = ["a@example.com", "b@example.com", "c@example.com"]
        .iter()
        .map(|name| {
            dir.create(caller(), ResourceKind::User, json!({ "userName": name }))
                .unwrap()
                .id
        })
        .collect();
    let none = Precondition::default();
    let patch = dir
        .queue_update(
            caller(),
            UpdateKind::Patch,
            ResourceKind::User,
            &ids[0],
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]
            }),
            &none,
        )
        .unwrap();
    let lead = patch.lead.expect("the queue was idle");
    let replace = dir
        .queue_update(
            caller(),
            UpdateKind::Replace,
            ResourceKind::User,
            &ids[1],
            json!({"userName": "b@example.com", "displayName": "Bee"}),
            &none,
        )
        .unwrap();
    let stale = Precondition {
        if_match: Some("W/\"0\"".into()),
    };
    let refused = dir.queue_delete(caller(), ResourceKind::User, &ids[2], &stale);
    let delete = dir.queue_delete(caller(), ResourceKind::User, &ids[1], &none);
    assert!(replace.lead.is_none() && refused.lead.is_none() && delete.lead.is_none());
    // A PATCH of nothing is refused before it queues.
    assert!(matches!(
        dir.queue_update(
            caller(),
            UpdateKind::Patch,
            ResourceKind::User,
            "no-such-id",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": true}]
            }),
            &none,
        ),
        Err(DirectoryError::Scim(ScimError::NotFound(_)))
    ));
    assert!(
        dir.record(ResourceKind::User, &ids[0])
            .unwrap()
            .unwrap()
            .doc["active"]
            != false,
        "nothing commits before the lead runs"
    );

    lead.run();
    let patched = futures_executor::block_on(patch.pending).unwrap();
    assert_eq!(patched.record.doc["active"], false);
    let replaced = futures_executor::block_on(replace.pending).unwrap();
    assert_eq!(replaced.record.doc["displayName"], "Bee");
    assert!(matches!(
        futures_executor::block_on(refused.pending),
        Err(DirectoryError::Scim(ScimError::PreconditionFailed(_)))
    ));
    assert!(futures_executor::block_on(delete.pending).is_ok());
    assert_eq!(
        dir.combiner.state.lock().last_batch,
        4,
        "one batch of all four"
    );
    // The delete saw the replace queued before it; the refused delete changed nothing.
    assert!(dir.record(ResourceKind::User, &ids[1]).unwrap().is_none());
    assert!(dir.record(ResourceKind::User, &ids[2]).unwrap().is_some());
    assert!(chain_ok(&dir));
}
