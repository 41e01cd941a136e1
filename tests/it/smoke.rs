//! The black-box test: the real binary on a free port. Start it, provision over
//! SCIM, stop it with SIGTERM, start it again on the same data directory, and find
//! the data still there. Waits are on the process's own output, never on sleeps.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cowork-sync");

struct Daemon {
    child: Child,
    base: String,
    sim: Option<String>,
}

fn start(data: &Path) -> (Daemon, std::thread::JoinHandle<Vec<String>>) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("COWORK_SYNC__SERVER__LISTEN", "127.0.0.1:0")
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data)
        .env("COWORK_SYNC__LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let (base, sim, rest) = wait_for_listen(stderr);
    // Keep draining the logs so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in rest.lines() {});
    // stdout ends when the daemon exits; collect it on the side.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let printed = std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect());
    (Daemon { child, base, sim }, printed)
}

fn wait_for_listen(stderr: ChildStderr) -> (String, Option<String>, BufReader<ChildStderr>) {
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    let mut sim = None;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the daemon exited before listening");
        if line.contains("simulator is the downstream") {
            sim = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("url="))
                .map(str::to_string);
        }
        if let Some(at) = line.find("serving SCIM at ") {
            let url = line[at + "serving SCIM at ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches("/scim/v2")
                .to_string();
            return (url, sim, reader);
        }
    }
}

fn stop(mut daemon: Daemon) {
    let status = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = daemon.child.wait().unwrap();
    assert!(exit.success(), "clean exit after SIGTERM: {exit:?}");
}

fn cli(args: &[&str], base: &str, token: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("COWORK_SYNC_URL", base)
        .env("COWORK_SYNC_TOKEN", token)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn mint(data: &Path, scope: &str) -> String {
    let mint = Command::new(BIN)
        .args(["token", "mint", "--scope", scope, "--subject", "smoke"])
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data)
        .output()
        .unwrap();
    assert!(
        mint.status.success(),
        "{}",
        String::from_utf8_lossy(&mint.stderr)
    );
    String::from_utf8(mint.stdout).unwrap().trim().to_string()
}

fn call(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut req = client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

/// Reads the simulator's state until `done` holds, for at most 20 s. The binary
/// runs on its own clock, so this is the one place a test waits on real time: it
/// polls an outcome, it never asserts a duration.
fn wait_until_sim(sim: &str, done: impl Fn(&Value) -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let rt = runtime();
    let client = reqwest::Client::new();
    while std::time::Instant::now() < deadline {
        let state = rt.block_on(async {
            client
                .get(format!("{sim}/_sim/state"))
                .header("x-api-key", "local-simulator")
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()
        });
        if state.as_ref().is_some_and(|s| done(&s["snapshot"])) {
            return true;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(25));
    }
    false
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_binary_provisions_reconciles_stops_on_sigterm_and_keeps_its_data() {
    let data = tempfile::tempdir().unwrap();
    let (daemon, printed) = start(data.path());
    // Tokens from the key file the first start created.
    let token = mint(data.path(), "scim");
    let admin = mint(data.path(), "admin");

    let (status, created) = call(
        "POST",
        &format!("{}/scim/v2/Users", daemon.base),
        &token,
        Some(json!({"userName": "smoke@example.com", "active": true,
            "emails": [{"value": "smoke@example.com", "primary": true}]})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // The product path: a rule table, an IdP group, a reconcile through the CLI, and
    // the result in the bundled simulator.
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rules.example.toml");
    let (code, text) = cli(&["rules", "apply", rules], &daemon.base, &admin);
    assert_eq!(code, 0, "{text}");
    let (status, group) = call(
        "POST",
        &format!("{}/scim/v2/Groups", daemon.base),
        &token,
        Some(json!({"displayName": "Cowork Pilot", "members": [{"value": id}]})),
    );
    assert_eq!(status, 201, "{group}");
    let (code, text) = cli(&["reconcile"], &daemon.base, &admin);
    assert_eq!(code, 0, "{text}");
    let (code, text) = cli(&["plan", "--json"], &daemon.base, &admin);
    assert_eq!(code, 0, "{text}");
    let plan: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        plan["actions"],
        json!([]),
        "a reconciled downstream plans nothing"
    );
    let sim = daemon
        .sim
        .clone()
        .expect("the simulator's address is logged");
    let state = runtime().block_on(async {
        reqwest::Client::new()
            .get(format!("{sim}/_sim/state"))
            .header("x-api-key", "local-simulator")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    let snapshot = &state["snapshot"];
    let pilot = snapshot["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["external_id"] == "cowork-pilot")
        .expect("the rule's group exists downstream");
    assert!(!pilot["roles"].as_array().unwrap().is_empty(), "{pilot}");
    let smoke_user = snapshot["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "smoke@example.com")
        .expect("the user was invited and accepted");
    assert_eq!(smoke_user["role"], "managed");
    let (code, text) = cli(&["explain", "smoke@example.com"], &daemon.base, &admin);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("pilot"), "{text}");
    assert!(text.contains("matches what the rules want"), "{text}");

    // The IdP's most important message: this person left. The event path removes
    // them from the group and the organization with no reconcile asked for.
    let (status, patched) = call(
        "PATCH",
        &format!("{}/scim/v2/Users/{id}", daemon.base),
        &token,
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]}),
        ),
    );
    assert_eq!(status, 200, "{patched}");
    let member_id = smoke_user["id"].as_str().unwrap().to_string();
    let gone = wait_until_sim(&sim, |snapshot| {
        snapshot["users"]
            .as_array()
            .is_some_and(|users| users.iter().all(|u| u["id"] != member_id.as_str()))
    });
    assert!(
        gone,
        "the deactivated user left the organization on the event path"
    );
    let (code, text) = cli(&["held"], &daemon.base, &admin);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("No removals are held"), "{text}");
    let (status, ready) = call("GET", &format!("{}/readyz", daemon.base), &admin, None);
    assert_eq!(status, 200, "{ready}");
    let sim = daemon
        .sim
        .clone()
        .expect("the log names the simulator's url");
    stop(daemon);
    let printed = printed.join().unwrap().join("\n");
    assert!(printed.contains("SCIM token"), "{printed}");
    assert!(printed.contains("Admin token"), "{printed}");
    assert!(
        printed.contains(&format!(
            "List its groups: curl -s -H 'x-api-key: local' {sim}/v1/organizations/rbac_groups"
        )),
        "serve prints where its simulator listens: {printed}"
    );

    let (daemon, printed) = start(data.path());
    let (status, found) = call(
        "GET",
        &format!("{}/scim/v2/Users/{id}", daemon.base),
        &token,
        None,
    );
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["userName"], "smoke@example.com");
    stop(daemon);
    let printed = printed.join().unwrap();
    assert!(
        !printed.iter().any(|l| l.contains("token")),
        "tokens are printed on first start only: {printed:?}"
    );
    assert!(
        printed.iter().any(|l| l.contains("simulator listens on")),
        "the simulator's address is printed on every start: {printed:?}"
    );
}

