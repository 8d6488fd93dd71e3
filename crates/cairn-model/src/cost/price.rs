//! The team's price table: what a GPU model or a machine costs per hour, from a date on.
//!
//! Each entry is its own record (one team-doc key each), never edited: a new price, or a
//! correction, is a new entry. The price of a target at an instant is the entry with the latest
//! `from` at or before it; entries with the same `from` are ordered by when they were set (then
//! id), so a correction set later wins and two peers' concurrent entries resolve alike
//! everywhere. Changing a price from a date on therefore never changes what earlier runs cost.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// What a price is per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum PriceUnit {
    /// One GPU of the named model for an hour (`NVIDIA H200`, as `nvidia-smi` names it).
    GpuHour,
    /// A whole machine for an hour, named by instance type (`p5en.48xlarge`) or host name.
    Hour,
}

impl PriceUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceUnit::GpuHour => "gpu-hour",
            PriceUnit::Hour => "hour",
        }
    }

    pub fn parse(text: &str) -> Result<PriceUnit, ModelError> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "gpu-hour" | "gpu-hours" | "gpu" | "gpuh" => Ok(PriceUnit::GpuHour),
            "hour" | "hours" | "h" | "machine-hour" | "instance-hour" => Ok(PriceUnit::Hour),
            _ => Err(ModelError::InvalidKey {
                what: "price unit",
                value: text.to_owned(),
                reason: "expected gpu-hour (a GPU model) or hour (an instance type or host)",
            }),
        }
    }
}

impl std::fmt::Display for PriceUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the price table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct PriceEntry {
    /// The entry's identity (a UUIDv7, 32 hex digits): its team-doc key is `price/<id>`.
    pub id: String,
    /// A GPU model (`NVIDIA H200`) for [`PriceUnit::GpuHour`], an instance type or a host name
    /// for [`PriceUnit::Hour`]. Matched case-insensitively.
    pub target: String,
    pub unit: PriceUnit,
    /// US dollars per unit; zero is a price (an owned machine), negative is refused.
    pub usd: f64,
    /// Unix milliseconds from which it applies; `None`: from the beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub from_ms: Option<i64>,
    pub set_by: String,
    pub set_ms: i64,
}

/// The longest price target (a GPU model, instance type or host name), in bytes.
pub const MAX_TARGET_LEN: usize = 256;
/// The highest price per hour accepted: no GPU or machine costs a million dollars an hour, so a
/// larger number is a typing mistake (and keeps every sum far from overflow).
pub const MAX_USD_PER_HOUR: f64 = 1_000_000.0;

impl PriceEntry {
    /// Checks a price as a user or a peer gave it: a target of 1-256 printable characters and a
    /// finite, non-negative amount below [`MAX_USD_PER_HOUR`].
    pub fn validate(&self) -> Result<(), ModelError> {
        validate_target(&self.target)?;
        validate_usd(self.usd, &self.target)
    }

    /// Whether this entry prices `name` (case-insensitive, surrounding blanks ignored).
    pub fn names(&self, name: &str) -> bool {
        self.target.trim().eq_ignore_ascii_case(name.trim())
    }
}

pub(crate) fn validate_target(target: &str) -> Result<(), ModelError> {
    let bad = |reason| {
        Err(ModelError::InvalidKey {
            what: "price target",
            value: target.to_owned(),
            reason,
        })
    };
    if target.trim().is_empty() {
        return bad("must name a GPU model, an instance type or a host");
    }
    if target.len() > MAX_TARGET_LEN {
        return bad("longer than 256 bytes");
    }
    if target.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    Ok(())
}

pub(crate) fn validate_usd(usd: f64, what: &str) -> Result<(), ModelError> {
    let reason = if usd.is_nan() || usd.is_infinite() {
        "is not a finite number"
    } else if usd < 0.0 {
        "is negative"
    } else if usd > MAX_USD_PER_HOUR {
        "is more than $1,000,000"
    } else {
        return Ok(());
    };
    Err(ModelError::InvalidKey {
        what: "amount in US dollars",
        value: format!("{usd} for '{what}'"),
        reason,
    })
}

/// A piece of time with one rate: `[lo, hi)` in Unix ms, US dollars per unit-hour (`None`: no
/// price applies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePiece {
    pub lo: i64,
    pub hi: i64,
    pub usd_per_hour: Option<f64>,
}

/// The price table: every entry, ordered for lookups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    /// Sorted by (unit, target lower-cased, from, set time, id).
    entries: Vec<PriceEntry>,
}

fn order_key(e: &PriceEntry) -> (PriceUnit, String, i64, i64, &str) {
    (
        e.unit,
        e.target.trim().to_lowercase(),
        e.from_ms.unwrap_or(i64::MIN),
        e.set_ms,
        e.id.as_str(),
    )
}

impl PriceTable {
    /// A table of `entries`; invalid ones (a peer may have written anything) are left out and
    /// returned, so the caller can say so.
    pub fn new(entries: Vec<PriceEntry>) -> (PriceTable, Vec<(PriceEntry, ModelError)>) {
        let mut ok = Vec::with_capacity(entries.len());
        let mut bad = Vec::new();
        for e in entries {
            match e.validate() {
                Ok(()) => ok.push(e),
                Err(why) => bad.push((e, why)),
            }
        }
        ok.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
        (PriceTable { entries: ok }, bad)
    }

