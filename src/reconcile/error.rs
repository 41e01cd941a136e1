//! [`ReconcileError`]: what a plan, a run or an outbox drain can fail with.
//!
//! A refused plan (the safety valve) is not an error: it is an outcome carried in
//! the report. Errors are what stops the reconciler from planning or applying at
//! all: the store, the downstream reads, a second run while one is in progress.
//! Imports only the store's and the client's error types (and tokio's join error).

use crate::cowork::CoworkError;
use crate::store::StoreError;

/// A failure of the reconciler.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A full reconcile is already running; this request was not started.
    #[error("a reconcile is already running")]
    AlreadyRunning,
    /// The store failed (reading the directory, the rules, ownership or the outbox,
    /// or recording a result).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Reading the downstream state failed (after the client's own retries).
    #[error("reading the Cowork state: {0}")]
    Downstream(#[from] CoworkError),
    /// A blocking task could not finish (it panicked or the runtime is shutting down).
    #[error("background task failed: {0}")]
    Task(String),
    /// The scheduler could not be set up.
    #[error("scheduler: {0}")]
    Scheduler(String),
}

impl ReconcileError {
    /// Whether trying again later may succeed (downstream unavailable or rate
    /// limited, a concurrent run).
    pub fn is_transient(&self) -> bool {
        match self {
            ReconcileError::AlreadyRunning => true,
            ReconcileError::Downstream(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<tokio::task::JoinError> for ReconcileError {
    fn from(e: tokio::task::JoinError) -> Self {
        ReconcileError::Task(e.to_string())
    }
}
