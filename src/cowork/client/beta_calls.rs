//! The client's beta endpoints: the Plugins API (its own 300/60 rpm budget, pages of
//! at most 100, one write at a time per plugin, 404 on a repeated DELETE treated as
//! done) and the spend-limit reads of every scope.
//!
//! Feature detection: a 404 to a beta list sent with its header means the feature
//! is not available to this organization. It is logged once, remembered, and every
//! later call of that feature fails at once with [`CoworkError::BetaUnavailable`]
//! (no request, no error loop); the stable endpoints are not affected.

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::{encode, seg, Call, HttpCoworkClient, Limit};
use crate::cowork::beta::Beta;
use crate::cowork::plugins::*;
use crate::cowork::types::*;
use crate::cowork::{CoworkError, CoworkResult, IdempotencyKey, Mode, Outcome};

impl HttpCoworkClient {
    fn beta_gate(&self, beta: Beta) -> CoworkResult<()> {
        if self.betas.is_unavailable(beta) {
            Err(CoworkError::BetaUnavailable {
                feature: beta.label(),
            })
        } else {
            Ok(())
        }
    }

    /// A beta list: all pages, or "not available to this org" (reported once).
    async fn beta_list<T: DeserializeOwned>(
        &self,
        beta: Beta,
        op: &'static str,
        path: &str,
        limit: Limit,
        filters: &[(&'static str, String)],
    ) -> CoworkResult<Vec<T>> {
        self.beta_gate(beta)?;
        match self.list_pages(op, path, limit, filters, Some(beta)).await {
            Err(CoworkError::NotFound { .. }) => {
                if self.betas.mark_unavailable(beta) {
                    tracing::warn!(
                        feature = beta.label(),
                        beta = beta.header_value(),
                        "a beta feature of the Admin API is not available to this organization (404 with its beta header); its checks are skipped from now on"
                    );
                }
                Err(CoworkError::BetaUnavailable {
                    feature: beta.label(),
                })
            }
            other => other,
        }
    }

    /// `GET /spend_limits` with the spend-limit-reads beta (`scope_type[]`); tier B
    /// servers answer the same list.
    pub(super) async fn read_spend_limits(
        &self,
        filter: &SpendLimitFilter,
    ) -> CoworkResult<Vec<SpendLimit>> {
        let mut filters = Vec::new();
        if let Some(t) = &filter.scope_type {
            filters.push(("scope_type[]", t.clone()));
        }
        if let Some(g) = &filter.rbac_group_id {
            if self.mode == Mode::Real {
                // Not a documented filter: filter the answer instead.
                let rows: Vec<SpendLimit> = self
                    .beta_list(
                        Beta::SpendLimitReads,
                        "list_spend_limits",
                        "/spend_limits",
                        Limit::Spend,
                        &filters,
                    )
                    .await?;
                return Ok(rows
                    .into_iter()
                    .filter(|r| {
                        matches!(&r.scope, SpendScope::RbacGroup { rbac_group_id } if rbac_group_id == g)
                    })
                    .collect());
            }
            filters.push(("rbac_group_id", g.clone()));
        }
        self.beta_list(
            Beta::SpendLimitReads,
            "list_spend_limits",
            "/spend_limits",
            Limit::Spend,
            &filters,
        )
        .await
    }

    /// `GET /plugins`: the organization's plugins with their ids.
    pub(super) async fn read_plugins(&self) -> CoworkResult<Vec<Plugin>> {
        self.beta_list(
            Beta::Plugins,
            "list_plugins",
            "/plugins",
            Limit::PluginRead,
            &[],
        )
        .await
    }

    /// `GET /plugins/{id}/installation_settings`: org-wide and per group.
    pub(super) async fn read_plugin_settings(
        &self,
        plugin_id: &str,
    ) -> CoworkResult<Vec<PluginSetting>> {
        self.beta_gate(Beta::Plugins)?;
        let path = format!("/plugins/{}/installation_settings", seg(plugin_id));
        self.list_pages(
            "list_plugin_settings",
            &path,
            Limit::PluginRead,
            &[],
            Some(Beta::Plugins),
        )
        .await
    }

    /// The lock that keeps writes to one plugin one at a time.
    fn plugin_lock(&self, plugin_id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.plugin_locks
            .lock()
            .entry(plugin_id.to_owned())
            .or_default()
            .clone()
    }

    /// `POST /plugins/{id}/installation_settings/{target}`.
    pub(super) async fn write_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        preference: InstallationPreference,
        key: &IdempotencyKey,
    ) -> CoworkResult<PluginSetting> {
        self.beta_gate(Beta::Plugins)?;
        let body = encode(&PluginSettingUpdate {
            installation_preference: preference,
        })?;
        let path = format!(
            "/plugins/{}/installation_settings/{}",
            seg(plugin_id),
            seg(target.segment())
        );
        let call = Call::write(
            "set_plugin_setting",
            Method::POST,
            path,
            Some(body),
            key,
            Limit::PluginWrite,
        )
        .with_beta(Beta::Plugins);
        let lock = self.plugin_lock(plugin_id);
        let _one_at_a_time = lock.lock().await;
        self.fetch(&call).await
    }

    /// `DELETE /plugins/{id}/installation_settings/{target}`; a 404 (a repeated
    /// delete) is already in state.
    pub(super) async fn remove_plugin_setting(
        &self,
        plugin_id: &str,
        target: &PluginTarget,
        key: &IdempotencyKey,
    ) -> CoworkResult<Outcome> {
        self.beta_gate(Beta::Plugins)?;
        let path = format!(
            "/plugins/{}/installation_settings/{}",
            seg(plugin_id),
            seg(target.segment())
        );
        let call = Call::write(
            "delete_plugin_setting",
            Method::DELETE,
            path,
            None,
            key,
            Limit::PluginWrite,
        )
        .with_beta(Beta::Plugins);
        let lock = self.plugin_lock(plugin_id);
        let _one_at_a_time = lock.lock().await;
        Outcome::from_result(self.execute(&call).await, CoworkError::is_not_found)
    }
}
