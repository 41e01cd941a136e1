//! The Analytics client against the simulator: usage injected through
//! `POST /_sim/usage`, every parameter (group_by, filters, products, ranges, bucket
//! width, exclude_deleted_users), pagination, the documented bounds refused before a
//! call, the 60 rpm limit (429 with retry-after, retried; given back at once by the
//! interactive copy when the wait is long), and the store cache.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cowork_sync::clock::{Clock, ManualClock};
use cowork_sync::cowork::analytics::*;
use cowork_sync::cowork::CoworkError;
use cowork_sync::insights::cache::Cached;
use cowork_sync::sim::{FaultConfig, NewMember, NewSimGroup, SimHandle, SimOptions};
use cowork_sync::store::memory::MemoryStore;
use serde_json::json;

use crate::cowork_client::{start_sim, KEY};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

const NOON: &str = "2026-12-03T12:00:00Z";

struct World {
    h: SimHandle,
    clock: Arc<ManualClock>,
    pilot: String,
    finance: String,
    a: String,
    b: String,
}

async fn world(rpm: u32) -> World {
    let clock = Arc::new(ManualClock::new(at(NOON)));
    let h = start_sim(SimOptions {
        rpm,
        clock: clock.clone(),
        ..SimOptions::for_tests()
    })
    .await;
    let (a, b, pilot, finance) = {
        let mut s = h.state();
        let now = clock.now();
        let mut add = |e: &str| {
            s.sim_add_member(
                &NewMember {
                    email: e.into(),
                    name: None,
                    role: None,
                    seat_tier: None,
                },
                now,
            )
            .unwrap()
            .id
        };
        let a = add("a@example.com");
        let b = add("b@example.com");
        let pilot = s
            .sim_add_group(
                &serde_json::from_value::<NewSimGroup>(json!({
                    "name": "Pilot", "source_type": "direct", "user_ids": [a, b]
                }))
                .unwrap(),
                now,
            )
            .unwrap()
            .id;
        let finance = s
            .sim_add_group(
                &serde_json::from_value::<NewSimGroup>(json!({
                    "name": "Finance", "source_type": "direct", "user_ids": [a]
                }))
                .unwrap(),
                now,
            )
            .unwrap()
            .id;
        (a, b, pilot, finance)
    };
    World {
        h,
        clock,
        pilot,
        finance,
        a,
        b,
    }
}

