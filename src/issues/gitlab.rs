//! GitLab's REST API v4, the parts the capacity issues use: list a project's issues by label
//! (paginated), create and edit issues, add notes, upload a plot. HTTP as the Prometheus
//! client does it: each attempt bounded by `timeout`, 5xx and unreachable servers retried with
//! backoff, 429 waited out as `Retry-After` says (within a bound), the token masked in every
//! message.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde::Deserialize;

use super::plan::Issue;
use crate::config::IssuesConfig;
use crate::source::answer::{clip, describe_body};
use crate::source::prometheus::innermost;
use crate::source::redact::{Redactor, percent_encode};
use crate::time::parse_date;

/// Issues per page (GitLab's maximum).
const PER_PAGE: usize = 100;
/// Pages read at most: 20,000 issues under one label is not a capacity tracker.
const MAX_PAGES: usize = 200;
/// The longest `Retry-After` waited; a longer one fails the call.
const MAX_RETRY_AFTER: u64 = 60;
/// 429 answers waited out per call.
const MAX_RATE_LIMITED: u32 = 5;
/// A larger answer is not GitLab's.
const MAX_BODY: usize = 32 << 20;

/// A connected GitLab project.
pub struct GitLab {
    /// `https://gitlab.example.com/api/v4/projects/<id>`.
    base: String,
    /// `https://gitlab.example.com`, as messages show it.
    shown: String,
    client: Client,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
    retries: u32,
    redactor: Redactor,
}

/// A body to send.
enum Body<'a> {
    None,
    Json(serde_json::Value),
    File { name: &'a str, bytes: &'a [u8] },
}

/// How one attempt ended.
enum Attempt {
    Answer(StatusCode, HeaderMap, Vec<u8>),
    TimedOut,
    Failed(String),
}

/// An issue as GitLab's API returns it (the fields used; anything else is ignored).
#[derive(Debug, Deserialize)]
struct ApiIssue {
    iid: u64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    closed_at: Option<String>,
    #[serde(default)]
    web_url: Option<String>,
}

impl From<ApiIssue> for Issue {
    fn from(a: ApiIssue) -> Issue {
        Issue {
            iid: a.iid,
            title: a.title.unwrap_or_default(),
            description: a.description.unwrap_or_default(),
            open: a.state.as_deref() != Some("closed"),
            labels: a.labels,
            closed_at: a.closed_at.as_deref().and_then(|t| parse_date(t).ok()),
            web_url: a.web_url.unwrap_or_default(),
        }
    }
}

/// A GitLab call or setup that failed: where (the server, and the call) and what went wrong.
/// Both are kept redacted, as text: a server may echo the token back in any part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[issues] GitLab {place}: {problem}")]
pub struct GitLabError {
    pub place: String,
    pub problem: String,
}

impl GitLab {
    /// The client, with the token from `token_env`.
    pub fn connect(cfg: &IssuesConfig) -> Result<GitLab, GitLabError> {
        let shown = cfg.url.clone();
        let fail = |problem: String| GitLabError { place: shown.clone(), problem };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let token = std::env::var(&cfg.token_env)
            .map_err(|_| fail(format!("environment variable {} (token_env) is not set", cfg.token_env)))?;
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(fail(format!("environment variable {} (token_env) is empty", cfg.token_env)));
        }
        let mut redactor = Redactor::default();
        redactor.add(&token);
        let mut value = HeaderValue::from_str(&token)
            .map_err(|_| fail(format!("the token in {} is not a valid header value", cfg.token_env)))?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("PRIVATE-TOKEN", value);
        let client = Client::builder()
            .default_headers(headers)
            .user_agent(concat!("headroom/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fail(redactor.redact(&format!("cannot build the HTTP client: {}", innermost(e)))))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| fail(format!("cannot start the HTTP runtime: {e}")))?;
        Ok(GitLab {
            base: format!("{}/api/v4/projects/{}", cfg.url, percent_encode(&cfg.project)),
            shown,
            client,
            runtime,
            timeout: Duration::from_secs(cfg.timeout.max(1) as u64),
            retries: cfg.retries,
            redactor,
        })
    }

    /// Every issue (open and closed) carrying `label`, page by page.
    pub fn issues(&self, label: &str) -> Result<Vec<Issue>, GitLabError> {
        let mut out = vec![];
        let mut page = 1;
        for _ in 0..MAX_PAGES {
            let query = [
                ("labels", label.to_string()),
                ("state", "all".into()),
                ("per_page", PER_PAGE.to_string()),
                ("page", page.to_string()),
            ];
            let (headers, body) = self.call(Method::GET, "/issues", &query, Body::None)?;
            let items: Vec<ApiIssue> = serde_json::from_slice(&body)
                .map_err(|e| self.fail("GET", "/issues", &format!("not a list of issues: {e}")))?;
            let n = items.len();
            out.extend(items.into_iter().map(Issue::from));
            let next = headers.get("x-next-page").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
            match next.parse::<usize>() {
                Ok(p) if p > page => page = p,
                // No header (some proxies drop it): a full page may have a next one.
                _ if next.is_empty() && headers.get("x-next-page").is_none() && n == PER_PAGE => page += 1,
                _ => return Ok(out),
            }
        }
        Err(self.fail("GET", "/issues", &format!("more than {MAX_PAGES} pages of issues under label {label:?}")))
    }

    /// Uploads a file; the Markdown that shows it.
    pub fn upload(&self, name: &str, bytes: &[u8]) -> Result<String, GitLabError> {
        let (_, body) = self.call(Method::POST, "/uploads", &[], Body::File { name, bytes })?;
        #[derive(Deserialize)]
        struct Uploaded {
            markdown: String,
        }
        let u: Uploaded = serde_json::from_slice(&body)
            .map_err(|e| self.fail("POST", "/uploads", &format!("not an upload answer: {e}")))?;
        Ok(u.markdown)
    }

    /// Creates an issue; its project-local id.
    pub fn create(&self, title: &str, description: &str, labels: &[String]) -> Result<u64, GitLabError> {
        let body = serde_json::json!({"title": title, "description": description, "labels": labels.join(",")});
        let (_, answer) = self.call(Method::POST, "/issues", &[], Body::Json(body))?;
        let issue: ApiIssue =
            serde_json::from_slice(&answer).map_err(|e| self.fail("POST", "/issues", &format!("not an issue: {e}")))?;
        Ok(issue.iid)
    }

    /// Edits an issue: `fields` as GitLab names them (title, description, add_labels,
    /// remove_labels, state_event).
    pub fn edit(&self, iid: u64, fields: serde_json::Value) -> Result<(), GitLabError> {
        self.call(Method::PUT, &format!("/issues/{iid}"), &[], Body::Json(fields)).map(|_| ())
    }

    /// Adds a comment.
    pub fn note(&self, iid: u64, body: &str) -> Result<(), GitLabError> {
        let json = serde_json::json!({ "body": body });
        self.call(Method::POST, &format!("/issues/{iid}/notes"), &[], Body::Json(json)).map(|_| ())
    }

    /// `text` with the token masked.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    fn fail(&self, method: &str, path: &str, m: &str) -> GitLabError {
        GitLabError { place: self.redact(&format!("{}: {method} {path}", self.shown)), problem: self.redact(m) }
    }

