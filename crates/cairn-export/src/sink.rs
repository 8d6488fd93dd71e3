//! Where a table's record batches go: a Parquet file (the Arrow writer) or a CSV file, each
//! written under a temporary name beside its final one and renamed there only when whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use crate::ExportError;
use crate::time::rfc3339_ms;

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// Rows per Parquet row group: large enough that a scan reads long runs of each column, small
/// enough that the writer's buffered (encoded) row group stays a few MiB.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// A file being written under a temporary name (`.NAME.PID.partial`), removed if dropped before
/// [`Output::commit`], so a failed or killed export leaves nothing under the final name.
#[derive(Debug)]
struct Output {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Output {
    fn create(dest: PathBuf) -> Result<(Output, File), ExportError> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.{}.partial", std::process::id()));
        let file = File::create(&tmp).map_err(|source| ExportError::Io {
            what: "create",
            path: tmp.clone(),
            source,
        })?;
        Ok((
            Output {
                tmp,
                dest,
                committed: false,
            },
            file,
        ))
    }

    /// Moves the finished file to its final name.
    fn commit(mut self) -> Result<PathBuf, ExportError> {
        std::fs::rename(&self.tmp, &self.dest).map_err(|source| ExportError::Io {
            what: "rename into place",
            path: self.dest.clone(),
            source,
        })?;
        self.committed = true;
        Ok(self.dest.clone())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = std::fs::remove_file(&self.tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.tmp.display(), error = %e, "partial export file left behind");
        }
    }
}

/// One table's file while it is written.
#[derive(Debug)]
pub(crate) struct TableFile {
    out: Output,
    writer: Writer,
    rows: u64,
}

enum Writer {
    Parquet(Box<ArrowWriter<File>>),
    Csv(BufWriter<File>),
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writer::Parquet(_) => "Parquet",
            Writer::Csv(_) => "Csv",
        })
    }
}

/// What a finished table file holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

impl TableFile {
    /// Starts `dest` (under its temporary name) for batches of `schema`; `props` tunes the
    /// Parquet writer per column.
    pub(crate) fn create(
        dest: PathBuf,
        format: Format,
        schema: &Arc<Schema>,
        props: WriterPropertiesBuilder,
    ) -> Result<TableFile, ExportError> {
        let (out, file) = Output::create(dest)?;
        let writer = match format {
            Format::Parquet => {
                let props = props
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                    .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")))
                    .build();
                let w =
                    ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|source| {
                        ExportError::Parquet {
                            path: out.tmp.clone(),
                            source,
                        }
                    })?;
                Writer::Parquet(Box::new(w))
            }
            Format::Csv => {
                let mut w = BufWriter::with_capacity(1 << 16, file);
                let header: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| csv_field(f.name()))
                    .collect();
                writeln!(w, "{}", header.join(",")).map_err(|e| io(&out.tmp, e))?;
                Writer::Csv(w)
            }
        };
        Ok(TableFile {
            out,
            writer,
            rows: 0,
        })
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<(), ExportError> {
        self.rows += batch.num_rows() as u64;
        match &mut self.writer {
            Writer::Parquet(w) => w.write(batch).map_err(|source| ExportError::Parquet {
                path: self.out.tmp.clone(),
                source,
            }),
            Writer::Csv(w) => write_csv(w, batch).map_err(|e| io(&self.out.tmp, e)),
        }
    }

    /// Writes the footer (Parquet) or the last buffered bytes, and syncs the file; it is
    /// still under its temporary name.
    pub(crate) fn finish(self) -> Result<Finished, ExportError> {
        let TableFile { out, writer, rows } = self;
        let file = match writer {
            Writer::Parquet(w) => w.into_inner().map_err(|source| ExportError::Parquet {
                path: out.tmp.clone(),
                source,
            })?,
            Writer::Csv(w) => w.into_inner().map_err(|e| io(&out.tmp, e.into_error()))?,
        };
        file.sync_all().map_err(|e| io(&out.tmp, e))?;
        let bytes = file.metadata().map_err(|e| io(&out.tmp, e))?.len();
        Ok(Finished { out, rows, bytes })
    }
}

/// A table file written whole, waiting to be renamed into place with the others.
#[derive(Debug)]
pub(crate) struct Finished {
    out: Output,
    rows: u64,
    bytes: u64,
}

