//! Metric curves from CSV, as training loops write them: a step column, an optional time column,
//! and one column per metric (e.g. `step,unix_ms,loss,acc,lr`).

use crate::views::MetricPoint as Point;

const STEP_COLUMNS: &[&str] = &["step", "global_step", "iteration", "iter", "epoch"];
const TIME_COLUMNS: &[&str] = &["unix_ms", "timestamp_ms", "ts_ms", "time_ms"];

/// What is wrong with a metrics CSV. Lines are numbered from 1.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsvError {
    #[error("the file is empty")]
    Empty,
    #[error("no step column: expected one of {}", STEP_COLUMNS.join(", "))]
    NoStepColumn,
    #[error("no metric columns besides '{0}'")]
    NoMetricColumns(String),
    #[error("line {line}: {found} fields, the header has {expected}")]
    FieldCount {
        line: usize,
        found: usize,
        expected: usize,
    },
    #[error("line {line}: step '{value}' is not a whole number")]
    BadStep { line: usize, value: String },
    #[error("line {line}: time '{value}' is not unix milliseconds")]
    BadTime { line: usize, value: String },
    #[error("line {line}: {column} '{value}' is not a number")]
    BadValue {
        line: usize,
        column: String,
        value: String,
    },
}

/// Parses `text` into one series per metric column. Rows without a time column get `now`.
pub fn parse(text: &str, now_ms: i64) -> Result<Vec<(String, Vec<Point>)>, CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(CsvError::Empty)?;
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_owned()).collect();
    let find = |names: &[&str]| {
        cols.iter()
            .position(|c| names.contains(&c.to_ascii_lowercase().as_str()))
    };
    let step_col = find(STEP_COLUMNS).ok_or(CsvError::NoStepColumn)?;
    let time_col = find(TIME_COLUMNS);
    let metric_cols: Vec<usize> = (0..cols.len())
        .filter(|&i| i != step_col && Some(i) != time_col)
        .collect();
    if metric_cols.is_empty() {
        return Err(CsvError::NoMetricColumns(cols[step_col].clone()));
    }
    let mut series: Vec<(String, Vec<Point>)> = metric_cols
        .iter()
        .map(|&i| (cols[i].clone(), Vec::new()))
        .collect();
    for (n, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != cols.len() {
            return Err(CsvError::FieldCount {
                line: n + 1,
                found: cells.len(),
                expected: cols.len(),
            });
        }
        let step: i64 = cells[step_col].parse().map_err(|_| CsvError::BadStep {
            line: n + 1,
            value: cells[step_col].to_owned(),
        })?;
        let ts = match time_col {
            Some(c) => cells[c].parse().map_err(|_| CsvError::BadTime {
                line: n + 1,
                value: cells[c].to_owned(),
            })?,
            None => now_ms,
        };
        for (s, &c) in series.iter_mut().zip(&metric_cols) {
            if cells[c].is_empty() {
                continue;
            }
            // Numbers, and the non-finite spellings every decoder of Cairn reads.
            let value =
                cairn_model::num::parse_text(cells[c]).ok_or_else(|| CsvError::BadValue {
                    line: n + 1,
                    column: cols[c].clone(),
                    value: cells[c].to_owned(),
                })?;
            s.1.push(Point {
                step,
                ts_ms: ts,
                value,
            });
        }
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_training_log() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/gpu-box/metrics.csv"
        );
        let text = std::fs::read_to_string(path).expect("fixture metrics.csv");
        let series = parse(&text, 0).unwrap();
        let keys: Vec<&str> = series.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["loss", "acc", "lr"]);
        assert_eq!(series[0].1.len(), 300);
        assert_eq!(
            series[0].1[0],
            Point {
                step: 0,
                ts_ms: 1_795_752_388_045,
                value: 2.30515718460083
            }
        );
        assert_eq!(series[1].1[299].step, 2990);
    }

    #[test]
    fn bad_cells_name_the_line_and_column() {
        let err = parse("step,loss\n0,1.0\n1,abc\n", 0)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "line 3: loss 'abc' is not a number");
        let err = parse("epoch,loss\n0,1.0,3\n", 0).unwrap_err().to_string();
        assert!(err.contains("line 2: 3 fields"), "{err}");
        assert!(
            parse("loss,acc\n1,2\n", 0)
                .unwrap_err()
                .to_string()
                .contains("no step column")
        );
    }
}
