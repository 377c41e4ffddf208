//! Prometheus-compatible sources (Prometheus, Thanos, Mimir, VictoriaMetrics): `query_range`
//! over the history at the resource's step, split into chunks under the server's point
//! limit, fetched concurrently, stitched per series. Bounded retries with backoff for
//! timeouts, connection errors and 5xx; none for 4xx. Secrets come from the environment and
//! never appear in messages: errors name the source, the query and what the server said.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::{Pulled, RawSeries, SourceError};
use crate::config::PrometheusConfig;
use crate::series::Aggregate;
use crate::time::format_duration;

/// Labels of one series.
pub type Labels = BTreeMap<String, String>;

/// A connected source, ready to query.
pub struct Prometheus {
    name: String,
    /// Base URL without credentials or trailing slash, as shown in messages.
    shown: String,
    url: String,
    client: Client,
    retries: u32,
    concurrency: usize,
    max_points: usize,
}

/// What one chunk request brought back.
type Chunk = Result<Vec<PromSeries>, SourceError>;

/// One series as the server returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSeries {
    pub labels: Labels,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
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
        let mut headers = HeaderMap::new();
        if let Some(var) = &cfg.bearer_token_env {
            let token = env(var, "bearer_token_env")?;
            let mut v = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| fail(format!("the token in {var} is not a valid header value")))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        if let Some(b) = &cfg.basic_auth {
            let password = env(&b.password_env, "basic_auth.password_env")?;
            let mut v = HeaderValue::from_str(&format!("Basic {}", base64(&format!("{}:{}", b.user, password))))
                .map_err(|_| fail("basic_auth credentials are not a valid header value".into()))?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        for (k, v) in &cfg.headers {
            let key = HeaderName::from_bytes(k.as_bytes()).map_err(|_| fail(format!("bad header name `{k}`")))?;
            let val = HeaderValue::from_str(v).map_err(|_| fail(format!("bad value for header `{k}`")))?;
            headers.insert(key, val);
        }
        let timeout = Duration::from_secs(cfg.timeout_secs().max(1) as u64);
        let mut builder = Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .tls_danger_accept_invalid_certs(cfg.insecure_skip_verify);
        if let Some(ca) = &cfg.ca_file {
            let path = base.join(ca);
            let pem = std::fs::read(&path).map_err(|e| fail(format!("ca_file {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|_| fail(format!("ca_file {}: not a PEM certificate", path.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(|e| fail(format!("cannot build the HTTP client: {}", e.without_url())))?;
        let url = cfg.url.trim_end_matches('/').to_string();
        Ok(Prometheus {
            name: name.to_string(),
            shown: strip_userinfo(&url),
            url,
            client,
            retries: cfg.retries.unwrap_or(3),
            concurrency: cfg.concurrency.unwrap_or(4).max(1),
            max_points: cfg.max_points_per_request.unwrap_or(11_000).max(2),
        })
    }

    /// Runs `query` over `[start, end]` (both on the step grid) in chunks, concurrently.
    pub fn query_range(&self, query: &str, start: i64, end: i64, step: i64) -> Result<Vec<PromSeries>, SourceError> {
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
        let mut stitched: BTreeMap<Labels, PromSeries> = BTreeMap::new();
        for r in results.into_iter().flatten() {
            for s in r? {
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
        }
        Ok(stitched.into_values().collect())
    }

    /// One request with retries.
    fn fetch(&self, query: &str, start: i64, end: i64, step: i64) -> Chunk {
        let url = format!("{}/api/v1/query_range", self.url);
        let params = [
            ("query", query.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", format!("{step}s")),
        ];
        let fail = |m: String| SourceError::file(format!("source {}: query `{}`: {m}", self.name, clip(query)));
        let mut attempt = 0;
        loop {
            let outcome = self.client.get(&url).query(&params).send();
            let retryable = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.text() {
                        // A transport failure in the middle of the answer: retried.
                        Err(e) => format!("the answer from {} was cut off ({})", self.shown, e.without_url()),
                        Ok(body) => {
                            if status.is_success() {
                                return parse_matrix(&body).map_err(fail);
                            }
                            let what = server_error(&body).unwrap_or_else(|| clip(body.trim()));
                            let msg = format!("HTTP {} from {}: {what}", status.as_u16(), self.shown);
                            if !status.is_server_error() {
                                return Err(fail(msg));
                            }
                            msg
                        }
                    }
                }
                Err(e) if e.is_timeout() => format!("no answer from {} within the timeout", self.shown),
                Err(e) if e.is_connect() => format!("cannot connect to {}", self.shown),
                Err(e) => format!("request to {} failed: {}", self.shown, e.without_url()),
            };
            if attempt >= self.retries {
                let tries = if attempt == 0 { String::new() } else { format!(" (after {} attempts)", attempt + 1) };
                return Err(fail(format!("{retryable}{tries}")));
            }
            std::thread::sleep(Duration::from_millis(250u64 << attempt.min(4)));
            attempt += 1;
        }
    }
}

/// A `query_range` answer, deserialised without copying the sample strings.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    status: &'a str,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    result: Vec<Item<'a>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(default)]
    metric: Labels,
    #[serde(borrow, default)]
    values: Vec<(f64, &'a str)>,
}

/// Reads a `query_range` answer: a matrix of series with `[ts, "value"]` pairs. `NaN` and
/// infinities (a division by zero in PromQL) become gaps.
fn parse_matrix(body: &str) -> Result<Vec<PromSeries>, String> {
    let answer: Answer = serde_json::from_str(body).map_err(|_| {
        server_error(body).unwrap_or_else(|| format!("not a Prometheus API answer: {}", clip(body.trim())))
    })?;
    if answer.status != "success" {
        return Err(server_error(body).unwrap_or_else(|| "the server reported an error".into()));
    }
    let data = answer.data.ok_or("answer has no data.result")?;
    let mut out = Vec::with_capacity(data.result.len());
    for item in data.result {
        let mut ts = Vec::with_capacity(item.values.len());
        let mut vals = Vec::with_capacity(item.values.len());
        for (t, raw) in item.values {
            let x: f64 = raw.parse().map_err(|_| format!("malformed value `{}`", clip(raw)))?;
            ts.push(t.floor() as i64);
            vals.push(if x.is_finite() { x } else { f64::NAN });
        }
        out.push(PromSeries { labels: item.metric, timestamps: ts, values: vals });
    }
    Ok(out)
}

/// `errorType: error` from an API error body, when it is one.
fn server_error(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let kind = v["errorType"].as_str().unwrap_or("error");
    let msg = v["error"].as_str()?;
    Some(format!("{kind}: {}", clip(msg)))
}

/// The PromQL that makes the server aggregate each step: `quantile_over_time(0.95,
/// (Q)[1h:1m])` and friends, so one point per step travels. `last` (or steps of a minute or
/// less) queries the expression as it is.
pub fn step_query(query: &str, aggregate: Aggregate, step: i64) -> String {
    if step <= 60 {
        return query.to_string();
    }
    let window = format_duration(step);
    let sub = format!("({query})[{window}:1m]");
    match aggregate {
        Aggregate::Last => query.to_string(),
        Aggregate::Mean => format!("avg_over_time({sub})"),
        Aggregate::Max => format!("max_over_time({sub})"),
        Aggregate::P95 => format!("quantile_over_time(0.95, {sub})"),
        Aggregate::P99 => format!("quantile_over_time(0.99, {sub})"),
    }
}

/// Names a series: the template over its labels, else its labels' values joined by `/`, else
/// `fallback` (a series without labels).
pub fn series_name(labels: &Labels, template: Option<&str>, fallback: &str) -> Result<String, String> {
    match template {
        Some(t) if t.contains('{') => {
            let mut name = t.to_string();
            for key in super::file::template_keys(t) {
                let v = labels.get(&key).ok_or_else(|| {
                    let have: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                    format!("name template `{t}` uses label `{key}`, which series {{{}}} lacks", have.join(", "))
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
        match source.query_range(q, end - step, end, step) {
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
                let key = if name == crate::config::CAPACITY {
                    "capacity_query".into()
                } else {
                    format!("thresholds_query {name}")
                };
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
            message: format!("source {}: query `{}` returned no series", source.name, clip(query)),
        });
        return out;
    }
    let exact = template.filter(|t| !t.contains('{'));
    if exact.is_some() && series.len() > 1 {
        out.errors.push(SourceError {
            resource: exact.map(str::to_string),
            message: format!(
                "source {}: query `{}` returned {} series; aggregate it to one or name them with a template such as `{{instance}}`",
                source.name,
                clip(query),
                series.len()
            ),
        });
        return out;
    }
    for s in series {
        match series_name(&s.labels, template, query) {
            Ok(name) => {
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
                let origin = format!("source {} query `{}`", source.name, clip(query));
                out.series.push(RawSeries::new(name, origin, s.timestamps, s.values))
            }
            Err(m) => out.errors.push(SourceError::file(format!("source {}: {m}", source.name))),
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

fn clip(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().count() > 200 { format!("{}...", s.chars().take(200).collect::<String>()) } else { s }
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
    fn parses_matrices_and_errors() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"type":"web","component":"cpu"},"values":[[3600,"0.5"],[7200,"NaN"],[10800,"+Inf"]]}]}}"#;
        let s = parse_matrix(body).unwrap();
        assert_eq!(s[0].timestamps, vec![3600, 7200, 10800]);
        assert_eq!(s[0].values[0], 0.5);
        assert!(s[0].values[1].is_nan() && s[0].values[2].is_nan());
        let err = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(parse_matrix(err).unwrap_err(), "bad_data: parse error at char 3");
        assert!(parse_matrix("<html>").unwrap_err().contains("not a Prometheus API answer"));
    }

    #[test]
    fn step_queries_aggregate_on_the_server() {
        assert_eq!(step_query("up", Aggregate::P95, 3600), "quantile_over_time(0.95, (up)[1h:1m])");
        assert_eq!(step_query("up", Aggregate::Max, 300), "max_over_time((up)[5m:1m])");
        assert_eq!(step_query("up", Aggregate::Last, 3600), "up");
        assert_eq!(step_query("up", Aggregate::Mean, 60), "up");
    }

    #[test]
    fn names_from_labels() {
        let l: Labels = [("type", "web"), ("component", "cpu"), ("__name__", "x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(series_name(&l, Some("{type}/{component}"), "q").unwrap(), "web/cpu");
        assert!(series_name(&l, Some("{shard}"), "q").unwrap_err().contains("uses label `shard`"));
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
    }
}
