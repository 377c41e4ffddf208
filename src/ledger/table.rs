//! One run's forecasts as a Parquet table, and back: a row per resource, per mark (the
//! forecast at a whole day after the as-of) and per threshold, in long format. A forecast's
//! own fields (model, config hash, level, ...) are on its `resource` row only, which comes
//! first: the other rows leave them null, so reading a ledger does not make them again per row.

use std::collections::BTreeMap;
use std::io::Cursor;

use polars::prelude::*;

use crate::track::{Mark, PastForecast, PastThreshold};

/// The table layout this build writes and reads; a newer one is refused by name.
pub const VERSION: i32 = 1;

#[derive(Default)]
struct Rows {
    version: Vec<i32>,
    kind: Vec<&'static str>,
    resource: Vec<String>,
    as_of: Vec<i64>,
    model: Vec<Option<String>>,
    config: Vec<Option<String>>,
    level: Vec<Option<f64>>,
    level_shift: Vec<Option<i64>>,
    headroom: Vec<Option<f64>>,
    t: Vec<Option<i64>>,
    mean: Vec<Option<f64>>,
    lower: Vec<Option<f64>>,
    upper: Vec<Option<f64>>,
    threshold: Vec<Option<String>>,
    value: Vec<Option<f64>>,
    expected_at: Vec<Option<i64>>,
    earliest_at: Vec<Option<i64>>,
    probability: Vec<Option<f64>>,
    already: Vec<Option<bool>>,
}

impl Rows {
    fn push(&mut self, kind: &'static str, p: &PastForecast, mark: Option<&Mark>, th: Option<&PastThreshold>) {
        self.version.push(VERSION);
        self.kind.push(kind);
        self.resource.push(p.resource.clone());
        self.as_of.push(p.as_of);
        let own = kind == "resource";
        self.model.push(own.then(|| p.model.clone()));
        self.config.push(own.then(|| p.config_sha256.clone()));
        self.level.push(own.then_some(p.level));
        self.level_shift.push(p.level_shift.filter(|_| own));
        self.headroom.push(p.headroom_days.filter(|_| own));
        self.t.push(mark.map(|m| m.t));
        self.mean.push(mark.map(|m| m.mean));
        self.lower.push(mark.map(|m| m.lower));
        self.upper.push(mark.map(|m| m.upper));
        self.threshold.push(th.map(|t| t.name.clone()));
        self.value.push(th.map(|t| t.value));
        self.expected_at.push(th.and_then(|t| t.expected_at));
        self.earliest_at.push(th.and_then(|t| t.earliest_at));
        self.probability.push(th.map(|t| t.probability));
        self.already.push(th.map(|t| t.already_breached));
    }
}

/// A run file that cannot be written or read back as one.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("cannot encode the run")]
    Encode(#[source] PolarsError),
    #[error("not a readable Parquet file")]
    Unreadable(#[source] PolarsError),
    #[error("written by a newer headroom (ledger version {0}; this build reads {VERSION})")]
    Newer(i32),
    /// A column or a row unlike what [`encode`] writes, in words.
    #[error("{0}")]
    Shape(String),
}

/// The Parquet bytes of one run's forecasts (the same forecasts give the same bytes).
pub fn encode(forecasts: &[PastForecast]) -> Result<Vec<u8>, TableError> {
    let mut r = Rows::default();
    for p in forecasts {
        r.push("resource", p, None, None);
        for m in &p.outline {
            r.push("mark", p, Some(m), None);
        }
        for th in &p.thresholds {
            r.push("threshold", p, None, Some(th));
        }
    }
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("ledger_version".into(), r.version),
        Column::new("kind".into(), r.kind),
        Column::new("resource".into(), r.resource),
        Column::new("as_of".into(), r.as_of),
        Column::new("model".into(), r.model),
        Column::new("config_sha256".into(), r.config),
        Column::new("level".into(), r.level),
        Column::new("level_shift".into(), r.level_shift),
        Column::new("headroom_days".into(), r.headroom),
        Column::new("t".into(), r.t),
        Column::new("mean".into(), r.mean),
        Column::new("lower".into(), r.lower),
        Column::new("upper".into(), r.upper),
        Column::new("threshold".into(), r.threshold),
        Column::new("value".into(), r.value),
        Column::new("expected_at".into(), r.expected_at),
        Column::new("earliest_at".into(), r.earliest_at),
        Column::new("probability".into(), r.probability),
        Column::new("already_breached".into(), r.already),
    ])
    .map_err(TableError::Encode)?;
    let mut out = vec![];
    ParquetWriter::new(&mut out)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .map_err(TableError::Encode)?;
    Ok(out)
}

fn shape(text: String) -> TableError {
    TableError::Shape(text)
}

