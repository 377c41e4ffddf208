//! The ledger: every run's forecasts kept as one immutable Parquet file per run (and per
//! shard) in a folder or a bucket, read back so each run can score the earlier ones.
//!
//! A file's name is its as-of and a hash of its content (`runs/20261101T000000Z-<hash>.parquet`):
//! concurrent runs and shards never write the same name with other content, a rerun that
//! forecasts the same writes nothing, and a file is written whole or not at all (the store
//! writes a temporary object and renames it, or the upload is one request).

pub mod table;

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as StorePath;
use object_store::{ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use std::collections::HashMap;

use crate::config::{Config, LedgerConfig, LedgerPlace};
use crate::pipeline::{self, NoSink, Track};
use crate::shard::Shard;
use crate::source::redact::Redactor;
use crate::time::rfc3339;
use crate::track::PastForecast;

/// Environment variables whose values are credentials: masked in every message.
const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// A bucket that does not answer costs at most this per request (connect, then the whole
/// request), with [`RETRIES`] retries within [`RETRY_WITHIN`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const RETRIES: usize = 3;
const RETRY_WITHIN: Duration = Duration::from_secs(60);
/// Error messages are cut to this many characters (a server's XML error body can be long).
const MESSAGE_CHARS: usize = 400;

/// One run file in the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFile {
    pub name: String,
    pub as_of: i64,
    pub bytes: u64,
    /// Resources in the file (0 until it is read).
    pub resources: usize,
}

/// An opened ledger.
pub struct Ledger {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    /// The folder or URL as the config wrote it (no credentials: those come from the environment).
    pub shown: String,
    runtime: tokio::runtime::Runtime,
    redactor: Redactor,
}

/// What reading the ledger found: every forecast it could read, and a line per file it could not.
#[derive(Debug, Default)]
pub struct Contents {
    pub forecasts: Vec<PastForecast>,
    pub runs: Vec<RunFile>,
    pub errors: Vec<String>,
    /// The runs could be listed (false: the folder or bucket did not answer).
    pub reachable: bool,
}

/// A ledger that cannot be opened, listed, read or written. The cause is kept as text,
/// redacted and on one line: object store errors can carry signed URLs and credentials.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("ledger {place}: {what}: {cause}")]
pub struct LedgerError {
    pub place: String,
    pub what: String,
    pub cause: String,
}