#[test]
fn every_acknowledged_write_survives_a_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let (mut daemon, _printed) = start(data.path());
    let token = mint(data.path(), "scim");
    // Concurrent writers, so acknowledgements come from shared (group-committed) flushes.
    let acknowledged: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let base = daemon.base.clone();
                let token = token.clone();
                s.spawn(move || {
                    (0..25)
                        .map(|i| {
                            let (status, body) = call(
                                "POST",
                                &format!("{base}/scim/v2/Users"),
                                &token,
                                Some(json!({"userName": format!("kill{w}-{i}@example.com")})),
                            );
                            assert_eq!(status, 201, "{body}");
                            body["id"].as_str().unwrap().to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    // No graceful shutdown, no final flush.
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();

    let (daemon, _) = start(data.path());
    for id in &acknowledged {
        let (status, _) = call(
            "GET",
            &format!("{}/scim/v2/Users/{id}", daemon.base),
            &token,
            None,
        );
        assert_eq!(status, 200, "acknowledged user {id} was lost");
    }
    let (_, list) = call(
        "GET",
        &format!("{}/scim/v2/Users?count=1", daemon.base),
        &token,
        None,
    );
    assert_eq!(list["totalResults"], 100);
    // The trail recorded every one of them, and still verifies.
    let admin = mint(data.path(), "admin");
    let (code, text) = cli(&["audit", "verify"], &daemon.base, &admin);
    assert_eq!(code, 0, "{text}");
    stop(daemon);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn serve_once(data: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("serve")
        .args(extra)
        .env("COWORK_SYNC__SERVER__LISTEN", "127.0.0.1:0")
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn create_user(base: &str, token: &str, name: &str) {
    let (status, body) = call(
        "POST",
        &format!("{base}/scim/v2/Users"),
        token,
        Some(json!({"userName": name})),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_database_rolled_back_behind_its_checkpoint_is_refused_unless_accepted() {
    let data = tempfile::tempdir().unwrap();
    let (daemon, _) = start(data.path());
    let token = mint(data.path(), "scim");
    create_user(&daemon.base, &token, "one@example.com");
    stop(daemon);
    // A backup of the database with one user.
    let old = tempfile::tempdir().unwrap();
    copy_dir(&data.path().join("db"), old.path());
    let (daemon, _) = start(data.path());
    create_user(&daemon.base, &token, "two@example.com");
    create_user(&daemon.base, &token, "three@example.com");
    stop(daemon);
    // Roll the database back behind the daemon's back.
    std::fs::remove_dir_all(data.path().join("db")).unwrap();
    copy_dir(old.path(), &data.path().join("db"));

    let out = serve_once(data.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The first start's token entries come first, so read the two numbers the message
    // names: the database's head, then the checkpoint's, which is at least the two
    // creates ahead (the second start also records the token it imports from mint).
    let after = |marker: &str| -> u64 {
        let rest = &stderr[stderr
            .find(marker)
            .unwrap_or_else(|| panic!("{marker}: {stderr}"))
            + marker.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (db, checkpoint) = (after("ends at sequence "), after("recorded sequence "));
    assert!(
        checkpoint >= db + 2,
        "names both sequence numbers: {stderr}"
    );
    assert!(stderr.contains("--accept-rollback"), "{stderr}");
    assert!(stderr.contains("backup"), "{stderr}");

    // Accepted: it starts, serves the old state, and the audit trail says so.
    let mut child = Command::new(BIN)
        .args(["serve", "--accept-rollback"])
        .env("COWORK_SYNC__SERVER__LISTEN", "127.0.0.1:0")
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data.path())
        .env("COWORK_SYNC__LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (base, sim, rest) = wait_for_listen(child.stderr.take().unwrap());
    std::thread::spawn(move || for _ in rest.lines() {});
    let daemon = Daemon { child, base, sim };
    let (_, list) = call(
        "GET",
        &format!("{}/scim/v2/Users?count=1", daemon.base),
        &token,
        None,
    );
    assert_eq!(list["totalResults"], 1);
    let admin = mint(data.path(), "admin");
    let (code, text) = cli(&["audit", "export"], &daemon.base, &admin);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("store.rollback_accepted"), "{text}");
    stop(daemon);
    // The checkpoint followed the accepted head: a plain start works again.
    let (daemon, _) = start(data.path());
    stop(daemon);
}

#[test]
fn a_populated_data_dir_without_its_signing_key_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let (daemon, _) = start(data.path());
    let token = mint(data.path(), "scim");
    create_user(&daemon.base, &token, "one@example.com");
    stop(daemon);
    std::fs::remove_file(data.path().join("signing.key")).unwrap();
    let out = serve_once(data.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("signing key"), "{stderr}");
    assert!(stderr.contains("Restore the key file"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "no new tokens printed"
    );
    assert!(!data.path().join("signing.key").exists(), "no key minted");
}

/// Like [`call`], but `None` when the daemon is gone (the connection failed).
fn try_call(method: &str, url: &str, token: &str, body: Option<Value>) -> Option<(u16, Value)> {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut req = client
            .request(reqwest::Method::from_bytes(method.as_bytes()).ok()?, url)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.ok()?;
        let status = res.status().as_u16();
        let text = res.text().await.ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    })
}

/// How far one user's writes got: created, patched, deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Created,
    Patched,
    Deleted,
}

/// One user's history as its writer saw it: the last stage acknowledged and the
/// last one sent (one further when the kill caught a write in flight).
#[derive(Debug)]
struct History {
    id: String,
    acked: Stage,
    sent: Stage,
    /// Added to the worker's group: acknowledged, sent.
    member: (bool, bool),
}

/// One writer: a group, then users created, added to the group, patched, and every
/// other one deleted, until the daemon is gone. Each acknowledgement is reported.
fn crash_worker(
    base: &str,
    token: &str,
    w: usize,
    acks: std::sync::mpsc::Sender<()>,
) -> (String, Vec<History>) {
    let (status, group) = call(
        "POST",
        &format!("{base}/scim/v2/Groups"),
        token,
        Some(json!({"displayName": format!("crash-{w}")})),
    );
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    for i in 0.. {
        let Some((status, body)) = try_call(
            "POST",
            &format!("{base}/scim/v2/Users"),
            token,
            Some(json!({"userName": format!("crash{w}-{i}@example.com")})),
        ) else {
            break;
        };
        assert_eq!(status, 201, "{body}");
        let _ = acks.send(());
        let mut h = History {
            id: body["id"].as_str().unwrap().to_string(),
            acked: Stage::Created,
            sent: Stage::Created,
            member: (false, true),
        };
        let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": h.id}]}]});
        let url = format!("{base}/scim/v2/Groups/{gid}");
        let Some((status, body)) = try_call("PATCH", &url, token, Some(add)) else {
            seen.push(h);
            break;
        };
        assert!(status == 200 || status == 204, "{status} {body}");
        h.member.0 = true;
        let _ = acks.send(());
        h.sent = Stage::Patched;
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"displayName": "patched", "active": false}}]});
        let url = format!("{base}/scim/v2/Users/{}", h.id);
        let Some((status, body)) = try_call("PATCH", &url, token, Some(patch)) else {
            seen.push(h);
            break;
        };
        assert!(status == 200 || status == 204, "{status} {body}");
        h.acked = Stage::Patched;
        let _ = acks.send(());
        if i % 2 == 0 {
            h.sent = Stage::Deleted;
            let Some((status, body)) = try_call("DELETE", &url, token, None) else {
                seen.push(h);
                break;
            };
            assert_eq!(status, 204, "{body}");
            h.acked = Stage::Deleted;
            let _ = acks.send(());
        }
        seen.push(h);
    }
    (gid, seen)
}

#[test]
fn a_sigkill_amid_creates_patches_and_deletes_loses_no_acknowledged_write() {
    let data = tempfile::tempdir().unwrap();
    let (mut daemon, _printed) = start(data.path());
    let token = mint(data.path(), "scim");
    let (acks, acked) = std::sync::mpsc::channel();
    let histories: Vec<(String, Vec<History>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let base = daemon.base.clone();
                let token = token.clone();
                let acks = acks.clone();
                s.spawn(move || crash_worker(&base, &token, w, acks))
            })
            .collect();
        // Killed while the writers are mid-flight, after 200 acknowledged writes.
        for _ in 0..200 {
            acked.recv().unwrap();
        }
        daemon.child.kill().unwrap();
        daemon.child.wait().unwrap();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    let (daemon, _) = start(data.path());
    let base = daemon.base.clone();
    for (gid, seen) in &histories {
        let (status, group) = call("GET", &format!("{base}/scim/v2/Groups/{gid}"), &token, None);
        assert_eq!(status, 200, "acknowledged group {gid} was lost");
        let members: Vec<&str> = group["members"]
            .as_array()
            .map(|m| m.iter().filter_map(|v| v["value"].as_str()).collect())
            .unwrap_or_default();
        for h in seen {
            let (status, user) = call(
                "GET",
                &format!("{base}/scim/v2/Users/{}", h.id),
                &token,
                None,
            );
            let found = match status {
                404 => Stage::Deleted,
                200 if user["displayName"] == "patched" => {
                    assert_eq!(user["active"], false, "a PATCH applied in part: {user}");
                    Stage::Patched
                }
                200 => Stage::Created,
                other => panic!("GET user {}: {other} {user}", h.id),
            };
            assert!(
                h.acked <= found && found <= h.sent,
                "user {}: acknowledged {:?}, sent {:?}, found {found:?}",
                h.id,
                h.acked,
                h.sent
            );
            let member = members.contains(&h.id.as_str());
            if found == Stage::Deleted {
                assert!(!member, "deleted user {} still a member of {gid}", h.id);
            } else {
                let (acked, sent) = h.member;
                assert!(
                    (member || !acked) && (sent || !member),
                    "user {}: membership acknowledged {:?}, found {member}",
                    h.id,
                    h.member
                );
            }
        }
    }
    let total: usize = histories.iter().map(|(_, s)| s.len()).sum();
    assert!(total >= 50, "the writers got through {total} users");
    let admin = mint(data.path(), "admin");
    let (code, text) = cli(&["audit", "verify"], &base, &admin);
    assert_eq!(code, 0, "{text}");
    stop(daemon);
}

