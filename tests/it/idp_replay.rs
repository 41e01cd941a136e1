//! Replays of the request sequences Okta and Microsoft Entra ID send to a SCIM
//! service provider (`tests/fixtures/{okta,entra}/*.json`; the format is documented in
//! `tests/fixtures/README.md`) against the in-process app.
//!
//! Input is whatever the IdP sends, quirks included. Output is held to strict RFC
//! 7643/7644 shape on every response, whether or not the fixture asks: the media type
//! is `application/scim+json`, errors carry the Error schema with `status` as a
//! string, ListResponses carry integer counters and a `Resources` array, resources
//! carry `schemas`, `id` and a consistent `meta`, booleans are booleans, nothing is
//! `null`, and `password` never comes back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::TestApp;

const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// RFC 7644 §3.12, Table 9.
const SCIM_TYPES: [&str; 10] = [
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
];

/// Every fixture file, each replayed by exactly one test below.
const FIXTURES: &[&str] = &[
    "entra/create-user.json",
    "entra/groups.json",
    "entra/manager.json",
    "entra/misspelled-attribute.json",
    "entra/patch-aadoptscim062020.json",
    "entra/patch-default-dialect.json",
    "entra/postman-collection.json",
    "entra/soft-then-hard-delete.json",
    "entra/test-connection.json",
    "entra/unknown-members-reject.json",
    "entra/unknown-members.json",
    "entra/username-changes.json",
    "entra/validator-groups.json",
    "entra/validator-users.json",
    "okta/create-user.json",
    "okta/deactivate-reactivate.json",
    "okta/group-push.json",
    "okta/import-pagination.json",
    "okta/runscope-crud.json",
    "okta/runscope-spec.json",
    "okta/test-connection.json",
    "okta/unknown-members-reject.json",
    "okta/unknown-members.json",
    "okta/update-user-put.json",
];

// ---------------------------------------------------------------------------------
// The fixture format
// ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    description: String,
    #[serde(default)]
    sources: Vec<String>,
    /// Config overrides: `SECTION__KEY` → value (as `COWORK_SYNC__SECTION__KEY`).
    #[serde(default)]
    config: BTreeMap<String, String>,
    /// Headers sent with every request (a step's own headers win).
    #[serde(default)]
    headers: BTreeMap<String, Option<String>>,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    name: String,
    /// Run the step this many times with `{{i}}` = 1, 2, ...
    #[serde(default)]
    repeat: Option<u32>,
    request: Request,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, Option<String>>,
    #[serde(default)]
    body: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    #[serde(default)]
    body: Option<Value>,
    /// JSON pointer → expected value (same matchers as `body`), for elements deep in
    /// long arrays.
    #[serde(default)]
    pointers: BTreeMap<String, Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    capture: BTreeMap<String, String>,
}

/// What a replay leaves behind for further assertions.
pub struct Replayed {
    pub app: TestApp,
    pub vars: BTreeMap<String, String>,
}

impl Replayed {
    /// A captured variable.
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("no variable {name} was captured"))
    }

    /// The audit entries with this action and target, oldest first.
    pub fn audit(&self, action: &str, target: &str) -> Vec<Value> {
        cowork_sync::audit::list(self.app.core.store.as_ref(), None, 0, 100_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == action && e.target.as_deref() == Some(target))
            .map(|e| e.details)
            .collect()
    }
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(name: &str) -> Fixture {
    assert!(FIXTURES.contains(&name), "{name} is not listed in FIXTURES");
    let path = fixture_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not a valid fixture: {e}"))
}

// ---------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------

