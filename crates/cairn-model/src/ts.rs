//! TypeScript names for wire shapes that no Rust field type spells out (only with the `ts`
//! feature, for `cairn-wire`): fields with custom serialisation point their bindings here.

/// An `f64` as Cairn sends it (see [`crate::num`]): fields serialised `with = "crate::num"`
/// bind to it with `#[ts(as = "cairn_model::ts::Num")]`.
pub use crate::num::Num;
