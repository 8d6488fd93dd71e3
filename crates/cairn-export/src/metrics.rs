//! The metrics table: one row per logged point — run, key, step, timestamp, value — gathered a
//! decoded chunk at a time into record batches of bounded size.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use cairn_core::MetricPoint;

use crate::ExportError;
use crate::runs::time_type;

/// Points per record batch: the most the exporter holds before handing rows to the writer.
pub(crate) const BATCH_POINTS: usize = 1 << 16;

/// The metrics table's schema. Run ids and keys are dictionary-encoded strings (one entry per
/// series in a batch), which readers load as categoricals rather than a string per point.
pub fn schema() -> Arc<Schema> {
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![
        Field::new("run_id", dict.clone(), false),
        Field::new("key", dict, false),
        Field::new("step", DataType::Int64, false),
        Field::new("timestamp", time_type(), false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// Points being gathered into a record batch.
#[derive(Debug)]
pub struct MetricRows {
    schema: Arc<Schema>,
    runs: Dict,
    keys: Dict,
    run_idx: Vec<i32>,
    key_idx: Vec<i32>,
    steps: Vec<i64>,
    times: Vec<i64>,
    values: Vec<f64>,
}

impl Default for MetricRows {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricRows {
    pub fn new() -> MetricRows {
        MetricRows {
            schema: schema(),
            runs: Dict::default(),
            keys: Dict::default(),
            run_idx: Vec::with_capacity(BATCH_POINTS),
            key_idx: Vec::with_capacity(BATCH_POINTS),
            steps: Vec::with_capacity(BATCH_POINTS),
            times: Vec::with_capacity(BATCH_POINTS),
            values: Vec::with_capacity(BATCH_POINTS),
        }
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Appends points of `run`'s series `key` (in the order logged).
    pub fn push(&mut self, run: &str, key: &str, points: &[MetricPoint]) {
        if points.is_empty() {
            return;
        }
        let r = index_of(&mut self.runs, run);
        let k = index_of(&mut self.keys, key);
        let n = points.len();
        self.run_idx.resize(self.run_idx.len() + n, r);
        self.key_idx.resize(self.key_idx.len() + n, k);
        self.steps.extend(points.iter().map(|p| p.step));
        self.times.extend(points.iter().map(|p| p.ts_ms));
        self.values.extend(points.iter().map(|p| p.value));
    }

    /// The points gathered so far as a record batch; starts a new one.
    pub fn take(&mut self) -> Result<RecordBatch, ExportError> {
        let arrow = |source| ExportError::Arrow {
            table: "metrics",
            source,
        };
        let dict = |idx: &mut Vec<i32>, values: &mut Dict| {
            let keys = Int32Array::from(std::mem::replace(idx, Vec::with_capacity(BATCH_POINTS)));
            let values = StringArray::from(values.take());
            DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))
        };
        let runs = dict(&mut self.run_idx, &mut self.runs).map_err(arrow)?;
        let keys = dict(&mut self.key_idx, &mut self.keys).map_err(arrow)?;
        let take = |v: &mut Vec<i64>| std::mem::replace(v, Vec::with_capacity(BATCH_POINTS));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(runs),
            Arc::new(keys),
            Arc::new(Int64Array::from(take(&mut self.steps))),
            Arc::new(TimestampMillisecondArray::from(take(&mut self.times)).with_timezone("UTC")),
            Arc::new(Float64Array::from(std::mem::replace(
                &mut self.values,
                Vec::with_capacity(BATCH_POINTS),
            ))),
        ];
        RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow)
    }
}

/// The position of `s` in a batch's dictionary, added when new.
fn index_of(dict: &mut Dict, s: &str) -> i32 {
    if let Some(i) = dict.last.filter(|&i| dict.values[i as usize] == s) {
        return i;
    }
    let i = match dict.index.get(s) {
        Some(&i) => i,
        None => {
            let i = dict.values.len() as i32;
            dict.values.push(s.to_owned());
            dict.index.insert(s.to_owned(), i);
            i
        }
    };
    dict.last = Some(i);
    i
}

/// A batch's dictionary of run ids or keys.
#[derive(Debug, Default)]
struct Dict {
    values: Vec<String>,
    index: HashMap<String, i32>,
    last: Option<i32>,
}

impl Dict {
    fn take(&mut self) -> Vec<String> {
        self.index.clear();
        self.last = None;
        std::mem::take(&mut self.values)
    }
}
