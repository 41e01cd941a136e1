//! The hand-over of tokens minted by `cowork-sync token mint` to the daemon's token
//! registry. `token mint` works beside a running daemon, which holds the database's
//! lock, so it cannot write the registry itself: it writes the new token's record
//! (never the token) as one small file, `<jti>.json`, in `<data_dir>/minted-tokens/`
//! (directory 0700, file 0600, written to a temporary name, fsynced and renamed so a
//! reader never sees half of one). The daemon imports those files into the registry
//! at start, before listing tokens and before answering a revocation of a jti it does
//! not know, then deletes them. So a token minted and never presented can be listed
//! and revoked. This module is free of actix and of the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::registry::TokenRecord;

/// The directory's name inside the data directory.
pub const DIR: &str = "minted-tokens";

/// Longest jti accepted as a file name (ours are 24 hex digits).
const MAX_JTI: usize = 128;

/// Files read at most per import (a stray flood of files cannot stall a request).
pub const MAX_IMPORT: usize = 1_000;

/// Largest record file read.
const MAX_FILE_BYTES: u64 = 4 * 1024;

/// The hand-over directory of a data directory.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// Whether `jti` can name a file here: 1 to 128 ASCII letters, digits, `-` or `_`.
pub fn safe_jti(jti: &str) -> bool {
    !jti.is_empty()
        && jti.len() <= MAX_JTI
        && jti
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The file that holds `jti`'s record, when `jti` can name one.
pub fn file_of(dir: &Path, jti: &str) -> Option<PathBuf> {
    safe_jti(jti).then(|| dir.join(format!("{jti}.json")))
}

/// Writes `record` for the daemon to import (see the module doc).
pub fn write(dir: &Path, record: &TokenRecord) -> std::io::Result<PathBuf> {
    let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_string());
    let path = file_of(dir, &record.jti).ok_or_else(|| invalid("the jti cannot name a file"))?;
    let body = serde_json::to_vec(record).map_err(|e| invalid(&e.to_string()))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    let tmp = dir.join(format!(".{}.tmp", record.jti));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(&body)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    sync_dir(dir);
    Ok(path)
}

/// Fsyncs a directory so a rename in it survives a crash (best effort: not every
/// platform can open a directory).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// One record file read back: its path and what it holds (`None` when it does not
/// hold a record of the jti it is named for; such a file is deleted unread).
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// Its record.
    pub record: Option<TokenRecord>,
}

/// Reads one file; a record must name the jti its file is named for.
pub fn read_one(path: &Path) -> Option<TokenRecord> {
    let stem = path.file_stem()?.to_str()?;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let record: TokenRecord = serde_json::from_slice(&bytes).ok()?;
    (record.jti == stem && safe_jti(stem)).then_some(record)
}

/// Every record file waiting in `dir` (at most [`MAX_IMPORT`]); a missing directory
/// holds none.
pub fn scan(dir: &Path) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .take(MAX_IMPORT)
        .map(|path| Found {
            record: read_one(&path),
            path,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::registry::Source;
    use chrono::{DateTime, Duration, Utc};

    fn record(jti: &str) -> TokenRecord {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        TokenRecord {
            jti: jti.into(),
            scope: "scim".into(),
            subject: "okta".into(),
            issued: t0,
            expires: t0 + Duration::days(30),
            last_used: None,
            revoked: None,
            revoked_by: None,
            source: Source::Minted,
        }
    }

    #[test]
    fn a_record_is_written_privately_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join(DIR);
        let path = write(&spool, &record("abc123")).unwrap();
        assert_eq!(path, spool.join("abc123.json"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&spool), 0o700);
        }
        let found = scan(&spool);
        assert_eq!(found.len(), 1, "no temporary file is left behind");
        assert_eq!(found[0].record.as_ref(), Some(&record("abc123")));
    }

    #[test]
    fn unsafe_jtis_name_no_file_and_mismatched_files_are_not_records() {
        for bad in ["", "../x", "a/b", "a.b", &"x".repeat(129), "é"] {
            assert!(!safe_jti(bad), "{bad}");
            assert!(file_of(Path::new("/d"), bad).is_none());
        }
        assert!(safe_jti("0123456789abcdef01234567"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("other.json"),
            serde_json::to_vec(&record("abc")).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("junk.json"), "not json").unwrap();
        let found = scan(dir.path());
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.record.is_none()));
        assert!(scan(&dir.path().join("missing")).is_empty());
    }
}
