//! A device's identity: one iroh secret key, kept in a file only its owner can read.
//!
//! The key is written to a temporary file (mode 0600 from its creation), fsynced, and linked
//! into place, so a crash leaves either no key file or a whole one — never an empty key, which
//! would lock the device out of its own roster entry for good.

use std::io::Write;
use std::path::{Path, PathBuf};

use iroh::SecretKey;

use crate::Error;

/// Loads the key at `path`, creating it (mode 0600) on first use. Several processes starting at
/// once all get the same key: the first one linked into place wins and the others read it.
pub fn load_or_create_key(path: &Path) -> Result<SecretKey, Error> {
    let file_err = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    // Two rounds at most: the second reads the key another process linked in meanwhile.
    for _ in 0..2 {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => {
                // What a crash of the earlier in-place write left: no key was ever used from it
                // (nothing could be read back), so no roster knows this device yet.
                tracing::warn!(path = %path.display(), "replacing an empty device key file");
                let key = SecretKey::generate();
                write_new(path, &key, Place::Replace)?;
                return Ok(key);
            }
            Ok(text) => {
                return parse_key(text.trim()).ok_or_else(|| {
                    Error::Team(format!(
                        "{} does not hold a device key (64 hex digits)",
                        path.display()
                    ))
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SecretKey::generate();
                if write_new(path, &key, Place::IfAbsent)? {
                    return Ok(key);
                }
                // Another process created it first: use that one.
            }
            Err(e) => return Err(file_err(e)),
        }
    }
    Err(Error::Team(format!(
        "{} keeps changing while it is being read",
        path.display()
    )))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Link into place; false when a key is already there (it is kept).
    IfAbsent,
    /// Rename over what is there.
    Replace,
}

/// Writes `key` to a temporary file next to `path` and moves it into place. Returns false when
/// `place` is `IfAbsent` and `path` already exists.
fn write_new(path: &Path, key: &SecretKey, place: Place) -> Result<bool, Error> {
    let file_err = |p: &Path| {
        let p = p.to_owned();
        move |source| Error::File { path: p, source }
    };
    let tmp = temp_path(path);
    let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(hex.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        remove_quietly(&tmp);
        return Err(file_err(&tmp)(e));
    }
    let placed = match place {
        // A hard link fails when the name exists, so a key another process put there first is
        // never replaced (rename would replace it, and two processes would hold two keys).
        Place::IfAbsent => match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(file_err(path)(e)),
        },
        Place::Replace => std::fs::rename(&tmp, path)
            .map(|()| true)
            .map_err(file_err(path)),
    };
    remove_quietly(&tmp);
    let placed = placed?;
    if placed {
        sync_parent(path)?;
    }
    Ok(placed)
}

fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "device.key".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!(path = %path.display(), "removing a temporary key file: {e}");
    }
}

/// Makes the new directory entry durable.
#[cfg(unix)]
fn sync_parent(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::File {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(not(unix))]
fn sync_parent(_path: &Path) -> Result<(), Error> {
    Ok(())
}

fn parse_key(hex: &str) -> Option<SecretKey> {
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(SecretKey::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_key_file_left_by_a_crash_is_replaced_by_a_whole_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        std::fs::write(&path, b"").unwrap();
        let key = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap().public(), key.public());
        assert_eq!(std::fs::read_to_string(&path).unwrap().len(), 64);
    }

    #[test]
    fn the_key_file_is_owner_only_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        load_or_create_key(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["device.key".to_owned()]);
    }

    #[test]
    fn processes_starting_at_once_all_get_the_same_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("device.key");
            let keys: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| load_or_create_key(&path).map(|k| k.public().to_string())))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap().unwrap())
                    .collect()
            });
            assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
        }
    }
}
