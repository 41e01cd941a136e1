//! Phase: the organization's settings against what the rules expect (plan,
//! provisioning mode, billing currency, feature switches, connectors). Never
//! written: each difference is drift, with the console step where there is one.

use super::convert::CONSOLE;
use super::findings::Findings;
use super::index::Ctx;
use super::model::DriftKind;

/// Org settings that differ (full plans only; the event path reads no org).
pub(super) fn check(ctx: &Ctx<'_>) -> Findings {
    let mut out = Findings::default();
    let Some(org) = &ctx.input.actual.org else {
        return out;
    };
    let want = &ctx.input.desired.org;
    if let Some(plan) = &org.plan {
        if plan.as_str() != want.plan.as_str() {
            out.drift(
                DriftKind::OrgSetting,
                "org".into(),
                format!(
                    "the rules expect plan {} but the organization is on {}",
                    want.plan.as_str(),
                    plan
                ),
                None,
            );
        }
    }
    if let Some(mode) = &org.provisioning_mode {
        if mode.as_str() != want.provisioning_mode.as_str() {
            out.drift(
                DriftKind::OrgSetting,
                "org".into(),
                format!(
                    "the rules expect provisioning mode {} but the organization uses {}",
                    want.provisioning_mode.as_str(),
                    mode
                ),
                Some(format!("{CONSOLE} › Identity: provisioning mode")),
            );
        }
    }
    let Some(settings) = &org.settings else {
        return out;
    };
    if !settings
        .billing_currency
        .eq_ignore_ascii_case(&want.billing_currency)
    {
        out.drift(
            DriftKind::OrgSetting,
            "org".into(),
            format!(
                "the rules use billing currency {} but the organization bills in {}",
                want.billing_currency, settings.billing_currency
            ),
            None,
        );
    }
    for (feature, on) in &want.features {
        let have = match feature.as_str() {
            "skills" => Some(settings.skills_enabled),
            "user_skill_creation" => Some(settings.user_skill_creation_enabled),
            "skill_sharing" => Some(settings.skill_sharing_enabled),
            "org_wide_skill_sharing" => Some(settings.org_wide_skill_sharing_enabled),
            other => settings.feature_switch(other),
        };
        if let Some(have) = have {
            if have != *on {
                out.drift(
                    DriftKind::OrgSetting,
                    "org".into(),
                    format!(
                        "feature {feature} is {} at org level; the rules expect {}",
                        if have { "on" } else { "off" },
                        if *on { "on" } else { "off" }
                    ),
                    Some(format!(
                        "{CONSOLE} › Capabilities: turn {feature} {}",
                        if *on { "on" } else { "off" }
                    )),
                );
            }
        }
    }
    for connector in &want.connectors {
        if !settings.connector(connector).is_some_and(|c| c.enabled) {
            out.drift(
                DriftKind::OrgSetting,
                "org".into(),
                format!("connector {connector} is not enabled at org level"),
                Some(format!(
                    "{CONSOLE} › Connectors: add and enable {connector}"
                )),
            );
        }
    }
    out
}