/// Replays one fixture file against a fresh app and returns the app and variables.
pub async fn replay(name: &str) -> Replayed {
    let fixture = load(name);
    assert!(!fixture.description.is_empty(), "{name}: no description");
    assert!(!fixture.sources.is_empty(), "{name}: no sources");
    let mut builder = TestApp::builder();
    for (key, value) in &fixture.config {
        builder = builder.config(key, value);
    }
    let app = builder.start().await;
    let mut vars = BTreeMap::new();
    vars.insert("base".to_string(), format!("{}/scim/v2", app.base));
    vars.insert("token".to_string(), app.scim_token.clone());
    for (index, step) in fixture.steps.iter().enumerate() {
        let times = step.repeat.unwrap_or(1);
        assert!(times >= 1, "{name} step {}: repeat must be >= 1", index + 1);
        for i in 1..=times {
            if step.repeat.is_some() {
                vars.insert("i".to_string(), i.to_string());
            }
            run_step(&app, &fixture, name, index, step, &mut vars).await;
        }
        vars.remove("i");
    }
    Replayed { app, vars }
}

async fn run_step(
    app: &TestApp,
    fixture: &Fixture,
    file: &str,
    index: usize,
    step: &Step,
    vars: &mut BTreeMap<String, String>,
) {
    let step_name = subst(&step.name, vars);
    let where_ = format!("{file} step {} ({step_name})", index + 1);
    let method = step.request.method.to_ascii_uppercase();
    let path = subst(&step.request.path, vars);
    assert!(
        path.starts_with('/'),
        "{where_}: the path is relative to /scim/v2 and starts with '/'"
    );
    let body = step.request.body.as_ref().map(|b| subst_value(b, vars));

    // Headers: Authorization and Content-Type defaults, then the fixture's, then the
    // step's; a null value removes a header. Names are case-insensitive.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    headers.insert("authorization".into(), "Bearer {{token}}".into());
    if body.is_some() {
        headers.insert("content-type".into(), "application/scim+json".into());
    }
    for (k, v) in fixture.headers.iter().chain(&step.request.headers) {
        match v {
            Some(v) => headers.insert(k.to_ascii_lowercase(), v.clone()),
            None => headers.remove(&k.to_ascii_lowercase()),
        };
    }

    let url = format!("{}/scim/v2{path}", app.base);
    let mut req = app.http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        url.as_str(),
    );
    for (k, v) in &headers {
        req = req.header(k.as_str(), subst(v, vars));
    }
    if let Some(b) = &body {
        req = req.body(b.to_string());
    }
    let res = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{where_}: request failed: {e}"));
    let status = res.status().as_u16();
    let res_headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let parsed: Option<Value> = if text.is_empty() {
        None
    } else {
        serde_json::from_str(&text).ok()
    };
    let header = |name: &str| hdr(&res_headers, name);

    let mut errors = Vec::new();
    if status != step.expect.status {
        errors.push(format!("status {status}, expected {}", step.expect.status));
    }
    strict_shape(
        &method,
        &path,
        status,
        &res_headers,
        &text,
        parsed.as_ref(),
        &mut errors,
    );
    // Captures first, so the same step's expectations may use them (`Location`).
    for (var, pointer) in &step.expect.capture {
        let var = subst(var, vars);
        let value = parsed.as_ref().and_then(|b| b.pointer(pointer));
        match value {
            Some(Value::String(s)) => {
                vars.insert(var, s.clone());
            }
            Some(Value::Number(n)) => {
                vars.insert(var, n.to_string());
            }
            other => errors.push(format!(
                "capture {var}: {pointer} is {other:?}, not a string or number"
            )),
        }
    }
    if let Some(expected) = &step.expect.body {
        let expected = subst_value(expected, vars);
        match &parsed {
            Some(actual) => matches(&expected, Some(actual), "", &mut errors),
            None => errors.push("a body was expected, none came".into()),
        }
    }
    for (pointer, expected) in &step.expect.pointers {
        let expected = subst_value(expected, vars);
        let actual = parsed.as_ref().and_then(|b| b.pointer(pointer));
        matches(&expected, actual, pointer, &mut errors);
    }
    for (name, expected) in &step.expect.headers {
        let actual = header(&name.to_ascii_lowercase());
        match (expected.as_str(), actual) {
            ("$absent", None) => {}
            ("$absent", Some(a)) => errors.push(format!("header {name} is {a:?}, expected none")),
            ("$any", Some(_)) => {}
            (_, None) => errors.push(format!("header {name} is missing")),
            (e, Some(a)) => {
                let e = subst(e, vars);
                if e != a {
                    errors.push(format!("header {name} is {a:?}, expected {e:?}"));
                }
            }
        }
    }
    if !errors.is_empty() {
        let sent = body
            .as_ref()
            .map(|b| serde_json::to_string_pretty(b).unwrap())
            .unwrap_or_default();
        panic!(
            "{where_} failed:\n  - {}\nrequest: {method} {path}\n{sent}\nresponse: {status}\n{text}",
            errors.join("\n  - ")
        );
    }
}