    /// One call with retries: 5xx, timeouts and connection failures with backoff up to
    /// `retries`; 429 after `Retry-After`. The headers and body of a 2xx answer.
    fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Body,
    ) -> Result<(HeaderMap, Vec<u8>), GitLabError> {
        let url = format!("{}{path}", self.base);
        let (mut attempt, mut limited) = (0u32, 0u32);
        loop {
            let outcome = self.runtime.block_on(self.attempt(&method, &url, query, &body));
            let (problem, wait) = match outcome {
                Attempt::Answer(status, headers, bytes) if status.is_success() => return Ok((headers, bytes)),
                Attempt::Answer(status, headers, bytes) if status == StatusCode::TOO_MANY_REQUESTS => {
                    limited += 1;
                    let after = headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1u64 << limited.min(5));
                    let m = format!("HTTP 429 (rate limited; Retry-After {after} s): {}", describe_body(&bytes));
                    if limited > MAX_RATE_LIMITED || after > MAX_RETRY_AFTER {
                        return Err(self.fail(method.as_str(), path, &format!("{m}; gave up")));
                    }
                    (m, Some(Duration::from_secs(after)))
                }
                Attempt::Answer(status, _, bytes) => {
                    let m = format!("HTTP {}: {}", status.as_u16(), clip(&describe_body(&bytes), 300));
                    if !status.is_server_error() {
                        return Err(self.fail(method.as_str(), path, &m));
                    }
                    (m, None)
                }
                Attempt::TimedOut => (format!("no complete answer within {} s", self.timeout.as_secs()), None),
                Attempt::Failed(why) => (why, None),
            };
            let wait = match wait {
                Some(w) => w,
                None if attempt < self.retries => {
                    attempt += 1;
                    Duration::from_millis(250u64 << attempt.min(5))
                }
                None => {
                    let tries = if attempt > 0 { format!(" (after {} attempts)", attempt + 1) } else { String::new() };
                    return Err(self.fail(method.as_str(), path, &format!("{problem}{tries}")));
                }
            };
            std::thread::sleep(wait);
        }
    }

    async fn attempt(&self, method: &Method, url: &str, query: &[(&str, String)], body: &Body<'_>) -> Attempt {
        let mut req = self.client.request(method.clone(), url).query(query);
        req = match body {
            Body::None => req,
            Body::Json(v) => req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(v).unwrap_or_default()),
            Body::File { name, bytes } => {
                let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string());
                let part = match part.mime_str("image/png") {
                    Ok(p) => p,
                    Err(e) => return Attempt::Failed(innermost(e)),
                };
                req.multipart(reqwest::multipart::Form::new().part("file", part))
            }
        };
        let exchange = async {
            let mut resp = match req.send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() => return Attempt::Failed(format!("cannot connect: {}", innermost(e))),
                Err(e) => return Attempt::Failed(innermost(e)),
            };
            let (status, headers) = (resp.status(), resp.headers().clone());
            let mut bytes = vec![];
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) if bytes.len() + c.len() > MAX_BODY => {
                        return Attempt::Failed(format!("answer larger than {} MB", MAX_BODY >> 20));
                    }
                    Ok(Some(c)) => bytes.extend_from_slice(&c),
                    Ok(None) => return Attempt::Answer(status, headers, bytes),
                    Err(e) => return Attempt::Failed(format!("answer cut off: {}", innermost(e))),
                }
            }
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or(Attempt::TimedOut)
    }
}
