//! Where saturation series come from. Each source turns its input into [`RawSeries`]:
//! named, unsorted, possibly duplicated points, exactly as read. `series` cleans them up.

/// The name under which `capacity_query`'s value travels beside the thresholds' values.
pub const CAPACITY: &str = "capacity";

pub mod answer;
pub mod file;
pub mod fleet;
pub mod prometheus;
pub mod redact;

/// One resource's points as read from a source, before any cleaning.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    /// Resource name: the `resource` column, label values, or the file stem.
    pub name: String,
    /// Where the points came from (file path), for error messages.
    pub origin: String,
    /// Unix seconds, in the order read.
    pub timestamps: Vec<i64>,
    /// Values; NaN marks a missing value (a gap).
    pub values: Vec<f64>,
    /// The series' labels (label columns of a file, a server's series labels): what
    /// `[issues] group_by` and other name templates can use beyond the name.
    pub labels: answer::Labels,
    /// Set when the points are still in their file (`timestamps` and `values` empty until
    /// [`file::load`] reads them).
    pub deferred: Option<Box<file::Deferred>>,
}

impl RawSeries {
    pub fn new(name: String, origin: String, timestamps: Vec<i64>, values: Vec<f64>) -> Self {
        RawSeries { name, origin, timestamps, values, labels: answer::Labels::new(), deferred: None }
    }

    /// A placeholder left behind when a series is moved out of a collection.
    pub fn empty() -> Self {
        RawSeries::new(String::new(), String::new(), vec![], vec![])
    }

    /// The last timestamp, also of a deferred series.
    pub fn last_timestamp(&self) -> Option<i64> {
        match &self.deferred {
            Some(d) => Some(d.last).filter(|t| *t > i64::MIN),
            None => self.timestamps.iter().max().copied(),
        }
    }
}

/// What one source produced: the series it could read, and one error line per series or file
/// it could not (the run reports those and goes on with the rest).
#[derive(Debug, Default)]
pub struct Pulled {
    pub series: Vec<RawSeries>,
    pub errors: Vec<SourceError>,
    /// Non-fatal notes (values read as gaps and the like), one line each.
    pub notes: Vec<String>,
    /// Thresholds read from the source per resource name: (threshold name, value).
    pub thresholds: std::collections::HashMap<String, Vec<(String, f64)>>,
}

/// A problem reading a source. `resource` is set when the problem is confined to one series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub resource: Option<String>,
    pub message: String,
}

impl SourceError {
    pub fn file(message: impl Into<String>) -> Self {
        SourceError { resource: None, message: message.into() }
    }
}
