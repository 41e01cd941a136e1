//! Unit tests of `POST /_sim/usage` and the analytics computed from it
//! (`sim::analytics`): shapes, grouping, filters, bounds, freshness, pagination.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;
use crate::cowork::analytics::types::{UsageRecordIn, UsageUpload};
use crate::sim::analytics::{route, Query};

/// 2026-12-03T12:00:00Z.
fn noon() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn member(state: &mut SimState, email: &str) -> String {
    let new = NewMember {
        email: email.into(),
        name: None,
        role: None,
        seat_tier: None,
    };
    state.sim_add_member(&new, noon()).unwrap().id
}

fn group(state: &mut SimState, name: &str, users: &[&str]) -> String {
    let g = state
        .create_group(
            &NewGroup {
                name: name.into(),
                ..NewGroup::default()
            },
            noon(),
        )
        .unwrap();
    for u in users {
        state.add_member(&g.id, u, noon()).unwrap();
    }
    g.id
}

fn rec(email: &str, date: &str, product: &str, sessions: u64, cost: u64) -> UsageRecordIn {
    UsageRecordIn {
        email: email.into(),
        date: date.parse().unwrap(),
        product: product.into(),
        sessions,
        cost_minor: cost,
        cost_lag_minutes: 0,
    }
}

fn post(state: &mut SimState, records: Vec<UsageRecordIn>) -> ApiResult<Value> {
    state.post_usage(&UsageUpload { records }, noon())
}

fn get(state: &SimState, path: &str, query: &[(&str, &str)]) -> ApiResult<Value> {
    get_at(state, path, query, noon())
}

fn get_at(
    state: &SimState,
    path: &str,
    query: &[(&str, &str)],
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let q = Query {
        pairs: &pairs,
        path,
        short_pages: false,
    };
    route(state, &[path], &q, now)
}

/// Two members in "Pilot", one of them also in "Finance".
fn world() -> (SimState, String, String, String, String) {
    let mut s = SimState::seeded(noon());
    let a = member(&mut s, "a@example.com");
    let b = member(&mut s, "b@example.com");
    let pilot = group(&mut s, "Pilot", &[&a, &b]);
    let finance = group(&mut s, "Finance", &[&a]);
    (s, a, b, pilot, finance)
}

#[test]
fn usage_for_an_unknown_email_a_bad_product_or_a_future_day_is_refused_and_nothing_is_kept() {
    let (mut s, ..) = world();
    for bad in [
        rec("nobody@example.com", "2026-12-01", "cowork", 1, 1),
        rec("a@example.com", "2026-12-01", "spreadsheets", 1, 1),
        rec("a@example.com", "2026-12-04", "cowork", 1, 1),
        rec("a@example.com", "2025-12-31", "cowork", 1, 1),
    ] {
        let err = post(
            &mut s,
            vec![rec("a@example.com", "2026-12-01", "cowork", 1, 1), bad],
        )
        .unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.starts_with("records[1]"), "{}", err.message);
    }
    assert!(s.usage().is_empty());
    assert_eq!(post(&mut s, vec![]).unwrap_err().status, 400);
}

#[test]
fn a_record_counts_toward_the_groups_held_when_it_is_posted() {
    let (mut s, a, _, pilot, finance) = world();
    post(
        &mut s,
        vec![rec("A@Example.com", "2026-12-01", "cowork", 2, 300)],
    )
    .unwrap();
    let r = &s.usage()[0];
    assert_eq!(r.user_id, a);
    let ids: Vec<&str> = r.groups.iter().map(|g| g.id.as_str()).collect();
    assert!(ids.contains(&pilot.as_str()) && ids.contains(&finance.as_str()));
    // Leaving a group later does not move usage already posted.
    s.remove_member(&finance, &a, noon()).unwrap();
    assert_eq!(s.usage()[0].groups.len(), 2);
}

