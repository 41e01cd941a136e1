//! The scheduled full reconcile: a tokio-cron-scheduler job on `reconcile.schedule`
//! (six fields, validated at config load). A tick while a run is in progress (an
//! operator's, or the previous tick's) is skipped, not queued.
//! Imports only the reconciler and tokio-cron-scheduler.

use std::sync::Arc;

use tokio_cron_scheduler::{Job, JobScheduler};

use super::{ReconcileError, Reconciler, RunOptions, Trigger};
use crate::cowork::CoworkApi;

fn scheduler_error(e: impl std::fmt::Display) -> ReconcileError {
    ReconcileError::Scheduler(e.to_string())
}

/// Starts a scheduler running a full reconcile on `schedule`. Keep the returned
/// scheduler and call `shutdown()` on it at exit. Call it only when
/// `reconcile.enabled` is true.
pub async fn start_scheduler<C: CoworkApi + 'static>(
    reconciler: Arc<Reconciler<C>>,
    schedule: &str,
) -> Result<JobScheduler, ReconcileError> {
    let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    let job = Job::new_async(schedule, move |_id, _lock| {
        let reconciler = reconciler.clone();
        Box::pin(async move {
            let options = RunOptions {
                trigger: Trigger::Schedule,
                ..RunOptions::default()
            };
            match reconciler.run(options).await {
                Ok(report) => tracing::info!(
                    run = report.run,
                    outcome = ?report.outcome,
                    "scheduled reconcile finished"
                ),
                Err(ReconcileError::AlreadyRunning) => {
                    tracing::info!("scheduled reconcile skipped: one is already running")
                }
                Err(e) => tracing::error!(error = %e, "scheduled reconcile failed"),
            }
        })
    })
    .map_err(scheduler_error)?;
    scheduler.add(job).await.map_err(scheduler_error)?;
    scheduler.start().await.map_err(scheduler_error)?;
    tracing::info!(schedule, "reconcile scheduled");
    Ok(scheduler)
}
