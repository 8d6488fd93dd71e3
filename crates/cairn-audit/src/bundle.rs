//! Export bundles: every chain held here, written so an auditor can check it on a machine with
//! no workspace (`cairn audit verify --bundle FILE`).
//!
//! A JSONL bundle is one JSON object per line: `{"header": …}` (the format, the workspace, who
//! exported it and when, the roster it was exported under), then `{"event": …}` for every event,
//! chain by chain in sequence order, then `{"end": …}` (how many events, the BLAKE3 of every line
//! before it, and the exporting device's signature over both). Every `<` inside a JSON string is
//! written as `\u003c`, so the same bytes can sit inside an HTML page's `<script>` element: the
//! HTML bundle is a readable table with the JSONL bundle embedded, and verifies the same way.
//! A CSV export is a flat table for spreadsheets (it carries every signed field, but no roster
//! or seal; verify the JSONL or HTML bundle).

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::event::{DeviceKey, Event, hex, short, verify_signed};
use crate::store::AuditStore;
use crate::verify::{Report, Signer, Verifier};

pub const BUNDLE_FORMAT: &str = "cairn-audit/1";
/// What the exporter's seal covers first.
pub const SEAL_DOMAIN: &[u8] = b"cairn/audit-bundle/1\0";
/// The longest line a bundle may hold (an event is bounded well below it).
pub const MAX_LINE: usize = 4 * 1024 * 1024;
/// Where the JSONL bundle sits in an HTML one.
const SCRIPT_OPEN: &str =
    "<script type=\"application/x-cairn-audit-bundle\" id=\"cairn-audit-bundle\">\n";
const SCRIPT_CLOSE: &str = "</script>";
/// Events read from the store, or fed to the verifier, at a time.
const SLICE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown export format '{other}' (jsonl, csv or html)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub workspace: String,
    /// The exporting device and person.
    pub device: String,
    pub member: String,
    pub exported_ms: i64,
    /// The roster the chains were exported under: who may sign, and who was removed when.
    pub roster: Vec<Signer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    pub events: u64,
    /// BLAKE3 of every byte before this line.
    pub digest: String,
    /// The exporting device's signature over [`seal_bytes`].
    pub signature: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Header(Header),
    Event(Event),
    End(End),
}

fn seal_bytes(events: u64, digest: &str) -> Vec<u8> {
    let mut out = SEAL_DOMAIN.to_vec();
    out.extend_from_slice(&events.to_be_bytes());
    out.extend_from_slice(digest.as_bytes());
    out
}

/// One line of JSON, `<` escaped, newline-terminated.
fn line(value: &Line) -> String {
    let mut text = serde_json::to_string(value)
        .unwrap_or_default()
        .replace('<', "\\u003c");
    text.push('\n');
    text
}

