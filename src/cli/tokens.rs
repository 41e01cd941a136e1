//! The `token` commands. `token mint` signs locally with the key file and hands the
//! new token's record to the daemon's registry through the data directory
//! ([`crate::auth::minted`]); `token list` and `token revoke` go through the admin
//! API (`GET /admin/v1/tokens`, `DELETE /admin/v1/tokens/{jti}`), rendered as an
//! aligned table. Tokens themselves are never shown but by `mint`, once (the
//! daemon does not have them).

use serde_json::Value;

use super::{errln, outln, Failure};
use crate::auth::registry::{Source, TokenRecord};
use crate::auth::{keys, load_key, minted, Minter, Scope};
use crate::clock;
use crate::config::Config;

/// `token mint`: prints a new token and leaves its record for the daemon. A record
/// that cannot be left (a read-only data directory) is a warning: the token works,
/// and is recorded when first presented.
pub fn mint(
    config: &Config,
    scope: &str,
    subject: Option<String>,
    ttl: u32,
) -> Result<(), Failure> {
    let scope =
        Scope::parse(scope).ok_or_else(|| Failure::invalid("--scope must be scim or admin"))?;
    if ttl == 0 {
        return Err(Failure::invalid("--ttl must be at least 1 day"));
    }
    let key = load_key(&config.auth.signing_key_file).map_err(|e| {
        Failure::failed(format!(
            "{e}; start the daemon once to create the key, or set auth.signing_key_file"
        ))
    })?;
    let subject = subject.unwrap_or_else(|| match scope {
        Scope::Scim => "idp".into(),
        Scope::Admin => "operator".into(),
    });
    let clock = clock::system();
    let (token, principal) = Minter::new(&key, &config.auth.issuer, &config.auth.audience)
        .mint_principal(&subject, scope, ttl, clock.as_ref())
        .map_err(|e| Failure::failed(e.to_string()))?;
    let record = TokenRecord::of(&principal, Source::Minted, clock.now());
    let dir = minted::dir_in(&config.storage.data_dir);
    if let Err(e) = minted::write(&dir, &record) {
        errln!(
            "cowork-sync: warning: could not leave the token's record in {} ({e}); \
             `token list` shows it once it is first used",
            dir.display()
        );
    }
    outln!("{token}");
    Ok(())
}

/// How long the previous key is accepted when the command does not say.
const KEEP_PREVIOUS_DAYS: u32 = 7;

/// `token rotate-key`: a new signing key, the previous one kept beside it until the
/// deadline given (an RFC 3339 time, or days from now; 7 days by default).
pub fn rotate_key(config: &Config, until: Option<&str>, days: Option<u32>) -> Result<(), Failure> {
    let now = clock::system().now();
    let deadline = match (until, days) {
        (Some(text), _) => {
            let at = chrono::DateTime::parse_from_rfc3339(text.trim())
                .map_err(|_| {
                    Failure::invalid(format!(
                        "--keep-previous-until must be an RFC 3339 time such as 2027-01-31T00:00:00Z, not '{}'",
                        text.chars().take(40).collect::<String>()
                    ))
                })?
                .with_timezone(&chrono::Utc);
            if at <= now {
                return Err(Failure::invalid(
                    "--keep-previous-until is not in the future; to stop accepting the previous key at once, use --keep-previous 0",
                ));
            }
            Some(at)
        }
        (None, Some(0)) => None,
        (None, days) => {
            Some(now + chrono::Duration::days(i64::from(days.unwrap_or(KEEP_PREVIOUS_DAYS))))
        }
    };
    let done = keys::rotate(&config.auth.signing_key_file, deadline).map_err(|e| {
        Failure::failed(format!(
            "{e}; rotate-key replaces an existing key: run it with the daemon's configuration"
        ))
    })?;
    outln!("wrote a new signing key to {}", done.key_file.display());
    match &done.previous {
        Some((path, until)) => outln!(
            "the previous key is kept in {} and accepted until {}",
            path.display(),
            crate::audit::timestamp(*until)
        ),
        None => outln!(
            "the previous key was not kept: tokens it signed stop working at the daemon's reload"
        ),
    }
    outln!(
        "next: reload the daemon (SIGHUP, e.g. `systemctl reload cowork-sync`) or restart it; \
         mint new tokens with `cowork-sync token mint` and give them to the IdPs{}",
        if done.previous.is_some() {
            " before then"
        } else {
            ""
        }
    );
    Ok(())
}

