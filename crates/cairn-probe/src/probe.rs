//! Probing the machine and the working copy for lineage: which host, OS, CPU, memory, container
//! and GPUs a run had ([`infra_profile`]), which code it ran ([`code_version`]), and parsers for
//! what `nvidia-smi` prints (one-shot inventory and a sampled utilisation trace).
//!
//! The probes read files (`/proc`, `/etc/os-release`, container marker files) and run binaries
//! (`nvidia-smi`, `git`); they never read environment variables. Probing is best-effort: what
//! cannot be found is left out, never an error. Parsing is strict: a malformed line is a
//! [`ProbeError`] that names it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_model::{CodeVersion, GpuGroup, InfraProfile};

/// How long `nvidia-smi` may take before the probe gives up on GPUs (a wedged driver can hang it).
const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(5);

/// The query [`infra_profile`] runs, and the column order assumed for `noheader` output.
const QUERY_GPU_FIELDS: &str = "index,uuid,name,driver_version,pci.bus_id,memory.total,memory.used,utilization.gpu,utilization.memory,power.draw,power.limit,temperature.gpu,clocks.sm,clocks.max.sm";

/// The column order assumed for a `noheader` utilisation trace.
const UTIL_TRACE_FIELDS: &str =
    "timestamp,index,utilization.gpu,utilization.memory,memory.used,power.draw";

const MIB: f64 = 1024.0 * 1024.0;

/// What is wrong with `nvidia-smi` output handed to a parser. Lines are numbered from 1.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("no data: the input is empty")]
    Empty,
    #[error("line {line}: no {column:?} column in the header {text:?}")]
    MissingColumn {
        line: usize,
        column: &'static str,
        text: String,
    },
    #[error("line {line}: expected {expected} comma-separated fields, found {found}: {text:?}")]
    ColumnCount {
        line: usize,
        expected: usize,
        found: usize,
        text: String,
    },
    #[error("line {line}: {column} {value:?} is not {expected}")]
    BadValue {
        line: usize,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// One GPU as `nvidia-smi --query-gpu` reported it at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSnapshot {
    pub index: u32,
    pub uuid: Option<String>,
    pub name: String,
    pub driver: Option<String>,
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub util_gpu_pct: Option<f64>,
    pub util_mem_pct: Option<f64>,
    pub power_w: Option<f64>,
}

/// One sample of a GPU utilisation trace.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuUtilSample {
    /// Unix milliseconds, UTC.
    pub ts_ms: i64,
    pub index: u32,
    pub util_gpu_pct: f64,
    pub util_mem_pct: f64,
    pub memory_used_mib: f64,
    pub power_w: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// The machine

/// What this machine is: host, OS, CPU, memory, container and GPUs.
///
/// Reads `/proc/sys/kernel/hostname`, `/etc/os-release`, `/proc/sys/kernel/osrelease`,
/// `/proc/cpuinfo`, `/proc/meminfo`, the container marker files `/run/.containerenv` and
/// `/.dockerenv`, and runs `nvidia-smi` when it is on the PATH (for at most 5 s). Anything missing
/// is left as `None`; no GPUs (or no `nvidia-smi`) gives an empty `gpus`.
///
/// `container_image` is the image when the runtime records it (Podman's `/run/.containerenv`),
/// otherwise the runtime's name (`docker`, `podman`), so a containerised run is at least marked
/// as one. Instance type and price are not probed: they come from the user.
pub fn infra_profile() -> InfraProfile {
    let mut profile = profile_from_root(Path::new("/"));
    profile.gpus = gpu_groups(&probe_gpus());
    profile
}

/// Everything but the GPUs, from the files under `root` (`/` on a real machine).
fn profile_from_root(root: &Path) -> InfraProfile {
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).ok();
    let host = read("proc/sys/kernel/hostname")
        .or_else(|| read("etc/hostname"))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let pretty = read("etc/os-release")
        .or_else(|| read("usr/lib/os-release"))
        .and_then(|text| os_release_value(&text, "PRETTY_NAME"));
    let kernel = read("proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let os = match (pretty, kernel) {
        (Some(p), Some(k)) => Some(format!("{p}, Linux {k}")),
        (Some(p), None) => Some(p),
        (None, Some(k)) => Some(format!("Linux {k}")),
        (None, None) => None,
    };
    let cpuinfo = read("proc/cpuinfo").unwrap_or_default();
    let (cpu_model, processors) = parse_cpuinfo(&cpuinfo);
    let cpu_cores = if processors > 0 {
        Some(processors)
    } else {
        std::thread::available_parallelism()
            .ok()
            .and_then(|n| u32::try_from(n.get()).ok())
    };
    let memory_bytes = read("proc/meminfo").and_then(|text| parse_mem_total(&text));
    let container_image = if let Some(text) = read("run/.containerenv") {
        Some(containerenv_image(&text).unwrap_or_else(|| "podman".to_owned()))
    } else if root.join(".dockerenv").exists() {
        Some("docker".to_owned())
    } else {
        None
    };
    InfraProfile {
        host,
        os,
        cpu_model,
        cpu_cores,
        memory_bytes,
        container_image,
        ..InfraProfile::default()
    }
}

/// A value of an os-release style `KEY=value` file, unquoted.
fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.trim().strip_prefix(key)?.strip_prefix('=')?;
        let value = unquote(value.trim());
        (!value.is_empty()).then_some(value)
    })
}