async fn post_usage(h: &SimHandle, records: serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/_sim/usage", h.base_url()))
        .header("x-api-key", KEY)
        .json(&json!({ "records": records }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn client(h: &SimHandle, page_size: u32) -> AnalyticsClient {
    AnalyticsClient::new(AnalyticsConfig {
        requests_per_minute: 0,
        request_timeout: None,
        page_size,
        ..AnalyticsConfig::new(h.base_url(), KEY)
    })
    .unwrap()
}

async fn usage(w: &World) {
    let status = post_usage(
        &w.h,
        json!([
            {"email": "a@example.com", "date": "2026-11-20", "product": "cowork", "sessions": 3, "cost_minor": 900},
            {"email": "a@example.com", "date": "2026-12-01", "product": "chat", "sessions": 2, "cost_minor": 100},
            {"email": "b@example.com", "date": "2026-11-25", "product": "cowork", "sessions": 5, "cost_minor": 250},
            {"email": "b@example.com", "date": "2026-12-02", "sessions": 1, "cost_minor": 50}
        ]),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn activity_by_group_with_filters_and_small_pages_reads_every_row() {
    let w = world(0).await;
    usage(&w).await;
    let c = client(&w.h, 1);
    let now = w.clock.now();
    let rows = c
        .user_activity(
            &ActivityQuery::by_group(d("2026-11-03"), d("2026-12-02")),
            now,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "a in two groups, b in one: {rows:?}");
    assert!(c.calls() >= 3, "one row a page: {}", c.calls());
    let a_fin = rows
        .iter()
        .find(|r| r.user.id == w.a && r.rbac_group_id.as_deref() == Some(w.finance.as_str()))
        .unwrap();
    assert_eq!(a_fin.cowork_sessions(), 3);
    assert_eq!(a_fin.rbac_group_name.as_deref(), Some("Finance"));
    assert_eq!(a_fin.last_activity_date, Some(d("2026-12-01")));

    let only_b = ActivityQuery {
        days: Days::One(d("2026-12-02")),
        by_group: false,
        rbac_group_ids: vec![w.pilot.clone()],
        user_ids: vec![w.b.clone()],
    };
    let rows = c.user_activity(&only_b, now).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].cowork_sessions(), 1);
    assert_eq!(rows[0].date, Some(d("2026-12-02")));
}

#[tokio::test]
async fn cost_reports_break_down_by_group_and_product_and_filter() {
    let w = world(0).await;
    usage(&w).await;
    let c = client(&w.h, 1000);
    let now = w.clock.now();
    let mut q = CostQuery::by_group(at("2026-11-03T00:00:00Z"), at("2026-12-03T00:00:00Z"));
    let buckets = c.cost_report(&q, now).await.unwrap();
    assert_eq!(buckets.len(), 30, "31 a page at most, then the cursor");
    let total = |g: &str| -> f64 {
        buckets
            .iter()
            .flat_map(|b| &b.results)
            .filter(|r| r.rbac_group_id.as_deref() == Some(g))
            .map(|r| types::parse_amount(&r.amount).unwrap())
            .sum()
    };
    assert_eq!(total(&w.pilot), 1300.0);
    assert_eq!(total(&w.finance), 1000.0);

    q.by_group = false;
    q.by_product = true;
    q.products = vec!["cowork".into()];
    q.rbac_group_ids = vec![w.finance.clone()];
    q.bucket_width = BucketWidth::Day;
    let buckets = c.cost_report(&q, now).await.unwrap();
    let lines: Vec<_> = buckets.iter().flat_map(|b| &b.results).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].amount, "900");
    assert_eq!(lines[0].product.as_deref(), Some("cowork"));

    let mut uq = CostQuery::by_group(at("2026-12-01T00:00:00Z"), at("2026-12-03T00:00:00Z"));
    uq.by_group = false;
    uq.exclude_deleted_users = true;
    uq.user_ids = vec![w.a.clone(), w.b.clone()];
    let users = c.user_cost_report(&uq, now).await.unwrap();
    let amounts: Vec<(&str, &str)> = users
        .iter()
        .map(|u| (u.user.id.as_str(), u.amount.as_str()))
        .collect();
    assert_eq!(amounts, vec![(w.a.as_str(), "100"), (w.b.as_str(), "50")]);
}

#[tokio::test]
async fn questions_outside_the_documented_bounds_cost_no_call() {
    let w = world(0).await;
    let c = client(&w.h, 1000);
    let now = w.clock.now();
    let too_long = CostQuery::by_group(at("2026-10-01T00:00:00Z"), at("2026-11-02T00:00:00Z"));
    let too_early = CostQuery::by_group(at("2025-12-01T00:00:00Z"), at("2025-12-02T00:00:00Z"));
    let mut bad_product = CostQuery::by_group(at("2026-12-01T00:00:00Z"), now);
    bad_product.products = vec!["spreadsheets".into()];
    for q in [too_long, too_early, bad_product] {
        assert!(matches!(
            c.cost_report(&q, now).await,
            Err(CoworkError::Config(_))
        ));
    }
    // Engagement for today, or yesterday before 10:00 UTC, is not there yet.
    let today = ActivityQuery::by_group(d("2026-12-01"), d("2026-12-03"));
    assert!(c.user_activity(&today, now).await.is_err());
    let early = at("2026-12-03T09:00:00Z");
    let yesterday = ActivityQuery::by_group(d("2026-12-02"), d("2026-12-02"));
    assert!(c.user_activity(&yesterday, early).await.is_err());
    let old = ActivityQuery::by_group(d("2026-08-01"), d("2026-12-01"));
    assert!(c.user_activity(&old, now).await.is_err());
    assert_eq!(c.calls(), 0);
    assert_eq!(w.h.metrics().reads, 0);
    // The simulator refuses the same when asked directly.
    assert!(c.user_activity(&yesterday, now).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_sixty_a_minute_limit_answers_429_with_retry_after_and_the_client_retries() {
    // rpm 5 → an analytics limit of 3 a minute on the simulator's clock.
    let w = world(5).await;
    let now = w.clock.now();
    let q = CostQuery::by_group(at("2026-12-01T00:00:00Z"), now);
    let once = AnalyticsClient::new(AnalyticsConfig {
        requests_per_minute: 0,
        request_timeout: None,
        max_attempts: 1,
        ..AnalyticsConfig::new(w.h.base_url(), KEY)
    })
    .unwrap();
    for _ in 0..3 {
        once.cost_report(&q, now).await.unwrap();
    }
    match once.cost_report(&q, now).await {
        Err(CoworkError::RateLimited { retry_after, .. }) => {
            assert!(
                retry_after.is_some_and(|d| d.as_secs() >= 1),
                "{retry_after:?}"
            );
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    // Injected 429s (retry-after: 1) are waited out and retried.
    w.clock.advance(chrono::Duration::minutes(5));
    w.h.sim().set_faults(FaultConfig {
        rate_limit_rate: 0.5,
        seed: Some(2),
        ..FaultConfig::default()
    });
    let patient = client(&w.h, 1000);
    patient.cost_report(&q, w.clock.now()).await.unwrap();
    assert!(w.h.metrics().injected_rate_limits >= 1);
    assert_eq!(patient.calls(), 1 + w.h.metrics().injected_rate_limits);
}

#[tokio::test]
async fn the_interactive_copy_retries_once_and_never_waits_out_a_long_retry_after() {
    // rpm 5 → an analytics limit of 3 a minute on the simulator's clock.
    let w = world(5).await;
    let now = w.clock.now();
    let q = CostQuery::by_group(at("2026-12-01T00:00:00Z"), now);
    let patient = client(&w.h, 1000);
    let quick = patient.interactive();
    for _ in 0..3 {
        quick.cost_report(&q, now).await.unwrap();
    }
    assert_eq!(patient.calls(), 3, "the copy shares the client's count");
    // The fourth in the minute is answered 429 with a retry-after of many seconds
    // (the simulator's clock stands still): given back at once, not waited for.
    match quick.cost_report(&q, now).await {
        Err(CoworkError::RateLimited {
            retry_after: Some(d),
            ..
        }) => assert!(d.as_secs() > 2, "{d:?}"),
        other => panic!("expected a 429, got {other:?}"),
    }
    assert_eq!(patient.calls(), 4, "one attempt");

    // A failing API: one retry, then the error.
    w.clock.advance(chrono::Duration::minutes(5));
    w.h.sim().set_faults(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    });
    let err = quick.cost_report(&q, w.clock.now()).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(patient.calls(), 6, "two attempts");
    assert_eq!(w.h.metrics().injected_errors, 2);
}

#[tokio::test]
async fn the_cache_answers_repeated_questions_without_calls_until_the_data_can_have_changed() {
    let w = world(0).await;
    usage(&w).await;
    let c = client(&w.h, 1000);
    let store = MemoryStore::new();
    let cached = Cached {
        client: &c,
        store: &store,
        refresh: false,
    };
    let now = w.clock.now();
    let aq = ActivityQuery::by_group(d("2026-11-03"), d("2026-12-02"));
    let cq = CostQuery::by_group(at("2026-12-01T00:00:00Z"), at("2026-12-03T12:00:00Z"));
    let first = cached.user_activity(&aq, now).await.unwrap();
    cached.cost_report(&cq, now).await.unwrap();
    let calls = c.calls();
    assert_eq!(cached.user_activity(&aq, now).await.unwrap(), first);
    cached.cost_report(&cq, now).await.unwrap();
    assert_eq!(c.calls(), calls, "no call within the freshness window");

    // Cost may change within hours: after the TTL it is asked again.
    let later = now + chrono::Duration::minutes(11);
    cached.cost_report(&cq, later).await.unwrap();
    assert_eq!(c.calls(), calls + 1);
    // Engagement is asked again once the next day has landed (10:00 UTC).
    let tomorrow = at("2026-12-04T10:00:00Z");
    cached.user_activity(&aq, tomorrow).await.unwrap();
    assert_eq!(c.calls(), calls + 2);
    // refresh skips the cache.
    let fresh = Cached {
        refresh: true,
        ..cached
    };
    fresh.cost_report(&cq, later).await.unwrap();
    assert_eq!(c.calls(), calls + 3);
}
