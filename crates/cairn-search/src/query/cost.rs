//! The cost fields of the query language: what a run cost and how much of its GPU time sat
//! idle, as the cost projection computed them (`cost.usd > 100`, `cost.idle_share >= 0.3`, and
//! the bare `cost` and `idle` for `cost.usd` and `cost.idle_share`, so `sort:cost` reads).

/// A run's cost figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CostField {
    /// `cost.usd`: US dollars; missing on an unpriced run.
    Usd,
    /// `cost.idle_usd`: what its idle GPU time cost.
    IdleUsd,
    /// `cost.idle_share`: idle share of the observed GPU time, 0 to 1.
    IdleShare,
    /// `cost.gpu_hours`: GPUs times hours held.
    GpuHours,
}

impl CostField {
    pub const ALL: [CostField; 4] = [Self::Usd, Self::IdleUsd, Self::IdleShare, Self::GpuHours];

    /// The name after `cost.` as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Usd => "usd",
            Self::IdleUsd => "idle_usd",
            Self::IdleShare => "idle_share",
            Self::GpuHours => "gpu_hours",
        }
    }

    /// The index's column of it.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::Usd => "cost_usd",
            Self::IdleUsd => "cost_idle_usd",
            Self::IdleShare => "cost_idle_share",
            Self::GpuHours => "cost_gpu_hours",
        }
    }

    /// The field `cost.NAME` names (`dollars` for `usd`, `idle` for `idle_share`).
    pub(crate) fn lookup(name: &str) -> Option<CostField> {
        let n = name.to_ascii_lowercase();
        Some(match n.as_str() {
            "usd" | "dollars" | "total" => Self::Usd,
            "idle_usd" | "idle_dollars" => Self::IdleUsd,
            "idle_share" | "idle" | "idle_fraction" => Self::IdleShare,
            "gpu_hours" | "gpuh" => Self::GpuHours,
            _ => return None,
        })
    }

    /// A bare field name standing for one: `cost` (dollars) and `idle` (the idle share).
    pub(crate) fn bare(name: &str) -> Option<CostField> {
        match name.to_ascii_lowercase().as_str() {
            "cost" => Some(Self::Usd),
            "idle" => Some(Self::IdleShare),
            _ => None,
        }
    }

    pub(crate) fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}
