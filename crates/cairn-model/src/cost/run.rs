//! What a run cost: GPU-hours times the price of each GPU model, plus the machine's hourly
//! price, over the time the run held the machine — split wherever a price changes — unless the
//! run carries its own hourly price, which then is the whole machine's.

use serde::{Deserialize, Serialize};

use super::idle::{IdleFigures, IdleSpan};
use super::price::{PriceTable, PriceUnit, RatePiece, validate_usd};
use crate::InfraProfile;

const HOUR_MS: f64 = 3_600_000.0;

/// Where a run's price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum PriceSource {
    /// The run's own hourly price (`--hourly-price`): the whole machine, per hour.
    Run,
    /// The team's price table (GPU models, instance types, hosts).
    Table,
    /// No price applies: the run is *unpriced*, never $0.
    Unpriced,
}

/// A run's cost and idle waste, as of an instant (a running run's keep growing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunCost {
    /// US dollars; `None` when no price applies (unpriced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub usd: Option<f64>,
    /// The GPUs' part (table prices of GPU models).
    pub gpu_usd: f64,
    /// The machine's part (an instance type's or host's price, or the run's own).
    pub machine_usd: f64,
    pub source: PriceSource,
    /// Hours the run held the machine (to its end, or to `as_of_ms` while it runs).
    pub hours: f64,
    pub gpus: u32,
    /// The run's GPU model (the first, when it had several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub gpu_model: Option<String>,
    pub gpu_hours: f64,
    /// Hours with no price at all (before a price's date, say); more than 0 on a priced run
    /// means it is priced only in part.
    pub unpriced_hours: f64,
    /// Why it is unpriced or priced only in part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub note: Option<String>,
    /// Dollars per hour at `as_of_ms`: how fast a running run's cost grows.
    pub usd_per_hour: f64,
    /// When a price that applies to it changes next after `as_of_ms` (growth at `usd_per_hour`
    /// holds until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub valid_until_ms: Option<i64>,
    pub as_of_ms: i64,
    pub running: bool,
    /// Idle GPU time, when the run has utilisation readings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub idle: Option<IdleFigures>,
    /// What the idle GPU time cost (each GPU's price over its idle spans).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub idle_usd: Option<f64>,
}

impl RunCost {
    /// The cost of a run still running, grown from `as_of_ms` to `now_ms` at its rate (a
    /// finished run's, or one read before its figures were taken, is as it is).
    pub fn at(&self, now_ms: i64) -> RunCost {
        let mut c = self.clone();
        if !self.running || now_ms <= self.as_of_ms {
            return c;
        }
        let h = (now_ms - self.as_of_ms) as f64 / HOUR_MS;
        c.hours += h;
        c.gpu_hours += h * f64::from(self.gpus);
        if let Some(u) = c.usd.as_mut() {
            *u += h * self.usd_per_hour;
            // Which part grows is not kept: the rate is split as the parts stood.
            let parts = self.gpu_usd + self.machine_usd;
            let gpu_part = if parts > 0.0 {
                self.gpu_usd / parts
            } else {
                0.0
            };
            c.gpu_usd += h * self.usd_per_hour * gpu_part;
            c.machine_usd += h * self.usd_per_hour * (1.0 - gpu_part);
        } else {
            c.unpriced_hours += h;
        }
        c.as_of_ms = now_ms;
        c
    }

    /// Whether [`RunCost::at`] is still exact at `now_ms` (no price changed since).
    pub fn valid_at(&self, now_ms: i64) -> bool {
        self.valid_until_ms.is_none_or(|v| now_ms < v)
    }

    /// Idle share of the observed GPU time, when there were readings.
    pub fn idle_share(&self) -> Option<f64> {
        self.idle
            .as_ref()
            .filter(|i| i.observed_s > 0.0)
            .map(IdleFigures::share)
    }
}

/// How a run's machine is priced over its window: the rates that apply, piece by piece.
#[derive(Debug, Clone)]
pub struct RunPricing {
    lo: i64,
    hi: i64,
    source: PriceSource,
    /// GPU groups: model, count, and the price per GPU-hour over the window.
    groups: Vec<(String, u32, Vec<RatePiece>)>,
    /// The machine's price per hour over the window.
    machine: Vec<RatePiece>,
    valid_until: Option<i64>,
    note: Option<String>,
}