#[test]
fn engagement_is_grouped_by_rbac_group_and_a_member_counts_toward_every_group_held() {
    let (mut s, a, b, pilot, finance) = world();
    post(
        &mut s,
        vec![
            rec("a@example.com", "2026-11-20", "cowork", 3, 100),
            rec("a@example.com", "2026-11-28", "cowork", 1, 100),
            rec("b@example.com", "2026-11-25", "cowork", 5, 100),
            rec("b@example.com", "2026-11-26", "chat", 7, 0),
        ],
    )
    .unwrap();
    let v = get(
        &s,
        "users",
        &[
            ("starting_date", "2026-11-03"),
            ("ending_date", "2026-12-02"),
            ("group_by[]", "rbac_group_id"),
            ("limit", "100"),
        ],
    )
    .unwrap();
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    let row = |u: &str, g: &str| {
        rows.iter()
            .find(|r| r["user"]["id"] == u && r["rbac_group_id"] == g)
            .unwrap()
            .clone()
    };
    assert_eq!(
        row(&a, &pilot)["cowork_metrics"]["distinct_session_count"],
        4
    );
    assert_eq!(
        row(&a, &finance)["cowork_metrics"]["distinct_session_count"],
        4
    );
    assert_eq!(row(&a, &finance)["rbac_group_name"], "Finance");
    assert_eq!(row(&a, &pilot)["last_activity_date"], "2026-11-28");
    assert_eq!(row(&b, &pilot)["chat_metrics"]["distinct_session_count"], 7);
    assert_eq!(row(&b, &pilot)["starting_date"], "2026-11-03");
    assert_eq!(v["has_more"], false);

    // filter[]=rbac_group_id narrows to members of that group.
    let f = get(
        &s,
        "users",
        &[
            ("date", "2026-11-20"),
            ("filter[]", &format!("rbac_group_id:{finance}")),
        ],
    )
    .unwrap();
    let rows = f["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["user"]["id"], json!(a));
    assert_eq!(rows[0]["date"], "2026-11-20");
    assert!(rows[0].get("rbac_group_id").is_none());
}

#[test]
fn engagement_for_a_day_is_available_from_ten_the_next_day_and_within_ninety_days() {
    let (mut s, ..) = world();
    post(
        &mut s,
        vec![rec("a@example.com", "2026-12-02", "cowork", 1, 1)],
    )
    .unwrap();
    let early = DateTime::parse_from_rfc3339("2026-12-03T09:30:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let err = get_at(&s, "users", &[("date", "2026-12-02")], early).unwrap_err();
    assert_eq!(err.status, 400);
    assert!(err.message.contains("2026-12-01"), "{}", err.message);
    let v = get(&s, "users", &[("date", "2026-12-02")]).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    for bad in [
        vec![
            ("starting_date", "2026-09-03"),
            ("ending_date", "2026-12-01"),
        ],
        vec![
            ("starting_date", "2026-12-01"),
            ("ending_date", "2026-11-01"),
        ],
        vec![("starting_date", "2026-12-01")],
        vec![("date", "yesterday")],
        vec![("date", "2026-12-01"), ("filter[]", "email:x")],
        vec![("date", "2026-12-01"), ("group_by[]", "product")],
        vec![("date", "2026-12-01"), ("limit", "1001")],
    ] {
        assert_eq!(get(&s, "users", &bad).unwrap_err().status, 400, "{bad:?}");
    }
    assert!(get(
        &s,
        "users",
        &[
            ("starting_date", "2026-09-04"),
            ("ending_date", "2026-12-02")
        ]
    )
    .is_ok());
}

#[test]
fn cost_report_buckets_by_day_and_breaks_down_by_group_and_product() {
    let (mut s, _, _, pilot, finance) = world();
    post(
        &mut s,
        vec![
            rec("a@example.com", "2026-12-01", "cowork", 1, 1_000),
            rec("a@example.com", "2026-12-01", "cowork", 1, 500),
            rec("b@example.com", "2026-12-01", "chat", 1, 250),
            rec("b@example.com", "2026-12-02", "cowork", 1, 40),
        ],
    )
    .unwrap();
    let v = get(
        &s,
        "cost_report",
        &[
            ("starting_at", "2026-12-01T00:00:00Z"),
            ("ending_at", "2026-12-03T00:00:00Z"),
            ("group_by[]", "rbac_group_id"),
        ],
    )
    .unwrap();
    let buckets = v["data"].as_array().unwrap();
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0]["starting_at"], "2026-12-01T00:00:00Z");
    assert_eq!(buckets[0]["ending_at"], "2026-12-02T00:00:00Z");
    let line = |b: &Value, g: &str| {
        b["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rbac_group_id"] == g)
            .map(|r| r["amount"].as_str().unwrap().to_owned())
    };
    assert_eq!(line(&buckets[0], &pilot).as_deref(), Some("1750"));
    assert_eq!(line(&buckets[0], &finance).as_deref(), Some("1500"));
    assert_eq!(line(&buckets[1], &pilot).as_deref(), Some("40"));
    assert_eq!(line(&buckets[1], &finance), None);
    assert_eq!(buckets[0]["results"][0]["currency"], "USD");

    // products[] and rbac_group_ids[] filter; ungrouped, a record counts once.
    let v = get(
        &s,
        "cost_report",
        &[
            ("starting_at", "2026-12-01T00:00:00Z"),
            ("ending_at", "2026-12-03T00:00:00Z"),
            ("products[]", "cowork"),
            ("rbac_group_ids[]", &pilot),
            ("group_by[]", "product"),
        ],
    )
    .unwrap();
    assert_eq!(v["data"][0]["results"][0]["amount"], "1500");
    assert_eq!(v["data"][0]["results"][0]["product"], "cowork");
    assert!(v["data"][0]["results"][0].get("rbac_group_id").is_none());
}

