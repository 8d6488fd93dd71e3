//! The binaries' settings: who the user is and which workspace they open, decided once for the
//! CLI and the desktop app alike — an argument, else the `CAIRN_*` environment, else the OS.
//!
//! This is the one library that reads the environment: libraries take paths and identities as
//! arguments, and only binaries (the `cairn` CLI, the desktop shell) depend on this crate — a
//! tidy test holds both to it. It holds no rules about runs and opens nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot find the user's data directory to keep the default workspace in; {hint}")]
    NoDataDir { hint: &'static str },
}

/// Where the environment is read from: the process's, or a fixed one in tests.
pub trait Env {
    fn var(&self, key: &str) -> Option<OsString>;
}

/// The process's environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<OsString> {
        std::env::var_os(key)
    }
}

fn text(env: &dyn Env, key: &str) -> Option<String> {
    env.var(key)
        .and_then(|v| v.into_string().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Who writes through the workspace: `--user`, else `CAIRN_USER`, else the account's name
/// (`USER`, `USERNAME`, then the password database by uid, as `id -un` would say: a container
/// run as root often has no `USER`), else "unknown".
pub fn user(arg: Option<&str>, env: &dyn Env) -> String {
    arg.map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .or_else(|| text(env, "CAIRN_USER"))
        .or_else(|| text(env, "USER"))
        .or_else(|| text(env, "USERNAME"))
        .or_else(|| account_name(Path::new("/proc/self/status"), Path::new("/etc/passwd")))
        .unwrap_or_else(|| "unknown".into())
}

/// The name of this process's account, from its real uid (`status`, as `/proc/self/status`)
/// and the password database (`passwd`, as `/etc/passwd`).
fn account_name(status: &Path, passwd: &Path) -> Option<String> {
    let status = std::fs::read_to_string(status).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    std::fs::read_to_string(passwd)
        .ok()?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _password = f.next()?;
            (f.next()? == uid && !name.is_empty()).then(|| name.to_owned())
        })
}

/// The workspace to open: `--workspace`, else `CAIRN_WORKSPACE`, else `cairn/default` in the
/// user's data directory (`~/.local/share` on Linux).
pub fn workspace(arg: Option<&Path>, env: &dyn Env) -> Result<PathBuf, Error> {
    if let Some(dir) = arg {
        return Ok(dir.to_owned());
    }
    if let Some(dir) = env.var("CAIRN_WORKSPACE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::data_dir()
        .map(|d| d.join("cairn").join("default"))
        .ok_or(Error::NoDataDir {
            hint: "pass --workspace DIR or set CAIRN_WORKSPACE",
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fixed(HashMap<&'static str, &'static str>);

    impl Env for Fixed {
        fn var(&self, key: &str) -> Option<OsString> {
            self.0.get(key).map(OsString::from)
        }
    }

    #[test]
    fn the_user_is_the_argument_then_the_environment() {
        let env = Fixed([("CAIRN_USER", "carol"), ("USER", "root")].into());
        assert_eq!(user(Some("alice"), &env), "alice");
        assert_eq!(user(Some("  "), &env), "carol");
        assert_eq!(user(None, &Fixed([("USER", "bob")].into())), "bob");
        assert_eq!(user(None, &Fixed([("USERNAME", "dora")].into())), "dora");
    }

    #[test]
    fn without_user_variables_the_account_name_comes_from_the_uid() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("status");
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &status,
            "Name:\tcairn\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\n",
        )
        .unwrap();
        std::fs::write(
            &passwd,
            "# local accounts\nroot:x:0:0:root:/root:/bin/bash\nada:x:1000:1000:Ada:/home/ada:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(account_name(&status, &passwd).as_deref(), Some("ada"));
        std::fs::write(&status, "Uid:\t0\t0\t0\t0\n").unwrap();
        assert_eq!(account_name(&status, &passwd).as_deref(), Some("root"));
        std::fs::write(&status, "Uid:\t4242\t4242\t4242\t4242\n").unwrap();
        assert_eq!(account_name(&status, &passwd), None);
        // On this machine the real lookup names someone, as `id -un` would.
        #[cfg(target_os = "linux")]
        assert!(user(None, &Fixed(HashMap::new())) != "unknown");
    }

    #[test]
    fn the_workspace_is_the_argument_then_the_environment_then_the_data_dir() {
        let env = Fixed([("CAIRN_WORKSPACE", "/from/env")].into());
        assert_eq!(
            workspace(Some(Path::new("/from/arg")), &env).unwrap(),
            PathBuf::from("/from/arg")
        );
        assert_eq!(workspace(None, &env).unwrap(), PathBuf::from("/from/env"));
        if let Ok(dir) = workspace(None, &Fixed(HashMap::new())) {
            assert!(dir.ends_with("cairn/default"), "{}", dir.display());
        }
    }
}