/// Strips one level of shell-style quotes (`"…"` with backslash escapes, or `'…'`).
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        out
    } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        inner.to_owned()
    } else {
        value.to_owned()
    }
}

/// The CPU model and the number of logical processors in `/proc/cpuinfo`.
fn parse_cpuinfo(text: &str) -> (Option<String>, u32) {
    let mut model = None;
    let mut fallback_model = None;
    let mut processors = 0u32;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => processors += 1,
            "model name" if model.is_none() && !value.is_empty() => model = Some(value.to_owned()),
            // ARM kernels often name the board rather than the core.
            "Hardware" if fallback_model.is_none() && !value.is_empty() => {
                fallback_model = Some(value.to_owned())
            }
            _ => {}
        }
    }
    (model.or(fallback_model), processors)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn parse_mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let amount: u64 = parts.next()?.parse().ok()?;
    let unit = match parts.next() {
        Some("kB") | Some("KiB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    amount.checked_mul(unit).filter(|&b| b > 0)
}

/// The image named in Podman's `/run/.containerenv`.
fn containerenv_image(text: &str) -> Option<String> {
    os_release_value(text, "image")
}

/// The machine's GPUs from `nvidia-smi`; empty when it is absent, fails, or hangs.
/// The GPUs `nvidia-smi` reports now (none when it is absent or fails).
pub fn gpu_snapshots() -> Vec<GpuSnapshot> {
    probe_gpus()
}

fn probe_gpus() -> Vec<GpuSnapshot> {
    let mut cmd = Command::new("nvidia-smi");
    cmd.arg(format!("--query-gpu={QUERY_GPU_FIELDS}"))
        .arg("--format=csv");
    let Some(out) = run_with_timeout(&mut cmd, NVIDIA_SMI_TIMEOUT) else {
        return Vec::new();
    };
    match parse_query_gpu_csv(&out) {
        Ok(gpus) => gpus,
        Err(e) => {
            tracing::warn!(error = %e, "cannot parse nvidia-smi output; recording no GPUs");
            Vec::new()
        }
    }
}

/// Runs `cmd` and returns its stdout when it exits successfully within `timeout`; kills it
/// otherwise. `None` also when the binary is missing.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Option<String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    // Read on another thread so a chatty child cannot block on a full pipe while we wait.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            outcome => {
                tracing::warn!(
                    ?cmd,
                    ?outcome,
                    "probe command did not finish in time (or could not be waited on); killing it"
                );
                if let Err(e) = child.kill() {
                    tracing::debug!(error = %e, "cannot kill probe command");
                }
                if let Err(e) = child.wait() {
                    tracing::debug!(error = %e, "cannot reap probe command");
                }
                // The reader thread ends at EOF; it is not joined, in case a grandchild holds
                // the pipe open.
                return None;
            }
        }
    };
    let out = reader.join().ok()?.ok()?;
    status
        .success()
        .then(|| String::from_utf8_lossy(&out).into_owned())
}

// ---------------------------------------------------------------------------------------------
// nvidia-smi parsing

/// Parses `nvidia-smi --query-gpu=… --format=csv` output (with or without `nounits`, with or
/// without the header; without it the columns of the query [`infra_profile`] runs are assumed).
///
/// Columns are found by name, so extra or reordered columns are fine; `index` and `name` are
/// required. A value it cannot read (`[N/A]`, `[Not Supported]`, …) becomes `None`; a row whose
/// field count differs from the header's is an error naming the line.
pub fn parse_query_gpu_csv(text: &str) -> Result<Vec<GpuSnapshot>, ProbeError> {
    let table = Table::parse(text, QUERY_GPU_FIELDS, |first| first.parse::<u32>().is_ok())?;
    let index = table.required("index")?;
    let name = table.required("name")?;
    let uuid = table.column("uuid");
    let driver = table.column("driver_version");
    let mem_total = table.column("memory.total");
    let mem_used = table.column("memory.used");
    let util_gpu = table.column("utilization.gpu");
    let util_mem = table.column("utilization.memory");
    let power = table.column("power.draw");

    let mut gpus = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let get = |col: Option<usize>| col.and_then(|c| row.field(c));
        let number = |col: Option<usize>| col.and_then(|c| row.number(c).map(|(n, _)| n));
        let bytes = |col: Option<usize>| {
            let (n, unit) = row.number(col?)?;
            let scale = match unit.or(table.unit(col?)) {
                None | Some("MiB") => MIB,
                Some("KiB") => 1024.0,
                Some("GiB") => 1024.0 * MIB,
                Some(_) => return None,
            };
            let b = (n * scale).round();
            (b >= 0.0 && b < u64::MAX as f64).then_some(b as u64)
        };
        let raw_index = row.fields[index];
        gpus.push(GpuSnapshot {
            index: raw_index.parse().map_err(|_| ProbeError::BadValue {
                line: row.line,
                column: "index",
                value: raw_index.to_owned(),
                expected: "a GPU index",
            })?,
            uuid: get(uuid).map(str::to_owned),
            name: row.fields[name].to_owned(),
            driver: get(driver).map(str::to_owned),
            memory_total_bytes: bytes(mem_total),
            memory_used_bytes: bytes(mem_used),
            util_gpu_pct: number(util_gpu),
            util_mem_pct: number(util_mem),
            power_w: number(power),
        });
    }
    Ok(gpus)
}

