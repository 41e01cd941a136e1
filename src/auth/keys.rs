//! Signing-key rotation: `cowork-sync token rotate-key` writes a new HS256 key over
//! the key file and keeps the previous key beside it, in `<key file>.previous`, with
//! the time until which tokens it signed are still accepted. The [`Verifier`]
//! accepts them until then, by the injected clock, and never after.
//!
//! Both files are written as the first key is (mode 0600), to a temporary name,
//! fsynced, renamed over the old file and the directory fsynced, so a crash leaves
//! either the old file or the new one. The previous key is written first: a crash
//! between the two writes leaves the current key also named as the previous one,
//! which is harmless. This module is free of actix.
//!
//! [`Verifier`]: super::Verifier

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{decode_key, random_bytes, KeyError, KEY_BYTES};

/// The key a rotation replaced, and until when tokens it signed are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKey {
    /// The HS256 key.
    pub key: Vec<u8>,
    /// Tokens it signed are refused from this time on.
    pub accepted_until: DateTime<Utc>,
}

/// The previous-key file's content.
#[derive(Serialize, Deserialize)]
struct PreviousFile {
    /// The key, base64 (as in the key file).
    key: String,
    /// RFC 3339.
    accepted_until: DateTime<Utc>,
}

/// Where the previous key of `signing_key_file` is kept: beside it, `.previous`
/// appended to its name.
pub fn previous_path(signing_key_file: &Path) -> PathBuf {
    let mut name = signing_key_file.as_os_str().to_os_string();
    name.push(".previous");
    PathBuf::from(name)
}

/// Reads the previous key kept beside `signing_key_file`, if there is one.
pub fn load_previous(signing_key_file: &Path) -> Result<Option<PreviousKey>, KeyError> {
    let path = previous_path(signing_key_file);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    let file: PreviousFile =
        serde_json::from_str(&text).map_err(|_| KeyError::Previous(path.clone()))?;
    let key = decode_key(&file.key, &path)?;
    Ok(Some(PreviousKey {
        key,
        accepted_until: file.accepted_until,
    }))
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The key file, now holding the new key.
    pub key_file: PathBuf,
    /// The previous key's file and its deadline, unless it was not kept.
    pub previous: Option<(PathBuf, DateTime<Utc>)>,
}

/// Replaces the key in `signing_key_file` with a new one. With `accepted_until`,
/// the replaced key is kept beside it until then; without, it is dropped (and any
/// older previous key with it): tokens it signed stop verifying once the daemon
/// reloads. The key file must exist.
pub fn rotate(
    signing_key_file: &Path,
    accepted_until: Option<DateTime<Utc>>,
) -> Result<Rotated, KeyError> {
    let current = super::load_key(signing_key_file)?;
    let new = random_bytes::<KEY_BYTES>()?;
    let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
    let previous_file = previous_path(signing_key_file);
    let previous = match accepted_until {
        Some(until) => {
            let body = serde_json::to_vec_pretty(&PreviousFile {
                key: b64(&current),
                accepted_until: until,
            })
            .map_err(|e| KeyError::Sign(e.to_string()))?;
            write_atomic(&previous_file, &body)?;
            Some((previous_file, until))
        }
        None => {
            match std::fs::remove_file(&previous_file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(KeyError::Io {
                        path: previous_file,
                        source,
                    })
                }
            }
            None
        }
    };
    write_atomic(signing_key_file, b64(&new).as_bytes())?;
    Ok(Rotated {
        key_file: signing_key_file.to_path_buf(),
        previous,
    })
}

/// Writes `contents` to `path` (mode 0600) through a temporary file, fsynced and
/// renamed into place, then fsyncs the directory.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| KeyError::Io { path: p, source }
    };
    let mut tmp_name = path.as_os_str().to_os_string();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&tmp)(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(contents).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::minted::sync_dir(dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn mode(p: &Path) -> u32 {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        }
        #[cfg(not(unix))]
        {
            let _ = p;
            0o600
        }
    }

    #[test]
    fn a_rotation_writes_a_new_private_key_and_keeps_the_old_one_with_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let (old, _) = super::super::load_or_create_key(&path).unwrap();
        let until = DateTime::parse_from_rfc3339("2026-02-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let done = rotate(&path, Some(until)).unwrap();
        let new = super::super::load_key(&path).unwrap();
        assert_ne!(new, old);
        assert_eq!(new.len(), KEY_BYTES);
        assert_eq!(
            done.previous,
            Some((dir.path().join("signing.key.previous"), until))
        );
        assert_eq!(
            load_previous(&path).unwrap(),
            Some(PreviousKey {
                key: old,
                accepted_until: until
            })
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&previous_path(&path)), 0o600);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        // Rotating again keeps only the key just replaced.
        rotate(&path, Some(until + Duration::days(1))).unwrap();
        assert_eq!(load_previous(&path).unwrap().unwrap().key, new);
        // Without a deadline the previous key is dropped.
        let none = rotate(&path, None).unwrap();
        assert_eq!(none.previous, None);
        assert_eq!(load_previous(&path).unwrap(), None);
    }

    #[test]
    fn rotating_needs_an_existing_key_and_a_bad_previous_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        assert!(rotate(&path, None).is_err());
        assert!(!path.exists(), "no key is created by a failed rotation");
        std::fs::write(previous_path(&path), "{not json").unwrap();
        assert!(matches!(load_previous(&path), Err(KeyError::Previous(_))));
    }
}
