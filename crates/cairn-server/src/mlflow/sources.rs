//! Where a model version's files may come from, as MLflow's server decides it: a source that is
//! a path on the server's own disk (`/tmp/model`, `model`, `file:///tmp/model`) is refused. MLflow
//! takes one only inside the local artifact directory of the run named with it; a Cairn run's
//! artifacts are never a local directory (they are content-addressed blobs), so every local
//! source is refused, in MLflow's words.

use std::path::{Component, Path, PathBuf};

use super::MlflowError;

/// The scheme of `uri` as Python's `urllib.parse.urlparse` reads it (lower-cased; empty when the
/// text before the first `:` is not a scheme).
fn scheme(uri: &str) -> String {
    match uri.split_once(':') {
        Some((s, _))
            if s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            s.to_ascii_lowercase()
        }
        _ => String::new(),
    }
}

/// Whether `uri` starts with a scheme (`s3:`, `file:`), as Python's `urlparse` reads one.
pub(crate) fn has_scheme(uri: &str) -> bool {
    !scheme(uri).is_empty()
}

/// MLflow's `is_local_uri`: a bare path or a `file:` URI.
pub(crate) fn is_local_uri(uri: &str) -> bool {
    matches!(scheme(uri).as_str(), "" | "file")
}

/// The path a local URI names (`file:///tmp/m` → `/tmp/m`), made absolute against the server's
/// working directory and normalised, as Python's `Path.resolve()` shows it.
fn resolved(uri: &str) -> PathBuf {
    let path = match uri.strip_prefix("file://") {
        // file://localhost/x and file:///x
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
        None => uri.strip_prefix("file:").unwrap_or(uri).to_owned(),
    };
    let path = Path::new(&path);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    if let Ok(real) = std::fs::canonicalize(&absolute) {
        return real;
    }
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// MLflow's refusal of a model version `source` that is a local path, or `None` when the source
/// is not one. `run_id` is the run named with it: MLflow then shows the resolved path. (MLflow
/// first checks that run exists and, if not, answers "The run_id request parameter must identify
/// the resource that contains the source." — the caller's business, having the workspace.)
pub(crate) fn local_source_refusal(source: &str, run_id: Option<&str>) -> Option<MlflowError> {
    if !is_local_uri(source) {
        return None;
    }
    let shown = match run_id.filter(|r| !r.is_empty()) {
        Some(_) => resolved(source).display().to_string(),
        None => source.to_owned(),
    };
    Some(MlflowError::invalid(format!(
        "Invalid model version source: '{shown}'. To use a local path as a model version source, \
         the run_id request parameter has to be specified and the local path has to be contained \
         within the artifact directory of the run specified by the run_id."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_told_from_uris_as_mlflow_tells_them() {
        for local in ["/tmp/x", "rel/path", "./x", "file:///tmp/x", "file:/x"] {
            assert!(is_local_uri(local), "{local}");
        }
        for remote in [
            "s3://b/k",
            "runs:/abc/model",
            "models:/m/1",
            "mlflow-artifacts:/0/r/artifacts",
            "http://localhost:5000/x",
            "C:/x",
            "localhost:5000/x",
            "foo:bar",
        ] {
            assert!(!is_local_uri(remote), "{remote}");
        }
    }

    #[test]
    fn a_local_source_is_refused_in_mlflows_words() {
        let e = local_source_refusal("/tmp/model", None).expect("refused");
        assert_eq!(e.code, "INVALID_PARAMETER_VALUE");
        assert!(
            e.message
                .starts_with("Invalid model version source: '/tmp/model'. To use a local path"),
            "{}",
            e.message
        );
        let e = local_source_refusal("file:///a/b/../c", Some("r1")).expect("refused");
        assert!(
            e.message
                .starts_with("Invalid model version source: '/a/c'."),
            "{}",
            e.message
        );
        assert!(local_source_refusal("runs:/r1/model", Some("r1")).is_none());
        assert!(local_source_refusal("mlflow-artifacts:/0/r1/artifacts/m", None).is_none());
    }
}