/// The forecasts in Parquet bytes written by [`encode`]; an error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<Vec<PastForecast>, TableError> {
    let df = ParquetReader::new(Cursor::new(bytes)).finish().map_err(TableError::Unreadable)?;
    let col = |name: &str| df.column(name).map_err(|_| shape(format!("no `{name}` column")));
    let ints = |name: &str| -> Result<Vec<Option<i64>>, TableError> {
        Ok(col(name)?.i64().map_err(|_| shape(format!("`{name}` is not a 64-bit integer column")))?.iter().collect())
    };
    let floats = |name: &str| -> Result<Vec<Option<f64>>, TableError> {
        Ok(col(name)?.f64().map_err(|_| shape(format!("`{name}` is not a float column")))?.iter().collect())
    };
    // Text borrowed from the frame: a String is made once per forecast, not per row.
    fn strs<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Option<&'a str>>, TableError> {
        let c = df.column(name).map_err(|_| shape(format!("no `{name}` column")))?;
        Ok(c.str().map_err(|_| shape(format!("`{name}` is not a text column")))?.iter().collect())
    }
    let version: Vec<Option<i32>> = col("ledger_version")?
        .i32()
        .map_err(|_| shape("`ledger_version` is not an i32 column".into()))?
        .iter()
        .collect();
    if let Some(v) = version.iter().flatten().find(|v| **v != VERSION) {
        return Err(TableError::Newer(*v));
    }
    let (kind, resource, model, config) =
        (strs(&df, "kind")?, strs(&df, "resource")?, strs(&df, "model")?, strs(&df, "config_sha256")?);
    let (as_of, level_shift, t, expected, earliest) =
        (ints("as_of")?, ints("level_shift")?, ints("t")?, ints("expected_at")?, ints("earliest_at")?);
    let (level, headroom, mean, lower, upper, value, probability) = (
        floats("level")?,
        floats("headroom_days")?,
        floats("mean")?,
        floats("lower")?,
        floats("upper")?,
        floats("value")?,
        floats("probability")?,
    );
    let threshold = strs(&df, "threshold")?;
    let already: Vec<Option<bool>> = col("already_breached")?
        .bool()
        .map_err(|_| shape("`already_breached` is not a boolean column".into()))?
        .iter()
        .collect();
    let mut out: Vec<PastForecast> = vec![];
    let mut at: BTreeMap<(&str, i64), usize> = BTreeMap::new();
    let mut last: Option<((&str, i64), usize)> = None;
    for i in 0..df.height() {
        let row = || format!("row {}", i + 1);
        let (Some(res), Some(a)) = (resource[i], as_of[i]) else {
            return Err(TableError::Shape(format!("{}: no resource or as_of", row())));
        };
        if kind[i] == Some("resource") {
            if at.contains_key(&(res, a)) {
                return Err(TableError::Shape(format!("{}: a second forecast of `{res}` as of {a}", row())));
            }
            out.push(PastForecast {
                resource: res.to_string(),
                as_of: a,
                model: model[i].unwrap_or_default().to_string(),
                config_sha256: config[i].unwrap_or_default().to_string(),
                level: level[i].unwrap_or(f64::NAN),
                level_shift: level_shift[i],
                headroom_days: headroom[i],
                outline: vec![],
                thresholds: vec![],
            });
            at.insert((res, a), out.len() - 1);
        }
        // Rows come grouped by forecast: the last group is nearly always the one.
        let k = match last {
            Some((key, k)) if key == (res, a) => k,
            _ => *at
                .get(&(res, a))
                .ok_or_else(|| shape(format!("{}: a row of `{res}` before its resource row", row())))?,
        };
        last = Some(((res, a), k));
        match kind[i] {
            Some("resource") => {}
            Some("mark") => {
                let (Some(t), Some(m), Some(lo), Some(hi)) = (t[i], mean[i], lower[i], upper[i]) else {
                    return Err(TableError::Shape(format!("{}: a mark without t, mean, lower and upper", row())));
                };
                out[k].outline.push(Mark { t, mean: m, lower: lo, upper: hi });
            }
            Some("threshold") => {
                let (Some(name), Some(v), Some(p)) = (threshold[i].map(String::from), value[i], probability[i]) else {
                    return Err(TableError::Shape(format!(
                        "{}: a threshold without name, value and probability",
                        row()
                    )));
                };
                out[k].thresholds.push(PastThreshold {
                    name,
                    value: v,
                    expected_at: expected[i],
                    earliest_at: earliest[i],
                    probability: p,
                    already_breached: already[i].unwrap_or(false),
                });
            }
            other => return Err(TableError::Shape(format!("{}: unknown row kind {other:?}", row()))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Vec<PastForecast> {
        vec![PastForecast {
            resource: "web/cpu".into(),
            as_of: 1_790_000_000,
            model: "ets".into(),
            config_sha256: "abc".into(),
            level: 0.8,
            level_shift: Some(1_780_000_000),
            headroom_days: None,
            outline: vec![Mark { t: 1_790_086_400, mean: 0.5, lower: 0.4, upper: 0.6 }],
            thresholds: vec![PastThreshold {
                name: "hard".into(),
                value: 0.9,
                expected_at: None,
                earliest_at: Some(1_791_000_000),
                probability: 0.25,
                already_breached: false,
            }],
        }]
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let s = sample();
        let a = encode(&s).unwrap();
        assert_eq!(a, encode(&s).unwrap());
        assert_eq!(decode(&a).unwrap(), s);
    }

    #[test]
    fn a_newer_layout_is_refused_by_name() {
        let mut df =
            DataFrame::new_infer_height(vec![Column::new("ledger_version".into(), vec![VERSION + 1])]).unwrap();
        let mut bytes = vec![];
        ParquetWriter::new(&mut bytes).finish(&mut df).unwrap();
        let e = decode(&bytes).unwrap_err();
        assert!(e.to_string().contains("newer headroom (ledger version 2"), "{e}");
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let a = encode(&sample()).unwrap();
        for cut in [0, 4, a.len() / 2, a.len() - 1] {
            assert!(decode(&a[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = a.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let _ = decode(&flipped);
    }
}