impl Ledger {
    pub fn open(cfg: &LedgerConfig) -> Result<Ledger, LedgerError> {
        let mut redactor = Redactor::default();
        for v in SECRET_VARS {
            if let Ok(s) = std::env::var(v) {
                redactor.add(&s);
            }
        }
        let shown = match &cfg.place {
            LedgerPlace::Path(p) => p.display().to_string(),
            LedgerPlace::Url(u) => u.clone(),
        };
        let fail = |what: &str, e: &dyn std::fmt::Display| LedgerError {
            place: shown.clone(),
            what: what.into(),
            cause: one_line(&redactor.redact(&e.to_string())),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail("cannot start the I/O runtime", &e))?;
        let (store, prefix): (Arc<dyn ObjectStore>, StorePath) = match &cfg.place {
            LedgerPlace::Path(p) => {
                std::fs::create_dir_all(p).map_err(|e| fail("cannot create the folder", &e))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(p)
                    .map_err(|e| fail("cannot open the folder", &e))?;
                (Arc::new(fs), StorePath::default())
            }
            LedgerPlace::Url(u) => {
                let rest = u.split_once("://").map_or("", |(_, r)| r);
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let prefix = StorePath::from(prefix.trim_matches('/'));
                // Timeouts as config keys: the builder keeps what it read from the environment
                // (endpoint, AWS_ALLOW_HTTP, ...), which replacing its client options would drop.
                let (connect, request) =
                    (format!("{}s", CONNECT_TIMEOUT.as_secs()), format!("{}s", REQUEST_TIMEOUT.as_secs()));
                let retry = RetryConfig { max_retries: RETRIES, retry_timeout: RETRY_WITHIN, ..RetryConfig::default() };
                let built: Result<Arc<dyn ObjectStore>, object_store::Error> = if u.starts_with("s3://") {
                    use object_store::aws::AmazonS3ConfigKey::Client;
                    object_store::aws::AmazonS3Builder::from_env()
                        .with_bucket_name(bucket)
                        .with_config(Client(ClientConfigKey::ConnectTimeout), connect)
                        .with_config(Client(ClientConfigKey::Timeout), request)
                        .with_retry(retry)
                        .build()
                        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                } else {
                    use object_store::gcp::GoogleConfigKey::Client;
                    object_store::gcp::GoogleCloudStorageBuilder::from_env()
                        .with_bucket_name(bucket)
                        .with_config(Client(ClientConfigKey::ConnectTimeout), connect)
                        .with_config(Client(ClientConfigKey::Timeout), request)
                        .with_retry(retry)
                        .build()
                        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                };
                (built.map_err(|e| fail("cannot open the bucket", &e))?, prefix)
            }
        };
        Ok(Ledger { store, prefix, shown, runtime, redactor })
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> LedgerError {
        let cause = one_line(&self.redactor.redact(&e.to_string()));
        LedgerError { place: self.redactor.redact(&self.shown), what: what.to_string(), cause }
    }

    fn runs_prefix(&self) -> StorePath {
        self.prefix.clone().join("runs")
    }

    /// The run files kept, oldest first.
    pub fn list(&self) -> Result<Vec<RunFile>, LedgerError> {
        let prefix = self.runs_prefix();
        let listed = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&prefix)))
            .map_err(|e| self.fail("cannot list the runs", e))?;
        let mut runs: Vec<RunFile> = listed
            .objects
            .iter()
            .filter_map(|o| {
                let name = o.location.filename()?.to_string();
                let as_of = as_of_of(&name)?;
                Some(RunFile { name, as_of, bytes: o.size, resources: 0 })
            })
            .collect();
        runs.sort_by(|a, b| a.as_of.cmp(&b.as_of).then_with(|| a.name.cmp(&b.name)));
        Ok(runs)
    }

    /// Every forecast in the ledger; a file that cannot be read is one line in `errors` and
    /// the others are still read.
    pub fn read(&self) -> Contents {
        let mut c = Contents::default();
        let runs = match self.list() {
            Ok(r) => r,
            Err(e) => {
                c.errors.push(e.to_string());
                return c;
            }
        };
        c.reachable = true;
        // Fetched one after another, decoded in parallel.
        let unreadable =
            |run: &RunFile, e: &dyn std::fmt::Display| self.fail(&format!("cannot read runs/{}", run.name), e);
        let fetched: Vec<(RunFile, Result<Vec<u8>, LedgerError>)> = runs
            .into_iter()
            .map(|run| {
                let path = self.runs_prefix().join(run.name.as_str());
                let bytes = self.runtime.block_on(async { self.store.get(&path).await?.bytes().await });
                let bytes = bytes.map(|b| b.to_vec()).map_err(|e| unreadable(&run, &e));
                (run, bytes)
            })
            .collect();
        let decoded: Vec<(RunFile, Result<Vec<PastForecast>, LedgerError>)> = fetched
            .into_par_iter()
            .map(|(run, bytes)| {
                let forecasts =
                    bytes.and_then(|b| table::decode(&b).map_err(|e| unreadable(&run, &crate::error::line(&e))));
                (run, forecasts)
            })
            .collect();
        for (run, result) in decoded {
            match result {
                Ok(f) => {
                    c.runs.push(RunFile { resources: f.len(), ..run });
                    c.forecasts.extend(f);
                }
                Err(e) => c.errors.push(e.to_string()),
            }
        }
        c
    }

    /// Writes one run's forecasts; None when the same file is already there (a rerun that
    /// forecast the same). Never replaces an existing file.
    pub fn write(&self, as_of: i64, forecasts: &[PastForecast]) -> Result<Option<String>, LedgerError> {
        let bytes = table::encode(forecasts).map_err(|e| self.fail("cannot encode the run", crate::error::line(&e)))?;
        let name = file_name(as_of, &bytes);
        let path = self.runs_prefix().join(name.as_str());
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.runtime.block_on(self.store.put_opts(&path, PutPayload::from(bytes), opts)) {
            Ok(_) => Ok(Some(name)),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(self.fail(&format!("cannot write runs/{name}"), e)),
        }
    }

    /// Deletes the runs older than `keep` before `as_of`; returns how many went.
    pub fn prune(&self, as_of: i64, keep: i64) -> Result<usize, LedgerError> {
        let old: Vec<RunFile> = self.list()?.into_iter().filter(|r| r.as_of < as_of - keep).collect();
        for r in &old {
            let path = self.runs_prefix().join(r.name.as_str());
            self.runtime
                .block_on(self.store.delete(&path))
                .map_err(|e| self.fail(&format!("cannot delete runs/{}", r.name), e))?;
        }
        Ok(old.len())
    }
}

