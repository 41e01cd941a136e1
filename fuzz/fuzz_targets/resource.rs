//! Any JSON body: validating a POST/PUT body never panics, and what validates can
//! be validated again to the same document (the stored form is a fixed point).
#![no_main]

use cowork_sync::scim::resource::parse_input;
use cowork_sync::scim::{ResourceKind, SchemaRegistry, UnknownAttributes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let registry = SchemaRegistry::builtin().expect("embedded schemas");
    for kind in [ResourceKind::User, ResourceKind::Group] {
        for policy in [UnknownAttributes::Ignore, UnknownAttributes::Reject] {
            if let Ok(input) = parse_input(&registry, kind, body.clone(), policy) {
                // The stored form holds nothing unknown, so it revalidates strictly.
                let again = parse_input(&registry, kind, input.document.clone(), UnknownAttributes::Reject)
                    .expect("stored form revalidates");
                assert_eq!(again.document, input.document);
            }
        }
    }
});
