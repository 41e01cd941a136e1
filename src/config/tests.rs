//! Configuration tests: defaults, the file, environment overrides and validation.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_the_documented_contract() {
    let c = Config::defaults().unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.storage.data_dir, PathBuf::from("./data"));
    assert_eq!(c.auth.signing_key_file, PathBuf::from("./data/signing.key"));
    assert_eq!(c.auth.issuer, "cowork-sync");
    assert!(c.cowork.base_url.is_none());
    assert_eq!(c.cowork.mode, CoworkMode::Extended);
    assert_eq!(c.reconcile.schedule, "0 */10 * * * *");
    assert_eq!(c.reconcile.max_removal_ratio, 0.2);
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:9000\"\n[reconcile]\nmax_removal_ratio = 0.1\n",
    )
    .unwrap();
    let c = Config::load(
        Some(&path),
        env(&[
            ("COWORK_SYNC__SERVER__LISTEN", "0.0.0.0:8081"),
            ("COWORK_SYNC__RECONCILE__MAX_REMOVAL_RATIO", "0.5"),
            ("COWORK_SYNC_URL", "http://ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:8081");
    assert_eq!(c.reconcile.max_removal_ratio, 0.5);
}

#[test]
fn unknown_keys_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[server]\nlisen = \"127.0.0.1:9000\"\n").unwrap();
    let err = Config::load(Some(&path), env(&[])).unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
    let err = Config::load(None, env(&[("COWORK_SYNC__SERVER__NOPE", "1")])).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = Config::load(None, env(&[("COWORK_SYNC__NOSECTION", "1")])).unwrap_err();
    assert!(matches!(err, ConfigError::BadEnvName(_)));
}

