//! `forecasts.parquet`: every forecast path (resource, timestamp, mean, lower, upper), and
//! `scenarios.parquet`: every what-if path (scenario, resource, timestamp, mean, lower,
//! upper), for notebooks and dashboards. Values are on the forecast's scale (a fraction of
//! capacity where a resource has one; `forecasts.json` gives the capacity).

use polars::prelude::*;

use super::{Exporter, Report};
use crate::model::Forecast;
use crate::pipeline::ResourceForecast;

pub struct ForecastPaths;

impl Exporter for ForecastPaths {
    fn file_name(&self) -> &'static str {
        "forecasts.parquet"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, String> {
        let paths = report.run.resources.iter().map(|r| (None, r, &r.forecast));
        frame(paths, false)
    }
}

pub struct ScenarioPaths;

impl Exporter for ScenarioPaths {
    fn file_name(&self) -> &'static str {
        "scenarios.parquet"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, String> {
        let paths = report.run.resources.iter().flat_map(|r| r.scenarios.iter().map(move |(n, f, _)| (Some(n), r, f)));
        frame(paths, true)
    }
}

/// One row per forecast step of each (scenario, resource, path), as Parquet bytes.
fn frame<'a>(
    paths: impl Iterator<Item = (Option<&'a String>, &'a ResourceForecast, &'a Forecast)>,
    with_scenario: bool,
) -> Result<Vec<u8>, String> {
    let (mut scenario, mut name, mut ts) = (vec![], vec![], vec![]);
    let (mut mean, mut lower, mut upper) = (vec![], vec![], vec![]);
    for (s, r, f) in paths {
        for i in 0..f.mean.len() {
            scenario.push(s.map_or("", String::as_str));
            name.push(r.name.as_str());
            ts.push(r.forecast_time(i) * 1000);
            mean.push(f.mean[i]);
            lower.push(f.lower[i]);
            upper.push(f.upper[i]);
        }
    }
    let timestamp = Column::new("timestamp".into(), ts)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .map_err(|e| e.to_string())?;
    let mut columns = vec![];
    if with_scenario {
        columns.push(Column::new("scenario".into(), scenario));
    }
    columns.extend([
        Column::new("resource".into(), name),
        timestamp,
        Column::new("mean".into(), mean),
        Column::new("lower".into(), lower),
        Column::new("upper".into(), upper),
    ]);
    let mut df = DataFrame::new_infer_height(columns).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(&mut df).map_err(|e| e.to_string())?;
    Ok(buf)
}