/// Writes every chain of `store` to `out` in `format`. Returns how many events it wrote.
pub fn export(
    store: &AuditStore,
    key: &DeviceKey,
    header: Header,
    format: Format,
    out: &mut impl Write,
) -> Result<u64, Error> {
    let io = |e| Error::Io {
        path: "export".into(),
        source: e,
    };
    match format {
        Format::Csv => {
            out.write_all(b"device,seq,prev,hash,at_ms,member,kind,subjects,fields,signature\n")
                .map_err(io)?;
            each_event(store, |e| {
                let row = [
                    e.device.clone(),
                    e.seq.to_string(),
                    e.prev.clone(),
                    e.hash(),
                    e.at_ms.to_string(),
                    e.member.clone(),
                    e.kind.clone(),
                    serde_json::to_string(&e.subjects).unwrap_or_default(),
                    serde_json::to_string(&e.fields).unwrap_or_default(),
                    e.signature.clone(),
                ];
                let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
                out.write_all(cells.join(",").as_bytes()).map_err(io)?;
                out.write_all(b"\n").map_err(io)
            })
        }
        Format::Jsonl => write_jsonl(store, key, header, out),
        Format::Html => {
            let mut page = String::new();
            page.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
            page.push_str("<title>Cairn audit bundle</title><style>");
            page.push_str(
                "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}",
            );
            page.push_str(
                "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top;text-align:left}",
            );
            page.push_str("code{font-size:12px}</style></head><body>\n");
            page.push_str(&format!(
                "<h1>Cairn audit bundle</h1><p>Workspace <code>{}</code>, exported by {} (device <code>{}</code>) at {} ms. \
                 Check it with <code>cairn audit verify --bundle FILE</code>: the chains and the \
                 exporter's seal are embedded below.</p>\n<table><tr><th>device</th><th>seq</th>\
                 <th>at (ms)</th><th>member</th><th>kind</th><th>subjects</th><th>fields</th></tr>\n",
                esc(&header.workspace),
                esc(&header.member),
                esc(short(&header.device)),
                header.exported_ms
            ));
            out.write_all(page.as_bytes()).map_err(io)?;
            each_event(store, |e| {
                let fields: Vec<String> = e
                    .fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
                    .collect();
                let row = format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    esc(short(&e.device)),
                    e.seq,
                    e.at_ms,
                    esc(&e.member),
                    esc(&e.kind),
                    esc(&e.subjects.join(" ")),
                    fields.join("<br>")
                );
                out.write_all(row.as_bytes()).map_err(io)
            })?;
            out.write_all(b"</table>\n").map_err(io)?;
            out.write_all(SCRIPT_OPEN.as_bytes()).map_err(io)?;
            let n = write_jsonl(store, key, header, out)?;
            out.write_all(SCRIPT_CLOSE.as_bytes()).map_err(io)?;
            out.write_all(b"\n</body></html>\n").map_err(io)?;
            Ok(n)
        }
    }
}

fn write_jsonl(
    store: &AuditStore,
    key: &DeviceKey,
    header: Header,
    out: &mut impl Write,
) -> Result<u64, Error> {
    let io = |e| Error::Io {
        path: "export".into(),
        source: e,
    };
    let mut hasher = blake3::Hasher::new();
    let first = line(&Line::Header(header));
    hasher.update(first.as_bytes());
    out.write_all(first.as_bytes()).map_err(io)?;
    let mut buf = Vec::new();
    let n = each_event(store, |e| {
        let text = line(&Line::Event(e.clone()));
        hasher.update(text.as_bytes());
        buf.extend_from_slice(text.as_bytes());
        if buf.len() > 1 << 20 {
            out.write_all(&buf).map_err(io)?;
            buf.clear();
        }
        Ok(())
    })?;
    out.write_all(&buf).map_err(io)?;
    let digest = hex(hasher.finalize().as_bytes());
    let signature = key.sign(&seal_bytes(n, &digest));
    out.write_all(
        line(&Line::End(End {
            events: n,
            digest,
            signature,
        }))
        .as_bytes(),
    )
    .map_err(io)?;
    out.flush().map_err(io)?;
    Ok(n)
}

/// Calls `f` on every stored event, chain by chain in sequence order. Returns how many.
fn each_event(
    store: &AuditStore,
    mut f: impl FnMut(&Event) -> Result<(), Error>,
) -> Result<u64, Error> {
    let mut n = 0;
    for device in store.devices()? {
        let mut from = 0;
        loop {
            let slice = store.chain(&device, from, SLICE)?;
            for e in &slice {
                f(e)?;
                n += 1;
            }
            match slice.last() {
                Some(last) if slice.len() == SLICE => from = last.seq.saturating_add(1),
                _ => break,
            }
        }
    }
    Ok(n)
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a bundle says and whether it holds.
#[derive(Debug, Clone, Serialize)]
pub struct BundleCheck {
    pub header: Header,
    /// Whether the exporter's seal verifies (`Err`: the file changed after export, or was
    /// cut short).
    pub sealed: Result<(), String>,
    pub report: Report,
}

impl BundleCheck {
    pub fn ok(&self) -> bool {
        self.sealed.is_ok() && self.report.ok()
    }
}

/// Verifies a JSONL or HTML bundle: the exporter's seal, then every chain against the roster it
/// carries. A file that is not a bundle is an error naming the line that is wrong.
pub fn verify_bundle(path: &Path) -> Result<BundleCheck, Error> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    verify_bundle_from(std::io::BufReader::with_capacity(1 << 20, file), path)
}

