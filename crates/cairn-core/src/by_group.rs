//! Metrics by group, as fairness toolkits write them: fairlearn's `MetricFrame.by_group` (a
//! pandas DataFrame, one row per group of the sensitive attributes, one column per metric)
//! through `to_csv()` or `to_json()` in any of pandas' orients that keep the table whole, and
//! MLflow's table artifacts (`mlflow.log_table`: `{"columns": […], "data": [[…], …]}`).
//!
//! What is read, and how the sensitive attributes are found:
//! - CSV (`by_group.to_csv()`): the header names every column; the group columns come first.
//!   They are the columns `attributes` names, else the leading columns holding a value that is
//!   not a number (pandas writes the index, the groups, first).
//! - `orient="table"`: the schema's `primaryKey` names the group columns.
//! - `orient="records"` (`by_group.reset_index()`) and MLflow's tables (`orient="split"`
//!   without an index): as CSV, the named or non-numeric columns are the groups.
//! - `orient="split"` with an `index`, and pandas' default `orient="columns"`
//!   (`{"acc": {"female": 0.9, …}}`): the groups are index labels that carry no attribute
//!   name, so `attributes` must name it (one per level of a multi-level index).
//!
//! Values are numbers, `null` (NaN, as pandas writes it) or the strings `"NaN"`, `"Infinity"`.
//! Everything is bounded: the text ([`MAX_BY_GROUP_BYTES`]), rows (Cairn's slice limit),
//! columns, and each label (the slice rules of `cairn_model::Slice`). A file of another shape
//! is an error that says which shape was expected and what was found.

use std::collections::BTreeMap;

use cairn_model::{MAX_EVAL_METRICS, MAX_SLICE_PAIRS, MAX_SLICES, Num, Slice};
use serde_json::Value;

/// The largest by-group file read, in bytes.
pub const MAX_BY_GROUP_BYTES: usize = 16 << 20;

/// What is wrong with a by-group file. Rows and lines are numbered from 1.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ByGroupError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is {0} bytes; a by-group table is read up to {MAX_BY_GROUP_BYTES}")]
    TooLarge(usize),
    #[error("not JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Shape(String),
    #[error("line {line}: {found} fields, the header has {expected}")]
    FieldCount {
        line: usize,
        found: usize,
        expected: usize,
    },
    #[error("line {line}: unterminated quoted field")]
    Quote { line: usize },
    #[error("group '{group}': metric '{metric}' is {found}, not a number")]
    NotANumber {
        group: String,
        metric: String,
        found: String,
    },
    #[error("{found} groups; an evaluation holds at most {MAX_SLICES} slices")]
    TooManyGroups { found: usize },
    #[error("{found} metric columns; a slice holds at most {MAX_EVAL_METRICS}")]
    TooManyMetrics { found: usize },
    #[error("group '{group}': {reason}")]
    BadGroup { group: String, reason: String },
    #[error("group '{0}' appears twice")]
    DuplicateGroup(String),
}

fn shape(msg: impl Into<String>) -> ByGroupError {
    ByGroupError::Shape(msg.into())
}

/// A table: column names and rows of cells (`None` for JSON `null` / an empty CSV cell).
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Option<Value>>>,
    /// Where each row's group comes from when it is not in its cells: index labels.
    index: Option<Vec<Vec<String>>>,
    /// Group columns the format itself names (`orient="table"`'s primary key).
    keys: Option<Vec<String>>,
    /// Whether the columns are in the writer's order (CSV) rather than sorted by name (JSON
    /// objects).
    ordered: bool,
}

