//! placeholder
pub mod error;
pub mod ownership;
pub mod plan;
