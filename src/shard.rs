//! Which part of the fleet a run forecasts (`--shard I/N`): shards of one run are merged
//! into one report by `headroom merge`.

use serde::{Deserialize, Serialize};

/// Which part of the fleet a run forecasts (`--shard I/N`, 1-based): the resources whose
/// name hashes (FNV-1a, stable across machines and versions) to `I - 1` modulo `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// A `--shard` value that is not I/N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}`: expected I/N with 1 <= I <= N, e.g. 2/4")]
pub struct ShardError(String);

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError(text.to_string());
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn owns(&self, name: &str) -> bool {
        (crate::stats::fnv1a(name) % self.count as u64) as usize == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
