//! Any JSON body: parsing and applying a PATCH never panics, and a failed apply
//! leaves the caller's document untouched (it is only borrowed).
#![no_main]

use cowork_sync::scim::{patch, ResourceKind, SchemaRegistry, UnknownAttributes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let registry = SchemaRegistry::builtin().expect("embedded schemas");
    for (kind, policy) in [
        (ResourceKind::User, UnknownAttributes::Ignore),
        (ResourceKind::User, UnknownAttributes::Reject),
        (ResourceKind::Group, UnknownAttributes::Ignore),
        (ResourceKind::Group, UnknownAttributes::Reject),
    ] {
        let Ok(request) = patch::parse(&registry, kind, body.clone(), policy) else { continue };
        let doc = match kind {
            ResourceKind::User => serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@example.com"}),
            ResourceKind::Group => serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G"}),
        };
        let _ = patch::apply(&registry, kind, "id-1", &doc, &request);
    }
});
