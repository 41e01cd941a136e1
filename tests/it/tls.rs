//! HTTPS served directly (`server.tls_cert_file` / `tls_key_file`), through the real
//! binary, and the container health probe against it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_cowork-sync");

#[test]
fn the_daemon_serves_https_and_the_probe_accepts_its_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("COWORK_SYNC__SERVER__LISTEN", "127.0.0.1:0")
        .env("COWORK_SYNC__SERVER__TLS_CERT_FILE", &cert_path)
        .env("COWORK_SYNC__SERVER__TLS_KEY_FILE", &key_path)
        .env("COWORK_SYNC__STORAGE__DATA_DIR", dir.path().join("data"))
        .env("COWORK_SYNC__LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the daemon exited"
        );
        if let Some(at) = line.find("serving SCIM at ") {
            break line[at + 16..]
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches("/scim/v2")
                .to_string();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});
    assert!(base.starts_with("https://"), "{base}");

    // A client that trusts the certificate gets through TLS.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(root)
            .build()
            .unwrap()
            .get(format!(
                "{}/healthz",
                base.replace("127.0.0.1", "localhost")
            ))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    // The container probe accepts the daemon's own (self-signed) certificate on loopback.
    let probe = Command::new(BIN)
        .args(["healthcheck", "--url", &base])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}
