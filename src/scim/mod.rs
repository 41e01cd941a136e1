//! Pure SCIM 2.0 protocol (RFC 7643, RFC 7644): schemas, resources, filters, PATCH,
//! list parameters and errors.
//!
//! Nothing here performs I/O or imports actix, sled or reqwest; the HTTP layer and the
//! directory call into it. Tolerance for what Okta and Entra really send lives here,
//! on input only: everything this module produces is strict RFC 7644.

pub mod error;
pub mod filter;
pub mod list;
pub mod members;
pub mod patch;
pub mod resource;
pub mod schema;
pub mod unknown;
pub mod value;

pub use error::ScimError;
pub use schema::{AttrPath, ResourceKind, SchemaRegistry};
pub use unknown::{UnknownAttributes, Unknowns};
