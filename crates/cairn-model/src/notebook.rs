//! Notebooks: a team's Markdown documents about its experiments (issue #17). What one holds and
//! the bounds on each part; the text itself merges character by character in its automerge doc
//! (`cairn-catalog`), embeds are rendered by `cairn-core`.

use serde::{Deserialize, Serialize};

use crate::{ExperimentId, ModelError, NotebookId};

/// The most bytes a notebook's text may hold (UTF-8).
pub const MAX_NOTEBOOK_BYTES: usize = 2 << 20;
/// The most characters of a title.
pub const MAX_TITLE_CHARS: usize = 200;
/// The most tags, and owners, a notebook has.
pub const MAX_NOTEBOOK_TAGS: usize = 32;
pub const MAX_NOTEBOOK_OWNERS: usize = 16;
/// The most characters of one tag or owner.
pub const MAX_LABEL_CHARS: usize = 64;

/// A notebook without its text: what a listing shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct NotebookMeta {
    pub id: NotebookId,
    pub title: String,
    /// Sorted, each once.
    pub owners: Vec<String>,
    /// Sorted, each once.
    pub tags: Vec<String>,
    #[cfg_attr(feature = "ts", ts(optional))]
    pub experiment: Option<ExperimentId>,
    pub created_ms: i64,
    pub created_by: String,
    pub updated_ms: i64,
    pub updated_by: String,
    /// The text's size in bytes.
    pub bytes: u64,
}

/// A notebook: its description and its Markdown text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Notebook {
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(flatten))]
    pub meta: NotebookMeta,
    pub text: String,
    /// The version read: the doc's heads (hex). An edit made from this text names it as its
    /// base, so what teammates wrote since is kept.
    pub heads: Vec<String>,
}

fn invalid(what: &'static str, value: &str, reason: String) -> ModelError {
    ModelError::InvalidNotebook {
        what,
        value: value.chars().take(80).collect(),
        reason,
    }
}

/// A title: not blank, at most [`MAX_TITLE_CHARS`] characters, one line.
pub fn validate_title(title: &str) -> Result<(), ModelError> {
    if title.trim().is_empty() {
        return Err(invalid("title", title, "it is empty".into()));
    }
    let n = title.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(invalid(
            "title",
            title,
            format!("it has {n} characters, at most {MAX_TITLE_CHARS}"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(invalid(
            "title",
            title,
            "it holds a control character (a line break?)".into(),
        ));
    }
    Ok(())
}

/// A tag or owner: not blank, at most [`MAX_LABEL_CHARS`] characters, no whitespace or control
/// characters at its ends or controls inside.
pub fn validate_label(what: &'static str, label: &str) -> Result<(), ModelError> {
    if label.trim().is_empty() {
        return Err(invalid(what, label, "it is empty".into()));
    }
    let n = label.chars().count();
    if n > MAX_LABEL_CHARS {
        return Err(invalid(
            what,
            label,
            format!("it has {n} characters, at most {MAX_LABEL_CHARS}"),
        ));
    }
    if label.chars().any(char::is_control) || label.trim() != label {
        return Err(invalid(
            what,
            label,
            "it holds a control character or starts or ends with a space".into(),
        ));
    }
    Ok(())
}

/// A set of labels: each valid, at most `max`.
pub fn validate_labels(
    what: &'static str,
    labels: &[String],
    max: usize,
) -> Result<(), ModelError> {
    if labels.len() > max {
        return Err(invalid(
            what,
            &labels.join(","),
            format!("{} given, at most {max}", labels.len()),
        ));
    }
    labels.iter().try_for_each(|l| validate_label(what, l))
}

/// A text: at most [`MAX_NOTEBOOK_BYTES`] bytes.
pub fn validate_text(text: &str) -> Result<(), ModelError> {
    if text.len() > MAX_NOTEBOOK_BYTES {
        return Err(invalid(
            "text",
            "",
            format!("it is {} bytes, at most {MAX_NOTEBOOK_BYTES}", text.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_what_is_wrong() {
        assert!(validate_title("Ablations of the LR schedule").is_ok());
        let err = validate_title("  ").unwrap_err().to_string();
        assert!(err.contains("title") && err.contains("empty"), "{err}");
        let err = validate_title(&"x".repeat(201)).unwrap_err().to_string();
        assert!(err.contains("201 characters"), "{err}");
        assert!(validate_title("a\nb").is_err());
        assert!(validate_label("tag", "nlp").is_ok());
        assert!(validate_label("tag", " nlp").is_err());
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        let err = validate_labels("tag", &many, MAX_NOTEBOOK_TAGS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("33 given"), "{err}");
        let err = validate_text(&"a".repeat(MAX_NOTEBOOK_BYTES + 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 2097152"), "{err}");
    }
}
