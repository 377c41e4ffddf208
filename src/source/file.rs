//! CSV and Parquet files, read with polars: single-series files (`timestamp,value`, named by
//! the file stem) and long files (`resource,timestamp,value`, or label columns naming the
//! series). Timestamps: RFC 3339 with any offset, Unix seconds, or a native datetime column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use polars::prelude::*;

use super::{Pulled, RawSeries, SourceError};

/// What is wrong with a file or a part of it, before the file is named (the caller adds its
/// path).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FileError {
    #[error("cannot open")]
    Open(#[source] std::sync::Arc<std::io::Error>),
    /// polars could not read it as the format its name says (the message's first line).
    #[error("not a readable {format} file: {message}")]
    Unreadable { format: &'static str, message: String },
    /// A column or a cell, said in words naming the line or row.
    #[error("{0}")]
    Content(String),
}

impl From<String> for FileError {
    fn from(text: String) -> Self {
        FileError::Content(text)
    }
}

impl FileError {
    fn open(e: std::io::Error) -> Self {
        FileError::Open(std::sync::Arc::new(e))
    }

    fn unreadable(format: &'static str) -> impl Fn(PolarsError) -> FileError {
        move |e| FileError::Unreadable { format, message: first_line(&e.to_string()) }
    }

    /// `file: problem`, as a source error of the whole file or of one series in it.
    fn at(&self, shown: &str, resource: Option<String>) -> SourceError {
        SourceError { resource, message: format!("{shown}: {}", crate::error::line(self)) }
    }
}

fn polars(e: PolarsError) -> FileError {
    FileError::Content(e.to_string())
}

/// Largest plausible Unix timestamp in seconds (year 5138). Anything above it is almost
/// certainly milliseconds or finer, which we refuse rather than forecast the year 58000.
const MAX_UNIX_SECONDS: f64 = 1e11;

/// How to read a file's columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileOptions {
    /// Value column (default `value`).
    pub column: Option<String>,
    /// Name template over label columns, e.g. `{type}/{component}`.
    pub name_template: Option<String>,
    /// Index a Parquet file of more rows than this whose rows are grouped by resource
    /// instead of reading its points: each series then carries [`Deferred`] and is read by
    /// [`load`] when needed ([`DEFER_ROWS`] in a run).
    pub defer_above: Option<usize>,
}

/// A run defers Parquet files of more rows than this.
pub const DEFER_ROWS: usize = 2 * PARQUET_SLICE;

/// Where a deferred series' rows lie in its file (contiguous: the file is grouped by resource).
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    pub name: String,
    pub path: PathBuf,
    pub opts: FileOptions,
    pub offset: usize,
    pub len: usize,
    /// The series' last timestamp (for the default as-of date).
    pub last: i64,
}

/// Expands a path or glob (relative to `base`) into files, sorted for a deterministic order.
pub fn expand(pattern: &str, base: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
    let text = full.to_string_lossy().to_string();
    let paths = glob::glob(&text).map_err(|e| SourceError::file(format!("bad path pattern `{pattern}`: {e}")))?;
    let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
    files.sort();
    if files.is_empty() {
        return Err(SourceError::file(format!("no file matches `{}`", text)));
    }
    Ok(files)
}

