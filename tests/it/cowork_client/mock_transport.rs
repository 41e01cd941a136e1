//! The client's transport against the scripted mock: headers on every request,
//! 429 with and without `retry-after`, 5xx retries with the same idempotency key,
//! errors that are not retried, timeouts, and odd pages.

use super::*;

#[tokio::test]
async fn requests_carry_the_key_the_version_and_an_idempotency_key_on_writes() {
    let m = mock(|seen, _| match seen.method.as_str() {
        "GET" => Reply::Json(
            200,
            json!({"data": [], "has_more": false, "next_page": null}),
            vec![],
        ),
        _ => Reply::Json(200, group_json("rbac_group_01a"), vec![]),
    })
    .await;
    let c = m.client();
    c.list_groups().await.unwrap();
    let k = key(&["op"]);
    c.create_group(
        &NewGroup {
            name: "G".into(),
            ..NewGroup::default()
        },
        &k,
    )
    .await
    .unwrap();
    let seen = m.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.headers["x-api-key"], KEY);
        assert_eq!(s.headers["anthropic-version"], "2023-06-01");
    }
    assert_eq!(seen[0].path, "/v1/organizations/rbac_groups");
    assert_eq!(seen[0].query, "limit=1000");
    assert!(!seen[0].headers.contains_key("idempotency-key"));
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].headers["idempotency-key"], k.as_str());
    assert_eq!(seen[1].headers["content-type"], "application/json");
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_waits_that_long_then_succeeds() {
    let m = mock(|_, n| {
        if n == 1 {
            Reply::Json(
                429,
                error_json("rate_limit_error", "slow down"),
                vec![("retry-after", "7")],
            )
        } else {
            Reply::Json(200, group_json("rbac_group_01a"), vec![])
        }
    })
    .await;
    let c = m.client();
    let started = tokio::time::Instant::now();
    let g = c.get_group("rbac_group_01a").await.unwrap();
    assert_eq!(g.id, "rbac_group_01a");
    assert!(started.elapsed() >= Duration::from_secs(7));
    let counts = c.call_counts();
    assert_eq!(
        (counts.reads, counts.retries, counts.rate_limited),
        (1, 1, 1)
    );
    assert_eq!(m.seen().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_backs_off_exponentially_and_gives_up() {
    let m =
        mock(|_, _| Reply::Json(429, error_json("rate_limit_error", "slow down"), vec![])).await;
    let c = m.client();
    let started = tokio::time::Instant::now();
    let e = c.get_group("rbac_group_01a").await.unwrap_err();
    assert!(
        matches!(
            e,
            CoworkError::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(m.seen().len(), 6, "default attempts");
    // Equal jitter: at least half of 1 + 2 + 4 + 8 + 16 seconds.
    assert!(started.elapsed() >= Duration::from_millis(15_500));
    assert_eq!(c.call_counts().retries, 5);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_the_same_idempotency_key_then_succeed() {
    let m = mock(|_, n| match n {
        1 => Reply::Json(500, error_json("api_error", "boom"), vec![]),
        2 => Reply::Json(529, error_json("overloaded_error", "busy"), vec![]),
        _ => Reply::Json(200, json!({"type": "rbac_group_member", "group_id": "g", "user_id": "u",
                                     "email": "u@example.com", "created_at": "2026-01-01T00:00:00Z"}), vec![]),
    })
    .await;
    let c = m.client();
    let k = key(&["add", "g", "u"]);
    assert_eq!(
        c.add_group_member("g", "u", &k).await.unwrap(),
        Outcome::Applied
    );
    let seen = m.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.headers["idempotency-key"] == k.as_str()));
    assert_eq!(c.call_counts().writes, 1, "one logical write");
}

#[tokio::test(start_paused = true)]
async fn a_400_is_not_retried_and_keeps_its_code() {
    let m = mock(|_, _| {
        Reply::Json(
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "nope",
                    "code": "group_limit_exceeded"}}),
            vec![],
        )
    })
    .await;
    let c = m.client();
    let e = c
        .create_group(
            &NewGroup {
                name: "G".into(),
                ..NewGroup::default()
            },
            &key(&["g"]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("group_limit_exceeded"));
    assert_eq!(
        e.request_id(),
        Some("req_mock_1"),
        "the header wins over the body"
    );
    assert_eq!(m.seen().len(), 1);
}

/// In real mode a group create is not idempotent (names are not unique, no key is
/// honoured): a 5xx may follow a create the server made, so it is not repeated; a 429
/// certainly changed nothing, so it is.
#[tokio::test(start_paused = true)]
async fn a_real_mode_group_create_is_retried_after_a_429_but_never_after_a_5xx() {
    let m = mock(|_, n| match n {
        1 => Reply::Json(
            429,
            error_json("rate_limit_error", "slow down"),
            vec![("retry-after", "1")],
        ),
        2 | 3 => Reply::Json(500, error_json("api_error", "boom"), vec![]),
        _ => Reply::Json(200, group_json("rbac_group_1"), vec![]),
    })
    .await;
    let new = NewGroup {
        name: "G".into(),
        ..NewGroup::default()
    };
    let real = HttpCoworkClient::new(
        ClientConfig::new(&m.url, KEY)
            .with_mode(Mode::Real)
            .without_limits(),
    )
    .unwrap();
    let e = real.create_group(&new, &key(&["g"])).await.unwrap_err();
    assert!(e.is_retryable(), "the caller may look for it and try again");
    assert_eq!(m.seen().len(), 2, "the 429 was retried, the 500 was not");

    // Extended mode: `external_id` makes a repeat safe, so the 500 is retried.
    let extended = m.client();
    let created = extended.create_group(&new, &key(&["g2"])).await.unwrap();
    assert_eq!(created.id(), "rbac_group_1");
    assert_eq!(m.seen().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn unknown_error_types_are_tolerated() {
    let m = mock(|_, n| match n {
        1 => Reply::Json(503, error_json("brand_new_error", "?"), vec![]),
        2 => Reply::Json(418, error_json("teapot_error", "short and stout"), vec![]),
        _ => Reply::Json(200, json!({}), vec![]),
    })
    .await;
    let c = m.client();
    let e = c.get_group("rbac_group_01a").await.unwrap_err();
    match e {
        CoworkError::Other {
            status, error_type, ..
        } => assert_eq!((status, error_type.as_str()), (418, "teapot_error")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(m.seen().len(), 2, "503 retried, 418 not");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out_and_is_retried() {
    let m = mock(|_, _| Reply::Hang).await;
    let mut config = ClientConfig::new(&m.url, KEY).without_limits();
    config.request_timeout = Some(Duration::from_secs(2));
    config.max_attempts = 3;
    let c = HttpCoworkClient::new(config).unwrap();
    let e = c.get_group("rbac_group_01a").await.unwrap_err();
    match &e {
        CoworkError::Transient { reason, status, .. } => {
            assert_eq!(reason, "timeout");
            assert_eq!(*status, None);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(c.call_counts().retries, 2);
}

#[tokio::test]
async fn short_pages_with_has_more_are_followed_in_both_styles() {
    let m = mock(|seen, _| {
        let q = seen.query.as_str();
        match seen.path.as_str() {
            "/v1/organizations/rbac_groups" => match q {
                "limit=1000" => Reply::Json(
                    200,
                    json!({"data": [group_json("rbac_group_01a")], "has_more": true, "next_page": "c1"}),
                    vec![],
                ),
                "limit=1000&page=c1" => Reply::Json(
                    200,
                    json!({"data": [], "has_more": true, "next_page": "c2"}),
                    vec![],
                ),
                _ => Reply::Json(
                    200,
                    json!({"data": [group_json("rbac_group_01b"), group_json("rbac_group_01c")],
                           "has_more": false, "next_page": "ignored-when-has-more-is-false"}),
                    vec![],
                ),
            },
            _ => match q {
                "limit=1000" => Reply::Json(
                    200,
                    json!({"data": [user_json("user_01a")], "first_id": "user_01a",
                           "last_id": "user_01a", "has_more": true}),
                    vec![],
                ),
                _ => Reply::Json(
                    200,
                    json!({"data": [user_json("user_01b")], "first_id": "user_01b",
                           "last_id": "user_01b", "has_more": false}),
                    vec![],
                ),
            },
        }
    })
    .await;
    let c = m.client();
    let groups = c.list_groups().await.unwrap();
    assert_eq!(groups.len(), 3);
    let users = c.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
    let queries: Vec<String> = m.seen().into_iter().map(|s| s.query).collect();
    assert_eq!(
        queries,
        vec![
            "limit=1000",
            "limit=1000&page=c1",
            "limit=1000&page=c2",
            "limit=1000",
            "limit=1000&after_id=user_01a"
        ]
    );
}

#[tokio::test]
async fn a_page_claiming_more_without_a_cursor_is_an_error_not_a_silent_truncation() {
    let m = mock(|_, _| {
        Reply::Json(
            200,
            json!({"data": [group_json("rbac_group_01a")], "has_more": true, "next_page": null}),
            vec![],
        )
    })
    .await;
    let e = m.client().list_groups().await.unwrap_err();
    assert!(matches!(e, CoworkError::Decode { .. }), "{e:?}");
}
