//! headroom: when does each resource run out, how sure are we, and what would change it.
//!
//! One pipeline, one module per stage: `source` (files) → `series` (regular steps) →
//! `model` (fit, select, forecast) → `breach` (crossings, headroom) → `report` (outputs).
//! `pipeline` runs the stages over a fleet; `commands` turns flags into runs and exit codes.

pub mod backtest;
pub mod breach;
pub mod cli;
pub mod commands;
pub mod config;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod sample;
pub mod scenario;
pub mod series;
pub mod source;
pub mod stats;
pub mod time;
pub mod units;
