//! headroom: when does each resource run out, how sure are we, and what would change it.
//!
//! One pipeline, one module per stage: `source` (files, servers; `source::fleet` pairs series
//! with config entries) → `series` (regular steps) → `model` (fit, select, forecast) →
//! `breach` / `scenario` (crossings, headroom, what-ifs) → `track` (earlier forecasts scored) →
//! `outcome` (what a run produced) → `report` (outputs) and `issues` (the tracker's capacity issues); `ledger` keeps the forecasts between runs. `resource` takes one series through the stages, `pipeline` runs them
//! over a fleet (`shard` picks a part of it); `commands` turns flags into runs and exit codes.

pub mod backtest;
pub mod breach;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod issues;
pub mod ledger;
pub mod model;
pub mod outcome;
pub mod pipeline;
pub mod report;
pub mod resource;
pub mod sample;
pub mod scenario;
pub mod series;
pub mod shard;
pub mod source;
pub mod stats;
pub mod time;
pub mod track;
pub mod units;
