//! Run history in `Table::Runs`: one [`RunRecord`] per full reconcile (not dry
//! runs), written at the end of the run in the transaction that also appends its
//! `reconcile.run` audit entry and acknowledges the outbox entries it covered.
//! Run numbers come from a counter in `Table::Meta`, taken when the run starts (the
//! number is part of every idempotency key of the run).
//! Imports the store trait only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cowork::CallCounts;
use crate::store::codec::{from_bytes, seq_from_key, seq_key, tx_bump, tx_put_json};
use crate::store::{transaction, Store, StoreError, Table, TxError, TxFail, Txn};

const RUN_SEQ_KEY: &[u8] = b"reconcile/run_seq";

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The cron schedule.
    Schedule,
    /// An operator (`POST /admin/v1/reconcile`, `cowork-sync reconcile`).
    Manual,
    /// An outbox entry that touched everything (a rule change).
    Outbox,
    /// The daemon's start.
    Startup,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every planned action applied (or was already in state).
    Ok,
    /// Some actions failed, or reading the state failed.
    Failed,
    /// The safety valve refused the plan; nothing was applied (runs recorded before
    /// the valve held removals one by one).
    Refused,
    /// Everything applied but the removals the safety valve holds for approval.
    Held,
    /// Nothing to do: no rule table is applied yet.
    Skipped,
    /// A dry run: planned, nothing applied, not recorded.
    DryRun,
}

impl RunOutcome {
    /// The snake_case name (`ok`, `dry_run`, ...), as in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Refused => "refused",
            RunOutcome::Held => "held",
            RunOutcome::Skipped => "skipped",
            RunOutcome::DryRun => "dry_run",
        }
    }
}

/// Downstream calls, as kept in the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calls {
    /// Read requests (each page counts).
    pub reads: u64,
    /// Write requests.
    pub writes: u64,
    /// Retries after a transient failure or a 429.
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
}

impl From<CallCounts> for Calls {
    fn from(c: CallCounts) -> Self {
        Self {
            reads: c.reads,
            writes: c.writes,
            retries: c.retries,
            rate_limited: c.rate_limited,
        }
    }
}

/// One run, as kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run number.
    pub run: u64,
    /// What started it.
    pub trigger: Trigger,
    /// Who asked, when an operator did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub ended_at: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The outcome.
    pub outcome: RunOutcome,
    /// The valve was overridden.
    pub forced: bool,
    /// Rule table version planned against.
    pub rule_version: Option<u64>,
    /// Planned actions by kind (`add_member`, ...).
    pub planned: BTreeMap<String, usize>,
    /// Actions applied.
    pub applied: usize,
    /// Actions already in state.
    pub already_in_state: usize,
    /// Actions failed.
    pub failed: usize,
    /// Actions skipped.
    pub skipped: usize,
    /// Differences found downstream (actions planned plus drift reported).
    pub drift_found: usize,
    /// Drift reported, not written.
    pub drift_reported: usize,
    /// Downstream calls made.
    pub calls: Calls,
    /// The first errors (at most 20), without personal data: a failed read, then
    /// failed actions.
    pub errors: Vec<String>,
    /// Outbox entries acknowledged.
    pub outbox_acked: usize,
    /// Removals the safety valve held in this run.
    #[serde(default)]
    pub held: usize,
}

/// Takes the next run number.
pub fn next_run(store: &dyn Store) -> Result<u64, StoreError> {
    transaction::<_, StoreError>(store, |txn| {
        tx_bump(txn, Table::Meta, RUN_SEQ_KEY, 1).map_err(TxFail::Store)
    })
}

/// Writes a record inside the caller's transaction (which appends the audit entry).
pub fn put(txn: &mut dyn Txn, record: &RunRecord) -> Result<(), TxError> {
    tx_put_json(txn, Table::Runs, &seq_key(record.run), record)
}

/// The newest `limit` runs, newest first (reads only those records).
pub fn list(store: &dyn Store, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
    let newest = match store.get(Table::Meta, RUN_SEQ_KEY)? {
        Some(b) => seq_from_key(&b, Table::Meta)?,
        None => 0,
    };
    let mut out = Vec::new();
    let mut missing = 0usize;
    let mut n = newest;
    // A run number without a record: the run is in progress or the daemon stopped
    // during it. Look a little further back for each.
    while n > 0 && out.len() < limit && missing <= limit + 16 {
        match store.get(Table::Runs, &seq_key(n))? {
            Some(bytes) => out.push(from_bytes::<RunRecord>(&bytes, Table::Runs)?),
            None => missing += 1,
        }
        n -= 1;
    }
    Ok(out)
}