/// Parses a by-group table into slices (`sex=female` → its metrics). `attributes` names the
/// sensitive attributes where the file does not (see the module doc), in index-level order.
pub fn parse(
    text: &str,
    attributes: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, Num>>, ByGroupError> {
    if text.len() > MAX_BY_GROUP_BYTES {
        return Err(ByGroupError::TooLarge(text.len()));
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Err(ByGroupError::Empty);
    }
    let table = if trimmed.starts_with(['{', '[']) {
        let v: Value =
            serde_json::from_str(trimmed).map_err(|e| ByGroupError::Json(e.to_string()))?;
        json_table(v)?
    } else {
        csv_table(trimmed)?
    };
    slices(table, attributes)
}

const SHAPES: &str = "expected a by-group table: CSV with a header, or pandas JSON \
     (orient 'columns', 'table', 'split' or 'records')";

fn json_table(v: Value) -> Result<Table, ByGroupError> {
    match v {
        Value::Array(rows) => records(rows),
        Value::Object(mut o) => {
            if let (Some(schema), Some(data)) = (o.get("schema"), o.get("data")) {
                let keys = schema.get("primaryKey").and_then(Value::as_array).map(|k| {
                    k.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                });
                let data = data.clone();
                let mut t = match data {
                    Value::Array(rows) => records(rows)?,
                    other => {
                        return Err(shape(format!(
                            "orient 'table': 'data' is {}, expected a list of rows",
                            kind(&other)
                        )));
                    }
                };
                t.keys = keys;
                return Ok(t);
            }
            if o.contains_key("columns") && o.contains_key("data") {
                return split(&mut o);
            }
            columns_orient(o)
        }
        other => Err(shape(format!("{SHAPES}; found {}", kind(&other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn label(v: &Value) -> Result<String, ByGroupError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(shape(format!(
            "a group label is {}, expected text or a number",
            kind(other)
        ))),
    }
}

/// `[{"sex": "f", "acc": 0.9}, …]`: the columns are the keys, in the order first seen.
fn records(rows: Vec<Value>) -> Result<Table, ByGroupError> {
    if rows.len() > MAX_SLICES {
        return Err(ByGroupError::TooManyGroups { found: rows.len() });
    }
    let mut columns: Vec<String> = Vec::new();
    let mut objects = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let Value::Object(o) = row else {
            return Err(shape(format!(
                "row {} is {}, expected an object of column → value ({SHAPES})",
                i + 1,
                kind(&row)
            )));
        };
        for k in o.keys() {
            if !columns.contains(k) {
                if columns.len() >= MAX_EVAL_METRICS + MAX_SLICE_PAIRS {
                    return Err(ByGroupError::TooManyMetrics {
                        found: columns.len() + 1,
                    });
                }
                columns.push(k.clone());
            }
        }
        objects.push(o);
    }
    let rows = objects
        .into_iter()
        .map(|mut o| columns.iter().map(|c| o.remove(c)).collect())
        .collect();
    Ok(Table {
        columns,
        rows,
        index: None,
        keys: None,
        ordered: false,
    })
}

/// `{"columns": […], "index": […], "data": [[…]]}`; MLflow's tables have no index.
fn split(o: &mut serde_json::Map<String, Value>) -> Result<Table, ByGroupError> {
    let columns: Vec<String> = match o.remove("columns") {
        Some(Value::Array(c)) => c.iter().map(label).collect::<Result<_, _>>()?,
        _ => return Err(shape("orient 'split': 'columns' must be a list of names")),
    };
    if columns.len() > MAX_EVAL_METRICS + MAX_SLICE_PAIRS {
        return Err(ByGroupError::TooManyMetrics {
            found: columns.len(),
        });
    }
    let data = match o.remove("data") {
        Some(Value::Array(d)) => d,
        _ => return Err(shape("orient 'split': 'data' must be a list of rows")),
    };
    if data.len() > MAX_SLICES {
        return Err(ByGroupError::TooManyGroups { found: data.len() });
    }
    let mut rows = Vec::with_capacity(data.len());
    for (i, row) in data.into_iter().enumerate() {
        match row {
            Value::Array(cells) if cells.len() == columns.len() => {
                rows.push(cells.into_iter().map(Some).collect());
            }
            Value::Array(cells) => {
                return Err(shape(format!(
                    "orient 'split': row {} has {} values for {} columns",
                    i + 1,
                    cells.len(),
                    columns.len()
                )));
            }
            other => {
                return Err(shape(format!(
                    "orient 'split': row {} is {}, expected a list",
                    i + 1,
                    kind(&other)
                )));
            }
        }
    }
    let index = match o.remove("index") {
        None => None,
        Some(Value::Array(ix)) if ix.len() == rows.len() => Some(
            ix.iter()
                .map(|l| match l {
                    Value::Array(levels) => levels.iter().map(label).collect(),
                    one => label(one).map(|s| vec![s]),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(shape(
                "orient 'split': 'index' must be a list with one label per row",
            ));
        }
    };
    Ok(Table {
        columns,
        rows,
        index,
        keys: None,
        ordered: true,
    })
}

/// pandas' default: `{"acc": {"female": 0.9, "male": 0.8}, …}`, a metric per key.
fn columns_orient(o: serde_json::Map<String, Value>) -> Result<Table, ByGroupError> {
    if o.len() > MAX_EVAL_METRICS {
        return Err(ByGroupError::TooManyMetrics { found: o.len() });
    }
    let mut groups: Vec<String> = Vec::new();
    let mut by_metric: Vec<(String, serde_json::Map<String, Value>)> = Vec::new();
    for (metric, v) in o {
        match v {
            Value::Object(per_group) => {
                for g in per_group.keys() {
                    if !groups.contains(g) {
                        if groups.len() >= MAX_SLICES {
                            return Err(ByGroupError::TooManyGroups {
                                found: groups.len() + 1,
                            });
                        }
                        groups.push(g.clone());
                    }
                }
                by_metric.push((metric, per_group));
            }
            other => {
                return Err(shape(format!(
                    "'{metric}' is {}, expected an object of group → value: this looks like a \
                     Series (a MetricFrame of one metric), whose JSON names no metric; write \
                     by_group.to_json(orient='table') or by_group.to_csv(), or give the \
                     MetricFrame its metrics as a dict",
                    kind(&other)
                )));
            }
        }
    }
    if let Some(g) = groups
        .iter()
        .find(|g| g.starts_with('(') && g.ends_with(')'))
    {
        return Err(shape(format!(
            "group '{g}' is a tuple: a multi-level index written with pandas' default orient \
             loses its levels; write by_group.to_json(orient='table') or by_group.to_csv()"
        )));
    }
    let columns: Vec<String> = by_metric.iter().map(|(m, _)| m.clone()).collect();
    let rows = groups
        .iter()
        .map(|g| {
            by_metric
                .iter_mut()
                .map(|(_, per_group)| per_group.remove(g))
                .collect()
        })
        .collect();
    Ok(Table {
        columns,
        rows,
        index: Some(groups.into_iter().map(|g| vec![g]).collect()),
        keys: None,
        ordered: false,
    })
}

/// CSV as pandas writes it: comma-separated, fields with commas, quotes or line breaks in
/// double quotes (a doubled quote stands for itself). An empty cell is NaN.
fn csv_table(text: &str) -> Result<Table, ByGroupError> {
    let mut records: Vec<(usize, Vec<String>)> = Vec::new();
    let mut field = String::new();
    let mut record: Vec<String> = Vec::new();
    let mut line = 1;
    let mut start_line = 1;
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                any = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' => {}
            '\n' => {
                if any || !field.is_empty() {
                    record.push(std::mem::take(&mut field));
                    records.push((start_line, std::mem::take(&mut record)));
                    if records.len() > MAX_SLICES + 1 {
                        return Err(ByGroupError::TooManyGroups {
                            found: records.len() - 1,
                        });
                    }
                }
                any = false;
                line += 1;
                start_line = line;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(ByGroupError::Quote { line: start_line });
    }
    if any || !field.is_empty() {
        record.push(field);
        records.push((start_line, record));
    }
    let mut records = records.into_iter();
    let (_, header) = records.next().ok_or(ByGroupError::Empty)?;
    if header.len() > MAX_EVAL_METRICS + MAX_SLICE_PAIRS {
        return Err(ByGroupError::TooManyMetrics {
            found: header.len(),
        });
    }
    let mut rows = Vec::new();
    for (line, r) in records {
        if r.len() != header.len() {
            return Err(ByGroupError::FieldCount {
                line,
                found: r.len(),
                expected: header.len(),
            });
        }
        if rows.len() >= MAX_SLICES {
            return Err(ByGroupError::TooManyGroups {
                found: rows.len() + 1,
            });
        }
        rows.push(
            r.into_iter()
                .map(|cell| (!cell.is_empty()).then_some(Value::String(cell)))
                .collect(),
        );
    }
    Ok(Table {
        columns: header.into_iter().map(|h| h.trim().to_owned()).collect(),
        rows,
        index: None,
        keys: None,
        ordered: true,
    })
}

/// A cell as a metric value: a number, null or empty (NaN), or text that is a number.
fn number(cell: &Option<Value>) -> Result<f64, String> {
    match cell {
        None | Some(Value::Null) => Ok(f64::NAN),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| n.to_string()),
        Some(Value::String(s)) => cairn_model::num::parse_text(s).ok_or_else(|| format!("'{s}'")),
        Some(other) => Err(kind(other).to_owned()),
    }
}

fn is_numeric(cell: &Option<Value>) -> bool {
    number(cell).is_ok()
}

fn slices(
    t: Table,
    attributes: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, Num>>, ByGroupError> {
    if t.rows.len() > MAX_SLICES {
        return Err(ByGroupError::TooManyGroups {
            found: t.rows.len(),
        });
    }
    // Which columns hold the groups (by index), and the attribute names of index labels.
    let (group_cols, index_names): (Vec<usize>, Vec<String>) = match &t.index {
        Some(ix) => {
            let levels = ix.first().map_or(0, Vec::len);
            if attributes.len() != levels {
                return Err(shape(format!(
                    "the groups are index labels without attribute names ({levels} level{}): \
                     name the sensitive attribute{} with --attribute (e.g. --attribute sex), \
                     or write by_group.to_json(orient='table') or by_group.to_csv()",
                    if levels == 1 { "" } else { "s" },
                    if levels == 1 { "" } else { "s, in order" },
                )));
            }
            (Vec::new(), attributes.to_vec())
        }
        None => {
            let named: Vec<String> = if !attributes.is_empty() {
                attributes.to_vec()
            } else if let Some(k) = &t.keys {
                k.clone()
            } else {
                // The columns with a value that is no number; in a table whose columns keep
                // their order, only the leading ones (pandas writes the index, the groups,
                // first).
                let textual = |i: usize| {
                    t.rows
                        .iter()
                        .any(|r| matches!(&r[i], Some(Value::String(_))) && !is_numeric(&r[i]))
                };
                let cols = t.columns.iter().enumerate();
                if t.ordered {
                    cols.take_while(|(i, _)| textual(*i))
                        .map(|(_, c)| c.clone())
                        .collect()
                } else {
                    cols.filter(|(i, _)| textual(*i))
                        .map(|(_, c)| c.clone())
                        .collect()
                }
            };
            let mut cols = Vec::new();
            for a in &named {
                match t.columns.iter().position(|c| c == a) {
                    Some(i) => cols.push(i),
                    None => {
                        return Err(shape(format!(
                            "no column '{a}' among {}",
                            t.columns.join(", ")
                        )));
                    }
                }
            }
            if cols.is_empty() {
                return Err(shape(format!(
                    "no group column: every column ({}) is numeric; name the sensitive \
                     attribute's column with --attribute",
                    t.columns.join(", ")
                )));
            }
            (cols, Vec::new())
        }
    };
    if let Some(i) = group_cols.iter().find(|i| t.columns[**i].is_empty()) {
        return Err(shape(format!(
            "group column {} has no name (an unnamed index): name it with --attribute",
            i + 1
        )));
    }
    let metric_cols: Vec<usize> = (0..t.columns.len())
        .filter(|i| !group_cols.contains(i))
        .collect();
    if metric_cols.is_empty() {
        return Err(shape("no metric columns besides the groups"));
    }
    if metric_cols.len() > MAX_EVAL_METRICS {
        return Err(ByGroupError::TooManyMetrics {
            found: metric_cols.len(),
        });
    }
    let mut out = BTreeMap::new();
    for (r, row) in t.rows.iter().enumerate() {
        let pairs: Vec<(String, String)> = match &t.index {
            Some(ix) => index_names
                .iter()
                .cloned()
                .zip(ix[r].iter().cloned())
                .collect(),
            None => group_cols
                .iter()
                .map(|&i| {
                    let v = match &row[i] {
                        None | Some(Value::Null) => String::new(),
                        Some(v) => label(v)?,
                    };
                    Ok((t.columns[i].clone(), v))
                })
                .collect::<Result<_, ByGroupError>>()?,
        };
        let shown = pairs
            .iter()
            .map(|(a, v)| format!("{a}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let slice = Slice::new(pairs).map_err(|e| ByGroupError::BadGroup {
            group: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut metrics = BTreeMap::new();
        for &i in &metric_cols {
            let v = number(&row[i]).map_err(|found| ByGroupError::NotANumber {
                group: slice.to_string(),
                metric: t.columns[i].clone(),
                found,
            })?;
            metrics.insert(t.columns[i].clone(), Num(v));
        }
        let key = slice.to_string();
        if out.insert(key.clone(), metrics).is_some() {
            return Err(ByGroupError::DuplicateGroup(key));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(s: &BTreeMap<String, BTreeMap<String, Num>>, slice: &str, m: &str) -> f64 {
        s[slice][m].0
    }

    const CSV: &str = "sex,acc,selection_rate,tpr,fpr\nf,0.6,0.6,0.6666666666666666,0.5\n\
                       m,0.8,0.6,1.0,0.3333333333333333\n";

    #[test]
    fn fairlearn_csv_and_every_json_orient_read_alike() {
        let csv = parse(CSV, &[]).unwrap();
        assert_eq!(csv.keys().collect::<Vec<_>>(), ["sex=f", "sex=m"]);
        assert_eq!(get(&csv, "sex=m", "fpr"), 0.3333333333333333);
        let table = r#"{"schema":{"fields":[{"name":"sex","type":"string"},{"name":"acc","type":"number"}],"primaryKey":["sex"],"pandas_version":"1.4.0"},"data":[{"sex":"f","acc":0.6},{"sex":"m","acc":0.8}]}"#;
        let records = r#"[{"sex":"f","acc":0.6},{"sex":"m","acc":0.8}]"#;
        let columns = r#"{"acc":{"f":0.6,"m":0.8}}"#;
        let split = r#"{"columns":["acc"],"index":["f","m"],"data":[[0.6],[0.8]]}"#;
        let mlflow = r#"{"columns":["sex","acc"],"data":[["f",0.6],["m",0.8]]}"#;
        let sex = ["sex".to_owned()];
        for (text, attrs) in [
            (table, &[][..]),
            (records, &[]),
            (mlflow, &[]),
            (columns, &sex[..]),
            (split, &sex[..]),
        ] {
            let s = parse(text, attrs).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(get(&s, "sex=f", "acc"), 0.6, "{text}");
            assert_eq!(get(&s, "sex=m", "acc"), 0.8, "{text}");
        }
    }

    #[test]
    fn multi_level_groups_become_intersections() {
        let csv = "sex,age,acc\nf,60+,0.0\nf,<30,0.75\nm,60+,0.75\nm,<30,1.0\n";
        let s = parse(csv, &[]).unwrap();
        assert_eq!(get(&s, "age=60+&sex=f", "acc"), 0.0);
        let split = r#"{"columns":["acc"],"index":[["f","60+"],["m","<30"]],"data":[[0.0],[1.0]]}"#;
        let s = parse(split, &["sex".into(), "age".into()]).unwrap();
        assert_eq!(get(&s, "age=<30&sex=m", "acc"), 1.0);
    }

    #[test]
    fn quoted_csv_fields_null_and_nan_are_read() {
        let csv = "age,acc,tpr\n\"[40, 60)\",0.9,\n\"a \"\"b\"\"\",0.8,NaN\r\n";
        let s = parse(csv, &[]).unwrap();
        assert!(get(&s, "age=[40, 60)", "tpr").is_nan());
        assert!(get(&s, "age=a \"b\"", "tpr").is_nan());
        let j = r#"[{"g":"x","acc":null}]"#;
        assert!(get(&parse(j, &[]).unwrap(), "g=x", "acc").is_nan());
    }

    #[test]
    fn wrong_shapes_say_what_was_expected() {
        let cases: [(&str, &[String], &str); 11] = [
            ("", &[], "empty"),
            ("{\"f\": 0.6, \"m\": 0.8}", &[], "looks like a Series"),
            ("{\"acc\": {\"f\": 0.6}}", &[], "--attribute"),
            ("{\"acc\": {\"('f', '1')\": 0.6}}", &["sex".into()], "tuple"),
            (
                "sex,acc\nf,high\n",
                &["sex".into()],
                "metric 'acc' is 'high', not a number",
            ),
            (
                "sex,acc\nf,0.1,9\n",
                &[],
                "line 2: 3 fields, the header has 2",
            ),
            ("[1, 2]", &[], "row 1 is a number"),
            ("acc,f1\n0.1,0.2\n", &[], "no group column"),
            ("sex,acc\n\"f,0.1\n", &[], "unterminated"),
            ("sex,acc\nf,0.1\nf,0.2\n", &[], "appears twice"),
            ("{\"acc\": [1]}", &[], "expected an object of group"),
        ];
        for (text, attrs, why) in cases {
            let e = parse(text, attrs).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let e = parse("[{\"g\":\"x\",\"cm\":[[1,0],[0,1]]}]", &[]).unwrap_err();
        assert!(e.to_string().contains("'cm' is a list"), "{e}");
    }

    #[test]
    fn sizes_are_bounded() {
        let mut csv = String::from("id,acc\n");
        for i in 0..10_000 {
            csv.push_str(&format!("g{i},0.5\n"));
        }
        let e = parse(&csv, &[]).unwrap_err().to_string();
        assert!(e.contains("at most 1000 slices"), "{e}");
        let rows: Vec<String> = (0..10_000)
            .map(|i| format!("{{\"id\":\"g{i}\",\"a\":1}}"))
            .collect();
        let e = parse(&format!("[{}]", rows.join(",")), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("10000 groups"), "{e}");
        let wide = format!(
            "g,{}\n",
            (0..300)
                .map(|i| format!("m{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(
            parse(&wide, &[])
                .unwrap_err()
                .to_string()
                .contains("metric columns")
        );
        let huge = " ".repeat(MAX_BY_GROUP_BYTES + 1);
        assert!(matches!(parse(&huge, &[]), Err(ByGroupError::TooLarge(_))));
    }
}
