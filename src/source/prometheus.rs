//! Prometheus-compatible sources (Prometheus, Thanos, Mimir, VictoriaMetrics): `query_range`
//! over the history at the resource's step, split into chunks under the server's point
//! limit, fetched concurrently, stitched per series. On faults: each attempt is bounded end to
//! end by `timeout`; timeouts, refused connections, cut bodies and 5xx are retried with
//! backoff, 4xx are not; after [`BREAKER_AFTER`] attempts in a row that timed out or found no
//! server, the source's remaining queries are not run. Every message and name that leaves
//! the source has its secrets masked ([`Redactor`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, StatusCode};
use serde::Deserialize;

use super::answer::{self, Unreadable, clip};
pub use super::answer::{Labels, PromSeries};
use super::redact::{Redactor, percent_decode};
use super::{Pulled, RawSeries, SourceError};
use crate::error::Invalid;
use crate::stats::Aggregate;
use crate::time::format_duration;
use crate::time::parse_duration;

/// Connection settings of a Prometheus-compatible source. Secrets are named by environment
/// variable, never written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: String,
    pub bearer_token_env: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Header name -> environment variable holding its value (API keys and the like).
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    /// PEM file with extra CA certificates, relative to the config file.
    pub ca_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Per request (default 60s).
    pub timeout: Option<String>,
    /// Retries after a timeout, connection error or 5xx (default 3).
    pub retries: Option<u32>,
    /// Requests in flight at once (default 4).
    pub concurrency: Option<usize>,
    /// Points per series per request (default 11000, Prometheus' limit; VictoriaMetrics: 30000).
    pub max_points_per_request: Option<usize>,
    /// Series one query may return before it is an error (default 10000).
    pub max_series: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: String,
    pub password_env: String,
}

impl PrometheusConfig {
    /// Checks the settings a connection cannot be made without.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Invalid::rule("url must start with http:// or https://"));
        }
        if let Some(t) = &self.timeout {
            parse_duration(t).map_err(|source| Invalid::Time { key: "timeout".into(), source })?;
        }
        if self.concurrency == Some(0) {
            return Err(Invalid::rule("concurrency must be at least 1"));
        }
        if self.max_series == Some(0) {
            return Err(Invalid::rule("max_series must be at least 1"));
        }
        if self.max_points_per_request.is_some_and(|m| m < 2) {
            return Err(Invalid::rule("max_points_per_request must be at least 2"));
        }
        Ok(())
    }

    pub fn timeout_secs(&self) -> i64 {
        self.timeout.as_deref().and_then(|t| parse_duration(t).ok()).unwrap_or(60)
    }
}

/// Attempts in a row that timed out or found no server, after which a source is treated as
/// down for the rest of the run: a dead server then costs a few timeouts, not every query's.
pub const BREAKER_AFTER: u32 = 4;
/// Series one query may return unless `max_series` says otherwise: far more than one
/// resource entry names in practice, far fewer than would make an unreadable report.
pub const MAX_SERIES: usize = 10_000;
/// Longest query text shown in a message.
const QUERY_SHOWN: usize = 200;
/// Header names whose literal config values are credentials, masked like the environment's.
const SENSITIVE_HEADERS: [&str; 6] = ["authorization", "cookie", "token", "key", "secret", "password"];

/// A connected source, ready to query.
pub struct Prometheus {
    name: String,
    /// Base URL without credentials or trailing slash, as shown in messages.
    shown: String,
    url: String,
    client: Client,
    /// Drives the client; `query_range`'s worker threads block on it.
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
    retries: u32,
    concurrency: usize,
    max_points: usize,
    max_series: usize,
    redactor: Redactor,
    /// Attempts in a row that timed out or found no server.
    unreachable: AtomicU32,
    down: AtomicBool,
}

/// A query as sent to the server and as the user wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query<'a> {
    pub promql: String,
    pub written: &'a str,
    /// Where `written` starts in `promql` (server positions are moved back by this much).
    pub offset: usize,
}

