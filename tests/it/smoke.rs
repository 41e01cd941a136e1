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
    let (base, rest) = wait_for_listen(stderr);
    // Keep draining the logs so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in rest.lines() {});
    // stdout ends when the daemon exits; collect it on the side.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let printed = std::thread::spawn(move || stdout.lines().map_while(Result::ok).collect());
    (Daemon { child, base }, printed)
}

fn wait_for_listen(stderr: ChildStderr) -> (String, BufReader<ChildStderr>) {
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the daemon exited before listening");
        if let Some(at) = line.find("serving SCIM at ") {
            let url = line[at + "serving SCIM at ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches("/scim/v2")
                .to_string();
            return (url, reader);
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

fn call(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
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

#[test]
fn the_binary_serves_scim_stops_on_sigterm_and_keeps_its_data() {
    let data = tempfile::tempdir().unwrap();
    let (daemon, printed) = start(data.path());
    // A second token from the key file the first start created.
    let mint = Command::new(BIN)
        .args(["token", "mint", "--scope", "scim", "--subject", "smoke"])
        .env("COWORK_SYNC__STORAGE__DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(
        mint.status.success(),
        "{}",
        String::from_utf8_lossy(&mint.stderr)
    );
    let token = String::from_utf8(mint.stdout).unwrap().trim().to_string();

    let (status, created) = call(
        "POST",
        &format!("{}/scim/v2/Users", daemon.base),
        &token,
        Some(json!({"userName": "smoke@example.com", "active": true})),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    stop(daemon);
    let printed = printed.join().unwrap().join("\n");
    assert!(printed.contains("SCIM token"), "{printed}");
    assert!(printed.contains("Admin token"), "{printed}");

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
        printed.is_empty(),
        "tokens are printed on first start only: {printed:?}"
    );
}