/// Reads every file, collecting series, per-file errors and notes.
pub fn read_files(files: &[PathBuf], opts: &FileOptions) -> Pulled {
    let mut out = Pulled::default();
    for f in files {
        match read_file(f, opts) {
            Ok(p) => {
                out.series.extend(p.series);
                out.errors.extend(p.errors);
                out.notes.extend(p.notes);
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// Reads one CSV or Parquet file into series.
pub fn read_file(path: &Path, opts: &FileOptions) -> Result<Pulled, SourceError> {
    let shown = path.display().to_string();
    let fail = |e: FileError| e.at(&shown, None);
    let meta = std::fs::metadata(path).map_err(|e| SourceError::file(format!("{shown}: cannot read: {e}")))?;
    if meta.len() == 0 {
        return Err(fail("file is empty (expected a header line `timestamp,value` and data rows)".to_string().into()));
    }
    let is_parquet = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| shown.clone());
    let mut acc = Collected::default();
    if is_parquet {
        let rows = parquet_rows(path).map_err(fail)?;
        if opts.defer_above.is_some_and(|n| rows > n) {
            let mut index = Collected { index_only: true, ..Default::default() };
            read_parquet_slices(path, (0, rows), &shown, &stem, opts, &mut index).map_err(fail)?;
            if index.ranges.iter().all(|r| r.grouped) {
                return index.deferred(path, opts, &shown).map_err(fail);
            }
        }
        read_parquet_slices(path, (0, rows), &shown, &stem, opts, &mut acc).map_err(fail)?;
    } else {
        let df = read_csv(path).map_err(fail)?;
        // CSV data rows start on line 2.
        to_series(&df, &shown, &stem, opts, &|row| format!("line {}", row + 2), 0, &mut acc).map_err(fail)?;
    }
    acc.finish(&shown).map_err(fail)
}

/// Reads rows `offset .. offset + len` of a Parquet file a slice at a time, so a large fleet
/// file never sits in memory whole.
fn read_parquet_slices(
    path: &Path,
    (start, len): (usize, usize),
    shown: &str,
    stem: &str,
    opts: &FileOptions,
    acc: &mut Collected,
) -> Result<(), FileError> {
    let mut offset = start;
    loop {
        let want = PARQUET_SLICE.min(start + len - offset);
        let df = read_parquet(path, offset, want)?;
        let locate = |row: usize| format!("row {}", offset + row + 1);
        if offset == start || df.height() > 0 {
            to_series(&df, shown, stem, opts, &locate, offset, acc)?;
        }
        offset += df.height();
        if df.height() == 0 || offset >= start + len {
            return Ok(());
        }
    }
}

/// Reads deferred series, each from its file's rows; series next to each other in one file
/// (a chunk of a run, in file order) are read with one pass over their rows.
pub fn load(deferred: &[&Deferred]) -> Vec<Result<RawSeries, SourceError>> {
    let mut out: Vec<Option<Result<RawSeries, SourceError>>> = vec![None; deferred.len()];
    let mut order: Vec<usize> = (0..deferred.len()).collect();
    order.sort_by(|&a, &b| (&deferred[a].path, deferred[a].offset).cmp(&(&deferred[b].path, deferred[b].offset)));
    let mut k = 0;
    while k < order.len() {
        // A run of series whose rows follow each other in the same file.
        let first = deferred[order[k]];
        let mut end = first.offset + first.len;
        let mut j = k + 1;
        while j < order.len()
            && deferred[order[j]].path == first.path
            && deferred[order[j]].offset <= end + PARQUET_SLICE
        {
            end = end.max(deferred[order[j]].offset + deferred[order[j]].len);
            j += 1;
        }
        let shown = first.path.display().to_string();
        let stem = first.path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let opts = FileOptions { defer_above: None, ..first.opts.clone() };
        let mut acc = Collected::default();
        let read = read_parquet_slices(&first.path, (first.offset, end - first.offset), &shown, &stem, &opts, &mut acc)
            .map(|_| acc.finish(&shown));
        match read {
            Ok(Ok(mut pulled)) => {
                let mut by_name: HashMap<String, RawSeries> =
                    pulled.series.drain(..).map(|s| (s.name.clone(), s)).collect();
                let errors: HashMap<String, SourceError> =
                    pulled.errors.into_iter().filter_map(|e| Some((e.resource.clone()?, e))).collect();
                for &i in &order[k..j] {
                    let name = &deferred[i].name;
                    out[i] = Some(match (by_name.remove(name), errors.get(name)) {
                        (Some(s), _) => Ok(s),
                        (None, Some(e)) => Err(e.clone()),
                        (None, None) => Err(SourceError::file(format!(
                            "{shown}: rows {}.. no longer hold this series",
                            deferred[i].offset + 1
                        ))),
                    });
                }
            }
            Ok(Err(e)) | Err(e) => {
                for &i in &order[k..j] {
                    out[i] = Some(Err(e.at(&shown, None)));
                }
            }
        }
        k = j;
    }
    out.into_iter().map(|r| r.unwrap_or_else(|| Err(SourceError::file("not read")))).collect()
}

/// Rows of a Parquet file read at once.
const PARQUET_SLICE: usize = 1 << 20;

/// Series gathered from a file's rows, slice by slice (or, indexing, where each one's rows lie).
#[derive(Default)]
struct Collected {
    out: Pulled,
    index: HashMap<String, usize>,
    failed: HashMap<String, FileError>,
    nan_rows: usize,
    single: bool,
    /// Index only: note each series' rows instead of keeping its points.
    index_only: bool,
    ranges: Vec<Range>,
}

/// Where one series' rows lie (indexing).
#[derive(Debug, Clone, Copy)]
struct Range {
    first: usize,
    last: usize,
    max_ts: i64,
    /// All its rows so far follow each other.
    grouped: bool,
}

impl Collected {
    /// The indexed series, each deferred to its rows.
    fn deferred(mut self, path: &Path, opts: &FileOptions, shown: &str) -> Result<Pulled, FileError> {
        for (s, r) in self.out.series.iter_mut().zip(&self.ranges) {
            s.deferred = Some(Box::new(Deferred {
                name: s.name.clone(),
                path: path.to_path_buf(),
                opts: opts.clone(),
                offset: r.first,
                len: r.last + 1 - r.first,
                last: r.max_ts,
            }));
        }
        self.finish(shown)
    }

    fn finish(mut self, shown: &str) -> Result<Pulled, FileError> {
        if self.single {
            if let Some(msg) = self.failed.into_values().next() {
                // A single-series file: its error is the file's.
                return Err(msg);
            }
            self.failed = HashMap::new();
        }
        let mut failed: Vec<(String, FileError)> = self.failed.into_iter().collect();
        failed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = self.out;
        for (name, e) in failed {
            out.series.retain(|s| s.name != name);
            out.errors.push(e.at(shown, Some(name)));
        }
        for s in &mut out.series {
            s.timestamps.shrink_to_fit();
            s.values.shrink_to_fit();
        }
        if self.nan_rows > 0 {
            out.notes.push(format!("{shown}: {} missing or NaN values read as gaps", self.nan_rows));
        }
        Ok(out)
    }
}

fn read_csv(path: &Path) -> Result<DataFrame, FileError> {
    // Every column as text: we parse values ourselves so errors can name the line and value.
    let reader = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .map_err(|e| FileError::Content(format!("cannot open: {}", first_line(&e.to_string()))))?;
    reader.finish().map_err(FileError::unreadable("CSV"))
}

fn parquet_rows(path: &Path) -> Result<usize, FileError> {
    let file = std::fs::File::open(path).map_err(FileError::open)?;
    ParquetReader::new(file).num_rows().map_err(FileError::unreadable("Parquet"))
}

fn read_parquet(path: &Path, offset: usize, len: usize) -> Result<DataFrame, FileError> {
    let file = std::fs::File::open(path).map_err(FileError::open)?;
    ParquetReader::new(file).with_slice(Some((offset, len))).finish().map_err(FileError::unreadable("Parquet"))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn find_column<'a>(df: &'a DataFrame, name: &str) -> Option<&'a Column> {
    df.columns().iter().find(|c| c.name().as_str().eq_ignore_ascii_case(name))
}

fn to_series(
    df: &DataFrame,
    shown: &str,
    stem: &str,
    opts: &FileOptions,
    locate: &dyn Fn(usize) -> String,
    offset: usize,
    acc: &mut Collected,
) -> Result<(), FileError> {
    // Column names as shown in errors: clipped, since a binary file's "header" is garbage.
    let mut names: Vec<String> = df.get_column_names().iter().take(5).map(|s| clip(s)).collect();
    if df.width() > 5 {
        names.push(format!("... {} columns in all", df.width()));
    }
    let value_name = opts.column.as_deref().unwrap_or("value");
    let ts_col = find_column(df, "timestamp").ok_or_else(|| {
        format!(
            "no `timestamp` column in the header (found: {}); the first line must name the columns, e.g. `timestamp,value`",
            names.join(", ")
        )
    })?;
    let val_col = find_column(df, value_name)
        .ok_or_else(|| format!("no `{value_name}` column in the header (found: {})", names.join(", ")))?;
    if df.height() == 0 {
        return Err(FileError::Content("no data rows after the header".into()));
    }
    let resource_col = find_column(df, "resource");
    let label_cols: Vec<&Column> = df
        .columns()
        .iter()
        .filter(|c| {
            let n = c.name().as_str();
            !["timestamp", "resource"].iter().any(|k| n.eq_ignore_ascii_case(k))
                && !n.eq_ignore_ascii_case(value_name)
                && (c.dtype() == &DataType::String || c.dtype().is_categorical())
        })
        .collect();
    // A single-series CSV may carry extra text columns (notes); they name series only when
    // there is no `resource` column and a name template asks for them, or in Parquet/CSV
    // files that clearly are long (label columns present and no template): join their values.
    let namer = Namer::new(resource_col, &label_cols, opts.name_template.as_deref(), stem)?;

    let timestamps = timestamps(ts_col, locate)?;
    let (values, nan_rows) = values(val_col, locate)?;
    acc.nan_rows += nan_rows;
    acc.single = namer.is_single();
    // Names straight from a `resource` text column, without a copy per row.
    let fast = match &namer {
        Namer::Resource(c) => Some(c.cast(&DataType::String).map_err(polars)?),
        _ => None,
    };
    let mut fast = fast.as_ref().map(|c| c.str().map(|ca| ca.iter())).transpose().map_err(polars)?;
    let mut last: Option<(String, usize)> = None;
    let (mut next_bad_ts, mut next_bad_value) = (0, 0);
    for row in 0..df.height() {
        let i = match fast.as_mut().map(|it| it.next().flatten().unwrap_or_default()) {
            Some(name) if last.as_ref().is_some_and(|(n, _)| n == name) => last.as_ref().map_or(0, |l| l.1),
            named => {
                let name = match named {
                    Some(n) => n.to_string(),
                    None => namer.name(row)?,
                };
                let i = *acc.index.entry(name.clone()).or_insert_with(|| {
                    let mut raw = RawSeries::new(name.clone(), shown.to_string(), vec![], vec![]);
                    raw.labels = namer.labels(row);
                    acc.out.series.push(raw);
                    let at = offset + row;
                    acc.ranges.push(Range { first: at, last: at, max_ts: i64::MIN, grouped: true });
                    acc.out.series.len() - 1
                });
                // Rows grouped by resource (the usual export) complete a series here: give
                // back the spare capacity now rather than after the whole file.
                if let Some((_, j)) = last.replace((name, i)) {
                    acc.out.series[j].timestamps.shrink_to_fit();
                    acc.out.series[j].values.shrink_to_fit();
                }
                i
            }
        };
        // A bad timestamp is told before a bad value.
        let ts_error = timestamps.error(row, &mut next_bad_ts);
        let value_error = values.error(row, &mut next_bad_value);
        let cell = match ts_error.or(value_error) {
            Some(e) => Err(e),
            None => Ok((timestamps.ok[row], values.ok[row])),
        };
        if acc.index_only {
            let r = &mut acc.ranges[i];
            let at = offset + row;
            r.grouped &= at <= r.last + 1;
            r.last = at;
            if let Ok((t, _)) = cell {
                r.max_ts = r.max_ts.max(t);
            }
        }
        match cell {
            Ok(_) if acc.index_only => {}
            Ok((t, v)) => {
                acc.out.series[i].timestamps.push(t);
                acc.out.series[i].values.push(v);
            }
            Err(e) => {
                let name = acc.out.series[i].name.clone();
                acc.failed.entry(name).or_insert_with(|| e.clone());
            }
        }
    }
    Ok(())
}

/// Names the series a row belongs to.
enum Namer<'a> {
    Single(String),
    Resource(&'a Column),
    Labels { cols: Vec<&'a Column>, template: Option<String> },
}

impl<'a> Namer<'a> {
    fn new(
        resource: Option<&'a Column>,
        labels: &[&'a Column],
        template: Option<&str>,
        stem: &str,
    ) -> Result<Self, FileError> {
        if let Some(r) = resource {
            return Ok(Namer::Resource(r));
        }
        if let Some(t) = template.filter(|t| t.contains('{')) {
            for key in template_keys(t) {
                if !labels.iter().any(|c| c.name().as_str() == key) {
                    let found: Vec<&str> = labels.iter().map(|c| c.name().as_str()).collect();
                    return Err(FileError::Content(format!(
                        "name template `{t}` uses label `{key}`, which the file lacks (label columns: {})",
                        if found.is_empty() { "none".to_string() } else { found.join(", ") }
                    )));
                }
            }
            return Ok(Namer::Labels { cols: labels.to_vec(), template: Some(t.to_string()) });
        }
        if labels.is_empty() {
            return Ok(Namer::Single(stem.to_string()));
        }
        Ok(Namer::Labels { cols: labels.to_vec(), template: None })
    }

    fn is_single(&self) -> bool {
        matches!(self, Namer::Single(_))
    }

    /// The label columns' values in `row` (none for a `resource` column or a single series).
    fn labels(&self, row: usize) -> super::answer::Labels {
        match self {
            Namer::Labels { cols, .. } => {
                cols.iter().filter_map(|c| Some((c.name().to_string(), cell_text(c, row)?))).collect()
            }
            _ => super::answer::Labels::new(),
        }
    }

    fn name(&self, row: usize) -> Result<String, FileError> {
        match self {
            Namer::Single(s) => Ok(s.clone()),
            Namer::Resource(c) => Ok(cell_text(c, row).unwrap_or_default()),
            Namer::Labels { cols, template } => {
                let cell = |c: &Column| cell_text(c, row).unwrap_or_default();
                Ok(match template {
                    Some(t) => {
                        let mut s = t.clone();
                        for c in cols {
                            s = s.replace(&format!("{{{}}}", c.name()), &cell(c));
                        }
                        s
                    }
                    None => cols.iter().map(|c| cell(c)).collect::<Vec<_>>().join("/"),
                })
            }
        }
    }
}

/// The `{key}` names in a name template.
pub fn template_keys(template: &str) -> Vec<String> {
    let mut keys = vec![];
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                keys.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    keys
}

fn cell_text(c: &Column, row: usize) -> Option<String> {
    let v = c.get(row).ok()?;
    match v {
        AnyValue::Null => None,
        AnyValue::String(s) => Some(s.to_string()),
        AnyValue::StringOwned(s) => Some(s.to_string()),
        other => Some(other.to_string().trim_matches('"').to_string()),
    }
}

type Cell<T> = Result<T, FileError>;

/// A column's cells: every row's value, and apart from them the rows that failed, with why
/// (ascending; their value is a placeholder). A million good rows cost one plain vector.
struct Cells<T> {
    ok: Vec<T>,
    bad: Vec<(usize, FileError)>,
}

impl<T: Default> Cells<T> {
    fn with_capacity(n: usize) -> Self {
        Cells { ok: Vec::with_capacity(n), bad: vec![] }
    }

    fn push(&mut self, cell: Cell<T>) {
        match cell {
            Ok(v) => self.ok.push(v),
            Err(e) => {
                self.bad.push((self.ok.len(), e));
                self.ok.push(T::default());
            }
        }
    }

    /// Row `row`'s error, if it has one; `next` is the first failed row not yet asked about
    /// (rows are asked about in order).
    fn error(&self, row: usize, next: &mut usize) -> Option<&FileError> {
        let (at, e) = self.bad.get(*next)?;
        (*at == row).then(|| {
            *next += 1;
            e
        })
    }
}

impl<T: Default> FromIterator<Cell<T>> for Cells<T> {
    fn from_iter<I: IntoIterator<Item = Cell<T>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut cells = Cells::with_capacity(iter.size_hint().0);
        iter.for_each(|c| cells.push(c));
        cells
    }
}

/// Parses the timestamp column into Unix seconds, one cell per row. Millisecond timestamps
/// fail the whole file: every row would be wrong the same way.
fn timestamps(col: &Column, locate: &dyn Fn(usize) -> String) -> Result<Cells<i64>, FileError> {
    let millis = |raw: &str, row: usize| {
        FileError::Content(format!(
            "timestamp `{raw}` at {} looks like milliseconds (or finer) since the epoch; headroom reads Unix seconds: divide by 1000 (or use RFC 3339)",
            locate(row)
        ))
    };
    match col.dtype() {
        DataType::Datetime(unit, _) => {
            let per_sec: i64 = match unit {
                TimeUnit::Nanoseconds => 1_000_000_000,
                TimeUnit::Microseconds => 1_000_000,
                TimeUnit::Milliseconds => 1_000,
            };
            let phys = col.cast(&DataType::Int64).map_err(polars)?;
            let ca = phys.i64().map_err(polars)?;
            Ok(ca
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.map(|v| v.div_euclid(per_sec))
                        .ok_or_else(|| FileError::Content(format!("empty timestamp at {}", locate(row))))
                })
                .collect())
        }
        dt if dt.is_primitive_numeric() => {
            let f = col.cast(&DataType::Float64).map_err(polars)?;
            let ca = f.f64().map_err(polars)?;
            let mut out = Cells::with_capacity(ca.len());
            for (row, v) in ca.iter().enumerate() {
                out.push(match v {
                    Some(v) if v.is_finite() && v.abs() > MAX_UNIX_SECONDS => return Err(millis(&v.to_string(), row)),
                    Some(v) if v.is_finite() => Ok(v.floor() as i64),
                    _ => Err(FileError::Content(format!("empty or non-finite timestamp at {}", locate(row)))),
                });
            }
            Ok(out)
        }
        DataType::String => {
            let ca = col.str().map_err(polars)?;
            let mut out = Cells::with_capacity(ca.len());
            for (row, v) in ca.iter().enumerate() {
                let raw = v.unwrap_or("").trim();
                out.push(match parse_timestamp(raw) {
                    Ok(t) => Ok(t),
                    Err(TsError::Millis) => return Err(millis(raw, row)),
                    Err(TsError::Bad) => Err(FileError::Content(format!(
                        "bad timestamp `{}` at {}: expected RFC 3339 (2024-01-01T00:00:00Z) or Unix seconds",
                        clip(raw),
                        locate(row)
                    ))),
                });
            }
            Ok(out)
        }
        other => Err(FileError::Content(format!(
            "timestamp column has type {other}; expected text, integer seconds or a datetime"
        ))),
    }
}

enum TsError {
    Bad,
    Millis,
}

fn parse_timestamp(raw: &str) -> Result<i64, TsError> {
    if raw.is_empty() {
        return Err(TsError::Bad);
    }
    if raw.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') {
        let v: f64 = raw.parse().map_err(|_| TsError::Bad)?;
        if !v.is_finite() {
            return Err(TsError::Bad);
        }
        if v.abs() > MAX_UNIX_SECONDS {
            return Err(TsError::Millis);
        }
        return Ok(v.floor() as i64);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Ok(dt.timestamp());
    }
    // Common near-RFC 3339 spellings: a space instead of `T`, and no offset (taken as UTC).
    let normalised = raw.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalised) {
        return Ok(dt.timestamp());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(&normalised, fmt) {
            return Ok(n.and_utc().timestamp());
        }
    }
    Err(TsError::Bad)
}

