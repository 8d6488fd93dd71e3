//! Integration tests of cairn-charts: golden SVG snapshots of every chart kind, properties of the
//! downsampler, edge cases, the chart map and PNG output.

mod edge;
mod fixtures;
mod golden;
mod map;
mod png;
mod props;
