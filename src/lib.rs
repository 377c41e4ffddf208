//! headroom: when does each resource run out, how sure are we, and what would change it.
//!
//! One pipeline: source → series → model → breach → report.

pub mod breach;
pub mod config;
pub mod model;
pub mod series;
pub mod source;
pub mod stats;
pub mod time;