/// Parses the value column; empty and NaN cells are gaps (NaN), infinities are errors.
fn values(col: &Column, locate: &dyn Fn(usize) -> String) -> Result<(Cells<f64>, usize), FileError> {
    let mut gaps = 0;
    let mut check = |v: Option<f64>, raw: &dyn Fn() -> String, row: usize| -> Cell<f64> {
        match v {
            None => {
                gaps += 1;
                Ok(f64::NAN)
            }
            Some(v) if v.is_nan() => {
                gaps += 1;
                Ok(f64::NAN)
            }
            Some(v) if v.is_infinite() => Err(FileError::Content(format!(
                "value `{}` at {} is infinite; values must be finite numbers",
                raw(),
                locate(row)
            ))),
            Some(v) => Ok(v),
        }
    };
    let out = match col.dtype() {
        DataType::String => {
            let ca = col.str().map_err(polars)?;
            ca.iter()
                .enumerate()
                .map(|(row, v)| {
                    let raw = v.unwrap_or("").trim();
                    if raw.is_empty() || raw.eq_ignore_ascii_case("nan") || raw.eq_ignore_ascii_case("null") {
                        return check(None, &|| raw.to_string(), row);
                    }
                    match raw.parse::<f64>() {
                        Ok(v) => check(Some(v), &|| raw.to_string(), row),
                        Err(_) => {
                            Err(FileError::Content(format!("value `{}` at {} is not a number", clip(raw), locate(row))))
                        }
                    }
                })
                .collect()
        }
        dt if dt.is_primitive_numeric() || dt.is_bool() => {
            let f = col.cast(&DataType::Float64).map_err(polars)?;
            let ca = f.f64().map_err(polars)?;
            ca.iter()
                .enumerate()
                .map(|(row, v)| check(v, &|| v.map(|x| x.to_string()).unwrap_or_default(), row))
                .collect()
        }
        other => return Err(FileError::Content(format!("value column has type {other}; expected numbers"))),
    };
    Ok((out, gaps))
}