/// A message on one line, cut to [`MESSAGE_CHARS`].
fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// A week: the spacing of the backfill a first run makes.
pub const WEEK: i64 = 7 * 86_400;

/// As-of dates `from`, `from + every`, ... up to `to` included.
pub fn dates(from: i64, to: i64, every: i64) -> Vec<i64> {
    if every <= 0 || to < from {
        return vec![];
    }
    (0..=(to - from) / every).map(|k| from + k * every).collect()
}

/// The weekly dates a first run backfills: `span` before `until`, on the weekday of `until`,
/// `until` itself excluded (the run forecasts from there).
pub fn backfill_dates(until: i64, span: i64) -> Vec<i64> {
    dates(until - (span / WEEK) * WEEK, until - WEEK, WEEK)
}

/// Replays the config as it would have run on each date (only data up to then) and writes
/// each run to the ledger; returns how many runs were written. Resources that fail on a date
/// (too little history then) are left out of that run.
pub fn backfill(
    ledger: &Ledger,
    config: &Config,
    dates: &[i64],
    shard: Option<Shard>,
    sha: &str,
) -> Result<usize, LedgerError> {
    let none = HashMap::new();
    let track = Track { earlier: &none, config_sha256: sha };
    let mut written = 0;
    for &d in dates {
        let r = pipeline::run(config, Some(d), shard, Some(&track), &|_| {}, &mut NoSink);
        if r.records.is_empty() {
            continue;
        }
        ledger.write(d, &r.records)?;
        written += 1;
    }
    Ok(written)
}

/// `20261101T000000Z-<16 hex of the content's SHA-256>.parquet`.
fn file_name(as_of: i64, bytes: &[u8]) -> String {
    let stamp: String = rfc3339(as_of).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let hash = format!("{:x}", Sha256::digest(bytes));
    format!("{stamp}-{}.parquet", &hash[..16])
}

/// The as-of a run file's name gives; None for files that are not run files.
fn as_of_of(name: &str) -> Option<i64> {
    let stamp = name.strip_suffix(".parquet")?.split('-').next()?;
    let b = stamp.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    chrono::DateTime::parse_from_rfc3339(&text).ok().map(|d| d.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_dates_end_a_week_before_the_run() {
        let d = 86_400;
        assert_eq!(dates(0, 20 * d, 7 * d), vec![0, 7 * d, 14 * d]);
        assert_eq!(backfill_dates(100 * d, 21 * d), vec![79 * d, 86 * d, 93 * d]);
        assert!(dates(5, 4, 1).is_empty());
    }

    #[test]
    fn names_carry_the_as_of_and_the_content() {
        let n = file_name(1_793_491_200, b"x");
        assert!(n.starts_with("20261101T000000Z-"), "{n}");
        assert_eq!(as_of_of(&n), Some(1_793_491_200));
        assert_ne!(n, file_name(1_793_491_200, b"y"));
        assert_eq!(as_of_of("notes.txt"), None);
        assert_eq!(as_of_of("2026-x.parquet"), None);
    }
}
