//! The example configuration in `deploy/` must not rot: it loads as written, it lists
//! every key the daemon accepts (and no other), every commented default is the real
//! default, and every example value of an unset-by-default key is valid.
//!
//! The accepted keys are read from the configuration loader itself: an unknown key is
//! refused with a message naming the keys that are expected, so a key added to
//! `src/config.rs` without a line in the example fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cowork_sync::config::Config;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/cowork-sync.example.toml"
);

/// Keys that have no fixed default: the example shows an example value for them.
const UNSET_BY_DEFAULT: &[&str] = &[
    "server.tls_cert_file",
    "server.tls_key_file",
    "server.public_url",
    "server.workers",
    "auth.jwks_file",
    "cowork.api_key_file",
    "cowork.api_key",
    "insights.analytics_api_key_file",
    "insights.analytics_api_key",
    "telemetry.otlp_endpoint",
    "telemetry.headers",
    "telemetry.headers_file",
    "telemetry.service_instance_id",
];

/// One `key = value` line of the example, active or commented out.
#[derive(Debug)]
struct KeyLine {
    section: String,
    key: String,
    line: usize,
    commented: bool,
}

impl KeyLine {
    fn dotted(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }
}

fn example_text() -> String {
    std::fs::read_to_string(EXAMPLE).unwrap()
}

/// `key = ...` or `# key = ...` where key is a bare lower-case TOML key.
fn key_of(text: &str) -> Option<&str> {
    let (key, _) = text.split_once(" = ")?;
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    bare.then_some(key)
}

fn key_lines(text: &str) -> Vec<KeyLine> {
    let mut section = String::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (body, commented) = match line.strip_prefix("# ") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        if let Some(key) = key_of(body) {
            out.push(KeyLine {
                section: section.clone(),
                key: key.to_string(),
                line: i,
                commented,
            });
        }
    }
    out
}

/// The example with the commented key lines for which `pick` is true uncommented.
fn uncommented(text: &str, pick: impl Fn(&KeyLine) -> bool) -> String {
    let chosen: BTreeSet<usize> = key_lines(text)
        .into_iter()
        .filter(|k| k.commented && pick(k))
        .map(|k| k.line)
        .collect();
    text.lines()
        .enumerate()
        .map(|(i, l)| match chosen.contains(&i) {
            true => l.strip_prefix("# ").unwrap_or(l),
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The names listed after "expected" in a refusal of an unknown key.
fn expected_names(message: &str) -> BTreeSet<String> {
    let (_, list) = message
        .split_once("expected")
        .unwrap_or_else(|| panic!("no list of expected keys in: {message}"));
    // The list ends the line; a line after it may name the section ("in `server`").
    let list = list.lines().next().unwrap_or_default();
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn refusal(env: (&str, &str)) -> String {
    let env = [(env.0.to_string(), env.1.to_string())];
    Config::load(None, env).unwrap_err().to_string()
}

/// Every key the loader accepts, as `section.key`.
fn accepted_keys() -> BTreeSet<String> {
    let sections = expected_names(&refusal(("COWORK_SYNC__NOSUCHSECTION__KEY", "1")));
    assert!(sections.contains("server"), "{sections:?}");
    let mut keys = BTreeSet::new();
    for section in sections {
        let var = format!("COWORK_SYNC__{}__NO_SUCH_KEY", section.to_uppercase());
        for key in expected_names(&refusal((&var, "1"))) {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

#[test]
fn the_example_config_loads_as_written() {
    let config = Config::load(Some(Path::new(EXAMPLE)), std::iter::empty());
    assert!(config.is_ok(), "{:?}", config.err());
}

#[test]
fn the_example_config_lists_every_accepted_key_once_and_no_other() {
    let lines = key_lines(&example_text());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for k in &lines {
        *seen.entry(k.dotted()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "keys listed more than once: {twice:?}");
    let listed: BTreeSet<String> = seen.into_keys().collect();
    let accepted = accepted_keys();
    let missing: Vec<_> = accepted.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&accepted).collect();
    assert!(
        missing.is_empty(),
        "accepted but not in the example: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "in the example but not accepted: {unknown:?}"
    );
    for key in UNSET_BY_DEFAULT {
        assert!(accepted.contains(*key), "UNSET_BY_DEFAULT names {key}");
    }
}

#[test]
fn every_commented_default_in_the_example_is_the_real_default() {
    let dir = tempfile::tempdir().unwrap();
    let text = uncommented(&example_text(), |k| {
        !UNSET_BY_DEFAULT.contains(&k.dotted().as_str())
    });
    let path = write(dir.path(), "defaults.toml", &text);
    let from_example = Config::load(Some(&path), std::iter::empty()).unwrap();
    let defaults = Config::defaults().unwrap();
    assert_eq!(format!("{from_example:?}"), format!("{defaults:?}"));
}

#[test]
fn every_example_value_in_the_example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    // api_key and api_key_file exclude each other; the file is the recommended one.
    let text = uncommented(&example_text(), |k| {
        k.dotted() != "cowork.api_key"
            && k.dotted() != "insights.analytics_api_key"
            && k.dotted() != "telemetry.headers_file"
    });
    let path = write(dir.path(), "everything.toml", &text);
    let key_file = write(dir.path(), "cowork-api-key", "sk-ant-api01-example\n");
    let analytics_file = write(dir.path(), "analytics-api-key", "sk-ant-analytics\n");
    let env = [
        (
            "COWORK_SYNC__COWORK__API_KEY_FILE".to_string(),
            key_file.to_str().unwrap().to_string(),
        ),
        (
            "COWORK_SYNC__INSIGHTS__ANALYTICS_API_KEY_FILE".to_string(),
            analytics_file.to_str().unwrap().to_string(),
        ),
    ];
    let config = Config::load(Some(&path), env).unwrap();
    assert!(config.server.tls.is_some());
    assert!(config.server.public_url.is_some());
    assert!(config.auth.jwks_file.is_some());
    assert_eq!(
        config.cowork.api_key.as_ref().map(|k| k.expose()),
        Some("sk-ant-api01-example")
    );
    assert!(config.insights.analytics_api_key.is_some());
    assert!(config.telemetry.endpoint.is_some());
}

/// The `config.toml` block of the Kubernetes ConfigMap (a YAML literal block indented
/// by four spaces), without a YAML parser.
fn configmap_config(yaml: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "config.toml: |");
    lines.next().expect("the ConfigMap has a config.toml block");
    lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_kubernetes_configmap_holds_a_valid_config() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/configmap.yaml"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.toml", &configmap_config(&yaml));
    // The Secret's files are mounted in the pod; stand-ins here.
    let key_file = write(dir.path(), "cowork-api-key", "sk-ant-api01-example");
    let env = [(
        "COWORK_SYNC__COWORK__API_KEY_FILE".to_string(),
        key_file.to_str().unwrap().to_string(),
    )];
    let config = Config::load(Some(&path), env).unwrap();
    assert_eq!(config.storage.data_dir, PathBuf::from("/data"));
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
    assert!(config.cowork.base_url.is_some());
}