/// Shortens a cell for an error line (binary garbage can be long).
fn clip(raw: &str) -> String {
    let cleaned: String = raw.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if cleaned.chars().count() > 40 { format!("{}...", cleaned.chars().take(40).collect::<String>()) } else { cleaned }
}

/// Writes a long-format Parquet file (`resource,timestamp,value`), as `headroom sample` and
/// `headroom pull` do: one row group per batch of series, so memory stays near one batch.
/// A long-format file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

pub fn write_long_parquet(path: &Path, series: &[RawSeries]) -> Result<(), WriteError> {
    const BATCH_POINTS: usize = 1 << 20;
    let fail = |e: PolarsError| WriteError { path: path.to_path_buf(), source: e.into() };
    let batch = |group: &[RawSeries]| -> Result<DataFrame, PolarsError> {
        let (mut resource, mut ts, mut val) = (vec![], vec![], vec![]);
        for s in group {
            resource.extend(std::iter::repeat_n(s.name.as_str(), s.timestamps.len()));
            ts.extend_from_slice(&s.timestamps);
            val.extend_from_slice(&s.values);
        }
        DataFrame::new_infer_height(vec![
            Column::new("resource".into(), resource),
            Column::new("timestamp".into(), ts),
            Column::new("value".into(), val),
        ])
    };
    let file = std::fs::File::create(path).map_err(|e| WriteError { path: path.to_path_buf(), source: e.into() })?;
    let schema = batch(&[]).map_err(fail)?.schema().as_ref().clone();
    let mut writer = ParquetWriter::new(file).batched(&schema).map_err(fail)?;
    let mut start = 0;
    while start < series.len() {
        let mut end = start;
        let mut points = 0;
        while end < series.len() && (end == start || points + series[end].timestamps.len() <= BATCH_POINTS) {
            points += series[end].timestamps.len();
            end += 1;
        }
        writer.write_batch(&batch(&series[start..end]).map_err(fail)?).map_err(fail)?;
        start = end;
    }
    writer.finish().map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    fn write(dir: &tempfile::TempDir, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn single_series_csv_with_offsets_and_gaps() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            &d,
            "db.csv",
            b"timestamp,value\n2024-01-01T01:00:00+01:00,0.5\n2024-01-01T01:00:00Z,NaN\n1704070800,\n",
        );
        let out = read_file(&p, &FileOptions::default()).unwrap();
        assert_eq!(out.series.len(), 1);
        let s = &out.series[0];
        assert_eq!(s.name, "db");
        assert_eq!(s.timestamps, vec![1704067200, 1704070800, 1704070800]);
        assert_eq!(s.values[0], 0.5);
        assert!(s.values[1].is_nan() && s.values[2].is_nan());
        assert!(out.notes[0].contains("2 missing or NaN values"), "{:?}", out.notes);
    }

    #[test]
    fn long_csv_splits_by_resource_and_isolates_bad_rows() {
        let d = tempfile::tempdir().unwrap();
        let p = write(&d, "fleet.csv", b"resource,timestamp,value\na,0,1\nb,0,2\na,3600,x\nb,3600,3\n");
        let out = read_file(&p, &FileOptions::default()).unwrap();
        assert_eq!(out.series.len(), 1);
        assert_eq!(out.series[0].name, "b");
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].resource.as_deref(), Some("a"));
        assert!(out.errors[0].message.contains("value `x` at line 4 is not a number"), "{}", out.errors[0]);
    }

    #[test]
    fn each_series_is_failed_by_its_own_first_bad_row() {
        // Bad rows in several series, a row bad in both cells (its timestamp is told), and
        // good rows between and after them that must keep their own values.
        let body = b"resource,timestamp,value\na,0,1\nb,0,2\nc,zero,inf\nb,3600,inf\nd,0,4\nc,3600,5\na,3600,3\nb,7200,6\nd,x,7\n";
        let d = tempfile::tempdir().unwrap();
        let out = read_file(&write(&d, "f.csv", body), &FileOptions::default()).unwrap();
        let kept: Vec<(&str, &[f64])> = out.series.iter().map(|s| (s.name.as_str(), s.values.as_slice())).collect();
        assert_eq!(kept, [("a", &[1.0, 3.0][..])]);
        let told: Vec<(Option<&str>, &str)> =
            out.errors.iter().map(|e| (e.resource.as_deref(), e.message.as_str())).collect();
        assert_eq!(told.len(), 3, "{told:?}");
        assert!(told[0].0 == Some("b") && told[0].1.contains("value `inf` at line 5 is infinite"), "{told:?}");
        assert!(told[1].0 == Some("c") && told[1].1.contains("bad timestamp `zero` at line 4"), "{told:?}");
        assert!(told[2].0 == Some("d") && told[2].1.contains("bad timestamp `x` at line 10"), "{told:?}");
    }

    #[test]
    fn label_columns_and_templates() {
        let d = tempfile::tempdir().unwrap();
        let p = write(&d, "l.csv", b"type,component,timestamp,value\nweb,cpu,0,1\napi,cpu,0,2\n");
        let out = read_file(&p, &FileOptions::default()).unwrap();
        let names: Vec<_> = out.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web/cpu", "api/cpu"]);
        let opts = FileOptions { name_template: Some("{component}@{type}".into()), ..Default::default() };
        let out = read_file(&p, &opts).unwrap();
        assert_eq!(out.series[0].name, "cpu@web");
        let opts = FileOptions { name_template: Some("{shard}".into()), ..Default::default() };
        let err = read_file(&p, &opts).unwrap_err();
        assert!(err.message.contains("uses label `shard`"), "{err}");
    }

    #[test]
    fn file_errors_name_the_problem() {
        let d = tempfile::tempdir().unwrap();
        let cases: &[(&str, &[u8], &str)] = &[
            ("empty.csv", b"", "file is empty"),
            ("nohdr.csv", b"2024-01-01T00:00:00Z,0.5\n2024-01-01T01:00:00Z,0.6\n", "no `timestamp` column"),
            ("ms.csv", b"timestamp,value\n1700000000000,0.5\n", "looks like milliseconds"),
            ("inf.csv", b"timestamp,value\n0,0.5\n3600,inf\n", "value `inf` at line 3 is infinite"),
            ("badts.csv", b"timestamp,value\nyesterday,0.5\n", "bad timestamp `yesterday` at line 2"),
            ("hdr.csv", b"timestamp,value\n", "no data rows"),
        ];
        for (name, body, want) in cases {
            let p = write(&d, name, body);
            let err = read_file(&p, &FileOptions::default()).unwrap_err();
            assert!(err.message.contains(want), "{name}: {err}");
            assert!(err.message.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn parquet_round_trip_with_native_datetime() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.parquet");
        let s = RawSeries::new("x".into(), String::new(), vec![0, 3600], vec![0.1, 0.2]);
        write_long_parquet(&p, std::slice::from_ref(&s)).unwrap();
        let out = read_file(&p, &FileOptions::default()).unwrap();
        assert_eq!(out.series[0].timestamps, s.timestamps);
        assert_eq!(out.series[0].values, s.values);

        let mut df = DataFrame::new_infer_height(vec![
            Column::new("timestamp".into(), vec![1_000_000i64, 3_601_000_000])
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap(),
            Column::new("value".into(), vec![1.0f64, 2.0]),
        ])
        .unwrap();
        let p2 = d.path().join("native.parquet");
        ParquetWriter::new(std::fs::File::create(&p2).unwrap()).finish(&mut df).unwrap();
        let out = read_file(&p2, &FileOptions::default()).unwrap();
        assert_eq!(out.series[0].name, "native");
        assert_eq!(out.series[0].timestamps, vec![1, 3601]);
    }

    #[test]
    fn grouped_parquet_is_indexed_then_read_per_series() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fleet.parquet");
        let fleet = crate::sample::synthetic_fleet(5, 2, 3);
        write_long_parquet(&p, &fleet).unwrap();
        let eager = read_file(&p, &FileOptions::default()).unwrap();
        let opts = FileOptions { defer_above: Some(0), ..FileOptions::default() };
        let lazy = read_file(&p, &opts).unwrap();
        assert_eq!(lazy.series.len(), 5);
        assert!(lazy.series.iter().all(|s| s.timestamps.is_empty() && s.deferred.is_some()));
        assert_eq!(lazy.series[4].last_timestamp(), eager.series[4].last_timestamp());
        // Any subset, in any order: the same points as reading the file whole.
        let want: Vec<&Deferred> = [3, 0, 4].iter().map(|&i| lazy.series[i].deferred.as_deref().unwrap()).collect();
        let got = load(&want);
        for (k, &i) in [3, 0, 4].iter().enumerate() {
            let s = got[k].as_ref().unwrap();
            assert_eq!(
                (&s.name, &s.timestamps, &s.values),
                (&eager.series[i].name, &eager.series[i].timestamps, &eager.series[i].values)
            );
        }
        // Rows not grouped by resource: read whole, as before.
        let mixed: Vec<RawSeries> = fleet
            .iter()
            .flat_map(|s| {
                s.timestamps
                    .iter()
                    .zip(&s.values)
                    .map(|(t, v)| RawSeries::new(s.name.clone(), String::new(), vec![*t], vec![*v]))
            })
            .collect();
        let p2 = d.path().join("mixed.parquet");
        let mut interleaved = mixed.clone();
        interleaved.sort_by_key(|s| s.timestamps[0]);
        write_long_parquet(&p2, &interleaved).unwrap();
        let out = read_file(&p2, &opts).unwrap();
        assert!(out.series.iter().all(|s| s.deferred.is_none() && s.timestamps.len() == 48));
    }

    #[test]
    fn template_key_parsing() {
        assert_eq!(template_keys("{a}/{b}"), ["a", "b"]);
        assert!(template_keys("plain").is_empty());
    }
    /// A generated file, written and read back: it must give series or one error line
    /// naming the file, never a panic.
    fn survives(dir: &tempfile::TempDir, name: &str, body: &[u8]) -> Result<(), TestCaseError> {
        let p = write(dir, name, body);
        let opts = FileOptions { column: None, name_template: None, defer_above: None };
        if let Err(e) = read_file(&p, &opts) {
            prop_assert!(e.message.starts_with(&p.display().to_string()), "{}", e.message);
            prop_assert!(!e.message.contains('\n'), "one line: {}", e.message);
        }
        Ok(())
    }

    fn valid_csv(rows: usize) -> String {
        let mut s = String::from("timestamp,value\n");
        for i in 0..rows {
            s.push_str(&format!("2026-01-01T{:02}:00:00Z,{}\n", i % 24, i as f64 * 0.01));
        }
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 1..600)) {
            let d = tempfile::tempdir().unwrap();
            survives(&d, "x.csv", &body)?;
            survives(&d, "x.parquet", &body)?;
        }

        #[test]
        fn cut_and_mangled_csv_never_panics(
            cut in 1usize..400,
            at in 0usize..400,
            junk in proptest::sample::select(vec![
                "1e999", "-1e308", "99999999999999999999999", "NaN", "\u{feff}", "\0", "\u{fffd}", ",,,,",
                "\"unterminated", "\r", "2026-13-45T99:99:99Z", "\u{1F600}", ";", "\t", "timestamp,value\n",
            ]),
        ) {
            let text = valid_csv(20);
            let mut bytes = text.as_bytes()[..cut.min(text.len())].to_vec();
            let at = at.min(bytes.len());
            bytes.splice(at..at, junk.bytes());
            let d = tempfile::tempdir().unwrap();
            survives(&d, "x.csv", &bytes)?;
            // Latin-1 and UTF-16 with a byte-order mark: encodings the reader does not take.
            bytes.insert(at.min(bytes.len()), 0xe9);
            survives(&d, "latin1.csv", &bytes)?;
            let utf16: Vec<u8> = [0xff, 0xfe].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
            survives(&d, "utf16.csv", &utf16)?;
        }

        #[test]
        fn cut_and_flipped_parquet_never_panics(cut in 0.0f64..1.0, flips in proptest::collection::vec((0.0f64..1.0, 1u8..=255), 0..6)) {
            let good = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample/fleet.parquet")).unwrap();
            let mut bytes = good[..((good.len() as f64 * cut) as usize).max(1)].to_vec();
            for (pos, mask) in flips {
                let i = ((bytes.len() - 1) as f64 * pos) as usize;
                bytes[i] ^= mask;
            }
            let d = tempfile::tempdir().unwrap();
            survives(&d, "x.parquet", &bytes)?;
        }
    }
}
