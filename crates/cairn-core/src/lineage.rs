//! The lineage of a run started here and now: the git working copy, this machine, the datasets
//! it reads (digests cached by every file's size and modification time), a feature-set version.
//! One place for it, so the CLI's `run start` and `cairn exec` record the same things the same
//! way.

use std::path::PathBuf;

use cairn_model::{CodeVersion, DatasetSnapshot, FeatureSetVersion, Lineage};

use crate::{Error, Stores};

/// What to record. Paths are relative to `cwd`.
#[derive(Debug, Clone, Default)]
pub struct LineageRequest {
    /// Where relative dataset paths and the git directory are looked up.
    pub cwd: PathBuf,
    /// Record the code version of the git working copy holding this directory.
    pub git: Option<PathBuf>,
    /// A `git` directory that is not inside a git work tree is an error (else it is skipped).
    pub git_required: bool,
    /// Given code facts, each replacing what git found.
    pub code_repo: Option<String>,
    pub code_commit: Option<String>,
    pub code_branch: Option<String>,
    pub code_dirty: bool,
    /// Datasets by role: a local file or directory (hashed, cached) or a URI (`scheme://…`,
    /// recorded as given).
    pub datasets: Vec<(String, String)>,
    /// Digests and row counts given for datasets (by role), e.g. of remote data.
    pub dataset_digests: Vec<(String, String)>,
    pub dataset_rows: Vec<(String, u64)>,
    pub feature_set: Option<FeatureSetVersion>,
    /// Probe this machine (host, OS, CPU, memory, container, GPUs).
    pub infra: bool,
    pub instance_type: Option<String>,
    pub hourly_price_usd: Option<f64>,
    pub container_image: Option<String>,
}

/// This machine's profile (host, OS, CPU, memory, container, GPUs), probed once per process:
/// what `cairn serve` records for runs that MLflow clients on the same machine create, so they
/// are costed like runs started here. The first call may take a few seconds (`nvidia-smi`).
pub fn this_machine() -> cairn_model::InfraProfile {
    static PROFILE: std::sync::OnceLock<cairn_model::InfraProfile> = std::sync::OnceLock::new();
    PROFILE.get_or_init(cairn_probe::infra_profile).clone()
}

fn is_uri(target: &str) -> bool {
    target.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

impl Stores {
    pub(crate) fn lineage_here(&self, req: &LineageRequest) -> Result<Lineage, Error> {
        let mut lineage = Lineage::default();
        for (role, target) in &req.datasets {
            cairn_model::validate_key("dataset role", role)?;
            let snap = if is_uri(target) {
                DatasetSnapshot {
                    uri: Some(target.clone()),
                    ..Default::default()
                }
            } else {
                let path = req.cwd.join(target);
                if !path.exists() {
                    return Err(Error::Invalid(format!(
                        "dataset '{role}': {target} does not exist (remote data is given as a URI, e.g. s3://bucket/train/)"
                    )));
                }
                self.dataset_snapshot(&path)?
            };
            lineage.datasets.insert(role.clone(), snap);
        }
        for (role, digest) in &req.dataset_digests {
            lineage.datasets.entry(role.clone()).or_default().digest = Some(digest.clone());
        }
        for (role, rows) in &req.dataset_rows {
            lineage.datasets.entry(role.clone()).or_default().rows = Some(*rows);
        }
        lineage.feature_set = req.feature_set.clone();
        let mut code = match &req.git {
            Some(dir) => {
                let dir = req.cwd.join(dir);
                let found = cairn_probe::code_version(&dir);
                if found.is_none() && req.git_required {
                    return Err(Error::Invalid(format!(
                        "{} is not inside a git work tree",
                        dir.display()
                    )));
                }
                found
            }
            None => None,
        };
        if req.code_repo.is_some()
            || req.code_commit.is_some()
            || req.code_branch.is_some()
            || req.code_dirty
        {
            let c = code.get_or_insert_with(CodeVersion::default);
            c.repo = req.code_repo.clone().or(c.repo.take());
            c.commit = req.code_commit.clone().or(c.commit.take());
            c.branch = req.code_branch.clone().or(c.branch.take());
            c.dirty |= req.code_dirty;
        }
        lineage.code = code;
        if let Some(p) = req.hourly_price_usd
            && (!p.is_finite() || p < 0.0)
        {
            return Err(Error::Invalid(format!(
                "invalid hourly price '{p}': expected a price in USD of 0 or more"
            )));
        }
        if req.infra {
            let mut infra = cairn_probe::infra_profile();
            infra.instance_type = req.instance_type.clone();
            infra.hourly_price_usd = req.hourly_price_usd;
            if req.container_image.is_some() {
                infra.container_image = req.container_image.clone();
            }
            lineage.infra = Some(infra);
        }
        Ok(lineage)
    }
}

#[cfg(test)]
mod tests {
    use super::is_uri;

    #[test]
    fn uris_are_told_from_paths() {
        for uri in [
            "s3://bucket/train/",
            "gs://b/x",
            "hf://datasets/x",
            "file:///data",
        ] {
            assert!(is_uri(uri), "{uri}");
        }
        for path in [
            "data/train.parquet",
            "./x",
            "/abs/path",
            "weird:name",
            "://x",
        ] {
            assert!(!is_uri(path), "{path}");
        }
    }
}