#[test]
fn sighup_makes_the_daemon_accept_a_rotated_key_and_keep_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("COWORK_SYNC__SERVER__LISTEN", "127.0.0.1:0")
        .env("COWORK_SYNC__STORAGE__DATA_DIR", &data)
        .env("COWORK_SYNC__LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let (base, _, rest) = wait_for_listen(child.stderr.take().unwrap());
    // The logs go to a channel, so the test can wait for the reload's line.
    let (tx, logs) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in rest.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let users = format!("{base}/scim/v2/Users");
    let old = mint(&data, "scim");
    assert_eq!(call("GET", &users, &old, None).0, 200);
    let rotated = Command::new(BIN)
        .args(["token", "rotate-key", "--keep-previous", "1"])
        .env("COWORK_SYNC__STORAGE__DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    let new = mint(&data, "scim");
    assert_eq!(
        call("GET", &users, &new, None).0,
        401,
        "not before the reload"
    );
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reloaded =
        std::iter::from_fn(|| logs.recv_timeout(std::time::Duration::from_secs(20)).ok())
            .any(|l| l.contains("SIGHUP: signing keys reloaded"));
    assert!(reloaded, "the daemon logs the reload");
    assert_eq!(call("GET", &users, &new, None).0, 200, "the new key");
    assert_eq!(
        call("GET", &users, &old, None).0,
        200,
        "the previous key, within its day"
    );
    stop(Daemon {
        child,
        base,
        sim: None,
    });
}
