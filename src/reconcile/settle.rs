//! How a pass settles: a full run's record (with its audit entries and the outbox
//! entries it covered, acknowledged in the same transaction), the event path's
//! acknowledgements or failed attempts, and audit entries of their own.

use serde_json::json;

use super::error::ReconcileError;
use super::pass::blocking;
use super::report::RunReport;
use super::runs::{self, RunRecord};
use super::Reconciler;
use crate::audit::{self, AuditDraft};
use crate::cowork::CoworkApi;
use crate::outbox::{self, OutboxEntry};
use crate::store::codec::seq_from_key;
use crate::store::{transaction, StoreError, Table};

/// Most errors kept in a run record.
const RECORD_ERRORS: usize = 20;

impl<C: CoworkApi + 'static> Reconciler<C> {
    /// The highest outbox sequence number queued now (0 when empty).
    pub(super) async fn outbox_mark(&self) -> Result<u64, ReconcileError> {
        let store = self.store.clone();
        blocking(move || match store.last(Table::Outbox, b"")? {
            Some((k, _)) => Ok(seq_from_key(&k, Table::Outbox)?),
            None => Ok(0),
        })
        .await
    }

    /// Records the run, its audit entries and the outbox acknowledgement in one
    /// transaction; returns how many entries were acknowledged.
    pub(super) async fn record_run(
        &self,
        report: &RunReport,
        ack_up_to: Option<u64>,
    ) -> Result<usize, ReconcileError> {
        let record = RunRecord {
            run: report.run,
            trigger: report.trigger,
            requested_by: report.requested_by.clone(),
            started_at: report.started_at.clone(),
            ended_at: report.ended_at.clone(),
            duration_ms: report.duration_ms,
            outcome: report.outcome,
            forced: report.forced,
            rule_version: report.plan.rule_version,
            planned: report
                .plan
                .counts
                .iter()
                .map(|(k, n)| (k.as_str().to_string(), *n))
                .collect(),
            applied: report.applied,
            already_in_state: report.already_in_state,
            failed: report.failed,
            skipped: report.skipped,
            drift_found: report.plan.differences(),
            drift_reported: report.plan.drift.len(),
            calls: report.calls.into(),
            errors: report
                .error
                .iter()
                .cloned()
                .chain(
                    report
                        .errors
                        .iter()
                        .map(|e| format!("{} {}: {}", e.kind, e.target, e.error)),
                )
                .take(RECORD_ERRORS)
                .collect(),
            outbox_acked: 0,
            held: report.plan.held.len(),
        };
        let store = self.store.clone();
        let clock = self.clock.clone();
        let plan = report.plan.clone();
        blocking(move || {
            let now = clock.now();
            let seqs: Vec<u64> = match ack_up_to {
                Some(mark) if mark > 0 => outbox::pending(store.as_ref(), usize::MAX)?
                    .into_iter()
                    .map(|e| e.seq)
                    .filter(|s| *s <= mark)
                    .collect(),
                _ => Vec::new(),
            };
            let record = RunRecord {
                outbox_acked: seqs.len(),
                ..record
            };
            let target = format!("run:{}", record.run);
            transaction::<_, StoreError>(store.as_ref(), |txn| {
                runs::put(txn, &record)?;
                audit::append(
                    txn,
                    AuditDraft::new("reconciler", "reconcile.run", Some(&target)).with(json!({
                        "trigger": record.trigger,
                        "requested_by": record.requested_by,
                        "outcome": record.outcome,
                        "forced": record.forced,
                        "rule_version": record.rule_version,
                        "planned": record.planned,
                        "applied": record.applied,
                        "already_in_state": record.already_in_state,
                        "failed": record.failed,
                        "skipped": record.skipped,
                        "calls": record.calls,
                        "outbox_acked": record.outbox_acked,
                        "held": record.held,
                        "errors": record.errors.len(),
                    })),
                    now,
                )?;
                if plan.differences() > 0 {
                    let drift: Vec<serde_json::Value> = plan
                        .drift
                        .iter()
                        .take(100)
                        .map(|d| json!({ "kind": d.kind, "target": d.target }))
                        .collect();
                    audit::append(
                        txn,
                        AuditDraft::new("reconciler", "reconcile.drift", Some(&target)).with(
                            json!({
                                "differences": plan.differences(),
                                "actions": plan.counts,
                                "reported": plan.drift.len(),
                                "reported_sample": drift,
                            }),
                        ),
                        now,
                    )?;
                }
                for seq in &seqs {
                    outbox::ack(txn, *seq)?;
                }
                Ok(())
            })?;
            store.sync()?;
            Ok(seqs.len())
        })
        .await
    }

    /// Acknowledges drained entries. Not flushed on its own: an acknowledgement lost
    /// to a crash only drains its entries again, which every downstream operation
    /// allows (idempotency keys, converging adds and removes, and the ownership
    /// records each action flushed before the next). The next flush — a SCIM
    /// write's, a run's, or sled's own within a second — makes it durable, and a
    /// flush of its own would hold every SCIM write's transaction back for the
    /// length of a disk write.
    pub(super) async fn ack(&self, seqs: &[u64]) -> Result<usize, ReconcileError> {
        let store = self.store.clone();
        let seqs = seqs.to_vec();
        blocking(move || {
            transaction::<_, StoreError>(store.as_ref(), |txn| {
                for s in &seqs {
                    outbox::ack(txn, *s)?;
                }
                Ok(())
            })?;
            Ok(seqs.len())
        })
        .await
    }

    pub(super) async fn record_attempts(
        &self,
        entries: &[OutboxEntry],
    ) -> Result<(), ReconcileError> {
        let store = self.store.clone();
        let entries = entries.to_vec();
        blocking(move || {
            // Not flushed on its own either: a lost attempt only undercounts the failures
            // shown for the entry, which itself was durable before its write's 2xx.
            transaction::<_, StoreError>(store.as_ref(), |txn| {
                for e in &entries {
                    outbox::record_attempt(txn, e)?;
                }
                Ok(())
            })?;
            Ok(())
        })
        .await
    }
}