#[test]
fn cost_report_bounds_are_enforced() {
    let (s, ..) = world();
    for bad in [
        vec![],
        vec![("starting_at", "2025-12-31T00:00:00Z")],
        vec![("starting_at", "2026-12-04T00:00:00Z")],
        vec![
            ("starting_at", "2026-10-01T00:00:00Z"),
            ("ending_at", "2026-11-02T00:00:00Z"),
        ],
        vec![
            ("starting_at", "2026-12-01T00:00:00Z"),
            ("ending_at", "2026-11-30T00:00:00Z"),
        ],
        vec![("starting_at", "2026-12-01T00:00:00Z"), ("products[]", "x")],
        vec![
            ("starting_at", "2026-12-01T00:00:00Z"),
            ("bucket_width", "1w"),
        ],
        vec![("starting_at", "2026-12-01T00:00:00Z"), ("limit", "32")],
        vec![
            ("starting_at", "2026-12-01T00:00:00Z"),
            ("group_by[]", "model"),
        ],
    ] {
        assert_eq!(
            get(&s, "cost_report", &bad).unwrap_err().status,
            400,
            "{bad:?}"
        );
    }
    // 31 days is allowed; without ending_at the range ends now.
    assert!(get(
        &s,
        "cost_report",
        &[
            ("starting_at", "2026-11-01T00:00:00Z"),
            ("ending_at", "2026-12-02T00:00:00Z")
        ]
    )
    .is_ok());
    let v = get(
        &s,
        "cost_report",
        &[("starting_at", "2026-12-01T00:00:00Z"), ("limit", "31")],
    )
    .unwrap();
    assert_eq!(
        v["data"].as_array().unwrap().len(),
        3,
        "two whole days and today so far"
    );
}

#[test]
fn cost_report_pages_through_buckets_with_a_cursor_bound_to_the_query() {
    let (s, ..) = world();
    let q = [
        ("starting_at", "2026-11-03T00:00:00Z"),
        ("ending_at", "2026-12-03T00:00:00Z"),
    ];
    let p1 = get(&s, "cost_report", &q).unwrap();
    assert_eq!(p1["data"].as_array().unwrap().len(), 7, "default limit 7");
    assert_eq!(p1["has_more"], true);
    let cursor = p1["next_page"].as_str().unwrap().to_owned();
    let mut all = 7;
    let mut page = Some(cursor.clone());
    while let Some(c) = page {
        let mut qq = q.to_vec();
        qq.push(("page", &c));
        let p = get(&s, "cost_report", &qq).unwrap();
        all += p["data"].as_array().unwrap().len();
        page = p["next_page"].as_str().map(str::to_owned);
    }
    assert_eq!(all, 30);
    let other = [
        ("starting_at", "2026-11-04T00:00:00Z"),
        ("ending_at", "2026-12-03T00:00:00Z"),
        ("page", cursor.as_str()),
    ];
    assert_eq!(get(&s, "cost_report", &other).unwrap_err().status, 400);
}

