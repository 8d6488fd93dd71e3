//! Cost governance, as pure figures: the team's price table, what a run cost (GPU-hours by
//! GPU-model price plus the machine's hourly price, split where prices change), idle GPU time
//! from sampled utilisation, and what a family of runs spent and bought (improvement per
//! dollar, the cost-vs-metric frontier, budgets). No IO: `cairn-core` reads the samples, the
//! runs and the team doc, and keeps the results in a projection.

mod calendar;
mod family;
mod idle;
mod price;
mod run;

pub use calendar::{Period, format_date, format_minute, parse_utc};
pub use family::{
    Baseline, BudgetEntry, BudgetPeriod, Direction, FAMILY_BY_HINT, FamilyBy, FamilyKey, FamilyRun,
    Improvement, Marginal, best_over_time, budgets_in_effect, improvement, pareto_frontier,
};
pub use idle::{
    DEFAULT_IDLE_THRESHOLD_PCT, GAP_FACTOR, GpuTrace, IdleFigures, IdleSpan, MAX_SPANS, UtilSample,
    idle_figures,
};
pub use price::{MAX_TARGET_LEN, MAX_USD_PER_HOUR, PriceEntry, PriceTable, PriceUnit, RatePiece};
pub use run::{PriceSource, RunCost, RunPricing};
