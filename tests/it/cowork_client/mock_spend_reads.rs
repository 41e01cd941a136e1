//! The spend-limit reads beta (`GET /spend_limits`) against the scripted mock, as the
//! real API answers them: the `anthropic-beta` header on every page, `scope_type[]`,
//! the cursor followed, a 429 with `retry-after` waited out, and a 404 with the header
//! taken as "not available to this organization": reported once, not called again,
//! and the stable endpoints unaffected.

use std::io::Write;

use super::*;

const SPEND_BETA: &str = "spend-limit-reads-2026-09-26";

fn spend_json(id: &str, group: &str, amount: &str) -> Value {
    json!({
        "type": "spend_limit", "id": id,
        "scope": {"type": "rbac_group", "rbac_group_id": group},
        "period": "monthly", "amount": amount, "currency": "USD",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    })
}

fn real_client(m: &Mock) -> HttpCoworkClient {
    HttpCoworkClient::new(
        ClientConfig::new(&m.url, KEY)
            .with_mode(Mode::Real)
            .without_limits(),
    )
    .unwrap()
}

/// The query's `(name, value)` pairs, percent-decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| s.replace("%5B", "[").replace("%5D", "]");
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn spend_reads_send_the_beta_and_scope_type_and_follow_pages() {
    let m = mock(|seen, _| {
        let page = query_pairs(&seen.query)
            .into_iter()
            .find(|(k, _)| k == "page")
            .map(|(_, v)| v);
        match page.as_deref() {
            None => Reply::Json(
                200,
                json!({"data": [spend_json("spl_01a", "rbac_group_01a", "1000")],
                       "has_more": true, "next_page": "c1"}),
                vec![],
            ),
            Some("c1") => Reply::Json(
                200,
                json!({"data": [spend_json("spl_01b", "rbac_group_01b", "2500"),
                                spend_json("spl_01c", "rbac_group_01a", "3000")],
                       "has_more": false, "next_page": null}),
                vec![],
            ),
            Some(other) => Reply::Json(
                400,
                error_json("invalid_request_error", &format!("bad cursor {other}")),
                vec![],
            ),
        }
    })
    .await;
    let c = real_client(&m);
    let rows = c
        .list_spend_limits(&SpendLimitFilter {
            scope_type: Some("rbac_group".into()),
            rbac_group_id: None,
        })
        .await
        .unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["spl_01a", "spl_01b", "spl_01c"]);
    assert_eq!(rows[1].amount_minor(), Some(2500));
    let seen = m.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.method, "GET");
        assert_eq!(s.path, "/v1/organizations/spend_limits");
        assert_eq!(s.headers["anthropic-beta"], SPEND_BETA);
        assert_eq!(s.headers["x-api-key"], KEY);
        let q = query_pairs(&s.query);
        assert!(
            q.contains(&("scope_type[]".into(), "rbac_group".into())),
            "{}",
            s.query
        );
        assert!(!q.iter().any(|(k, _)| k == "rbac_group_id"), "{}", s.query);
    }
    assert!(query_pairs(&seen[1].query).contains(&("page".into(), "c1".into())));
}

#[tokio::test(start_paused = true)]
async fn a_429_on_a_spend_read_page_is_retried_after_retry_after_and_one_group_is_filtered_locally()
{
    let m = mock(|seen, n| {
        let second_page = seen.query.contains("page=c1");
        match (second_page, n) {
            (false, _) => Reply::Json(
                200,
                json!({"data": [spend_json("spl_01a", "rbac_group_01a", "1000"),
                                spend_json("spl_01x", "rbac_group_01x", "9")],
                       "has_more": true, "next_page": "c1"}),
                vec![],
            ),
            (true, 2) => Reply::Json(
                429,
                error_json("rate_limit_error", "slow down"),
                vec![("retry-after", "7")],
            ),
            (true, _) => Reply::Json(
                200,
                json!({"data": [spend_json("spl_01c", "rbac_group_01a", "3000")],
                       "has_more": false, "next_page": null}),
                vec![],
            ),
        }
    })
    .await;
    let c = real_client(&m);
    let started = tokio::time::Instant::now();
    let rows = c
        .list_spend_limits(&SpendLimitFilter {
            scope_type: Some("rbac_group".into()),
            rbac_group_id: Some("rbac_group_01a".into()),
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["spl_01a", "spl_01c"], "other groups' rows dropped");
    let seen = m.seen();
    assert_eq!(
        seen.len(),
        3,
        "first page, the 429, the retried second page"
    );
    assert_eq!(
        seen[1].query, seen[2].query,
        "the retry asks for the same page"
    );
    assert!(seen
        .iter()
        .all(|s| s.headers["anthropic-beta"] == SPEND_BETA
            && !query_pairs(&s.query)
                .iter()
                .any(|(k, _)| k == "rbac_group_id")));
}

/// A `tracing` writer that keeps what is written, for asserting on log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn spend_reads_unavailable_to_the_org_are_reported_once_and_not_called_again() {
    let m = mock(|seen, _| {
        if seen.path.ends_with("/spend_limits") {
            Reply::Json(404, error_json("not_found_error", "Not found"), vec![])
        } else {
            Reply::Json(
                200,
                json!({"data": [], "has_more": false, "next_page": null}),
                vec![],
            )
        }
    })
    .await;
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let c = real_client(&m);
    for _ in 0..3 {
        let err = c
            .list_spend_limits(&SpendLimitFilter {
                scope_type: Some("rbac_group".into()),
                rbac_group_id: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, CoworkError::BetaUnavailable { .. }), "{err}");
        assert!(err.to_string().contains("spend-limit reads"), "{err}");
    }
    // Neither the stable endpoints nor the other beta are blocked.
    c.list_groups().await.unwrap();
    c.list_plugins().await.unwrap();
    let seen = m.seen();
    let spend_calls = seen
        .iter()
        .filter(|s| s.path.ends_with("/spend_limits"))
        .count();
    assert_eq!(spend_calls, 1, "one probe, then no more calls");
    assert_eq!(seen.len(), 3);
    let text = String::from_utf8(logs.0.lock().clone()).unwrap();
    let reports = text
        .lines()
        .filter(|l| l.contains("not available to this organization"))
        .count();
    assert_eq!(reports, 1, "reported once:\n{text}");
    assert!(text.contains(SPEND_BETA), "{text}");
    assert!(!text.contains(KEY), "the key never reaches the log");
}