fn rate_at(pieces: &[RatePiece], t: i64) -> Option<f64> {
    pieces
        .iter()
        .find(|p| p.lo <= t && t < p.hi)
        .and_then(|p| p.usd_per_hour)
}

/// The pieces of `[lo, hi)` cut at every piece boundary of every list.
fn cuts(lo: i64, hi: i64, lists: &[&[RatePiece]]) -> Vec<(i64, i64)> {
    let mut at: Vec<i64> = lists
        .iter()
        .flat_map(|l| l.iter().map(|p| p.lo))
        .filter(|t| *t > lo && *t < hi)
        .collect();
    at.push(lo);
    at.push(hi);
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| (w[0], w[1])).collect()
}

impl RunPricing {
    /// Prices the machine `infra` describes over `[lo, hi)`: the run's own hourly price when it
    /// has a valid one, else the table's GPU-model prices and its instance type's price (or,
    /// where that has none, its host's).
    pub fn new(infra: Option<&InfraProfile>, lo: i64, hi: i64, table: &PriceTable) -> RunPricing {
        let hi = hi.max(lo);
        let mut p = RunPricing {
            lo,
            hi,
            source: PriceSource::Unpriced,
            groups: Vec::new(),
            machine: Vec::new(),
            valid_until: None,
            note: None,
        };
        let Some(infra) = infra else {
            p.note = Some(
                "no machine profile: the run does not say what it ran on (as when an MLflow \
                 client logs it from a machine other than the server's)"
                    .into(),
            );
            return p;
        };
        if let Some(own) = infra.hourly_price_usd {
            if validate_usd(own, "the run's hourly price").is_ok() {
                p.source = PriceSource::Run;
                p.machine = vec![RatePiece {
                    lo,
                    hi,
                    usd_per_hour: Some(own),
                }];
                p.groups = infra
                    .gpus
                    .iter()
                    .map(|g| (g.model.clone(), g.count, Vec::new()))
                    .collect();
                return p;
            }
            p.note = Some(format!(
                "the run's own hourly price {own} is not a valid amount"
            ));
        }
        let mut next: Vec<i64> = Vec::new();
        for g in &infra.gpus {
            p.groups.push((
                g.model.clone(),
                g.count,
                table.pieces(PriceUnit::GpuHour, &g.model, lo, hi),
            ));
            next.extend(table.next_change(PriceUnit::GpuHour, &g.model, hi - 1));
        }
        let names: Vec<&str> = [infra.instance_type.as_deref(), infra.host.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let per_name: Vec<Vec<RatePiece>> = names
            .iter()
            .map(|n| table.pieces(PriceUnit::Hour, n, lo, hi))
            .collect();
        for n in &names {
            next.extend(table.next_change(PriceUnit::Hour, n, hi - 1));
        }
        let lists: Vec<&[RatePiece]> = per_name.iter().map(Vec::as_slice).collect();
        p.machine = cuts(lo, hi, &lists)
            .into_iter()
            .map(|(a, b)| RatePiece {
                lo: a,
                hi: b,
                // The instance type's price where it has one, else the host's.
                usd_per_hour: per_name.iter().find_map(|l| rate_at(l, a)),
            })
            .collect();
        p.valid_until = next.into_iter().min();
        let priced = p.machine.iter().any(|m| m.usd_per_hour.is_some())
            || p.groups
                .iter()
                .any(|g| g.2.iter().any(|r| r.usd_per_hour.is_some()));
        if priced {
            p.source = PriceSource::Table;
        } else {
            let mut named: Vec<String> = infra
                .gpus
                .iter()
                .map(|g| format!("GPU '{}'", g.model))
                .collect();
            named.extend(names.iter().map(|n| format!("'{n}'")));
            p.note = Some(if named.is_empty() {
                "no price: the machine profile names no GPU model, instance type or host".into()
            } else {
                format!("no price for {}", named.join(", "))
            });
        }
        p
    }

    fn gpu_count(&self) -> u32 {
        self.groups.iter().map(|g| g.1).sum()
    }

    /// The price per hour of GPU `index` at `t`: its model's price, else its share of the
    /// machine's (the machine's price over its GPU count). GPU indexes are taken to follow the
    /// profile's groups in order (`nvidia-smi` lists GPUs by bus, and the probe groups them in
    /// that order).
    fn gpu_rate(&self, index: u32, t: i64) -> Option<f64> {
        let mut seen = 0;
        for (_, count, pieces) in &self.groups {
            if index < seen + count {
                if let Some(r) = rate_at(pieces, t) {
                    return Some(r);
                }
                break;
            }
            seen += count;
        }
        let n = self.gpu_count();
        (n > 0)
            .then(|| rate_at(&self.machine, t).map(|m| m / f64::from(n)))
            .flatten()
    }

    /// What GPU time in `spans` cost at each GPU's rate (split where a rate changes).
    pub fn spans_usd(&self, spans: &[IdleSpan]) -> f64 {
        let mut usd = 0.0;
        for s in spans {
            let mut bounds: Vec<&[RatePiece]> = vec![&self.machine];
            bounds.extend(self.groups.iter().map(|g| g.2.as_slice()));
            for (a, b) in cuts(s.start_ms.max(self.lo), s.end_ms.min(self.hi), &bounds) {
                if let Some(r) = self.gpu_rate(s.gpu, a) {
                    usd += r * (b - a) as f64 / HOUR_MS;
                }
            }
        }
        usd
    }

    /// The run's cost over its window; `running` says whether the window ends now.
    pub fn cost(&self, running: bool, idle: Option<IdleFigures>) -> RunCost {
        let hours = (self.hi - self.lo) as f64 / HOUR_MS;
        let gpus = self.gpu_count();
        let mut gpu_usd = 0.0;
        for (_, count, pieces) in &self.groups {
            for r in pieces {
                if let Some(rate) = r.usd_per_hour {
                    gpu_usd += f64::from(*count) * rate * (r.hi - r.lo) as f64 / HOUR_MS;
                }
            }
        }
        let machine_usd: f64 = self
            .machine
            .iter()
            .filter_map(|r| r.usd_per_hour.map(|u| u * (r.hi - r.lo) as f64 / HOUR_MS))
            .sum();
        let mut lists: Vec<&[RatePiece]> = vec![&self.machine];
        lists.extend(self.groups.iter().map(|g| g.2.as_slice()));
        let mut unpriced_ms = 0i64;
        for (a, b) in cuts(self.lo, self.hi, &lists) {
            let any = rate_at(&self.machine, a).is_some()
                || self.groups.iter().any(|g| rate_at(&g.2, a).is_some());
            if !any {
                unpriced_ms += b - a;
            }
        }
        let last = self.hi - 1;
        let usd_per_hour = rate_at(&self.machine, last).unwrap_or(0.0)
            + self
                .groups
                .iter()
                .map(|g| f64::from(g.1) * rate_at(&g.2, last).unwrap_or(0.0))
                .sum::<f64>();
        let priced = self.source != PriceSource::Unpriced;
        let mut note = self.note.clone();
        if priced && unpriced_ms > 0 && note.is_none() {
            note = Some(format!(
                "priced only in part: {:.2} h of it had no price",
                unpriced_ms as f64 / HOUR_MS
            ));
        }
        let idle_usd = match (&idle, priced) {
            (Some(i), true) => Some(self.spans_usd(&i.spans)),
            _ => None,
        };
        RunCost {
            usd: priced.then_some(gpu_usd + machine_usd),
            gpu_usd,
            machine_usd,
            source: self.source,
            hours,
            gpus,
            gpu_model: self.groups.first().map(|g| g.0.clone()),
            gpu_hours: hours * f64::from(gpus),
            unpriced_hours: unpriced_ms as f64 / HOUR_MS,
            note,
            usd_per_hour,
            valid_until_ms: self.valid_until,
            as_of_ms: self.hi,
            running,
            idle,
            idle_usd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GpuGroup;
    use crate::cost::price::PriceEntry;

    const H: i64 = 3_600_000;

    fn price(target: &str, unit: PriceUnit, usd: f64, from: Option<i64>) -> PriceEntry {
        PriceEntry {
            id: format!("{target}{from:?}"),
            target: target.into(),
            unit,
            usd,
            from_ms: from,
            set_by: "lead".into(),
            set_ms: 0,
        }
    }

    fn box8(price: Option<f64>) -> InfraProfile {
        InfraProfile {
            host: Some("gpu-box-01".into()),
            instance_type: Some("p5en.48xlarge".into()),
            gpus: vec![GpuGroup {
                model: "NVIDIA H200".into(),
                count: 8,
                ..Default::default()
            }],
            hourly_price_usd: price,
            ..Default::default()
        }
    }

    #[test]
    fn gpu_hours_times_the_model_price_plus_the_machine_split_at_a_price_change() {
        // 8 H200 at $3.50, then $4.00 from hour 2; the instance at $10/h. Run: hours 0..3.
        let (table, _) = PriceTable::new(vec![
            price("NVIDIA H200", PriceUnit::GpuHour, 3.5, None),
            price("NVIDIA H200", PriceUnit::GpuHour, 4.0, Some(2 * H)),
            price("p5en.48xlarge", PriceUnit::Hour, 10.0, None),
        ]);
        let c = RunPricing::new(Some(&box8(None)), 0, 3 * H, &table).cost(false, None);
        // 8 x (2 h x 3.5 + 1 h x 4.0) = 88; machine 3 h x 10 = 30.
        assert_eq!(c.usd, Some(118.0));
        assert_eq!(
            (c.gpu_usd, c.machine_usd, c.gpu_hours, c.hours),
            (88.0, 30.0, 24.0, 3.0)
        );
        assert_eq!(c.source, PriceSource::Table);
        assert_eq!(c.usd_per_hour, 8.0 * 4.0 + 10.0);
        assert_eq!(c.unpriced_hours, 0.0);
    }

    #[test]
    fn the_runs_own_hourly_price_overrides_the_table() {
        let (table, _) = PriceTable::new(vec![price("NVIDIA H200", PriceUnit::GpuHour, 3.5, None)]);
        let c = RunPricing::new(Some(&box8(Some(63.296))), 0, H / 2, &table).cost(false, None);
        assert_eq!(c.usd, Some(31.648));
        assert_eq!((c.gpu_usd, c.source), (0.0, PriceSource::Run));
    }

    #[test]
    fn nothing_priced_is_unpriced_with_the_reason_never_zero() {
        let table = PriceTable::default();
        let c = RunPricing::new(Some(&box8(None)), 0, H, &table).cost(false, None);
        assert_eq!(c.usd, None);
        assert_eq!(c.source, PriceSource::Unpriced);
        assert_eq!(
            c.note.as_deref(),
            Some("no price for GPU 'NVIDIA H200', 'p5en.48xlarge', 'gpu-box-01'")
        );
        let c = RunPricing::new(None, 0, H, &table).cost(false, None);
        assert_eq!((c.usd, c.unpriced_hours), (None, 1.0));
        // A price from hour 1 on prices the second half only.
        let (table, _) = PriceTable::new(vec![price("gpu-box-01", PriceUnit::Hour, 2.0, Some(H))]);
        let c = RunPricing::new(Some(&box8(None)), 0, 2 * H, &table).cost(false, None);
        assert_eq!((c.usd, c.unpriced_hours), (Some(2.0), 1.0));
        assert!(c.note.unwrap().contains("in part"));
    }

    #[test]
    fn a_running_run_grows_at_its_rate_until_a_price_changes() {
        let (table, _) = PriceTable::new(vec![
            price("NVIDIA H200", PriceUnit::GpuHour, 3.0, None),
            price("NVIDIA H200", PriceUnit::GpuHour, 5.0, Some(10 * H)),
        ]);
        let c = RunPricing::new(Some(&box8(None)), 0, H, &table).cost(true, None);
        assert_eq!((c.usd, c.valid_until_ms), (Some(24.0), Some(10 * H)));
        let later = c.at(3 * H);
        assert_eq!(
            (later.usd, later.gpu_hours, later.hours),
            (Some(72.0), 24.0, 3.0)
        );
        assert!(c.valid_at(3 * H) && !c.valid_at(10 * H));
    }

    #[test]
    fn idle_gpu_time_costs_each_gpus_price_or_its_share_of_the_machine() {
        let spans = [
            IdleSpan {
                gpu: 0,
                start_ms: 0,
                end_ms: H / 2,
            },
            IdleSpan {
                gpu: 7,
                start_ms: 0,
                end_ms: H,
            },
        ];
        let (table, _) = PriceTable::new(vec![price("NVIDIA H200", PriceUnit::GpuHour, 4.0, None)]);
        let p = RunPricing::new(Some(&box8(None)), 0, H, &table);
        assert_eq!(p.spans_usd(&spans), 6.0);
        // Priced by the run's own $80/h: each of 8 GPUs is $10/h of it.
        let p = RunPricing::new(Some(&box8(Some(80.0))), 0, H, &table);
        assert_eq!(p.spans_usd(&spans), 15.0);
    }
}
