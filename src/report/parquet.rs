//! `forecasts.parquet`: every forecast path (resource, timestamp, mean, lower, upper) for
//! notebooks and dashboards.

use polars::prelude::*;

use super::{Exporter, Report};

pub struct ForecastPaths;

impl Exporter for ForecastPaths {
    fn file_name(&self) -> &'static str {
        "forecasts.parquet"
    }

    fn render(&self, report: &Report) -> Result<Vec<u8>, String> {
        let (mut name, mut ts, mut mean, mut lower, mut upper) = (vec![], vec![], vec![], vec![], vec![]);
        for r in &report.run.resources {
            for i in 0..r.forecast.mean.len() {
                name.push(r.name.as_str());
                ts.push(r.forecast_time(i) * 1000);
                mean.push(r.forecast.mean[i]);
                lower.push(r.forecast.lower[i]);
                upper.push(r.forecast.upper[i]);
            }
        }
        let timestamp = Column::new("timestamp".into(), ts)
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .map_err(|e| e.to_string())?;
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("resource".into(), name),
            timestamp,
            Column::new("mean".into(), mean),
            Column::new("lower".into(), lower),
            Column::new("upper".into(), upper),
        ])
        .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf).finish(&mut df).map_err(|e| e.to_string())?;
        Ok(buf)
    }
}