/// [`verify_bundle`] over a bundle's bytes from `reader`; `path` names it in errors.
pub fn verify_bundle_from(mut reader: impl BufRead, path: &Path) -> Result<BundleCheck, Error> {
    let bad = |why: String| Error::Bundle {
        path: path.to_owned(),
        why,
    };
    let mut first = Vec::new();
    read_line(&mut reader, &mut first).map_err(&bad)?;
    let html = first.starts_with(b"<!doctype html") || first.starts_with(b"<!DOCTYPE html");
    if html {
        // Skip to the embedded bundle.
        loop {
            first.clear();
            if read_line(&mut reader, &mut first).map_err(&bad)? == 0 {
                return Err(bad(
                    "an HTML file without an embedded Cairn audit bundle".into()
                ));
            }
            if first.ends_with(SCRIPT_OPEN.as_bytes()) {
                break;
            }
        }
        first.clear();
        read_line(&mut reader, &mut first).map_err(&bad)?;
    }
    let mut hasher = blake3::Hasher::new();
    let header = match parse(&first) {
        Ok(Line::Header(h)) => h,
        Ok(_) => return Err(bad("line 1 is not a bundle header".into())),
        Err(e) => {
            return Err(bad(format!(
                "line 1 is not a Cairn audit bundle header: {e}"
            )));
        }
    };
    if header.format != BUNDLE_FORMAT {
        return Err(bad(format!(
            "format '{}' is not one this build reads ({BUNDLE_FORMAT})",
            header.format
        )));
    }
    hasher.update(&first);
    let mut verifier = Verifier::new(Some(&header.roster));
    let mut pending: Vec<Event> = Vec::with_capacity(SLICE);
    let mut events = 0u64;
    let mut end = None;
    let mut buf = Vec::new();
    let mut number = 1u64;
    loop {
        buf.clear();
        if read_line(&mut reader, &mut buf).map_err(&bad)? == 0 {
            break;
        }
        number += 1;
        if html && buf.starts_with(SCRIPT_CLOSE.as_bytes()) {
            break;
        }
        match parse(&buf) {
            Ok(Line::Event(e)) => {
                if end.is_some() {
                    return Err(bad(format!("line {number}: an event after the end line")));
                }
                hasher.update(&buf);
                events += 1;
                pending.push(e);
                if pending.len() == SLICE {
                    verifier.feed(&pending);
                    pending.clear();
                }
            }
            Ok(Line::End(e)) => {
                if end.is_some() {
                    return Err(bad(format!("line {number}: a second end line")));
                }
                end = Some((e, hex(hasher.finalize().as_bytes())));
            }
            Ok(Line::Header(_)) => return Err(bad(format!("line {number}: a second header"))),
            Err(e) => return Err(bad(format!("line {number} is not a bundle line: {e}"))),
        }
    }
    verifier.feed(&pending);
    let sealed = match end {
        None => Err("the end line is missing: the bundle was cut short".to_owned()),
        Some((end, digest)) => {
            if end.events != events {
                Err(format!(
                    "the end line counts {} events, the bundle holds {events}",
                    end.events
                ))
            } else if end.digest != digest {
                Err("the lines before the end do not hash to the sealed digest: the file was changed after export".to_owned())
            } else if !header.roster.iter().any(|s| s.device == header.device) {
                Err(format!(
                    "the exporting device {} is not on the roster the bundle carries",
                    short(&header.device)
                ))
            } else {
                verify_signed(
                    &header.device,
                    &seal_bytes(events, &end.digest),
                    &end.signature,
                )
                .map_err(|why| format!("the exporter's seal: {why}"))
            }
        }
    };
    Ok(BundleCheck {
        header,
        sealed,
        report: verifier.finish(),
    })
}

fn parse(bytes: &[u8]) -> Result<Line, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Reads one line (with its newline) into `buf`, refusing lines over [`MAX_LINE`].
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<usize, String> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().map_err(|e| e.to_string())?;
        if available.is_empty() {
            return Ok(total);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if total + take > MAX_LINE {
            return Err(format!("a line longer than {MAX_LINE} bytes"));
        }
        buf.extend_from_slice(&available[..take]);
        reader.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}
