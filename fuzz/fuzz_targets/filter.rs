//! Any text: parse never panics; what parses prints back to the same filter, and
//! validates and evaluates without panicking.
#![no_main]

use cowork_sync::scim::filter::Filter;
use cowork_sync::scim::{ResourceKind, SchemaRegistry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(filter) = Filter::parse(text) else { return };
    let printed = filter.to_string();
    let again = Filter::parse(&printed).expect("a printed filter parses");
    assert_eq!(again, filter, "parse(display(f)) == f");
    let registry = SchemaRegistry::builtin().expect("embedded schemas");
    if let Ok(valid) = filter.validate(&registry, ResourceKind::User) {
        let user = serde_json::json!({"userName": "a@example.com", "emails": [{"value": "a@example.com", "primary": true}], "active": true});
        let _ = valid.matches(&user);
        let _ = valid.index_hint();
    }
});