/// The columns of `token list`, with the record field each shows.
const COLUMNS: [(&str, &str); 7] = [
    ("JTI", "jti"),
    ("SCOPE", "scope"),
    ("SUBJECT", "subject"),
    ("ISSUED", "issued"),
    ("EXPIRES", "expires"),
    ("LAST USED", "last_used"),
    ("REVOKED", "revoked"),
];

fn cell(record: &Value, field: &str) -> String {
    match record.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// The `GET /admin/v1/tokens` answer as an aligned table (one line per token).
pub fn render_list(body: &Value) -> String {
    let records: Vec<&Value> = body
        .get("tokens")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if records.is_empty() {
        return "no tokens issued or seen yet".into();
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| COLUMNS.iter().map(|(_, f)| cell(r, f)).collect())
        .collect();
    let widths: Vec<usize> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(COLUMNS.iter().map(|(h, _)| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

/// The `DELETE /admin/v1/tokens/{jti}` answer in one sentence.
pub fn render_revoke(body: &Value) -> String {
    let jti = cell(&body["token"], "jti");
    let at = cell(&body["token"], "revoked");
    if body["already_revoked"].as_bool().unwrap_or(false) {
        format!("token {jti} was already revoked (at {at}); nothing changed")
    } else {
        let sessions = body["sessions_closed"].as_u64().unwrap_or(0);
        format!(
            "revoked token {jti} at {at}; it is refused from now on ({sessions} console session{} ended)",
            if sessions == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_list_is_an_aligned_table_with_dashes_for_missing_times() {
        let body = json!({"tokens": [
            {"jti": "a1", "scope": "scim", "subject": "okta", "issued": "2026-01-01T00:00:00Z",
             "expires": "2027-01-01T00:00:00Z", "last_used": null, "revoked": null},
            {"jti": "bbbbbb", "scope": "admin", "subject": "alice", "issued": "2026-01-02T00:00:00Z",
             "expires": "2026-02-01T00:00:00Z", "last_used": "2026-01-03T00:00:00Z",
             "revoked": "2026-01-04T00:00:00Z"}
        ]});
        let text = render_list(&body);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("JTI     SCOPE  SUBJECT"), "{text}");
        let col = |l: &str, name: &str| l.find(name).unwrap();
        assert_eq!(col(lines[0], "SUBJECT"), col(lines[1], "okta"));
        assert_eq!(col(lines[0], "SUBJECT"), col(lines[2], "alice"));
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cells[5..], ["-", "-"], "{text}");
        assert_eq!(col(lines[0], "REVOKED"), col(lines[2], "2026-01-04"));
        assert_eq!(
            render_list(&json!({"tokens": []})),
            "no tokens issued or seen yet"
        );
    }

    #[test]
    fn a_revocation_reads_as_one_sentence() {
        let first = json!({"already_revoked": false, "sessions_closed": 1,
            "token": {"jti": "a1", "revoked": "2026-01-04T00:00:00Z"}});
        assert_eq!(
            render_revoke(&first),
            "revoked token a1 at 2026-01-04T00:00:00Z; it is refused from now on (1 console session ended)"
        );
        let again = json!({"already_revoked": true, "token": {"jti": "a1", "revoked": "t"}});
        assert!(render_revoke(&again).contains("already revoked"));
    }
}
