//! Insights: adoption and spend per downstream group, the spend advisor and pooled
//! team budgets (design §6.1, issue 15).
//!
//! The pure core lives here: [`advisor`] (the suggested per-member limit) and
//! [`pool`] (the pool state machine). It imports nothing that does I/O.

pub mod advisor;
pub mod pool;
