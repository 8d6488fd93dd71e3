//! Directory manifests: the sorted list of files a stored directory tree holds, and the rules
//! that keep a manifest's paths inside the directory it is restored into.

use std::collections::HashSet;

use cairn_model::BlobHash;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The files of a directory tree, sorted by path. Stored as a blob of its own; its hash names the tree.
///
/// The stored form is compact JSON, `{"cairn_manifest":1,"entries":[...]}`, so equal trees give
/// byte-equal manifests and so equal hashes. Only regular files are listed: empty directories and
/// symlinks are not part of a stored tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
}

/// One file of a stored tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Relative, `/`-separated; never absolute, never with `.`/`..` segments, never with NUL.
    pub path: String,
    pub hash: BlobHash,
    pub size: u64,
}

/// The on-disk form: the tag tells a manifest apart from any other JSON blob and leaves room for a
/// later format.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredManifest<'a> {
    cairn_manifest: u32,
    #[serde(borrow)]
    entries: Vec<StoredEntry<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredEntry<'a> {
    #[serde(borrow)]
    path: std::borrow::Cow<'a, str>,
    hash: BlobHash,
    size: u64,
}

const FORMAT: u32 = 1;

impl Manifest {
    /// Entries sorted by path, as a manifest must hold them.
    pub fn from_entries(mut entries: Vec<ManifestEntry>) -> Self {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { entries }
    }

    /// The bytes that are stored and hashed: deterministic for equal entries.
    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = StoredManifest {
            cairn_manifest: FORMAT,
            entries: self
                .entries
                .iter()
                .map(|e| StoredEntry {
                    path: e.path.as_str().into(),
                    hash: e.hash,
                    size: e.size,
                })
                .collect(),
        };
        // Strings, integers and hex hashes only: there is nothing serde_json could fail on.
        serde_json::to_vec(&stored).expect("a manifest always serialises")
    }

    /// The manifest hash the stored form of these entries has.
    pub fn hash(&self) -> BlobHash {
        BlobHash(*blake3::hash(&self.to_bytes()).as_bytes())
    }

    /// Parses and validates the blob `hash` as a manifest: paths safe, sorted, unique, and no file
    /// that is also another file's directory.
    pub fn from_bytes(hash: &BlobHash, bytes: &[u8]) -> Result<Self, Error> {
        let bad = |reason: String| Error::BadManifest {
            hash: *hash,
            reason,
        };
        let stored: StoredManifest<'_> =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if stored.cairn_manifest != FORMAT {
            return Err(bad(format!(
                "unknown manifest format {}",
                stored.cairn_manifest
            )));
        }
        let manifest = Manifest {
            entries: stored
                .entries
                .into_iter()
                .map(|e| ManifestEntry {
                    path: e.path.into_owned(),
                    hash: e.hash,
                    size: e.size,
                })
                .collect(),
        };
        manifest.validate(hash)?;
        Ok(manifest)
    }

    /// Checks every rule `from_bytes` checks; `hash` only names the manifest in errors.
    pub fn validate(&self, hash: &BlobHash) -> Result<(), Error> {
        for entry in &self.entries {
            check_entry_path(&entry.path).map_err(|reason| Error::UnsafePath {
                manifest: *hash,
                path: entry.path.clone(),
                reason,
            })?;
        }
        for pair in self.entries.windows(2) {
            if pair[0].path >= pair[1].path {
                return Err(Error::BadManifest {
                    hash: *hash,
                    reason: format!(
                        "entries not sorted and unique at {:?} then {:?}",
                        pair[0].path, pair[1].path
                    ),
                });
            }
        }
        let files: HashSet<&str> = self.entries.iter().map(|e| e.path.as_str()).collect();
        for entry in &self.entries {
            let mut prefix = entry.path.as_str();
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if files.contains(parent) {
                    return Err(Error::BadManifest {
                        hash: *hash,
                        reason: format!(
                            "{parent:?} is both a file and the directory of {:?}",
                            entry.path
                        ),
                    });
                }
                prefix = parent;
            }
        }
        Ok(())
    }

    /// Sum of the entries' sizes (saturating: a peer's manifest may claim any sizes).
    pub fn total_size(&self) -> u64 {
        self.entries.iter().fold(0, |t, e| t.saturating_add(e.size))
    }
}