impl Finished {
    pub(crate) fn commit(self) -> Result<WrittenFile, ExportError> {
        let path = self.out.commit()?;
        Ok(WrittenFile {
            path,
            rows: self.rows,
            bytes: self.bytes,
        })
    }
}

fn io(path: &Path, source: std::io::Error) -> ExportError {
    ExportError::Io {
        what: "write",
        path: path.to_owned(),
        source,
    }
}

/// Column tuning for the metrics table: steps and times delta-encoded (consecutive points
/// differ by a small, regular amount), values split by byte (float32-exact training curves
/// leave the low bytes zero, which zstd then squeezes), run and key dictionary-encoded (the
/// rows of one series repeat them).
pub(crate) fn metrics_props() -> WriterPropertiesBuilder {
    let mut b = WriterProperties::builder();
    for (col, enc) in [
        ("step", Encoding::DELTA_BINARY_PACKED),
        ("timestamp", Encoding::DELTA_BINARY_PACKED),
        ("value", Encoding::BYTE_STREAM_SPLIT),
    ] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(col), false)
            .set_column_encoding(ColumnPath::from(col), enc);
    }
    b
}

/// A CSV field, quoted when it holds a comma, quote, line break or edge whitespace (RFC 4180).
fn csv_field(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.contains([',', '"', '\n', '\r'])
        && !s.starts_with(char::is_whitespace)
        && !s.ends_with(char::is_whitespace);
    if plain {
        s.to_owned()
    } else if s.is_empty() {
        // An empty string, told apart from a missing value (an empty field).
        "\"\"".to_owned()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// A float as CSV text: the shortest text that reads back to the same value, and `NaN`,
/// `inf`, `-inf` for the non-finite ones (what pandas, polars and DuckDB read as such).
pub(crate) fn csv_float(v: f64) -> String {
    format!("{v:?}")
}

/// Writes a batch's rows as CSV: nulls as empty fields, times as RFC 3339 UTC with
/// milliseconds, floats as [`csv_float`], booleans as `true`/`false`.
fn write_csv(w: &mut impl Write, batch: &RecordBatch) -> std::io::Result<()> {
    let cols = batch.columns();
    let mut line = String::new();
    for row in 0..batch.num_rows() {
        line.clear();
        for (i, col) in cols.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            if col.is_null(row) {
                continue;
            }
            cell(&mut line, col.as_ref(), row);
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

fn cell(line: &mut String, col: &dyn Array, row: usize) {
    match col.data_type() {
        DataType::Utf8 => line.push_str(&csv_field(col.as_string::<i32>().value(row))),
        DataType::Dictionary(_, _) => {
            let dict = col.as_dictionary::<Int32Type>();
            let key = dict.keys().value(row) as usize;
            line.push_str(&csv_field(dict.values().as_string::<i32>().value(key)));
        }
        DataType::Int64 => {
            let v = col
                .as_primitive::<arrow_array::types::Int64Type>()
                .value(row);
            line.push_str(&v.to_string());
        }
        DataType::Float64 => {
            let v = col
                .as_primitive::<arrow_array::types::Float64Type>()
                .value(row);
            line.push_str(&csv_float(v));
        }
        DataType::Boolean => line.push_str(if col.as_boolean().value(row) {
            "true"
        } else {
            "false"
        }),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            line.push_str(&rfc3339_ms(
                col.as_primitive::<TimestampMillisecondType>().value(row),
            ));
        }
        other => {
            // Every column this crate builds is one of the types above.
            tracing::error!(data_type = %other, "a column type the CSV writer does not know");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("lr"), "lr");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" padded"), "\" padded\"");
        assert_eq!(csv_field(""), "\"\"");
    }

    #[test]
    fn floats_read_back_exactly_and_non_finite_ones_have_their_csv_names() {
        for v in [
            0.1,
            -0.0,
            1e300,
            1e-300,
            2.5e-7,
            123456789.125,
            f64::MIN_POSITIVE,
        ] {
            let text = csv_float(v);
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                v.to_bits(),
                "{text}"
            );
        }
        assert_eq!(csv_float(f64::NAN), "NaN");
        assert_eq!(csv_float(f64::INFINITY), "inf");
        assert_eq!(csv_float(f64::NEG_INFINITY), "-inf");
    }
}
