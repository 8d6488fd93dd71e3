//! `cairn notebook new|list|show|edit|export`: the team's Markdown notebooks. `edit` opens
//! `$EDITOR` (else `$VISUAL`, else `vi`) on a temporary file and writes the result as the
//! difference from the version it opened, so a teammate's edits that synced in meanwhile stay.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cairn_core::Workspace;
use cairn_core::notebooks::{ExportFormat, NewNotebook, NotebookExport, NotebookUpdate};

use crate::args::{Cli, NotebookCmd};
use crate::common::open;
use crate::output::{Table, print_json, short_id, time};

/// `cairn notebook …`.
pub fn notebook(cli: &Cli, cmd: &NotebookCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        NotebookCmd::New {
            title,
            file,
            tag,
            exp,
        } => {
            let text = file.as_deref().map(read_text).transpose()?;
            let nb = ws.notebook_create(&NewNotebook {
                title: title.clone(),
                text,
                tags: (!tag.is_empty()).then(|| tag.clone()),
                owners: None,
                experiment: exp.clone(),
            })?;
            if cli.json {
                return print_json(&nb);
            }
            outln!("notebook {} created: {}", nb.meta.id, nb.meta.title);
        }
        NotebookCmd::List { query: Some(q) } => {
            let hits = ws.notebook_search(&cairn_core::notebooks::NotebookSearch {
                q: q.clone(),
                limit: Some(500),
            })?;
            if cli.json {
                return print_json(&hits);
            }
            let mut t = Table::new(&["id", "title", "tags", "updated", "matched"]);
            for h in &hits {
                let id = h.meta.id.to_string();
                t.row(vec![
                    short_id(&id).to_owned(),
                    h.meta.title.clone(),
                    h.meta.tags.join(","),
                    time(h.meta.updated_ms),
                    h.snippet.replace('\n', " "),
                ]);
            }
            if t.is_empty() {
                outln!("no notebook matches '{q}'");
            } else {
                out!("{}", t.render());
            }
        }
        NotebookCmd::List { query: None } => {
            let all = ws.notebooks()?;
            if cli.json {
                return print_json(&all);
            }
            let mut t = Table::new(&["id", "title", "owners", "tags", "updated", "by", "bytes"])
                .right_align(&[6]);
            for m in &all {
                let id = m.id.to_string();
                t.row(vec![
                    short_id(&id).to_owned(),
                    m.title.clone(),
                    m.owners.join(","),
                    m.tags.join(","),
                    time(m.updated_ms),
                    m.updated_by.clone(),
                    m.bytes.to_string(),
                ]);
            }
            if t.is_empty() {
                outln!("no notebooks: `cairn notebook new TITLE` starts one");
            } else {
                out!("{}", t.render());
            }
        }
        NotebookCmd::Show { id } => {
            let nb = ws.notebook(id)?;
            if cli.json {
                return print_json(&nb);
            }
            let m = &nb.meta;
            outln!("# {}", m.title);
            outln!(
                "id {} · owners {} · tags {} · updated {} by {}",
                m.id,
                m.owners.join(", "),
                m.tags.join(", "),
                time(m.updated_ms),
                m.updated_by
            );
            outln!();
            out!("{}", nb.text);
        }
        NotebookCmd::Edit {
            id,
            file,
            title,
            add_tag,
            remove_tag,
        } => {
            let nb = ws.notebook(id)?;
            let text = match file {
                Some(f) => Some(read_text(f)?),
                None if title.is_none() && add_tag.is_empty() && remove_tag.is_empty() => {
                    Some(edit_in_editor(&ws, &nb.meta.id.to_string(), &nb.text)?)
                }
                None => None,
            };
            let changed = text.as_ref().is_some_and(|t| *t != nb.text);
            let after = ws.notebook_edit(&NotebookUpdate {
                id: nb.meta.id.to_string(),
                title: title.clone(),
                text: text.filter(|_| changed),
                base: changed.then(|| nb.heads.clone()),
                add_tags: (!add_tag.is_empty()).then(|| add_tag.clone()),
                remove_tags: (!remove_tag.is_empty()).then(|| remove_tag.clone()),
                ..NotebookUpdate::default()
            })?;
            if cli.json {
                return print_json(&after);
            }
            if changed || title.is_some() || !add_tag.is_empty() || !remove_tag.is_empty() {
                outln!(
                    "notebook {} saved ({} bytes)",
                    after.meta.id,
                    after.meta.bytes
                );
            } else {
                outln!("notebook {} unchanged", after.meta.id);
            }
        }
        NotebookCmd::Export {
            id,
            md: _,
            html,
            output,
        } => {
            let file = ws.notebook_export(&NotebookExport {
                id: id.clone(),
                format: if *html {
                    ExportFormat::Html
                } else {
                    ExportFormat::Md
                },
            })?;
            let path = output
                .clone()
                .unwrap_or_else(|| PathBuf::from(&file.file_name));
            std::fs::write(&path, file.content.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            if cli.json {
                return print_json(
                    &serde_json::json!({ "path": path, "bytes": file.content.len() }),
                );
            }
            outln!("wrote {} ({} bytes)", path.display(), file.content.len());
        }
    }
    Ok(())
}

/// A text file, or standard input for `-`.
fn read_text(path: &Path) -> Result<String> {
    let limit = cairn_model::notebook::MAX_NOTEBOOK_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().take(limit).read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("reading {}", path.display()))?
            .take(limit)
            .read_to_end(&mut bytes)?;
    }
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// Opens the text in the user's editor; answers what it saved.
fn edit_in_editor(ws: &Workspace, id: &str, text: &str) -> Result<String> {
    let editor = std::env::var("EDITOR")
        .or_else(|_| std::env::var("VISUAL"))
        .unwrap_or_else(|_| "vi".into());
    let mut words = editor.split_whitespace();
    let Some(program) = words.next() else {
        bail!("$EDITOR is empty: set it to your editor (e.g. EDITOR=nano)");
    };
    // In the workspace's own tmp folder: private to the user, on the same disk.
    let dir = ws.dir().join("tmp");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("notebook-{id}-{}.md", std::process::id()));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let status = std::process::Command::new(program)
        .args(words)
        .arg(&path)
        .status()
        .with_context(|| format!("starting the editor '{editor}'"));
    let result = match status {
        Ok(s) if s.success() => read_text(&path),
        Ok(s) => Err(anyhow::anyhow!(
            "the editor '{editor}' exited with {s}: nothing was saved"
        )),
        Err(e) => Err(e),
    };
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(path = %path.display(), error = %e, "could not remove the temporary file");
    }
    result
}
