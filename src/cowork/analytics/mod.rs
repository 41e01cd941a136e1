//! The Claude Enterprise Analytics API and cost reports (reference §1.4, §1.10).

pub mod types;
