//! Directory behaviour, run on both store backends (the store conformance suite at
//! the directory level): uniqueness, index consistency, membership deltas,
//! atomicity, preconditions, paging, and what each write leaves in the audit trail
//! and the outbox.

mod groups;
mod queries;

use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::clock::ManualClock;
use crate::scim::list::ListQuery;
use crate::store::conformance::backends;

const ALICE: &str = "alice@example.com";

struct Fixture {
    dir: Directory,
    clock: Arc<ManualClock>,
    _tmp: Option<tempfile::TempDir>,
    name: &'static str,
}

fn fixtures_with(policy: UnknownMembers) -> Vec<Fixture> {
    backends()
        .into_iter()
        .map(|(name, store, tmp)| {
            let clock = Arc::new(ManualClock::at_epoch_2026());
            let dir = Directory::new(
                store,
                Arc::new(SchemaRegistry::builtin().unwrap()),
                clock.clone(),
                policy,
            );
            Fixture {
                dir,
                clock,
                _tmp: tmp,
                name,
            }
        })
        .collect()
}

fn fixtures() -> Vec<Fixture> {
    fixtures_with(UnknownMembers::Skip)
}

fn caller() -> Caller<'static> {
    Caller {
        subject: "okta",
        request_id: Some("req-1"),
    }
}

static NEXT_EXTERNAL_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn user(dir: &Directory, name: &str) -> String {
    let n = NEXT_EXTERNAL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.create(
        caller(),
        ResourceKind::User,
        json!({"userName": name, "active": true, "externalId": format!("ext-{n}")}),
    )
    .unwrap()
    .id
}

fn group(dir: &Directory, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    dir.create(
        caller(),
        ResourceKind::Group,
        json!({"displayName": name, "members": members}),
    )
    .unwrap()
    .id
}

fn patch(
    dir: &Directory,
    kind: ResourceKind,
    id: &str,
    ops: Value,
) -> Result<Written, DirectoryError> {
    dir.patch(
        caller(),
        kind,
        id,
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        &Precondition::default(),
    )
}

fn get(dir: &Directory, kind: ResourceKind, id: &str) -> Value {
    dir.get(
        kind,
        id,
        &RenderOptions::all("https://sync.example.com/scim/v2"),
    )
    .unwrap()
    .body
}

fn member_ids(dir: &Directory, group: &str) -> Vec<String> {
    let mut ids: Vec<String> = dir
        .members(group)
        .unwrap()
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    ids.sort();
    ids
}

fn list(dir: &Directory, kind: ResourceKind, pairs: &[(&str, &str)]) -> Value {
    let query = ListQuery::from_pairs(pairs.iter().copied()).unwrap();
    dir.list(kind, &query, "https://sync.example.com/scim/v2")
        .unwrap()
}

fn audit_actions(dir: &Directory) -> Vec<String> {
    crate::audit::list(dir.store().as_ref(), None, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn user_names_are_unique_case_insensitively_and_stored_as_sent() {
    for f in fixtures() {
        let id = user(&f.dir, "Alice@Example.com");
        let err = f
            .dir
            .create(caller(), ResourceKind::User, json!({"userName": ALICE}))
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::Scim(ScimError::Uniqueness(_))),
            "{}",
            f.name
        );
        assert_eq!(
            get(&f.dir, ResourceKind::User, &id)["userName"],
            "Alice@Example.com"
        );
        let found = list(
            &f.dir,
            ResourceKind::User,
            &[("filter", "userName eq \"ALICE@example.COM\"")],
        );
        assert_eq!(found["totalResults"], 1, "{}", f.name);
        assert_eq!(found["Resources"][0]["id"], id.as_str());
    }
}

#[test]
fn a_failed_write_changes_nothing() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let b = user(&f.dir, "bob@example.com");
        let before_audit = audit_actions(&f.dir).len();
        // Renaming bob to alice's name violates uniqueness after the document changed.
        let err = patch(
            &f.dir,
            ResourceKind::User,
            &b,
            json!([{"op": "replace", "path": "displayName", "value": "Bob"},
                   {"op": "replace", "path": "userName", "value": "ALICE@example.com"}]),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            DirectoryError::Scim(ScimError::Uniqueness(_))
        ));
        let bob = get(&f.dir, ResourceKind::User, &b);
        assert_eq!(bob["userName"], "bob@example.com", "{}", f.name);
        assert!(bob.get("displayName").is_none(), "{}", f.name);
        assert_eq!(audit_actions(&f.dir).len(), before_audit, "{}", f.name);
        // The index still points where it did.
        let found = list(
            &f.dir,
            ResourceKind::User,
            &[("filter", "userName eq \"bob@example.com\"")],
        );
        assert_eq!(found["Resources"][0]["id"], b.as_str());
        let found = list(
            &f.dir,
            ResourceKind::User,
            &[("filter", "userName eq \"alice@example.com\"")],
        );
        assert_eq!(found["Resources"][0]["id"], a.as_str());
    }
}

