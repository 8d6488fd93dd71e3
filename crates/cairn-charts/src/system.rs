//! The system-metrics panel: a grid of small line charts (CPU, memory, GPU utilisation, GPU
//! memory, GPU power, …), and [`system_groups`], which sorts a run's `system/*` metric keys (the
//! names MLflow's system-metrics logger and `cairn exec` use) into those charts.

use plotters::prelude::DrawingBackend;

use crate::canvas::{Align, Canvas, TITLE_PX, fit_text};
use crate::error::ChartError;
use crate::frame::Frame;
use crate::map::{PixelRect, SystemMap};
use crate::series::LineChart;

/// A grid of line charts sharing a theme and x axis kind.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemPanel {
    pub title: Option<String>,
    /// The charts, filled into the grid row by row.
    pub charts: Vec<LineChart>,
}

/// The keys of one chart of the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemGroup {
    /// The chart title: `GPU utilisation (%)`.
    pub title: String,
    /// The metric keys drawn in it, as given.
    pub keys: Vec<String>,
}

/// Sorts system metric keys into the panel's charts: CPU, memory, then per-GPU utilisation,
/// memory and power, then any other `system/` key on its own; one chart per unit (percent,
/// megabytes, watts). Keys not under `system/` are ignored.
pub fn system_groups<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<SystemGroup> {
    let mut groups: Vec<(u8, SystemGroup)> = Vec::new();
    for key in keys {
        let Some(name) = key.strip_prefix("system/") else {
            continue;
        };
        let unit = if name.ends_with("_percentage") {
            " (%)"
        } else if name.ends_with("_megabytes") {
            " (MB)"
        } else if name.ends_with("_watts") {
            " (W)"
        } else {
            ""
        };
        let gpu = name.starts_with("gpu");
        let (rank, what) = if name.contains("cpu") {
            (0, "CPU".to_owned())
        } else if !gpu && name.contains("memory") {
            (1, "Memory".to_owned())
        } else if gpu && name.contains("utilization") {
            (2, "GPU utilisation".to_owned())
        } else if gpu && name.contains("memory") {
            (3, "GPU memory".to_owned())
        } else if gpu && name.contains("power") {
            (4, "GPU power".to_owned())
        } else {
            (5, name.to_owned())
        };
        let title = if rank == 5 {
            what
        } else {
            format!("{what}{unit}")
        };
        match groups.iter_mut().find(|(_, g)| g.title == title) {
            Some((_, g)) => g.keys.push(key.to_owned()),
            None => groups.push((
                rank,
                SystemGroup {
                    title,
                    keys: vec![key.to_owned()],
                },
            )),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.title.cmp(&b.1.title)));
    groups
        .into_iter()
        .map(|(_, mut g)| {
            g.keys.sort();
            g
        })
        .collect()
}

pub(crate) fn draw<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    panel: &SystemPanel,
    frame: &Frame,
    region: PixelRect,
) -> Result<SystemMap, ChartError> {
    let pal = frame.theme.palette();
    let title_h = if panel.title.is_some() { 26 } else { 0 };
    if let Some(t) = &panel.title {
        cv.text(
            &fit_text(t, TITLE_PX, f64::from(region.width)),
            (region.x, region.y + 12),
            TITLE_PX,
            pal.text,
            Align::Start,
            true,
            false,
        )?;
    }
    let n = panel.charts.len();
    if n == 0 {
        cv.text(
            "no system metrics",
            (region.x + region.width / 2, region.y + region.height / 2),
            TITLE_PX,
            pal.muted,
            Align::Middle,
            false,
            false,
        )?;
        return Ok(SystemMap { panels: Vec::new() });
    }
    let cols = if region.width >= 800 && n > 1 { 2 } else { 1 };
    let rows = n.div_ceil(cols) as i32;
    let cell_w = region.width / cols as i32;
    let cell_h = (region.height - title_h) / rows;
    let mut panels = Vec::with_capacity(n);
    for (i, chart) in panel.charts.iter().enumerate() {
        let (r, c) = ((i / cols) as i32, (i % cols) as i32);
        let cell = PixelRect {
            x: region.x + c * cell_w,
            y: region.y + title_h + r * cell_h,
            width: cell_w - 8,
            height: cell_h - 6,
        };
        panels.push(crate::line::draw_in(cv, chart, frame, cell, false)?);
    }
    Ok(SystemMap { panels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_into_charts_by_kind_and_unit() {
        let keys = [
            "loss",
            "system/gpu_1_utilization_percentage",
            "system/gpu_0_utilization_percentage",
            "system/system_memory_usage_megabytes",
            "system/system_memory_usage_percentage",
            "system/cpu_utilization_percentage",
            "system/gpu_0_memory_usage_megabytes",
            "system/gpu_0_power_usage_watts",
            "system/disk_usage_percentage",
        ];
        let groups = system_groups(keys);
        let titles: Vec<&str> = groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "CPU (%)",
                "Memory (%)",
                "Memory (MB)",
                "GPU utilisation (%)",
                "GPU memory (MB)",
                "GPU power (W)",
                "disk_usage_percentage"
            ]
        );
        assert_eq!(
            groups[3].keys,
            [
                "system/gpu_0_utilization_percentage",
                "system/gpu_1_utilization_percentage"
            ]
        );
    }
}
