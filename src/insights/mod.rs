//! Insights: adoption and spend per downstream group, the spend advisor and pooled
//! team budgets (design §6.1, issue 15).
//!
//! The pure core: [`advisor`] (the suggested per-member limit) and [`pool`] (the
//! pool state machine) import nothing that does I/O. [`cache`] keeps Analytics API
//! answers in the store (through the `Store` trait) so repeated questions cost no
//! calls. [`report`] computes adoption and spend per group (pure) and [`service`]
//! gathers its inputs. [`check`] enforces the pools (their records in the store:
//! [`pools`]). [`InsightsError`] is this layer's error.

pub mod advisor;
pub mod cache;
pub mod check;
pub mod pool;
pub mod pools;
pub mod report;
pub mod service;

/// Why an insights question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    /// The Analytics API failed or refused the question.
    #[error("{}", .0.message_for("the Analytics API"))]
    Analytics(#[from] crate::cowork::CoworkError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The question itself is wrong (bad `--days`, ...).
    #[error("{0}")]
    BadRequest(String),
    /// No rule table has been applied, so there are no groups to report on.
    #[error("no rule table has been applied yet, so there are no groups to report on")]
    NoRules,
    /// No Analytics API key is configured.
    #[error("no Analytics API key is configured ([insights] analytics_api_key_file)")]
    NoKey,
}