fn hdr<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Replaces `{{name}}` placeholders; an unknown name is a broken fixture.
fn subst(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed placeholder in {text:?}"));
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("placeholder {{{{{name}}}}} has no value (in {text:?})"));
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// [`subst`] over every string and object key of a JSON value.
fn subst_value(value: &Value, vars: &BTreeMap<String, String>) -> Value {
    match value {
        Value::String(s) => Value::String(subst(s, vars)),
        Value::Array(items) => Value::Array(items.iter().map(|v| subst_value(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (subst(k, vars), subst_value(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------------
// Expected-body matching
// ---------------------------------------------------------------------------------

/// Checks `actual` against the subset `expected` (see the README for the matchers).
fn matches(expected: &Value, actual: Option<&Value>, at: &str, errors: &mut Vec<String>) {
    let at_or_root = if at.is_empty() { "/" } else { at };
    if expected == "$absent" {
        if let Some(a) = actual {
            errors.push(format!("{at_or_root}: expected absent, got {a}"));
        }
        return;
    }
    let Some(actual) = actual else {
        errors.push(format!("{at_or_root}: missing, expected {expected}"));
        return;
    };
    match expected {
        Value::String(s) if s == "$any" => {
            if actual.is_null() {
                errors.push(format!("{at_or_root}: null, expected a value"));
            }
        }
        Value::String(s) if s == "$nonEmpty" => {
            let empty = match actual {
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Null => true,
                _ => false,
            };
            if empty {
                errors.push(format!("{at_or_root}: {actual} is empty"));
            }
        }
        Value::String(s) if s.starts_with("$includes:") => {
            let needle = &s["$includes:".len()..];
            if !actual.as_str().is_some_and(|a| a.contains(needle)) {
                errors.push(format!(
                    "{at_or_root}: {actual} does not include {needle:?}"
                ));
            }
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("$unordered") => {
            let wanted = map["$unordered"].as_array().cloned().unwrap_or_default();
            match actual.as_array() {
                Some(items) if items.len() == wanted.len() => {
                    contains_each(&wanted, items, at_or_root, errors)
                }
                _ => errors.push(format!(
                    "{at_or_root}: expected {} elements in any order, got {actual}",
                    wanted.len()
                )),
            }
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("$contains") => {
            let wanted = map["$contains"].as_array().cloned().unwrap_or_default();
            match actual.as_array() {
                Some(items) => contains_each(&wanted, items, at_or_root, errors),
                None => errors.push(format!("{at_or_root}: expected an array, got {actual}")),
            }
        }
        Value::Object(map) => {
            let Some(obj) = actual.as_object() else {
                errors.push(format!("{at_or_root}: expected an object, got {actual}"));
                return;
            };
            for (k, v) in map {
                matches(v, obj.get(k), &format!("{at}/{}", escape(k)), errors);
            }
        }
        Value::Array(items) => match actual.as_array() {
            Some(a) if a.len() == items.len() => {
                for (n, (e, a)) in items.iter().zip(a).enumerate() {
                    matches(e, Some(a), &format!("{at}/{n}"), errors);
                }
            }
            _ => errors.push(format!(
                "{at_or_root}: expected {} elements, got {actual}",
                items.len()
            )),
        },
        scalar => {
            if scalar != actual {
                errors.push(format!("{at_or_root}: expected {scalar}, got {actual}"));
            }
        }
    }
}

/// Each expected element matches a different actual element.
fn contains_each(wanted: &[Value], items: &[Value], at: &str, errors: &mut Vec<String>) {
    let mut used = vec![false; items.len()];
    for w in wanted {
        let found = items.iter().enumerate().position(|(n, item)| {
            let mut e = Vec::new();
            matches(w, Some(item), at, &mut e);
            !used[n] && e.is_empty()
        });
        match found {
            Some(n) => used[n] = true,
            None => errors.push(format!("{at}: no element matches {w} in {items:?}")),
        }
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

// ---------------------------------------------------------------------------------
// Strict response shape (RFC 7643/7644), checked on every response
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    User,
    Group,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    fn core(self) -> &'static str {
        match self {
            Kind::User => USER_SCHEMA,
            Kind::Group => GROUP_SCHEMA,
        }
    }
}

/// `/Users...` and `/Groups...`: the resource kind, and whether the answer to
/// `method` is a ListResponse (a GET of the collection, a POST to `.search`) rather
/// than one resource.
fn endpoint(method: &str, path: &str) -> Option<(Kind, bool)> {
    let path = path.split('?').next().unwrap_or_default();
    let mut segments = path.trim_start_matches('/').split('/');
    let kind = match segments.next()? {
        "Users" => Kind::User,
        "Groups" => Kind::Group,
        _ => return None,
    };
    let list = match segments.next() {
        None | Some("") => method == "GET",
        Some(".search") => true,
        Some(_) => false,
    };
    Some((kind, list))
}

fn strict_shape(
    method: &str,
    path: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    text: &str,
    body: Option<&Value>,
    errors: &mut Vec<String>,
) {
    let header = |name: &str| hdr(headers, name);
    if status == 204 || status == 304 {
        if !text.is_empty() {
            errors.push(format!("a {status} carries a body"));
        }
        return;
    }
    let media = header("content-type")
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    if media != Some("application/scim+json") {
        errors.push(format!(
            "content-type is {media:?}, not application/scim+json"
        ));
    }
    let Some(body) = body else {
        errors.push("the body is not JSON".into());
        return;
    };
    no_nulls(body, "", errors);
    if status >= 400 {
        strict_error(status, body, errors);
        return;
    }
    let Some((kind, list)) = endpoint(method, path) else {
        return;
    };
    if list {
        strict_list(kind, body, errors);
    } else {
        strict_resource(kind, body, "", errors);
        if let Some(version) = body.pointer("/meta/version").and_then(Value::as_str) {
            if header("etag") != Some(version) {
                errors.push(format!(
                    "ETag {:?} differs from meta.version {version:?}",
                    header("etag")
                ));
            }
        }
        if status == 201 {
            let location = body.pointer("/meta/location").and_then(Value::as_str);
            if location.is_none() || header("location") != location {
                errors.push(format!(
                    "201 Location header {:?} differs from meta.location {location:?}",
                    header("location")
                ));
            }
        }
    }
}

fn strict_error(status: u16, body: &Value, errors: &mut Vec<String>) {
    if body["schemas"] != json!([ERROR_SCHEMA]) {
        errors.push(format!("error schemas is {}", body["schemas"]));
    }
    if body["status"] != Value::String(status.to_string()) {
        errors.push(format!(
            "error status is {}, not the string \"{status}\"",
            body["status"]
        ));
    }
    if body["detail"].as_str().is_none_or(str::is_empty) {
        errors.push("error detail is missing or empty".into());
    }
    if let Some(t) = body.get("scimType") {
        if !t.as_str().is_some_and(|t| SCIM_TYPES.contains(&t)) {
            errors.push(format!("scimType {t} is not one of RFC 7644 Table 9"));
        }
    }
}

fn strict_list(kind: Kind, body: &Value, errors: &mut Vec<String>) {
    if body["schemas"] != json!([LIST_SCHEMA]) {
        errors.push(format!("ListResponse schemas is {}", body["schemas"]));
    }
    for counter in ["totalResults", "startIndex", "itemsPerPage"] {
        if !body[counter].is_u64() {
            errors.push(format!("{counter} is {}, not an integer", body[counter]));
        }
    }
    let Some(resources) = body["Resources"].as_array() else {
        errors.push("Resources is not an array".into());
        return;
    };
    if body["itemsPerPage"].as_u64() != Some(resources.len() as u64) {
        errors.push(format!(
            "itemsPerPage {} but {} Resources",
            body["itemsPerPage"],
            resources.len()
        ));
    }
    if body["totalResults"].as_u64() < Some(resources.len() as u64) {
        errors.push("totalResults is below the page size".into());
    }
    if body["startIndex"].as_u64() < Some(1) {
        errors.push("startIndex is below 1".into());
    }
    for (n, r) in resources.iter().enumerate() {
        strict_resource(kind, r, &format!("/Resources/{n}"), errors);
    }
}

fn strict_resource(kind: Kind, r: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(obj) = r.as_object() else {
        errors.push(format!("{at}: a resource is not an object"));
        return;
    };
    let schemas: Vec<&str> = obj
        .get("schemas")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !schemas.contains(&kind.core()) {
        errors.push(format!(
            "{at}/schemas lacks {}: {:?}",
            kind.core(),
            obj.get("schemas")
        ));
    }
    let known: &[&str] = match kind {
        Kind::User => &[USER_SCHEMA, ENTERPRISE_SCHEMA],
        Kind::Group => &[GROUP_SCHEMA],
    };
    for s in &schemas {
        if !known.contains(s) {
            errors.push(format!(
                "{at}/schemas lists {s}, which this server does not define"
            ));
        }
    }
    for key in obj.keys().filter(|k| k.starts_with("urn:")) {
        if !schemas.contains(&key.as_str()) {
            errors.push(format!("{at}: extension {key} is not listed in schemas"));
        }
    }
    let id = obj.get("id").and_then(Value::as_str).unwrap_or_default();
    if id.is_empty() {
        errors.push(format!("{at}/id is missing or not a string"));
    }
    if let Some(meta) = obj.get("meta") {
        if meta["resourceType"] != kind.name() {
            errors.push(format!(
                "{at}/meta/resourceType is {}",
                meta["resourceType"]
            ));
        }
        let suffix = format!("/{}s/{id}", kind.name());
        if !meta["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(&suffix))
        {
            errors.push(format!(
                "{at}/meta/location {} does not end in {suffix}",
                meta["location"]
            ));
        }
        for field in ["created", "lastModified", "version"] {
            if !meta[field].is_string() {
                errors.push(format!("{at}/meta/{field} is {}", meta[field]));
            }
        }
    }
    if obj.keys().any(|k| k.eq_ignore_ascii_case("password")) {
        errors.push(format!("{at}: password is returned"));
    }
    booleans(r, at, errors);
    if kind == Kind::User {
        if let Some(u) = obj.get("userName") {
            if !u.is_string() {
                errors.push(format!("{at}/userName is {u}"));
            }
        }
    }
    if let Some(members) = obj.get("members") {
        match members.as_array() {
            Some(items) => {
                for (n, m) in items.iter().enumerate() {
                    if !m["value"].is_string() {
                        errors.push(format!("{at}/members/{n}/value is {}", m["value"]));
                    }
                    if let Some(t) = m.get("type") {
                        if t != "User" && t != "Group" {
                            errors.push(format!("{at}/members/{n}/type is {t}"));
                        }
                    }
                }
            }
            None => errors.push(format!("{at}/members is not an array")),
        }
    }
}

/// `active` and `primary` are RFC 7643 booleans wherever they appear.
fn booleans(v: &Value, at: &str, errors: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let here = format!("{at}/{}", escape(k));
                if (k == "active" || k == "primary") && !x.is_boolean() {
                    errors.push(format!("{here} is {x}, not a boolean"));
                }
                booleans(x, &here, errors);
            }
        }
        Value::Array(items) => {
            for (n, x) in items.iter().enumerate() {
                booleans(x, &format!("{at}/{n}"), errors);
            }
        }
        _ => {}
    }
}

/// RFC 7643 §2.5: unassigned attributes are omitted, not `null`.
fn no_nulls(v: &Value, at: &str, errors: &mut Vec<String>) {
    match v {
        Value::Null => errors.push(format!("{} is null", if at.is_empty() { "/" } else { at })),
        Value::Object(map) => {
            for (k, x) in map {
                no_nulls(x, &format!("{at}/{}", escape(k)), errors);
            }
        }
        Value::Array(items) => {
            for (n, x) in items.iter().enumerate() {
                no_nulls(x, &format!("{at}/{n}"), errors);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------
// The runner checks itself
// ---------------------------------------------------------------------------------

#[test]
fn every_fixture_file_is_replayed_by_exactly_one_test() {
    let mut found = Vec::new();
    for idp in ["okta", "entra"] {
        for entry in std::fs::read_dir(fixture_dir().join(idp)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".json") {
                found.push(format!("{idp}/{name}"));
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "tests/fixtures and FIXTURES disagree");
    let source = include_str!("idp_replay.rs");
    for name in FIXTURES {
        let call = format!("replay(\"{name}\")");
        assert_eq!(
            source.matches(&call).count(),
            1,
            "{call} should appear once"
        );
        let fixture = load(name);
        assert!(!fixture.steps.is_empty(), "{name} has no steps");
    }
}

#[test]
fn subset_matching_reports_what_differs() {
    let actual = json!({"a": 1, "b": [{"x": 1}, {"x": 2}], "c": "s"});
    let mut e = Vec::new();
    matches(
        &json!({"a": 1, "b": [{"x": 1}, {"x": 2}]}),
        Some(&actual),
        "",
        &mut e,
    );
    matches(
        &json!({"b": {"$unordered": [{"x": 2}, {"x": 1}]}}),
        Some(&actual),
        "",
        &mut e,
    );
    matches(
        &json!({"b": {"$contains": [{"x": 2}]}, "d": "$absent", "c": "$nonEmpty"}),
        Some(&actual),
        "",
        &mut e,
    );
    assert!(e.is_empty(), "{e:?}");
    matches(
        &json!({"a": 2, "b": [{"x": 1}], "c": "$absent", "d": "$any"}),
        Some(&actual),
        "",
        &mut e,
    );
    assert_eq!(e.len(), 4, "{e:?}");
    let mut e = Vec::new();
    matches(
        &json!({"b": {"$unordered": [{"x": 1}, {"x": 1}]}}),
        Some(&actual),
        "",
        &mut e,
    );
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn placeholders_are_replaced_and_unknown_ones_are_fatal() {
    let vars: BTreeMap<String, String> = [("id".to_string(), "42".to_string())].into();
    assert_eq!(subst("/Users/{{id}}?x={{ id }}", &vars), "/Users/42?x=42");
    assert_eq!(
        subst_value(&json!({"user{{id}}": ["{{id}}", 1]}), &vars),
        json!({"user42": ["42", 1]})
    );
    assert!(std::panic::catch_unwind(|| subst("{{nope}}", &vars)).is_err());
}

// ---------------------------------------------------------------------------------
// Okta
// ---------------------------------------------------------------------------------

#[actix_web::test]
async fn okta_test_connection_lists_users_and_groups() {
    replay("okta/test-connection.json").await;
}

#[actix_web::test]
async fn okta_create_user_answers_lookups_and_refuses_duplicates() {
    replay("okta/create-user.json").await;
}

#[actix_web::test]
async fn okta_get_then_put_updates_replace_the_profile() {
    let r = replay("okta/update-user-put.json").await;
    // The echoed read-only `groups` changed no membership.
    let id = r.var("id");
    let updates = r.audit("scim.user.replace", id);
    assert_eq!(updates.len(), 3, "{updates:?}");
    assert!(updates.iter().all(|d| !d["attributes"]
        .as_array()
        .unwrap()
        .contains(&json!("groups"))));
}

#[actix_web::test]
async fn okta_deactivates_and_reactivates_through_active() {
    replay("okta/deactivate-reactivate.json").await;
}

#[actix_web::test]
async fn okta_group_push_creates_renames_updates_and_deletes() {
    replay("okta/group-push.json").await;
}

#[actix_web::test]
async fn okta_import_pages_are_integer_counted_and_stable() {
    replay("okta/import-pagination.json").await;
}

#[actix_web::test]
async fn okta_runscope_spec_suite_passes() {
    replay("okta/runscope-spec.json").await;
}

#[actix_web::test]
async fn okta_runscope_crud_suite_passes() {
    replay("okta/runscope-crud.json").await;
}

#[actix_web::test]
async fn okta_unknown_members_are_skipped_and_audited() {
    let r = replay("okta/unknown-members.json").await;
    let g = r.var("g");
    let created = r.audit("scim.group.create", g);
    assert_eq!(
        created[0]["unknown_member_ids"],
        json!(["00000000-0000-7000-8000-00000000dead"])
    );
    let patches = r.audit("scim.group.patch", g);
    assert!(
        patches.iter().all(|d| d["unknown_members"] == 1),
        "{patches:?}"
    );
    assert_eq!(patches.len(), 4, "{patches:?}");
}

#[actix_web::test]
async fn okta_unknown_members_are_refused_whole_in_reject_mode() {
    replay("okta/unknown-members-reject.json").await;
}

// ---------------------------------------------------------------------------------
// Microsoft Entra ID
// ---------------------------------------------------------------------------------

#[actix_web::test]
async fn entra_test_connection_gets_empty_list_responses() {
    replay("entra/test-connection.json").await;
}

#[actix_web::test]
async fn entra_create_user_matches_and_refuses_duplicates() {
    replay("entra/create-user.json").await;
}

#[actix_web::test]
async fn entra_default_patch_dialect_is_understood() {
    replay("entra/patch-default-dialect.json").await;
}

#[actix_web::test]
async fn entra_aadoptscim062020_patch_dialect_is_understood() {
    replay("entra/patch-aadoptscim062020.json").await;
}

#[actix_web::test]
async fn entra_manager_updates_in_every_shape() {
    replay("entra/manager.json").await;
}

#[actix_web::test]
async fn entra_misspelled_attributes_are_dropped_and_the_rest_applies() {
    replay("entra/misspelled-attribute.json").await;
}

#[actix_web::test]
async fn entra_groups_are_created_queried_patched_and_deleted() {
    replay("entra/groups.json").await;
}

#[actix_web::test]
async fn entra_postman_collection_quirks_are_tolerated() {
    replay("entra/postman-collection.json").await;
}

#[actix_web::test]
async fn entra_soft_delete_keeps_the_user_and_hard_delete_removes_it() {
    let r = replay("entra/soft-then-hard-delete.json").await;
    // The tombstone attempt shows in the audit trail as a change of `active` only.
    let patches = r.audit("scim.user.patch", r.var("id"));
    let tombstone = &patches[2];
    assert_eq!(tombstone["attributes"], json!(["active"]), "{patches:?}");
}

#[actix_web::test]
async fn entra_username_changes_move_the_login_but_tombstones_do_not() {
    replay("entra/username-changes.json").await;
}

#[actix_web::test]
async fn entra_validator_user_tests_pass() {
    replay("entra/validator-users.json").await;
}

#[actix_web::test]
async fn entra_validator_group_tests_pass() {
    replay("entra/validator-groups.json").await;
}

#[actix_web::test]
async fn entra_unknown_members_are_skipped_and_audited() {
    let r = replay("entra/unknown-members.json").await;
    let patches = r.audit("scim.group.patch", r.var("g"));
    let unknown: Vec<&Value> = patches
        .iter()
        .filter_map(|d| d.get("unknown_member_ids"))
        .collect();
    // The add, the rename + add and the replace; removing an id that is not a member
    // is a plain no-op with nothing to record.
    assert_eq!(unknown.len(), 3, "{patches:?}");
    assert!(unknown[0]
        .as_array()
        .unwrap()
        .contains(&json!("f648f8d5ea4e4cd38e9c")));
}

#[actix_web::test]
async fn entra_unknown_members_are_refused_whole_in_reject_mode() {
    replay("entra/unknown-members-reject.json").await;
}
