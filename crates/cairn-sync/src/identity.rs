//! A device's identity: one iroh secret key, kept in a file only its owner can read.

use std::io::Write;
use std::path::Path;

use iroh::SecretKey;

use crate::Error;

/// Loads the key at `path`, creating it (mode 0600) on first use.
pub fn load_or_create_key(path: &Path) -> Result<SecretKey, Error> {
    let file_err = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(text.trim()).ok_or_else(|| {
            Error::Team(format!(
                "{} does not hold a device key (64 hex digits)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let hex: String = key.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(file_err)?;
            f.write_all(hex.as_bytes()).map_err(file_err)?;
            f.sync_all().map_err(file_err)?;
            Ok(key)
        }
        Err(e) => Err(file_err(e)),
    }
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
