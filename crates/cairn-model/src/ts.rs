//! TypeScript names for wire shapes that no Rust type spells out (only with the `ts` feature,
//! for `cairn-wire`): fields with custom serialisation point their bindings here.

/// An `f64` as Cairn sends it: a JSON number when finite, else `"NaN"`, `"Infinity"` or
/// `"-Infinity"` (JSON has no non-finite numbers). See `MetricSummary` and
/// `cairn_core::json_number`.
#[derive(Debug, ts_rs::TS)]
#[ts(type = r#"number | "NaN" | "Infinity" | "-Infinity""#)]
pub struct Num;