/// Why `path` may not be a manifest entry path, if it may not: the model's artifact path rules,
/// the same on every platform (a manifest made on Linux is restored on Windows too).
pub(crate) fn check_entry_path(path: &str) -> Result<(), &'static str> {
    match cairn_model::artifact_path_problem(path) {
        None => Ok(()),
        Some(reason) => Err(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.to_owned(),
            hash: BlobHash([7; 32]),
            size: 3,
        }
    }

    #[test]
    fn entry_paths_that_could_escape_are_refused() {
        for (path, why) in [
            ("", "must not be empty"),
            ("../etc/passwd", "has a '..' segment (path traversal)"),
            ("a/../../b", "has a '..' segment (path traversal)"),
            ("/etc/passwd", "must be relative (starts with '/')"),
            ("a\0b", "contains a control character"),
            ("a//b", "has an empty segment (a doubled or trailing '/')"),
            ("a/", "has an empty segment (a doubled or trailing '/')"),
            ("./a", "has a '.' segment"),
            // Escapes on Windows though it is one plain name on Linux.
            ("..\\..\\x", "contains '\\' (the separator is '/')"),
            ("C:x", "has a drive prefix such as 'C:'"),
        ] {
            assert_eq!(check_entry_path(path), Err(why), "{path:?}");
        }
        for ok in ["a", "a/b/c.bin", "..hidden", "a/.b", "x..y"] {
            assert_eq!(check_entry_path(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn stored_form_is_deterministic_and_round_trips() {
        let a = Manifest::from_entries(vec![entry("b"), entry("a/x")]);
        let b = Manifest::from_entries(vec![entry("a/x"), entry("b")]);
        assert_eq!(a.to_bytes(), b.to_bytes());
        let text = String::from_utf8(a.to_bytes()).unwrap();
        assert!(
            text.starts_with(r#"{"cairn_manifest":1,"entries":[{"path":"a/x","hash":"0707"#),
            "{text}"
        );
        assert_eq!(Manifest::from_bytes(&a.hash(), &a.to_bytes()).unwrap(), a);
        assert_eq!(a.total_size(), 6);
        // Sizes are what the manifest claims; their sum saturates rather than overflowing (a
        // fuzzed manifest panicked here: fuzz/crashers/manifest/sizes-overflow).
        let mut huge = Manifest::from_entries(vec![entry("x"), entry("y")]);
        huge.entries[0].size = u64::MAX - 1;
        assert_eq!(huge.total_size(), u64::MAX);
    }

    #[test]
    fn unsorted_duplicate_or_file_as_directory_manifests_are_refused() {
        let h = BlobHash([1; 32]);
        let unsorted = Manifest {
            entries: vec![entry("b"), entry("a")],
        };
        assert!(matches!(
            unsorted.validate(&h),
            Err(Error::BadManifest { .. })
        ));
        let duplicate = Manifest {
            entries: vec![entry("a"), entry("a")],
        };
        assert!(matches!(
            duplicate.validate(&h),
            Err(Error::BadManifest { .. })
        ));
        let clash = Manifest::from_entries(vec![entry("a"), entry("a-b"), entry("a/b")]);
        let err = clash.validate(&h).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#""a" is both a file and the directory of "a/b""#),
            "{err}"
        );
    }

    #[test]
    fn other_json_is_not_a_manifest() {
        let h = BlobHash([2; 32]);
        for text in [
            r#"{"entries":[]}"#,
            r#"{"cairn_manifest":2,"entries":[]}"#,
            "[]",
            "not json",
        ] {
            let err = Manifest::from_bytes(&h, text.as_bytes()).unwrap_err();
            assert!(matches!(err, Error::BadManifest { .. }), "{text}: {err}");
        }
        let traversal = r#"{"cairn_manifest":1,"entries":[{"path":"../x","hash":"0202020202020202020202020202020202020202020202020202020202020202","size":1}]}"#;
        let err = Manifest::from_bytes(&h, traversal.as_bytes()).unwrap_err();
        assert!(
            matches!(err, Error::UnsafePath { ref path, .. } if path == "../x"),
            "{err}"
        );
    }
}