/// GPUs grouped by model name, in the order the models first appear. A group's driver and
/// memory are those of its first GPU that reports them.
pub fn gpu_groups(gpus: &[GpuSnapshot]) -> Vec<GpuGroup> {
    let mut groups: Vec<GpuGroup> = Vec::new();
    for gpu in gpus {
        let group = match groups.iter_mut().position(|g| g.model == gpu.name) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(GpuGroup {
                    model: gpu.name.clone(),
                    ..GpuGroup::default()
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        group.count += 1;
        if group.driver.is_none() {
            group.driver.clone_from(&gpu.driver);
        }
        if group.memory_bytes.is_none() {
            group.memory_bytes = gpu.memory_total_bytes;
        }
    }
    groups
}

/// Parses a sampled trace: `nvidia-smi --query-gpu=timestamp,index,utilization.gpu,
/// utilization.memory,memory.used,power.draw --format=csv,nounits -lms 250` (units are accepted
/// too). Timestamps (`2026/11/27 04:06:11.781`) are taken as UTC. `power.draw` may be missing or
/// `[N/A]`; every other value must parse, or the line is reported. Header lines repeated in the
/// middle of a trace are skipped.
pub fn parse_util_trace(text: &str) -> Result<Vec<GpuUtilSample>, ProbeError> {
    let table = Table::parse(text, UTIL_TRACE_FIELDS, |first| {
        parse_timestamp(first).is_some()
    })?;
    let ts = table.required("timestamp")?;
    let index = table.required("index")?;
    let util_gpu = table.required("utilization.gpu")?;
    let util_mem = table.required("utilization.memory")?;
    let mem_used = table.required("memory.used")?;
    let power = table.column("power.draw");

    let mut samples = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let bad = |column: &'static str, col: usize, expected: &'static str| ProbeError::BadValue {
            line: row.line,
            column,
            value: row.fields[col].to_owned(),
            expected,
        };
        let number = |column: &'static str, col: usize| {
            row.number(col)
                .map(|(n, _)| n)
                .ok_or_else(|| bad(column, col, "a number"))
        };
        samples.push(GpuUtilSample {
            ts_ms: parse_timestamp(row.fields[ts])
                .ok_or_else(|| bad("timestamp", ts, "a time like 2026/11/27 04:06:11.781"))?,
            index: row.fields[index]
                .parse()
                .map_err(|_| bad("index", index, "a GPU index"))?,
            util_gpu_pct: number("utilization.gpu", util_gpu)?,
            util_mem_pct: number("utilization.memory", util_mem)?,
            memory_used_mib: number("memory.used", mem_used)?,
            power_w: power.and_then(|c| row.number(c).map(|(n, _)| n)),
        });
    }
    Ok(samples)
}

/// `nvidia-smi` CSV: a header of `name [unit]` columns and rows of `, `-separated fields.
struct Table<'a> {
    /// Column names without their `[unit]`, and the unit.
    columns: Vec<(&'a str, Option<&'a str>)>,
    header_line: usize,
    header_text: &'a str,
    rows: Vec<Row<'a>>,
}

struct Row<'a> {
    line: usize,
    fields: Vec<&'a str>,
}

impl<'a> Table<'a> {
    /// Splits `text` into header and rows. When the first line is data (`is_data` on its first
    /// field), the columns are `default_fields`.
    fn parse(
        text: &'a str,
        default_fields: &'static str,
        is_data: impl Fn(&str) -> bool,
    ) -> Result<Self, ProbeError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let (first_line, first) = lines.next().ok_or(ProbeError::Empty)?;
        let first_fields = split_fields(first);
        let mut table = Table {
            columns: Vec::new(),
            header_line: first_line,
            header_text: first,
            rows: Vec::new(),
        };
        let mut pending = None;
        if is_data(first_fields[0]) {
            table.columns = default_fields.split(',').map(|f| (f, None)).collect();
            table.header_text = default_fields;
            pending = Some((first_line, first));
        } else {
            table.columns = first_fields.iter().map(|f| split_unit(f)).collect();
        }
        for (line, text) in pending.into_iter().chain(lines) {
            if text == table.header_text {
                continue;
            }
            let fields = split_fields(text);
            if fields.len() != table.columns.len() {
                return Err(ProbeError::ColumnCount {
                    line,
                    expected: table.columns.len(),
                    found: fields.len(),
                    text: text.to_owned(),
                });
            }
            table.rows.push(Row { line, fields });
        }
        Ok(table)
    }

    fn column(&self, name: &str) -> Option<usize> {
        let alias = match name {
            "clocks.sm" => Some("clocks.current.sm"),
            _ => None,
        };
        self.columns
            .iter()
            .position(|(c, _)| c.eq_ignore_ascii_case(name) || Some(*c) == alias)
    }

    fn required(&self, name: &'static str) -> Result<usize, ProbeError> {
        self.column(name).ok_or_else(|| ProbeError::MissingColumn {
            line: self.header_line,
            column: name,
            text: self.header_text.to_owned(),
        })
    }

    fn unit(&self, col: usize) -> Option<&'a str> {
        self.columns.get(col).and_then(|(_, unit)| *unit)
    }
}