#[test]
fn user_cost_report_sums_each_member_over_the_range() {
    let (mut s, a, b, pilot, finance) = world();
    post(
        &mut s,
        vec![
            rec("a@example.com", "2026-12-01", "cowork", 1, 1_000),
            rec("a@example.com", "2026-12-02", "chat", 1, 500),
            rec("b@example.com", "2026-12-01", "cowork", 1, 250),
        ],
    )
    .unwrap();
    let q = [("starting_at", "2026-12-01T00:00:00Z")];
    let v = get(&s, "user_cost_report", &q).unwrap();
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["user"]["id"], json!(a));
    assert_eq!(rows[0]["amount"], "1500");
    assert_eq!(rows[1]["user"]["id"], json!(b));
    assert_eq!(rows[1]["user"]["email_address"], "b@example.com");
    let v = get(
        &s,
        "user_cost_report",
        &[
            ("starting_at", "2026-12-01T00:00:00Z"),
            ("rbac_group_ids[]", &finance),
            ("products[]", "cowork"),
        ],
    )
    .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["amount"], "1000");
    // A deleted member's cost stays unless exclude_deleted_users=true.
    s.delete_user(&b, noon()).unwrap();
    let v = get(
        &s,
        "user_cost_report",
        &[
            ("starting_at", "2026-12-01T00:00:00Z"),
            ("rbac_group_ids[]", &pilot),
            ("exclude_deleted_users", "true"),
        ],
    )
    .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

#[test]
fn usage_survives_a_snapshot() {
    let (mut s, ..) = world();
    post(
        &mut s,
        vec![rec("a@example.com", "2026-12-01", "cowork", 2, 3)],
    )
    .unwrap();
    let back = SimState::from_snapshot(s.snapshot());
    assert_eq!(back.usage(), s.usage());
}

#[test]
fn cost_lands_after_its_lag_and_an_old_days_cost_is_final() {
    let (mut s, ..) = world();
    let mut late = rec("a@example.com", "2026-12-03", "cowork", 1, 700);
    late.cost_lag_minutes = 180;
    post(
        &mut s,
        vec![late, rec("a@example.com", "2026-12-02", "cowork", 1, 300)],
    )
    .unwrap();
    let q = [("starting_at", "2026-12-01T00:00:00Z")];
    let total = |v: &Value| -> u64 {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["results"].as_array().unwrap().clone())
            .map(|r| r["amount"].as_str().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let at = |h: i64| noon() + chrono::Duration::hours(h);
    let user_total = |now| {
        let v = get_at(&s, "user_cost_report", &q, now).unwrap();
        v["data"][0]["amount"].as_str().unwrap().to_string()
    };
    // At noon only the 2nd's cost has landed; at 15:00 the 3rd's too.
    assert_eq!(total(&get_at(&s, "cost_report", &q, at(0)).unwrap()), 300);
    assert_eq!(user_total(at(0)), "300");
    assert_eq!(total(&get_at(&s, "cost_report", &q, at(3)).unwrap()), 1000);
    assert_eq!(user_total(at(3)), "1000");

    // More than 4 hours' lag, or cost for a day past the 30 days of revisions, is
    // refused, and nothing of the request is kept; sessions alone for that day are not cost.
    let kept = s.usage().len();
    let mut too_late = rec("a@example.com", "2026-12-03", "cowork", 1, 1);
    too_late.cost_lag_minutes = 241;
    let e = post(&mut s, vec![too_late]).unwrap_err();
    assert!(format!("{e:?}").contains("at most 240"), "{e:?}");
    let e = post(
        &mut s,
        vec![
            rec("a@example.com", "2026-12-01", "cowork", 1, 5),
            rec("a@example.com", "2026-11-02", "cowork", 1, 5),
        ],
    )
    .unwrap_err();
    assert!(format!("{e:?}").contains("records[1]"), "{e:?}");
    assert!(format!("{e:?}").contains("cannot be revised"), "{e:?}");
    assert_eq!(s.usage().len(), kept);
    post(
        &mut s,
        vec![rec("a@example.com", "2026-11-03", "cowork", 2, 5)],
    )
    .unwrap();
    post(
        &mut s,
        vec![rec("a@example.com", "2026-10-01", "cowork", 2, 0)],
    )
    .unwrap();
}
