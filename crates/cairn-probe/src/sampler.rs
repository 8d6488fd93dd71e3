//! System metrics while a run runs: CPU utilisation, memory, and per-GPU utilisation, memory and
//! power, under MLflow's `system/…` metric names so MLflow-aware tools read them too.

use std::path::{Path, PathBuf};

use crate::probe::{GpuSnapshot, gpu_snapshots};

/// Cumulative CPU time counters from `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTimes {
    busy: u64,
    total: u64,
}

fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal …; idle and iowait are not busy.
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some(CpuTimes {
        busy: total - idle,
        total,
    })
}

/// (total, available) bytes from `/proc/meminfo`.
fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// The metrics one set of GPU readings gives, named as MLflow's system metrics are.
pub fn gpu_metrics(gpus: &[GpuSnapshot]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for g in gpus {
        let i = g.index;
        if let Some(u) = g.util_gpu_pct {
            out.push((format!("system/gpu_{i}_utilization_percentage"), u));
        }
        if let Some(m) = g.memory_used_bytes {
            out.push((
                format!("system/gpu_{i}_memory_usage_megabytes"),
                m as f64 / 1e6,
            ));
            if let Some(t) = g.memory_total_bytes.filter(|t| *t > 0) {
                out.push((
                    format!("system/gpu_{i}_memory_usage_percentage"),
                    m as f64 * 100.0 / t as f64,
                ));
            }
        }
        if let Some(p) = g.power_w {
            out.push((format!("system/gpu_{i}_power_usage_watts"), p));
        }
    }
    out
}

/// Takes a reading of the machine each time it is asked.
#[derive(Debug)]
pub struct SystemSampler {
    proc_dir: PathBuf,
    prev_cpu: Option<CpuTimes>,
    gpus: bool,
}

impl SystemSampler {
    /// A sampler of this machine; `gpus` says whether to ask `nvidia-smi` at each reading.
    pub fn new(gpus: bool) -> SystemSampler {
        Self::with_proc(Path::new("/proc"), gpus)
    }

    fn with_proc(proc_dir: &Path, gpus: bool) -> SystemSampler {
        let mut s = SystemSampler {
            proc_dir: proc_dir.to_owned(),
            prev_cpu: None,
            gpus,
        };
        // Prime the CPU counters so the first reading covers the time since now.
        s.prev_cpu = s.cpu_times();
        s
    }

    fn cpu_times(&self) -> Option<CpuTimes> {
        std::fs::read_to_string(self.proc_dir.join("stat"))
            .ok()
            .as_deref()
            .and_then(parse_proc_stat)
    }

    /// One reading: `(metric key, value)` pairs. What the machine cannot tell is left out.
    pub fn sample(&mut self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Some(now) = self.cpu_times() {
            if let Some(prev) = self.prev_cpu {
                let total = now.total.saturating_sub(prev.total);
                if total > 0 {
                    let busy = now.busy.saturating_sub(prev.busy);
                    out.push((
                        "system/cpu_utilization_percentage".into(),
                        busy as f64 * 100.0 / total as f64,
                    ));
                }
            }
            self.prev_cpu = Some(now);
        }
        if let Some((total, avail)) = std::fs::read_to_string(self.proc_dir.join("meminfo"))
            .ok()
            .as_deref()
            .and_then(parse_meminfo)
        {
            let used = total.saturating_sub(avail);
            out.push((
                "system/system_memory_usage_megabytes".into(),
                used as f64 / 1e6,
            ));
            out.push((
                "system/system_memory_usage_percentage".into(),
                used as f64 * 100.0 / total.max(1) as f64,
            ));
        }
        if self.gpus {
            out.extend(gpu_metrics(&gpu_snapshots()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_utilisation_comes_from_the_difference_of_two_readings() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal:       1000000 kB\nMemFree:  1 kB\nMemAvailable:    250000 kB\n",
        )
        .unwrap();
        let mut s = SystemSampler::with_proc(dir.path(), false);
        // 100 more jiffies, 75 of them busy.
        std::fs::write(&stat, "cpu  150 0 125 825 0 0 0 0 0 0\n").unwrap();
        let m: std::collections::BTreeMap<String, f64> = s.sample().into_iter().collect();
        assert_eq!(m["system/cpu_utilization_percentage"], 75.0);
        assert_eq!(m["system/system_memory_usage_megabytes"], 768.0);
        assert_eq!(m["system/system_memory_usage_percentage"], 75.0);
    }

    #[test]
    fn this_machine_gives_cpu_and_memory_readings() {
        let mut s = SystemSampler::new(false);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let keys: Vec<String> = s.sample().into_iter().map(|(k, _)| k).collect();
        assert!(
            keys.contains(&"system/system_memory_usage_megabytes".to_owned()),
            "{keys:?}"
        );
    }

    #[test]
    fn gpu_readings_from_the_real_h200_capture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/gpu-box/query-gpu.csv"
        );
        let text = std::fs::read_to_string(path).expect("fixture query-gpu.csv");
        let gpus = crate::probe::parse_query_gpu_csv(&text).unwrap();
        let m: std::collections::BTreeMap<String, f64> = gpu_metrics(&gpus).into_iter().collect();
        assert_eq!(m["system/gpu_0_utilization_percentage"], 0.0);
        assert_eq!(m["system/gpu_0_memory_usage_megabytes"], 0.0);
        assert_eq!(m["system/gpu_0_power_usage_watts"], 125.32);
    }
}