impl<'a> Row<'a> {
    /// The field, unless it is empty or one of nvidia-smi's placeholders (`[N/A]`, `N/A`,
    /// `[Not Supported]`, `[Unknown Error]`, …).
    fn field(&self, col: usize) -> Option<&'a str> {
        let value = *self.fields.get(col)?;
        let placeholder = value.is_empty()
            || value.eq_ignore_ascii_case("N/A")
            || (value.starts_with('[') && value.ends_with(']'));
        (!placeholder).then_some(value)
    }

    /// The field as a number and its unit, if it has one (`143771 MiB`, `0 %`, `125.32 W`).
    fn number(&self, col: usize) -> Option<(f64, Option<&'a str>)> {
        let value = self.field(col)?;
        let (number, unit) = match value.split_once(' ') {
            Some((n, u)) => (n, Some(u.trim())),
            None => (value, None),
        };
        let n: f64 = number.parse().ok()?;
        n.is_finite().then_some((n, unit))
    }
}

fn split_fields(line: &str) -> Vec<&str> {
    line.split(',').map(str::trim).collect()
}

/// `memory.total [MiB]` → (`memory.total`, `Some("MiB")`).
fn split_unit(header: &str) -> (&str, Option<&str>) {
    match header.split_once(" [") {
        Some((name, rest)) => (name.trim(), rest.strip_suffix(']').map(str::trim)),
        None => (header.trim(), None),
    }
}

/// `2026/11/27 04:06:11.781` (UTC) → Unix milliseconds. Also accepts `-` as the date separator.
fn parse_timestamp(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once(' ')?;
    let mut date_parts = date.split(['/', '-']);
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    // Four-digit years only: the clock of a machine running nvidia-smi, and a bound that keeps
    // the milliseconds below from overflowing (a fuzzed 14-digit year did).
    if date_parts.next().is_some() || !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let (hms, fraction) = match time.trim().split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time.trim(), None),
    };
    // Unsigned: a negative field passed the upper bounds below and overflowed (found by fuzzing).
    let mut hms = hms.split(':');
    let hour: u32 = hms.next()?.parse().ok()?;
    let minute: u32 = hms.next()?.parse().ok()?;
    let second: u32 = hms.next()?.parse().ok()?;
    if hms.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let (hour, minute, second) = (i64::from(hour), i64::from(minute), i64::from(second));
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            // First three digits, right-padded: ".7" is 700 ms, ".78149" is 781 ms.
            let digits: String = f.chars().chain("00".chars()).take(3).collect();
            digits.parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

// ---------------------------------------------------------------------------------------------
// The code

/// The code version of the git work tree containing `dir`, from the `git` binary; `None` outside
/// a work tree or without git.
///
/// `repo` is `remote.origin.url` (with any credentials in it removed) or else the name of the
/// top-level directory; `commit` is HEAD (`None` on an unborn branch); `branch` is `None` when
/// HEAD is detached; `dirty` when `git status --porcelain` lists anything, untracked files
/// included; `diff_digest`, only when dirty, is `blake3:<hex>` over the output of
/// `git diff HEAD --binary` and the list of untracked files (their names, not their contents).
pub fn code_version(dir: &Path) -> Option<CodeVersion> {
    let inside = git(dir, &["rev-parse", "--is-inside-work-tree"])?;
    if inside.trim_ascii() != b"true" {
        return None;
    }
    let top_raw = git(dir, &["rev-parse", "--show-toplevel"])?;
    let top = std::path::PathBuf::from(String::from_utf8_lossy(top_raw.trim_ascii()).into_owned());
    // Everything else runs at the top level: `ls-files` only lists below its working directory.
    let repo = git_line(&top, &["config", "--get", "remote.origin.url"])
        .map(|url| redact_url(&url))
        .or_else(|| top.file_name().map(|n| n.to_string_lossy().into_owned()));
    let commit = git_line(&top, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]);
    let branch = git_line(&top, &["symbolic-ref", "--quiet", "--short", "HEAD"]);
    let dirty = match git(&top, &["status", "--porcelain", "--untracked-files=all"]) {
        Some(status) => !status.trim_ascii().is_empty(),
        None => {
            tracing::warn!(dir = %top.display(), "git status failed; recording the tree as clean");
            false
        }
    };
    let diff_digest = if dirty {
        diff_digest(&top, commit.as_deref())
    } else {
        None
    };
    Some(CodeVersion {
        repo,
        commit,
        branch,
        dirty,
        diff_digest,
    })
}

/// `blake3:<hex>` of the uncommitted changes: the binary diff against HEAD (or against the
/// empty tree on an unborn branch), then the NUL-separated untracked file names.
fn diff_digest(top: &Path, commit: Option<&str>) -> Option<String> {
    let base = match commit {
        Some(c) => c.to_owned(),
        None => git_line(top, &["hash-object", "-t", "tree", "/dev/null"])?,
    };
    let diff = git(
        top,
        &[
            "diff",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            &base,
        ],
    )?;
    let untracked = git(top, &["ls-files", "--others", "--exclude-standard", "-z"])?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cairn diff v1\0");
    hasher.update(&(diff.len() as u64).to_le_bytes());
    hasher.update(&diff);
    hasher.update(&untracked);
    Some(format!("blake3:{}", hasher.finalize().to_hex()))
}

/// Runs `git -C dir <args>`; its stdout when it succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("--no-optional-locks") // never contend with the user's own git for index.lock
        .arg("-C")
        .arg(dir)
        .args(args)
        // Let `dir`, not an inherited GIT_DIR (e.g. inside a git hook), decide the repository.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// Like [`git`], for a one-line answer; `None` when empty.