    pub fn entries(&self) -> &[PriceEntry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries for one target, in effect order (latest `from` last; among equal `from`s
    /// the one set last, last).
    fn of<'a, 'n>(
        &'a self,
        unit: PriceUnit,
        name: &'n str,
    ) -> impl Iterator<Item = &'a PriceEntry> + use<'a, 'n> {
        self.entries
            .iter()
            .filter(move |e| e.unit == unit && e.names(name))
    }

    /// Whether any entry prices `name` per `unit`.
    pub fn knows(&self, unit: PriceUnit, name: &str) -> bool {
        self.of(unit, name).next().is_some()
    }

    /// The entry in effect for `name` at `at_ms`.
    pub fn effective(&self, unit: PriceUnit, name: &str, at_ms: i64) -> Option<&PriceEntry> {
        self.of(unit, name)
            .filter(|e| e.from_ms.is_none_or(|f| f <= at_ms))
            .last()
    }

    /// The rates of `name` over `[lo, hi)`, split where an entry takes effect.
    pub fn pieces(&self, unit: PriceUnit, name: &str, lo: i64, hi: i64) -> Vec<RatePiece> {
        let mut out = Vec::new();
        if hi <= lo {
            return out;
        }
        let mut cuts: Vec<i64> = self
            .of(unit, name)
            .filter_map(|e| e.from_ms)
            .filter(|f| *f > lo && *f < hi)
            .collect();
        cuts.dedup();
        let mut start = lo;
        for end in cuts.into_iter().chain(std::iter::once(hi)) {
            out.push(RatePiece {
                lo: start,
                hi: end,
                usd_per_hour: self.effective(unit, name, start).map(|e| e.usd),
            });
            start = end;
        }
        out
    }

    /// The first instant after `at_ms` at which an entry for `name` takes effect.
    pub fn next_change(&self, unit: PriceUnit, name: &str, at_ms: i64) -> Option<i64> {
        self.of(unit, name)
            .filter_map(|e| e.from_ms)
            .filter(|f| *f > at_ms)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(
        target: &str,
        unit: PriceUnit,
        usd: f64,
        from: Option<i64>,
        set: i64,
    ) -> PriceEntry {
        PriceEntry {
            id: format!("{set:032x}"),
            target: target.into(),
            unit,
            usd,
            from_ms: from,
            set_by: "lead".into(),
            set_ms: set,
        }
    }

    #[test]
    fn the_entry_in_effect_is_the_latest_from_then_the_latest_set() {
        let (table, bad) = PriceTable::new(vec![
            entry("NVIDIA H200", PriceUnit::GpuHour, 3.5, None, 1),
            entry("nvidia h200", PriceUnit::GpuHour, 4.0, Some(1000), 2),
            // A correction of the 1000 price, set later: it wins from 1000 on.
            entry("NVIDIA H200", PriceUnit::GpuHour, 3.9, Some(1000), 3),
            entry("NVIDIA H200", PriceUnit::Hour, 99.0, None, 4),
        ]);
        assert!(bad.is_empty());
        let at = |t| {
            table
                .effective(PriceUnit::GpuHour, "NVIDIA H200", t)
                .map(|e| e.usd)
        };
        assert_eq!(at(0), Some(3.5));
        assert_eq!(at(999), Some(3.5));
        assert_eq!(at(1000), Some(3.9));
        assert_eq!(
            table.pieces(PriceUnit::GpuHour, " NVIDIA H200 ", 500, 2000),
            vec![
                RatePiece {
                    lo: 500,
                    hi: 1000,
                    usd_per_hour: Some(3.5)
                },
                RatePiece {
                    lo: 1000,
                    hi: 2000,
                    usd_per_hour: Some(3.9)
                },
            ]
        );
        assert_eq!(
            table.next_change(PriceUnit::GpuHour, "NVIDIA H200", 10),
            Some(1000)
        );
        assert_eq!(
            table.next_change(PriceUnit::GpuHour, "NVIDIA H200", 1000),
            None
        );
        assert!(!table.knows(PriceUnit::GpuHour, "NVIDIA A100"));
    }

    #[test]
    fn a_price_from_a_date_leaves_time_before_it_unpriced() {
        let (table, _) = PriceTable::new(vec![entry("p5", PriceUnit::Hour, 60.0, Some(100), 1)]);
        assert_eq!(
            table.pieces(PriceUnit::Hour, "p5", 0, 200),
            vec![
                RatePiece {
                    lo: 0,
                    hi: 100,
                    usd_per_hour: None
                },
                RatePiece {
                    lo: 100,
                    hi: 200,
                    usd_per_hour: Some(60.0)
                },
            ]
        );
    }

    #[test]
    fn bad_prices_are_named_and_left_out() {
        let (table, bad) = PriceTable::new(vec![
            entry("NVIDIA H200", PriceUnit::GpuHour, -3.5, None, 1),
            entry("", PriceUnit::GpuHour, 1.0, None, 2),
            entry("x", PriceUnit::GpuHour, f64::NAN, None, 3),
            entry("ok", PriceUnit::GpuHour, 0.0, None, 4),
        ]);
        assert_eq!(table.entries().len(), 1);
        let messages: Vec<String> = bad.iter().map(|(_, e)| e.to_string()).collect();
        assert_eq!(
            messages[0],
            "invalid amount in US dollars '-3.5 for 'NVIDIA H200'': is negative"
        );
        assert!(messages[1].contains("price target"), "{}", messages[1]);
        assert!(messages[2].contains("finite"), "{}", messages[2]);
        assert!(
            PriceUnit::parse("fortnight")
                .unwrap_err()
                .to_string()
                .contains("gpu-hour")
        );
        assert_eq!(PriceUnit::parse("GPU_hour").unwrap(), PriceUnit::GpuHour);
    }
}