impl<'a> Query<'a> {
    /// The query exactly as written.
    pub fn plain(written: &'a str) -> Self {
        Query { promql: written.to_string(), written, offset: 0 }
    }
}

/// Why a chunk brought nothing back.
enum Failure {
    Failed(SourceError),
    /// Not asked: the source is down.
    Skipped,
}

/// What one chunk request brought back.
type Chunk = Result<Vec<PromSeries>, Failure>;

/// How one attempt ended.
enum Attempt {
    Answer(StatusCode, Vec<u8>),
    TimedOut,
    NoServer(String),
    Cut(String),
    Failed(String),
}

impl Prometheus {
    /// Builds the client: auth from environment variables, headers, CA file, timeouts.
    pub fn connect(name: &str, cfg: &PrometheusConfig, base: &Path) -> Result<Self, SourceError> {
        let fail = |m: String| SourceError::file(format!("source {name}: {m}"));
        let install = rustls::crypto::ring::default_provider().install_default();
        let _ = install; // already installed by an earlier source: fine
        let env = |var: &str, key: &str| {
            std::env::var(var).map_err(|_| fail(format!("environment variable {var} ({key}) is not set")))
        };
        let mut redactor = Redactor::default();
        let mut headers = HeaderMap::new();
        if let Some(var) = &cfg.bearer_token_env {
            let token = env(var, "bearer_token_env")?;
            redactor.add(&token);
            let mut v = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| fail(format!("the token in {var} is not a valid header value")))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        if let Some(b) = &cfg.basic_auth {
            let password = env(&b.password_env, "basic_auth.password_env")?;
            let credentials = base64(&format!("{}:{}", b.user, password));
            redactor.add(&password);
            redactor.add(&credentials);
            let mut v = HeaderValue::from_str(&format!("Basic {credentials}"))
                .map_err(|_| fail("basic_auth credentials are not a valid header value".into()))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let from_env: Vec<(&String, String)> = cfg
            .headers_env
            .iter()
            .map(|(k, var)| env(var, &format!("headers_env.{k}")).map(|v| (k, v)))
            .collect::<Result<_, _>>()?;
        for (_, v) in &from_env {
            redactor.add(v);
        }
        for (k, v) in cfg.headers.iter().map(|(k, v)| (k, v.clone())).chain(from_env) {
            let lower = k.to_ascii_lowercase();
            if SENSITIVE_HEADERS.iter().any(|s| lower.contains(s)) {
                redactor.add(&v);
            }
            let key = HeaderName::from_bytes(k.as_bytes()).map_err(|_| fail(format!("bad header name `{k}`")))?;
            let mut val = HeaderValue::from_str(&v).map_err(|_| fail(format!("bad value for header `{k}`")))?;
            val.set_sensitive(true);
            headers.insert(key, val);
        }
        let url = cfg.url.trim_end_matches('/').to_string();
        for secret in userinfo_secrets(&url) {
            redactor.add(&secret);
        }
        let mut builder =
            Client::builder().default_headers(headers).tls_danger_accept_invalid_certs(cfg.insecure_skip_verify);
        if let Some(ca) = &cfg.ca_file {
            let path = base.join(ca);
            let pem = std::fs::read(&path).map_err(|e| fail(format!("ca_file {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|_| fail(format!("ca_file {}: not a PEM certificate", path.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| fail(redactor.redact(&format!("cannot build the HTTP client: {}", e.without_url()))))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("headroom-http")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| fail(format!("cannot start the HTTP runtime: {e}")))?;
        Ok(Prometheus {
            name: name.to_string(),
            shown: strip_userinfo(&url),
            url,
            client,
            runtime,
            timeout: Duration::from_secs(cfg.timeout_secs().max(1) as u64),
            retries: cfg.retries.unwrap_or(3),
            concurrency: cfg.concurrency.unwrap_or(4).max(1),
            max_points: cfg.max_points_per_request.unwrap_or(11_000).max(2),
            max_series: cfg.max_series.unwrap_or(MAX_SERIES),
            redactor,
            unreachable: AtomicU32::new(0),
            down: AtomicBool::new(false),
        })
    }

    /// The source's name in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Set once [`BREAKER_AFTER`] attempts in a row timed out or found no server.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// `text` with this source's secrets masked.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Runs `query` over `[start, end]` (both on the step grid) in chunks, concurrently.
    pub fn query_range(&self, query: &Query, start: i64, end: i64, step: i64) -> Result<Vec<PromSeries>, SourceError> {
        let n_points = ((end - start) / step + 1).max(1) as usize;
        let per = self.max_points;
        let chunks: Vec<(i64, i64)> = (0..n_points.div_ceil(per))
            .map(|j| {
                let a = start + (j * per) as i64 * step;
                let b = (a + (per as i64 - 1) * step).min(end);
                (a, b)
            })
            .collect();
        let results: Mutex<Vec<Option<Chunk>>> = Mutex::new((0..chunks.len()).map(|_| None).collect());
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..self.concurrency.min(chunks.len()) {
                scope.spawn(|| {
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(a, b)) = chunks.get(j) else { break };
                        let r = self.fetch(query, a, b, step);
                        let failed = r.is_err();
                        if let Ok(mut all) = results.lock() {
                            all[j] = Some(r);
                        }
                        if failed {
                            // Later chunks would fail the same way; stop taking work.
                            next.store(chunks.len(), Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let results =
            results.into_inner().map_err(|_| SourceError::file(format!("source {}: a worker failed", self.name)))?;
        let (fetched, failures): (Vec<_>, Vec<_>) = results.into_iter().flatten().partition(Result::is_ok);
        // The first real failure; a chunk skipped because another took the source down says less.
        let mut skipped = false;
        for f in failures {
            match f {
                Err(Failure::Failed(e)) => return Err(e),
                _ => skipped = true,
            }
        }
        if skipped {
            return Err(self.fail(query, format!("not run: {}", self.down_reason())));
        }
        let mut stitched: BTreeMap<Labels, PromSeries> = BTreeMap::new();
        for s in fetched.into_iter().flatten().flatten() {
            let e = stitched.entry(s.labels.clone()).or_insert_with(|| PromSeries {
                labels: s.labels.clone(),
                timestamps: vec![],
                values: vec![],
            });
            for (t, v) in s.timestamps.into_iter().zip(s.values) {
                // Chunks do not overlap, but a server may round their edges: keep one
                // point per timestamp.
                if e.timestamps.last().is_none_or(|last| t > *last) {
                    e.timestamps.push(t);
                    e.values.push(v);
                }
            }
        }
        // Each chunk was checked as it came; chunks may hold different series.
        if stitched.len() > self.max_series {
            return Err(self.fail(query, self.too_many(stitched.len())));
        }
        Ok(stitched.into_values().collect())
    }

    /// Why the source is treated as down.
    pub fn down_reason(&self) -> String {
        format!("{BREAKER_AFTER} attempts in a row timed out or found no server at {}", self.shown)
    }

    fn too_many(&self, n: usize) -> String {
        format!("returned {n} series, more than max_series = {}: narrow the query or raise max_series", self.max_series)
    }

    /// An error naming the source and the query as written, secrets masked.
    fn fail(&self, query: &Query, message: String) -> SourceError {
        let text = format!("source {}: query `{}`: {message}", self.name, clip(query.written, QUERY_SHOWN));
        SourceError::file(self.redact(&text))
    }

    /// One chunk, with retries.
    fn fetch(&self, query: &Query, start: i64, end: i64, step: i64) -> Chunk {
        let url = format!("{}/api/v1/query_range", self.url);
        let params = [
            ("query", query.promql.clone()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", format!("{step}s")),
        ];
        let fail = |m: String| Failure::Failed(self.fail(query, m));
        let mut attempt = 0;
        loop {
            if self.is_down() {
                return Err(Failure::Skipped);
            }
            let outcome = self.runtime.block_on(self.attempt(&url, &params));
            let unreachable = matches!(outcome, Attempt::TimedOut | Attempt::NoServer(_));
            if unreachable {
                if self.unreachable.fetch_add(1, Ordering::SeqCst) + 1 >= BREAKER_AFTER {
                    self.down.store(true, Ordering::SeqCst);
                }
            } else {
                self.unreachable.store(0, Ordering::SeqCst);
            }
            let retryable = match outcome {
                Attempt::Answer(status, body) if status.is_success() => match answer::read_matrix(&body) {
                    Ok(series) if series.len() > self.max_series => return Err(fail(self.too_many(series.len()))),
                    Ok(series) => return Ok(series),
                    Err(Unreadable::Cut(m)) => format!("the answer from {} was cut off ({m})", self.shown),
                    Err(Unreadable::Wrong(m)) => return Err(fail(self.positions(query, m))),
                },
                Attempt::Answer(status, body) => {
                    let what = self.positions(query, answer::describe_body(&body));
                    let msg = format!("HTTP {} from {}: {what}", status.as_u16(), self.shown);
                    if !status.is_server_error() {
                        return Err(fail(msg));
                    }
                    msg
                }
                Attempt::TimedOut => format!(
                    "timed out after {}: no complete answer from {}",
                    format_duration(self.timeout.as_secs() as i64),
                    self.shown
                ),
                Attempt::NoServer(why) => format!("cannot connect to {}: {why}", self.shown),
                Attempt::Cut(why) => format!("the answer from {} was cut off ({why})", self.shown),
                Attempt::Failed(why) => format!("request to {} failed: {why}", self.shown),
            };
            let down = self.is_down();
            if attempt >= self.retries || down {
                let tries = if attempt == 0 { String::new() } else { format!(" (after {} attempts)", attempt + 1) };
                let rest = if down { "; the source's remaining queries are not run" } else { "" };
                return Err(fail(format!("{retryable}{tries}{rest}")));
            }
            std::thread::sleep(Duration::from_millis(250u64 << attempt.min(4)));
            attempt += 1;
        }
    }

    /// One request, headers and body, within the timeout.
    async fn attempt(&self, url: &str, params: &[(&str, String)]) -> Attempt {
        let exchange = async {
            let resp = match self.client.get(url).query(params).send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() => return Attempt::NoServer(innermost(e)),
                Err(e) => return Attempt::Failed(innermost(e)),
            };
            let status = resp.status();
            match resp.bytes().await {
                Ok(body) => Attempt::Answer(status, body.to_vec()),
                Err(e) => Attempt::Cut(innermost(e)),
            }
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or(Attempt::TimedOut)
    }

    /// Server positions moved into the query as written.
    fn positions(&self, query: &Query, message: String) -> String {
        if query.offset == 0 { message } else { answer::user_positions(&message, query.offset, query.written) }
    }
}

/// The last cause in an error's chain (`Connection refused (os error 111)`), without URLs.
pub fn innermost(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg = c.to_string();
        cause = c.source();
    }
    msg
}

/// Secrets in a URL's userinfo: the password as written and decoded, the Basic credentials
/// the client derives from them, and a bare user name (then it is a token).
fn userinfo_secrets(url: &str) -> Vec<String> {
    let shown = strip_userinfo(url);
    if shown == url {
        return vec![];
    }
    let Some(scheme) = url.find("://") else { return vec![] };
    let Some(at) = url[scheme + 3..].find('@') else { return vec![] };
    let info = &url[scheme + 3..scheme + 3 + at];
    match info.split_once(':') {
        Some((user, password)) => vec![
            password.to_string(),
            percent_decode(password),
            base64(&format!("{}:{}", percent_decode(user), percent_decode(password))),
        ],
        None => vec![info.to_string(), percent_decode(info)],
    }
}

/// The PromQL that makes the server aggregate each step: `quantile_over_time(0.95,
/// (Q)[1h:1m])` and friends, so one point per step travels. `last` (or steps of a minute or
/// less) queries the expression as it is.
pub fn step_query(query: &str, aggregate: Aggregate, step: i64) -> Query<'_> {
    let head = match aggregate {
        _ if step <= 60 => return Query::plain(query),
        Aggregate::Last => return Query::plain(query),
        Aggregate::Mean => "avg_over_time(",
        Aggregate::Max => "max_over_time(",
        Aggregate::P95 => "quantile_over_time(0.95, ",
        Aggregate::P99 => "quantile_over_time(0.99, ",
    };
    let promql = format!("{head}({query})[{}:1m])", format_duration(step));
    Query { promql, written: query, offset: head.len() + 1 }
}

/// A name template naming a label a series lacks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("name template `{template}` uses label `{label}`, which series {{{series}}} lacks")]
pub struct MissingLabel {
    template: String,
    label: String,
    series: String,
}

/// Names a series: the template over its labels, else its labels' values joined by `/`, else
/// `fallback` (a series without labels).
pub fn series_name(labels: &Labels, template: Option<&str>, fallback: &str) -> Result<String, MissingLabel> {
    match template {
        Some(t) if t.contains('{') => {
            let mut name = t.to_string();
            for key in super::file::template_keys(t) {
                let v = labels.get(&key).ok_or_else(|| {
                    let have: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                    MissingLabel { template: t.to_string(), label: key.clone(), series: have.join(", ") }
                })?;
                name = name.replace(&format!("{{{key}}}"), v);
            }
            Ok(name)
        }
        Some(exact) => Ok(exact.to_string()),
        None => {
            let parts: Vec<&str> =
                labels.iter().filter(|(k, _)| k.as_str() != "__name__").map(|(_, v)| v.as_str()).collect();
            Ok(if parts.is_empty() {
                labels.get("__name__").cloned().unwrap_or_else(|| fallback.to_string())
            } else {
                parts.join("/")
            })
        }
    }
}

/// Pulls one resource entry's query and names its series; `thresholds` are (name, PromQL)
/// whose latest values become each series' thresholds (or capacity), matched by labels.
pub fn pull(
    source: &Prometheus,
    query: &str,
    template: Option<&str>,
    window: (i64, i64, i64),
    aggregate: Aggregate,
    thresholds: &[(String, String)],
) -> Pulled {
    let (start, end, step) = window;
    // Threshold series: the last value of each, as of the window's end.
    let mut threshold_series: Vec<(String, Vec<(Labels, f64)>)> = vec![];
    let mut threshold_errors = vec![];
    for (name, q) in thresholds {
        match source.query_range(&Query::plain(q), end - step, end, step) {
            Ok(series) => threshold_series.push((
                name.clone(),
                series
                    .into_iter()
                    .filter_map(|s| {
                        let v = s.values.iter().rev().find(|v| v.is_finite()).copied()?;
                        let mut l = s.labels;
                        l.remove("__name__");
                        Some((l, v))
                    })
                    .collect(),
            )),
            Err(e) => {
                let key =
                    if name == super::CAPACITY { "capacity_query".into() } else { format!("thresholds_query {name}") };
                threshold_errors.push(format!("{key}: {}", e.message))
            }
        }
    }
    let q = step_query(query, aggregate, step);
    let mut out = Pulled::default();
    if !threshold_errors.is_empty() {
        out.errors.push(SourceError {
            resource: template.filter(|t| !t.contains('{')).map(str::to_string),
            message: threshold_errors.join("; "),
        });
        return out;
    }
    let series = match source.query_range(&q, start, end, step) {
        Ok(s) => s,
        Err(e) => {
            out.errors.push(SourceError { resource: template.filter(|t| !t.contains('{')).map(str::to_string), ..e });
            return out;
        }
    };
    if series.is_empty() {
        out.errors.push(SourceError {
            resource: template.filter(|t| !t.contains('{')).map(str::to_string),
            message: source.redact(&format!(
                "source {}: query `{}` returned no series",
                source.name,
                clip(query, QUERY_SHOWN)
            )),
        });
        return out;
    }
    let exact = template.filter(|t| !t.contains('{'));
    if exact.is_some() && series.len() > 1 {
        out.errors.push(SourceError {
            resource: exact.map(str::to_string),
            message: source.redact(&format!(
                "source {}: query `{}` returned {} series; aggregate it to one or name them with a template such as `{{instance}}`",
                source.name,
                clip(query, QUERY_SHOWN),
                series.len()
            )),
        });
        return out;
    }
    let origin = source.redact(&format!("source {} query `{}`", source.name, clip(query, QUERY_SHOWN)));
    for s in series {
        match series_name(&s.labels, template, query) {
            Ok(name) => {
                // A hostile server can echo a secret in a label value.
                let name = source.redact(&name);
                let found: Vec<(String, f64)> = threshold_series
                    .iter()
                    .filter_map(|(tname, candidates)| matching(&s.labels, candidates).map(|v| (tname.clone(), v)))
                    .collect();
                if !found.is_empty() {
                    out.thresholds.insert(name.clone(), found);
                }
                let gaps = s.values.iter().filter(|v| v.is_nan()).count();
                if gaps > 0 {
                    out.notes.push(format!("{name}: {gaps} NaN or infinite values read as gaps"));
                }
                let mut raw = RawSeries::new(name, origin.clone(), s.timestamps, s.values);
                raw.labels = s.labels.iter().map(|(k, v)| (k.clone(), source.redact(v))).collect();
                out.series.push(raw)
            }
            Err(m) => out.errors.push(SourceError::file(source.redact(&format!("source {}: {m}", source.name)))),
        }
    }
    out
}

/// The value of the most specific threshold series whose labels all equal the resource's.
fn matching(labels: &Labels, candidates: &[(Labels, f64)]) -> Option<f64> {
    candidates
        .iter()
        .filter(|(l, _)| l.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .max_by_key(|(l, _)| l.len())
        .map(|(_, v)| *v)
}

fn strip_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_queries_aggregate_on_the_server() {
        let q = step_query("up", Aggregate::P95, 3600);
        assert_eq!(q.promql, "quantile_over_time(0.95, (up)[1h:1m])");
        assert_eq!(&q.promql[q.offset..q.offset + 2], "up");
        let q = step_query("up", Aggregate::Max, 300);
        assert_eq!((q.promql.as_str(), &q.promql[q.offset..q.offset + 2]), ("max_over_time((up)[5m:1m])", "up"));
        assert_eq!(step_query("up", Aggregate::Last, 3600), Query::plain("up"));
        assert_eq!(step_query("up", Aggregate::Mean, 60), Query::plain("up"));
    }

    #[test]
    fn names_from_labels() {
        let l: Labels = [("type", "web"), ("component", "cpu"), ("__name__", "x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(series_name(&l, Some("{type}/{component}"), "q").unwrap(), "web/cpu");
        assert!(series_name(&l, Some("{shard}"), "q").unwrap_err().to_string().contains("uses label `shard`"));
        assert_eq!(series_name(&l, None, "q").unwrap(), "cpu/web");
        assert_eq!(series_name(&Labels::new(), None, "sum(x)").unwrap(), "sum(x)");
        assert_eq!(series_name(&l, Some("db"), "q").unwrap(), "db");
    }

    #[test]
    fn secrets_stay_out_of_shown_urls() {
        assert_eq!(strip_userinfo("https://user:pw@thanos.example.com/x"), "https://thanos.example.com/x");
        assert_eq!(strip_userinfo("http://localhost:9090"), "http://localhost:9090");
        assert_eq!(base64("planner:s3cret"), "cGxhbm5lcjpzM2NyZXQ=");
        assert_eq!(base64("ab"), "YWI=");
        let secrets = userinfo_secrets("https://planner:p%40ss@thanos.example.com/x");
        assert_eq!(secrets, ["p%40ss", "p@ss", &base64("planner:p@ss")]);
        assert_eq!(userinfo_secrets("https://tok3n@h/x"), ["tok3n", "tok3n"]);
        assert!(userinfo_secrets("http://localhost:9090").is_empty());
    }
}
