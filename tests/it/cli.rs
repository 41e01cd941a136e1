//! The offline CLI commands through the real binary: exit codes and messages.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cowork-sync");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rules_validate_accepts_the_example_and_names_rule_and_field_otherwise() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rules.example.toml");
    let (code, out, err) = run(&["rules", "validate", example]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is valid"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(example).unwrap();
    std::fs::write(
        &bad,
        text.replacen("plan = \"enterprise\"", "plan = \"team\"", 1),
    )
    .unwrap();
    let (code, _, err) = run(&["rules", "validate", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is invalid"), "{err}");
    assert!(err.contains("role \"") || err.contains("rule \""), "{err}");
}

#[test]
fn usage_errors_exit_2_and_unknown_config_keys_are_refused() {
    let (code, _, _) = run(&["no-such-command"]);
    assert_eq!(code, 2);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:9\"\nfoo = 1\n").unwrap();
    let (code, _, err) = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("foo"), "{err}");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:9\"\n").unwrap();
    let (code, out, err) = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration is valid"));
}

#[test]
fn audit_verify_names_the_first_bad_sequence_of_an_export() {
    use cowork_sync::audit::{append, AuditDraft};
    use cowork_sync::clock::{Clock, ManualClock};
    use cowork_sync::store::memory::MemoryStore;
    use cowork_sync::store::{transaction, StoreError, TxFail};
    let store = MemoryStore::new();
    let clock = ManualClock::at_epoch_2026();
    for i in 0..4 {
        transaction::<_, StoreError>(&store, |txn| {
            append(
                txn,
                AuditDraft::new("okta", "scim.user.create", Some(&format!("u{i}"))),
                clock.now(),
            )
            .map_err(TxFail::Store)?;
            Ok(())
        })
        .unwrap();
    }
    let entries = cowork_sync::audit::list(&store, None, 0, 100).unwrap();
    let lines: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, lines.join("\n")).unwrap();
    let (code, out, err) = run(&["audit", "verify", "--file", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4 entries"), "{out}");
    // An export that starts mid-chain verifies from its first entry.
    let tail = dir.path().join("tail.jsonl");
    std::fs::write(&tail, lines[2..].join("\n")).unwrap();
    assert_eq!(
        run(&["audit", "verify", "--file", tail.to_str().unwrap()]).0,
        0
    );
    // Edited entry 3.
    let mut edited = lines.clone();
    let mut e: Value = serde_json::from_str(&edited[2]).unwrap();
    e["actor"] = Value::from("mallory");
    edited[2] = e.to_string();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, edited.join("\n")).unwrap();
    let (code, _, err) = run(&["audit", "verify", "--file", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("sequence 3"), "{err}");
    // A deleted line.
    let mut gap = lines.clone();
    gap.remove(1);
    std::fs::write(&bad, gap.join("\n")).unwrap();
    let (code, _, err) = run(&["audit", "verify", "--file", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("sequence 2"), "{err}");
}

#[test]
fn sim_serves_the_admin_api_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--rpm", "0", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    // It prints where it listens and the one command that lists its groups.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let groups_url = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the simulator exited"
        );
        if let Some(cmd) = line.trim().strip_prefix("List its groups: ") {
            assert!(
                cmd.starts_with("curl -s -H 'x-api-key: local' http://127.0.0.1:"),
                "{cmd}"
            );
            break cmd.split_whitespace().last().unwrap().to_string();
        }
    };
    let base = groups_url
        .strip_suffix("/v1/organizations/rbac_groups")
        .unwrap()
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = runtime.block_on(async {
        let res = reqwest::Client::new()
            .get(format!("{base}/v1/organizations/users"))
            .header("x-api-key", "any-key")
            .header("anthropic-version", "2023-06-01")
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    });
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"].as_array().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    let groups = runtime.block_on(async {
        let res = reqwest::Client::new()
            .get(&groups_url)
            .header("x-api-key", "local")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.json::<Value>().await.unwrap()
    });
    assert!(groups["data"].is_array(), "{groups}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert!(child.wait().unwrap().success());
}