fn git_line(dir: &Path, args: &[&str]) -> Option<String> {
    let out = git(dir, args)?;
    let line = String::from_utf8_lossy(out.trim_ascii()).into_owned();
    (!line.is_empty()).then_some(line)
}

/// Removes `user:token@` from a URL's authority, so lineage never records a credential.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned(); // scp-like `git@host:path`: the user is not a secret
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/gpu-box"
    );

    fn fixture(name: &str) -> String {
        let path = format!("{FIXTURES}/{name}");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("cannot read the fixture {path}: {e} (is shared/ beside the repo?)")
        })
    }

    // -- nvidia-smi --query-gpu ----------------------------------------------------------------

    #[test]
    fn the_real_h200_query_parses() {
        let gpus = parse_query_gpu_csv(&fixture("query-gpu.csv")).unwrap();
        assert_eq!(
            gpus,
            vec![GpuSnapshot {
                index: 0,
                uuid: Some("GPU-e04940e4-4467-8624-647f-1be10c338fe5".into()),
                name: "NVIDIA H200".into(),
                driver: Some("580.159.04".into()),
                memory_total_bytes: Some(143_771 * 1024 * 1024),
                memory_used_bytes: Some(0),
                util_gpu_pct: Some(0.0),
                util_mem_pct: Some(0.0),
                power_w: Some(125.32),
            }]
        );
        assert_eq!(
            gpu_groups(&gpus),
            vec![GpuGroup {
                model: "NVIDIA H200".into(),
                count: 1,
                driver: Some("580.159.04".into()),
                memory_bytes: Some(150_754_820_096),
            }]
        );
    }

    #[test]
    fn the_nounits_and_noheader_forms_parse_to_the_same() {
        let with_units = parse_query_gpu_csv(&fixture("query-gpu.csv")).unwrap();
        let nounits = "index, uuid, name, driver_version, pci.bus_id, memory.total [MiB], memory.used [MiB], utilization.gpu [%], utilization.memory [%], power.draw [W], power.limit [W], temperature.gpu, clocks.current.sm [MHz], clocks.max.sm [MHz]\n\
            0, GPU-e04940e4-4467-8624-647f-1be10c338fe5, NVIDIA H200, 580.159.04, 00000000:00:06.0, 143771, 0, 0, 0, 125.32, 700.00, 36, 1980, 1980\n";
        assert_eq!(parse_query_gpu_csv(nounits).unwrap(), with_units);
        let noheader = "0, GPU-e04940e4-4467-8624-647f-1be10c338fe5, NVIDIA H200, 580.159.04, 00000000:00:06.0, 143771 MiB, 0 MiB, 0 %, 0 %, 125.32 W, 700.00 W, 36, 1980 MHz, 1980 MHz\n";
        assert_eq!(parse_query_gpu_csv(noheader).unwrap(), with_units);
    }

    #[test]
    fn unreadable_values_become_none_and_models_are_grouped() {
        let text = "index, uuid, name, driver_version, memory.total [MiB], memory.used [MiB], utilization.gpu [%], utilization.memory [%], power.draw [W]\n\
            0, GPU-a, NVIDIA A100-SXM4-80GB, 550.54.15, 81920 MiB, 10 MiB, [N/A], [Not Supported], [N/A]\n\
            1, GPU-b, NVIDIA A100-SXM4-80GB, 550.54.15, 81920 MiB, 0 MiB, 5 %, 1 %, 61.02 W\n\
            2, [N/A], Tesla T4, 550.54.15, [Unknown Error], N/A, 0 %, 0 %, 9.5 W\n";
        let gpus = parse_query_gpu_csv(text).unwrap();
        assert_eq!(gpus.len(), 3);
        assert_eq!(
            (gpus[0].util_gpu_pct, gpus[0].util_mem_pct, gpus[0].power_w),
            (None, None, None)
        );
        assert_eq!(gpus[1].util_gpu_pct, Some(5.0));
        assert_eq!(
            (
                gpus[2].uuid.as_deref(),
                gpus[2].memory_total_bytes,
                gpus[2].memory_used_bytes
            ),
            (None, None, None)
        );
        let groups = gpu_groups(&gpus);
        assert_eq!(
            groups
                .iter()
                .map(|g| (g.model.as_str(), g.count))
                .collect::<Vec<_>>(),
            [("NVIDIA A100-SXM4-80GB", 2), ("Tesla T4", 1)]
        );
        assert_eq!(groups[0].memory_bytes, Some(81_920 * 1024 * 1024));
        assert_eq!(groups[1].memory_bytes, None);
        assert!(gpu_groups(&[]).is_empty());
    }

    #[test]
    fn malformed_query_output_names_the_line() {
        let text = fixture("query-gpu.csv");
        let broken = format!("{text}1, GPU-x, NVIDIA H200, 580.159.04\n");
        let err = parse_query_gpu_csv(&broken).unwrap_err();
        assert!(
            matches!(
                err,
                ProbeError::ColumnCount {
                    line: 3,
                    expected: 14,
                    found: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("line 3: expected 14 comma-separated fields, found 4"),
            "{err}"
        );

        let err = parse_query_gpu_csv("uuid, driver_version\nGPU-x, 1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 1: no "index" column in the header "uuid, driver_version""#
        );
        let err = parse_query_gpu_csv("index, name\n\nzero, NVIDIA H200\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 3: index "zero" is not a GPU index"#
        );
        assert_eq!(parse_query_gpu_csv("  \n"), Err(ProbeError::Empty));
        assert_eq!(parse_query_gpu_csv("index, name\n").unwrap(), vec![]);
    }

    // -- the utilisation trace -----------------------------------------------------------------

    #[test]
    fn the_real_trace_has_idle_and_training_samples_on_the_metrics_clock() {
        let samples = parse_util_trace(&fixture("util-trace.csv")).unwrap();
        assert_eq!(samples.len(), 123);
        assert_eq!(
            samples[0],
            GpuUtilSample {
                ts_ms: 1_795_752_371_781, // 2026-11-27T04:06:11.781Z
                index: 0,
                util_gpu_pct: 0.0,
                util_mem_pct: 0.0,
                memory_used_mib: 0.0,
                power_w: Some(79.13),
            }
        );
        assert_eq!(samples[122].ts_ms, 1_795_752_402_326);
        assert!(
            samples
                .windows(2)
                .all(|w| w[0].ts_ms < w[1].ts_ms && w[1].ts_ms - w[0].ts_ms < 300)
        );
        assert!(samples.iter().all(|s| s.index == 0));
        let idle = samples.iter().filter(|s| s.util_gpu_pct == 0.0).count();
        let training: Vec<_> = samples.iter().filter(|s| s.util_gpu_pct >= 90.0).collect();
        assert_eq!((idle, training.len()), (87, 32));
        assert!(
            training
                .iter()
                .all(|s| s.memory_used_mib == 1311.0 && s.power_w > Some(300.0))
        );

        // The training loop's own log is on the same clock: every busy sample falls inside it.
        let metrics = fixture("metrics.csv");
        let unix_ms: Vec<i64> = metrics
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(1)?.parse().ok())
            .collect();
        let (first, last) = (unix_ms[0], unix_ms[unix_ms.len() - 1]);
        assert!(
            training
                .iter()
                .all(|s| s.ts_ms >= first - 500 && s.ts_ms <= last + 500)
        );
    }

    #[test]
    fn malformed_trace_lines_are_named() {
        let header = "timestamp, index, utilization.gpu [%], utilization.memory [%], memory.used [MiB], power.draw [W]";
        let text = format!(
            "{header}\n2026/11/27 04:06:11.781, 0, 0, 0, 0, [N/A]\n{header}\n2026/11/27 04:06:12.036, 0, 97 %, 11 %, 1311 MiB, 576.30 W\n"
        );
        let samples = parse_util_trace(&text).unwrap();
        assert_eq!(samples.len(), 2, "the repeated header is skipped");
        assert_eq!(
            (
                samples[0].power_w,
                samples[1].util_gpu_pct,
                samples[1].power_w
            ),
            (None, 97.0, Some(576.3))
        );

        let err = parse_util_trace(&format!(
            "{header}\n2026/13/27 04:06:11.781, 0, 0, 0, 0, 1\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 2: timestamp "2026/13/27 04:06:11.781" is not a time like 2026/11/27 04:06:11.781"#
        );
        let err = parse_util_trace(&format!(
            "{header}\n2026/11/27 04:06:11.781, 0, [N/A], 0, 0, 1\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"line 2: utilization.gpu "[N/A]" is not a number"#
        );
        let err =
            parse_util_trace(&format!("{header}\n2026/11/27 04:06:11.781, 0, 0\n")).unwrap_err();
        assert!(
            matches!(
                err,
                ProbeError::ColumnCount {
                    line: 2,
                    expected: 6,
                    found: 3,
                    ..
                }
            ),
            "{err}"
        );
        let noheader = parse_util_trace("2026/11/27 04:06:11.781, 0, 5, 1, 10, 80.5\n").unwrap();
        assert_eq!(noheader[0].util_gpu_pct, 5.0);
    }

    #[test]
    fn civil_dates_convert_to_unix_time() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(parse_timestamp("1970/01/01 00:00:00.000"), Some(0));
        assert_eq!(
            parse_timestamp("2026/11/27 04:06:11"),
            Some(1_795_752_371_000)
        );
        assert_eq!(
            parse_timestamp("2026/11/27 04:06:11.7"),
            Some(1_795_752_371_700)
        );
        assert_eq!(
            parse_timestamp("2026/11/27 04:06:11.78149"),
            Some(1_795_752_371_781)
        );
        assert_eq!(
            parse_timestamp("2024/02/29 23:59:59.999"),
            Some(1_709_251_199_999)
        );
        for bad in [
            "2023/02/29 00:00:00",
            "2026/11/27",
            "2026/11/27 24:00:00",
            "2026/11/27 04:06:11.x",
            "x",
            "20202620262026/11/27 04:06:11.781",
            "0/01/01 00:00:00",
            "2026/11/27 04:06:-8000000000000000012.5",
            "2026/11/27 -1:06:11",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        assert_eq!(
            parse_timestamp("9999/12/31 23:59:59.999"),
            Some(253_402_300_799_999)
        );
    }

    #[test]
    fn a_timestamp_out_of_range_is_an_error_not_an_overflow() {
        // Found by fuzzing (fuzz/crashers/gpu_util_trace/year-overflow): the millisecond sum
        // overflowed i64 and panicked.
        let err =
            parse_util_trace("20202620262026/11/27 04:06:11.781, 0, 5, 1, 10, 20\n").unwrap_err();
        assert!(matches!(err, ProbeError::MissingColumn { .. }), "{err}");
        // fuzz/crashers/gpu_util_trace/negative-seconds: a negative field passed the range checks.
        let err = parse_util_trace(
            "timestamp, index, utilization.gpu, utilization.memory, memory.used\n\
             2026/11/27 04:06:-8000000000000000012.5, 0, 5, 1, 10\n",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ProbeError::BadValue {
                    column: "timestamp",
                    line: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    // -- the machine ---------------------------------------------------------------------------

    #[test]
    fn this_linux_machine_has_a_host_cores_and_memory() {
        let profile = infra_profile();
        assert!(
            profile.host.as_deref().is_some_and(|h| !h.is_empty()),
            "{profile:?}"
        );
        assert!(profile.cpu_cores.is_some_and(|n| n >= 1), "{profile:?}");
        assert!(profile.memory_bytes.is_some_and(|m| m > 0), "{profile:?}");
        assert!(
            profile.os.as_deref().is_some_and(|os| os.contains("Linux")),
            "{profile:?}"
        );
    }

    #[test]
    fn the_profile_comes_from_what_the_files_say() {
        let root = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("proc/sys/kernel/hostname", "gpu-box-7\n");
        write("proc/sys/kernel/osrelease", "6.18.44-fc-v657-gpu\n");
        write(
            "etc/os-release",
            "NAME=\"Ubuntu\"\nPRETTY_NAME=\"Ubuntu 24.04.3 LTS\"\nID=ubuntu\n",
        );
        write(
            "proc/cpuinfo",
            "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n",
        );
        write(
            "proc/meminfo",
            "MemTotal:       131980992 kB\nMemFree:        130000000 kB\n",
        );
        write(
            "run/.containerenv",
            "engine=\"podman-4.9.3\"\nimage=\"docker.io/pytorch/pytorch:2.11.0-cuda13.0\"\n",
        );
        let profile = profile_from_root(root.path());
        assert_eq!(
            profile,
            InfraProfile {
                host: Some("gpu-box-7".into()),
                os: Some("Ubuntu 24.04.3 LTS, Linux 6.18.44-fc-v657-gpu".into()),
                cpu_model: Some("Intel(R) Xeon(R) Processor".into()),
                cpu_cores: Some(2),
                memory_bytes: Some(131_980_992 * 1024),
                container_image: Some("docker.io/pytorch/pytorch:2.11.0-cuda13.0".into()),
                ..InfraProfile::default()
            }
        );

        std::fs::remove_file(root.path().join("run/.containerenv")).unwrap();
        write(".dockerenv", "");
        std::fs::remove_file(root.path().join("proc/cpuinfo")).unwrap();
        let profile = profile_from_root(root.path());
        assert_eq!(profile.container_image.as_deref(), Some("docker"));
        assert!(
            profile.cpu_cores.is_some_and(|n| n >= 1),
            "falls back to available_parallelism"
        );
        assert_eq!(profile.cpu_model, None);

        let empty = tempfile::tempdir().unwrap();
        let profile = profile_from_root(empty.path());
        assert_eq!(
            (
                profile.host,
                profile.os,
                profile.memory_bytes,
                profile.container_image
            ),
            (None, None, None, None)
        );
    }

    #[test]
    fn probe_commands_time_out_and_missing_binaries_are_none() {
        let started = Instant::now();
        assert_eq!(
            run_with_timeout(Command::new("sleep").arg("10"), Duration::from_millis(200)),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            run_with_timeout(Command::new("echo").arg("hi"), Duration::from_secs(5)).as_deref(),
            Some("hi\n")
        );
        assert_eq!(
            run_with_timeout(&mut Command::new("false"), Duration::from_secs(5)),
            None
        );
        assert_eq!(
            run_with_timeout(
                &mut Command::new("cairn-no-such-binary"),
                Duration::from_secs(5)
            ),
            None
        );
    }

    // -- the code ------------------------------------------------------------------------------

    fn run_git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?} failed");
    }

    /// A fresh repository with local identity, on branch `main`, nothing committed.
    fn repo() -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix("cairn-probe-repo")
            .tempdir()
            .unwrap();
        run_git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
        run_git(dir.path(), &["config", "user.name", "Cairn Test"]);
        run_git(dir.path(), &["config", "user.email", "test@cairn.invalid"]);
        run_git(dir.path(), &["config", "commit.gpgsign", "false"]);
        dir
    }

    #[test]
    fn a_clean_commit_is_recorded_without_a_digest() {
        let dir = repo();
        std::fs::write(dir.path().join("train.py"), "print('hi')\n").unwrap();
        run_git(dir.path(), &["add", "."]);
        run_git(dir.path(), &["commit", "--quiet", "-m", "first"]);
        let code = code_version(dir.path()).unwrap();
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(code.repo.as_deref(), Some(name.as_str()));
        assert!(
            code.commit
                .as_deref()
                .is_some_and(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit())),
            "{code:?}"
        );
        assert_eq!(code.branch.as_deref(), Some("main"));
        assert!(!code.dirty);
        assert_eq!(code.diff_digest, None);

        // From a subdirectory, the same answer.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(code_version(&dir.path().join("sub")), Some(code.clone()));

        // Detached HEAD: no branch.
        let commit = code.commit.clone().unwrap();
        run_git(dir.path(), &["checkout", "--quiet", "--detach", &commit]);
        let detached = code_version(dir.path()).unwrap();
        assert_eq!((detached.branch, detached.commit), (None, Some(commit)));
    }

    #[test]
    fn uncommitted_changes_are_dirty_with_a_digest_that_tells_them_apart() {
        let dir = repo();
        let file = dir.path().join("train.py");
        std::fs::write(&file, "lr = 0.1\n").unwrap();
        run_git(dir.path(), &["add", "."]);
        run_git(dir.path(), &["commit", "--quiet", "-m", "first"]);

        std::fs::write(&file, "lr = 0.2\n").unwrap();
        let a = code_version(dir.path()).unwrap();
        assert!(a.dirty);
        let digest_a = a.diff_digest.clone().unwrap();
        assert!(
            digest_a.starts_with("blake3:") && digest_a.len() == 7 + 64,
            "{digest_a}"
        );
        assert_eq!(
            code_version(dir.path()).unwrap().diff_digest,
            Some(digest_a.clone()),
            "stable"
        );

        std::fs::write(&file, "lr = 0.3\n").unwrap();
        let b = code_version(dir.path()).unwrap();
        assert!(b.dirty);
        assert_ne!(b.diff_digest.as_deref(), Some(digest_a.as_str()));

        // Staged or not, the change against HEAD is the same change.
        std::fs::write(&file, "lr = 0.2\n").unwrap();
        run_git(dir.path(), &["add", "train.py"]);
        assert_eq!(
            code_version(dir.path()).unwrap().diff_digest,
            Some(digest_a.clone())
        );

        // An untracked file alone makes the tree dirty, and shows in the digest.
        std::fs::write(&file, "lr = 0.1\n").unwrap();
        run_git(dir.path(), &["add", "train.py"]);
        assert!(!code_version(dir.path()).unwrap().dirty);
        std::fs::write(dir.path().join("notes.txt"), "try 0.2").unwrap();
        let untracked = code_version(dir.path()).unwrap();
        assert!(untracked.dirty);
        assert!(untracked.diff_digest.is_some());
        assert_ne!(untracked.diff_digest.as_deref(), Some(digest_a.as_str()));

        // Ignored files do not count.
        std::fs::remove_file(dir.path().join("notes.txt")).unwrap();
        std::fs::write(dir.path().join(".git/info/exclude"), "*.log\n").unwrap();
        std::fs::write(dir.path().join("run.log"), "noise").unwrap();
        assert!(!code_version(dir.path()).unwrap().dirty);
    }

    #[test]
    fn an_unborn_branch_has_no_commit_but_a_branch() {
        let dir = repo();
        let empty = code_version(dir.path()).unwrap();
        assert_eq!(
            (
                empty.commit.as_deref(),
                empty.branch.as_deref(),
                empty.dirty
            ),
            (None, Some("main"), false)
        );
        std::fs::write(dir.path().join("a.py"), "x = 1\n").unwrap();
        let untracked = code_version(dir.path()).unwrap();
        assert!(
            untracked.dirty && untracked.diff_digest.is_some(),
            "{untracked:?}"
        );
        run_git(dir.path(), &["add", "a.py"]);
        let staged = code_version(dir.path()).unwrap();
        assert!(staged.dirty);
        assert_ne!(staged.diff_digest, untracked.diff_digest);
    }

    #[test]
    fn the_origin_url_is_the_repo_without_credentials() {
        let dir = repo();
        run_git(
            dir.path(),
            &[
                "remote",
                "add",
                "origin",
                "https://x-access-token:ghp_secret@github.com/cairn-ml/cairn.git",
            ],
        );
        let code = code_version(dir.path()).unwrap();
        assert_eq!(
            code.repo.as_deref(),
            Some("https://github.com/cairn-ml/cairn.git")
        );
        assert_eq!(
            redact_url("git@github.com:cairn-ml/cairn.git"),
            "git@github.com:cairn-ml/cairn.git"
        );
        assert_eq!(redact_url("ssh://git@host:22/x.git"), "ssh://host:22/x.git");
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
    }

    #[test]
    fn outside_a_work_tree_there_is_no_code_version() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(code_version(dir.path()), None);
        assert_eq!(code_version(&dir.path().join("missing")), None);
        // Inside .git itself is not a work tree either.
        let repo = repo();
        assert_eq!(code_version(&repo.path().join(".git")), None);
    }

    #[test]
    fn os_release_values_are_unquoted() {
        assert_eq!(
            os_release_value(
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"",
                "PRETTY_NAME"
            )
            .as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            os_release_value("PRETTY_NAME='Alpine'\n", "PRETTY_NAME").as_deref(),
            Some("Alpine")
        );
        assert_eq!(
            os_release_value("PRETTY_NAME=Plain\n", "PRETTY_NAME").as_deref(),
            Some("Plain")
        );
        assert_eq!(
            os_release_value("PRETTY_NAME=\"a \\\"b\\\"\"\n", "PRETTY_NAME").as_deref(),
            Some("a \"b\"")
        );
        assert_eq!(os_release_value("PRETTY_NAMES=x\n", "PRETTY_NAME"), None);
        assert_eq!(parse_mem_total("MemTotal:  16 kB\n"), Some(16_384));
        assert_eq!(parse_mem_total("MemTotal:  lots\n"), None);
    }
}