#[test]
fn renames_move_the_index_and_deletes_clear_it() {
    for f in fixtures() {
        let id = user(&f.dir, ALICE);
        patch(
            &f.dir,
            ResourceKind::User,
            &id,
            json!([{"op": "Replace", "path": "userName", "value": "alice.smith@example.com"}]),
        )
        .unwrap();
        assert_eq!(
            list(
                &f.dir,
                ResourceKind::User,
                &[("filter", "userName eq \"alice@example.com\"")]
            )["totalResults"],
            0
        );
        assert_eq!(
            list(
                &f.dir,
                ResourceKind::User,
                &[("filter", "userName eq \"alice.smith@example.com\"")]
            )["totalResults"],
            1
        );
        // The old name is free again.
        let other = user(&f.dir, ALICE);
        f.dir
            .delete(caller(), ResourceKind::User, &id, &Precondition::default())
            .unwrap();
        f.dir
            .delete(
                caller(),
                ResourceKind::User,
                &other,
                &Precondition::default(),
            )
            .unwrap();
        for filter in [
            "userName eq \"alice.smith@example.com\"",
            "userName eq \"alice@example.com\"",
        ] {
            assert_eq!(
                list(&f.dir, ResourceKind::User, &[("filter", filter)])["totalResults"],
                0,
                "{}: {filter}",
                f.name
            );
        }
        let again = f
            .dir
            .delete(caller(), ResourceKind::User, &id, &Precondition::default());
        assert!(matches!(
            again,
            Err(DirectoryError::Scim(ScimError::NotFound(_)))
        ));
        assert_eq!(f.dir.counts().unwrap(), (0, 0, 0), "{}", f.name);
        // Nothing is left in any index.
        for table in [
            Table::UserNameIdx,
            Table::UserExternalIdIdx,
            Table::Users,
            Table::MemberOf,
        ] {
            assert!(
                crate::store::collect_prefix(f.dir.store().as_ref(), table, b"", 10)
                    .unwrap()
                    .is_empty(),
                "{}: {table:?}",
                f.name
            );
        }
    }
}

#[test]
fn if_match_must_match_the_current_version() {
    for f in fixtures() {
        let id = user(&f.dir, ALICE);
        let stale = Precondition {
            if_match: Some("W/\"0\"".into()),
        };
        let err = f
            .dir
            .patch(
                caller(),
                ResourceKind::User,
                &id,
                json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
                &stale,
            )
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::Scim(ScimError::PreconditionFailed(_))),
            "{}",
            f.name
        );
        let current = Precondition {
            if_match: Some("W/\"1\"".into()),
        };
        let w = f
            .dir
            .patch(
                caller(),
                ResourceKind::User,
                &id,
                json!({"Operations": [{"op": "replace", "path": "active", "value": "False"}]}),
                &current,
            )
            .unwrap();
        assert_eq!(w.record.version, 2);
        assert_eq!(get(&f.dir, ResourceKind::User, &id)["active"], false);
        let any = Precondition {
            if_match: Some("*".into()),
        };
        assert!(f
            .dir
            .delete(caller(), ResourceKind::User, &id, &any)
            .is_ok());
    }
}

#[test]
fn entra_tombstone_user_names_do_not_replace_the_login() {
    for f in fixtures() {
        let id = user(&f.dir, ALICE);
        let tombstone = format!("0123456789abcdef0123456789ABCDEF{ALICE}");
        patch(
            &f.dir,
            ResourceKind::User,
            &id,
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Replace", "path": "userName", "value": tombstone}
            ]),
        )
        .unwrap();
        let u = get(&f.dir, ResourceKind::User, &id);
        assert_eq!(u["userName"], ALICE, "{}", f.name);
        assert_eq!(u["active"], false);
        // A real rename of an active user goes through.
        patch(
            &f.dir,
            ResourceKind::User,
            &id,
            json!([{"op": "Replace", "path": "userName", "value": "alice2@example.com"}]),
        )
        .unwrap();
        assert_eq!(
            get(&f.dir, ResourceKind::User, &id)["userName"],
            "alice2@example.com"
        );
    }
}

