//! Organization removals that fall due after the grace (`remove_from_org_after`):
//! when the next one is due, and the pass that applies the ones due now. The outbox
//! worker sleeps until the next one; a full reconcile applies them too.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::error::ReconcileError;
use super::ownership;
use super::pass::{blocking, Applier};
use super::report::DrainReport;
use super::Reconciler;
use crate::cowork::CoworkApi;

impl<C: CoworkApi + 'static> Reconciler<C> {
    /// When the next organization removal in grace falls due, if one is waiting.
    pub async fn next_offboarding_due(&self) -> Result<Option<DateTime<Utc>>, ReconcileError> {
        let store = self.store.clone();
        let grace = self.options.remove_from_org_after;
        blocking(move || {
            Ok(ownership::store::offboarding(store.as_ref())?
                .iter()
                .map(|o| o.since + grace)
                .min())
        })
        .await
    }

    /// Applies the organization removals whose grace has passed: an event pass over
    /// those users (nothing when none is due).
    pub async fn offboard_due(&self) -> Result<DrainReport, ReconcileError> {
        let _apply = self.apply.lock().await;
        let store = self.store.clone();
        let grace = self.options.remove_from_org_after;
        let now = self.clock.now();
        let due: BTreeSet<String> = blocking(move || {
            Ok(ownership::store::offboarding(store.as_ref())?
                .into_iter()
                .filter(|o| o.since + grace <= now)
                .map(|o| o.scim_id)
                .collect())
        })
        .await?;
        if due.is_empty() {
            return Ok(DrainReport::default());
        }
        tracing::info!(
            users = due.len(),
            "organization removals due after the grace"
        );
        let who = Applier {
            actor: "reconciler",
            cause:
                "the grace before the organization removal ended (lifecycle.remove_from_org_after)"
                    .into(),
            forced: false,
            key_prefix: format!("offboard:{}", now.timestamp()),
            context: json!({ "lifecycle": "remove_from_org_after" }),
            progress: None,
            stop_on_transient: true,
        };
        self.users_pass(due, who).await
    }
}