#[test]
fn secrets_come_from_files_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "sk-ant-api01-secret\n").unwrap();
    let c = Config::load(
        None,
        env(&[
            ("COWORK_SYNC__COWORK__BASE_URL", "https://api.example.com/"),
            ("COWORK_SYNC__COWORK__API_KEY_FILE", key.to_str().unwrap()),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.cowork.api_key.as_ref().unwrap().expose(),
        "sk-ant-api01-secret"
    );
    assert_eq!(
        c.cowork.base_url.as_deref(),
        Some("https://api.example.com")
    );
    assert_eq!(c.cowork.api_key_file.as_deref(), Some(key.as_path()));
    assert!(!format!("{c:?}").contains("secret"));
}

#[test]
fn the_analytics_key_is_optional_and_read_from_its_file() {
    let c = Config::defaults().unwrap();
    assert!(c.insights.analytics_api_key.is_none());
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("analytics");
    std::fs::write(&key, "sk-ant-analytics-secret\n").unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        format!(
            "[insights]\nanalytics_api_key_file = {:?}\n",
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    let c = Config::load(Some(&path), env(&[])).unwrap();
    assert_eq!(
        c.insights.analytics_api_key.as_ref().unwrap().expose(),
        "sk-ant-analytics-secret"
    );
    assert_eq!(
        c.insights.analytics_api_key_file.as_deref(),
        Some(key.as_path())
    );
    assert!(!format!("{c:?}").contains("secret"));
    let missing = Config::load(
        None,
        env(&[(
            "COWORK_SYNC__INSIGHTS__ANALYTICS_API_KEY_FILE",
            "/nonexistent/k",
        )]),
    )
    .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("insights.analytics_api_key_file"),
        "{missing}"
    );
}

#[test]
fn the_pool_check_runs_every_15_minutes_unless_told_otherwise() {
    let c = Config::defaults().unwrap();
    assert_eq!(c.insights.pool_check.as_deref(), Some("0 */15 * * * *"));
    let c = Config::load(
        None,
        env(&[("COWORK_SYNC__INSIGHTS__POOL_CHECK", "0 */5 * * * *")]),
    )
    .unwrap();
    assert_eq!(c.insights.pool_check.as_deref(), Some("0 */5 * * * *"));
    let c = Config::load(None, env(&[("COWORK_SYNC__INSIGHTS__POOL_CHECK", "off")])).unwrap();
    assert!(c.insights.pool_check.is_none());
    let bad = Config::load(
        None,
        env(&[("COWORK_SYNC__INSIGHTS__POOL_CHECK", "hourly")]),
    )
    .unwrap_err();
    assert!(bad.to_string().contains("insights.pool_check"), "{bad}");
}

#[test]
fn bad_values_name_their_field() {
    for (k, v, field) in [
        ("COWORK_SYNC__SERVER__LISTEN", "nope", "server.listen"),
        (
            "COWORK_SYNC__RECONCILE__SCHEDULE",
            "*/5 * * * *",
            "reconcile.schedule",
        ),
        (
            "COWORK_SYNC__RECONCILE__MAX_REMOVAL_RATIO",
            "2",
            "reconcile.max_removal_ratio",
        ),
        ("COWORK_SYNC__COWORK__MODE", "fast", "cowork.mode"),
        (
            "COWORK_SYNC__LOG__LEVEL",
            "info,cowork_sync=shout",
            "log.level",
        ),
        (
            "COWORK_SYNC__COWORK__BASE_URL",
            "https://x.example.com",
            "cowork.api_key_file",
        ),
    ] {
        let err = Config::load(None, env(&[(k, v)])).unwrap_err();
        assert!(err.to_string().contains(field), "{k}: {err}");
    }
}

#[test]
fn duration_keys_default_when_absent_and_name_the_field_when_wrong() {
    let d = Duration::from_secs(5);
    assert_eq!(duration_key(None, d, "a.b", Zero::Refused).unwrap(), d);
    assert_eq!(
        duration_key(Some("0s"), d, "a.b", Zero::Allowed).unwrap(),
        Duration::ZERO
    );
    let e = duration_key(Some("0s"), d, "a.b", Zero::Refused).unwrap_err();
    assert!(
        e.to_string().contains("a.b: must be longer than zero"),
        "{e}"
    );
    let e = duration_key(Some("soon"), d, "a.b", Zero::Allowed).unwrap_err();
    assert!(e.to_string().contains("a.b"), "{e}");
}

#[test]
fn durations_read_seconds_minutes_hours_and_days() {
    assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
    for bad in ["", "10", "1w", "h", "-1s", "1.5h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn lifecycle_and_the_valve_window_have_defaults_and_are_validated() {
    let c = Config::load(None, env(&[])).unwrap();
    assert_eq!(c.lifecycle.on_deactivate, OnDeactivate::RemoveFromOrg);
    assert_eq!(c.lifecycle.remove_from_org_after, Duration::ZERO);
    assert_eq!(c.reconcile.removal_floor, 10);
    assert_eq!(c.reconcile.removal_window, Duration::from_secs(3600));
    let c = Config::load(
        None,
        env(&[
            (
                "COWORK_SYNC__LIFECYCLE__ON_DEACTIVATE",
                "remove_from_groups",
            ),
            ("COWORK_SYNC__LIFECYCLE__REMOVE_FROM_ORG_AFTER", "1d"),
            ("COWORK_SYNC__RECONCILE__REMOVAL_FLOOR", "0"),
            ("COWORK_SYNC__RECONCILE__REMOVAL_WINDOW", "15m"),
        ]),
    )
    .unwrap();
    assert_eq!(c.lifecycle.on_deactivate, OnDeactivate::RemoveFromGroups);
    assert_eq!(
        c.lifecycle.remove_from_org_after,
        Duration::from_secs(86_400)
    );
    assert_eq!(c.reconcile.removal_floor, 0);
    assert_eq!(c.reconcile.removal_window, Duration::from_secs(900));
    for (key, value, field) in [
        (
            "COWORK_SYNC__LIFECYCLE__ON_DEACTIVATE",
            "delete",
            "lifecycle.on_deactivate",
        ),
        (
            "COWORK_SYNC__LIFECYCLE__REMOVE_FROM_ORG_AFTER",
            "soon",
            "lifecycle.remove_from_org_after",
        ),
        (
            "COWORK_SYNC__RECONCILE__REMOVAL_WINDOW",
            "0s",
            "reconcile.removal_window",
        ),
    ] {
        let err = Config::load(None, env(&[(key, value)])).unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn http_workers_leave_one_cpu_to_the_write_path_unless_set() {
    assert_eq!(default_http_workers(1), 1);
    assert_eq!(default_http_workers(2), 1);
    assert_eq!(default_http_workers(8), 7);
    let mut c = Config::defaults().unwrap();
    assert!(c.server.http_workers() >= 1);
    c.server.workers = Some(4);
    assert_eq!(c.server.http_workers(), 4);
}