#[test]
fn every_write_is_audited_and_queued_in_its_own_transaction() {
    for f in fixtures() {
        let a = user(&f.dir, ALICE);
        let g = group(&f.dir, "Pilot", &[&a]);
        patch(
            &f.dir,
            ResourceKind::User,
            &a,
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .unwrap();
        f.dir
            .delete(caller(), ResourceKind::Group, &g, &Precondition::default())
            .unwrap();
        assert_eq!(
            audit_actions(&f.dir),
            vec![
                "scim.user.create",
                "scim.group.create",
                "scim.user.patch",
                "scim.group.delete"
            ],
            "{}",
            f.name
        );
        let entries = crate::audit::list(f.dir.store().as_ref(), None, 0, usize::MAX).unwrap();
        assert_eq!(entries[0].actor, "okta");
        assert_eq!(entries[0].details["request_id"], "req-1");
        assert_eq!(entries[2].details["attributes"], json!(["active"]));
        // Attribute values never reach the trail.
        let text = serde_json::to_string(&entries).unwrap();
        assert!(!text.contains(ALICE), "{}: {text}", f.name);
        let queued = crate::outbox::pending(f.dir.store().as_ref(), 10).unwrap();
        assert_eq!(queued.len(), 4);
        assert_eq!(queued[1].touched.users, vec![a.clone()]);
        assert_eq!(queued[3].touched.users, vec![a.clone()]);
        assert!(
            crate::audit::verify_store(f.dir.store().as_ref())
                .unwrap()
                .ok
        );
    }
}

#[test]
fn tombstones_are_recognized_exactly() {
    assert!(is_tombstone_of(
        "0123456789abcdef0123456789abcdefa@example.com",
        "a@example.com"
    ));
    assert!(!is_tombstone_of(
        "0123456789abcdef0123456789abcdeXa@example.com",
        "a@example.com"
    ));
    assert!(!is_tombstone_of("a@example.com", "a@example.com"));
}

#[test]
fn snapshots_carry_what_the_rules_read() {
    for f in fixtures() {
        let a = f
            .dir
            .create(
                caller(),
                ResourceKind::User,
                json!({"userName": "alice", "emails": [{"value": "a.home@example.com", "type": "home"},
                       {"value": "alice@example.com", "type": "work", "primary": true}],
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Finance"}}),
            )
            .unwrap()
            .id;
        let b = user(&f.dir, "bob@example.com");
        patch(
            &f.dir,
            ResourceKind::User,
            &b,
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .unwrap();
        let inner = group(&f.dir, "Inner", &[&a]);
        let outer = group(&f.dir, "Outer", &[&inner, &b]);
        let _other = group(&f.dir, "Other", &[]);
        let project = |u: &Value| json!({"department": u.pointer("/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department")});
        let snap = f.dir.snapshot(&project, false).unwrap();
        assert_eq!(snap.users.len(), 2, "{}", f.name);
        let alice = snap.users.iter().find(|u| u.id == a).unwrap();
        assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
        assert_eq!(alice.attributes["department"], "Finance");
        assert!(alice.active);
        let bob = snap.users.iter().find(|u| u.id == b).unwrap();
        assert!(!bob.active);
        assert_eq!(
            bob.email.as_deref(),
            Some("bob@example.com"),
            "userName that looks like an email"
        );
        assert_eq!(snap.groups.len(), 3);
        let o = snap.groups.iter().find(|g| g.id == outer).unwrap();
        assert_eq!(o.member_users, vec![b.clone()]);
        assert_eq!(o.member_groups, vec![inner.clone()]);

        // For one user: that user, and the groups above it.
        let only: std::collections::BTreeSet<String> = [a.clone()].into();
        let part = f.dir.snapshot_for(&only, &project, false).unwrap();
        assert_eq!(part.users.len(), 1);
        let mut ids: Vec<&str> = part.groups.iter().map(|g| g.id.as_str()).collect();
        ids.sort();
        let mut want = vec![inner.as_str(), outer.as_str()];
        want.sort();
        assert_eq!(ids, want, "{}", f.name);
        let o = part.groups.iter().find(|g| g.id == outer).unwrap();
        assert!(o.member_users.is_empty(), "bob is not asked for");
        assert_eq!(o.member_groups, vec![inner.clone()]);
        let i = part.groups.iter().find(|g| g.id == inner).unwrap();
        assert_eq!(i.member_users, vec![a.clone()]);
    }
}

#[test]
fn sequential_paging_stays_right_across_deletes_and_creates() {
    for f in fixtures() {
        let ids: Vec<String> = (0..30)
            .map(|i| user(&f.dir, &format!("pg{i:02}@example.com")))
            .collect();
        let page = |start: usize| -> Vec<String> {
            let start = start.to_string();
            list(
                &f.dir,
                ResourceKind::User,
                &[("startIndex", start.as_str()), ("count", "10")],
            )["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(page(1), ids[0..10]);
        assert_eq!(page(11), ids[10..20], "{}", f.name);
        assert_eq!(page(21), ids[20..30]);
        // A delete before a remembered position shifts everything after it.
        f.dir
            .delete(
                caller(),
                ResourceKind::User,
                &ids[3],
                &Precondition::default(),
            )
            .unwrap();
        assert_eq!(page(11), ids[11..21], "{}", f.name);
        assert_eq!(page(21), ids[21..30]);
        // New users are appended at the end.
        let more = user(&f.dir, "pg-new@example.com");
        assert_eq!(page(21).last(), Some(&more), "{}", f.name);
        assert_eq!(page(15), ids[15..25]);
    }
}

#[test]
fn the_default_projection_is_the_rendered_resource_itself() {
    // Directory::render skips `project` when nothing was asked; this is why that is right.
    for f in fixtures() {
        let id = f
            .dir
            .create(
                caller(),
                ResourceKind::User,
                json!({"userName": "full@example.com", "password": "secret", "active": true,
                       "name": {"givenName": "F", "familyName": "U"},
                       "emails": [{"value": "full@example.com", "primary": true}],
                       "x509Certificates": [{"value": "TUlJQw=="}],
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": "m1"}}),
            )
            .unwrap()
            .id;
        let g = group(&f.dir, "Projected", &[&id]);
        for (kind, rid) in [(ResourceKind::User, &id), (ResourceKind::Group, &g)] {
            let record = f.dir.record(kind, rid).unwrap().unwrap();
            let options = RenderOptions::all("https://x.example.com/scim/v2");
            let full = super::render::render(f.dir.store().as_ref(), kind, rid, &record, &options)
                .unwrap();
            let projected =
                crate::scim::resource::project(f.dir.registry(), kind, &full, &options.projection);
            assert_eq!(projected, full, "{}", f.name);
        }
    }
}

#[test]
fn users_may_share_an_external_id_and_a_filter_finds_them_all() {
    for f in fixtures() {
        let mk = |name: &str, ext: &str| {
            f.dir
                .create(
                    caller(),
                    ResourceKind::User,
                    json!({"userName": name, "externalId": ext}),
                )
                .unwrap()
                .id
        };
        let a = mk("a@example.com", "shared");
        let b = mk("b@example.com", "shared");
        // A longer value that starts with the same bytes is not a match.
        let c = mk("c@example.com", "shared\u{0}x");
        let ids = |filter: &str| -> Vec<String> {
            let page = list(&f.dir, ResourceKind::User, &[("filter", filter)]);
            page["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            ids("externalId eq \"shared\""),
            vec![a.clone(), b.clone()],
            "{}",
            f.name
        );
        assert_eq!(
            ids("externalId eq \"shared\" and userName eq \"b@example.com\""),
            vec![b.clone()],
            "{}",
            f.name
        );
        // Moving one user's externalId moves only its entry.
        patch(
            &f.dir,
            ResourceKind::User,
            &a,
            json!([{"op": "replace", "path": "externalId", "value": "other"}]),
        )
        .unwrap();
        assert_eq!(
            ids("externalId eq \"shared\""),
            vec![b.clone()],
            "{}",
            f.name
        );
        assert_eq!(
            ids("externalId eq \"other\""),
            vec![a.clone()],
            "{}",
            f.name
        );
        for id in [&a, &b, &c] {
            f.dir
                .delete(caller(), ResourceKind::User, id, &Precondition::default())
                .unwrap();
        }
        assert!(
            crate::store::collect_prefix(f.dir.store().as_ref(), Table::UserExternalIdIdx, b"", 10)
                .unwrap()
                .is_empty(),
            "{}",
            f.name
        );
        // Groups keep a unique externalId.
        f.dir
            .create(
                caller(),
                ResourceKind::Group,
                json!({"displayName": "G1", "externalId": "g"}),
            )
            .unwrap();
        let err = f
            .dir
            .create(
                caller(),
                ResourceKind::Group,
                json!({"displayName": "G2", "externalId": "g"}),
            )
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::Scim(ScimError::Uniqueness(_))),
            "{}",
            f.name
        );
    }
}
