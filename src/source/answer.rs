//! What a Prometheus-compatible server answered to `query_range`: a range matrix, the API's
//! own error, or something else (an HTML page, a cut or broken body, another result type),
//! each read into one line a person can act on.

use serde::Deserialize;
use serde_json::Value;

use std::collections::BTreeMap;

/// Labels of one series.
pub type Labels = BTreeMap<String, String>;

/// One series as the server returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSeries {
    pub labels: Labels,
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
}

/// Longest excerpt of a server's text shown in a message.
const EXCERPT: usize = 200;
/// Longest gist of an HTML page (its title or first line).
const PAGE_GIST: usize = 120;

/// A body that is not a usable range matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum Unreadable {
    /// The body ends before the JSON does: the transfer was cut (worth retrying).
    Cut(String),
    /// Complete, but not the answer asked for.
    Wrong(String),
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    status: &'a str,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Option<&'a str>,
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

/// Only the result type, for saying what came back when the result is not a matrix.
#[derive(Deserialize)]
struct Shape {
    data: Option<ShapeData>,
}

#[derive(Deserialize)]
struct ShapeData {
    #[serde(rename = "resultType")]
    result_type: Option<String>,
}

/// Reads a `query_range` answer: a matrix of series with `[ts, "value"]` pairs. `NaN` and
/// infinities (a division by zero in PromQL) become gaps.
pub fn read_matrix(body: &[u8]) -> Result<Vec<PromSeries>, Unreadable> {
    let text = std::str::from_utf8(body).map_err(|e| {
        Unreadable::Wrong(format!("not a Prometheus API answer: not UTF-8 text (byte {})", e.valid_up_to()))
    })?;
    let answer: Answer = serde_json::from_str(text).map_err(|e| unreadable(text, &e))?;
    if answer.status != "success" {
        return Err(Unreadable::Wrong(server_error(text).unwrap_or_else(|| "the server reported an error".into())));
    }
    let data = answer.data.ok_or_else(|| Unreadable::Wrong("answer has no data.result".into()))?;
    if let Some(kind) = data.result_type.filter(|k| *k != "matrix") {
        return Err(Unreadable::Wrong(not_a_matrix(kind)));
    }
    let mut out = Vec::with_capacity(data.result.len());
    for item in data.result {
        let mut ts = Vec::with_capacity(item.values.len());
        let mut vals = Vec::with_capacity(item.values.len());
        for (t, raw) in item.values {
            let x: f64 =
                raw.parse().map_err(|_| Unreadable::Wrong(format!("malformed value `{}`", clip(raw, EXCERPT))))?;
            ts.push(t.floor() as i64);
            vals.push(if x.is_finite() { x } else { f64::NAN });
        }
        out.push(PromSeries { labels: item.metric, timestamps: ts, values: vals });
    }
    Ok(out)
}

/// Why a body did not deserialise, in the words a person needs.
fn unreadable(text: &str, e: &serde_json::Error) -> Unreadable {
    use serde_json::error::Category;
    if let Some(page) = html_gist(text) {
        return Unreadable::Wrong(format!("not a Prometheus API answer: an HTML page ({page})"));
    }
    match e.classify() {
        Category::Eof => Unreadable::Cut(format!("the JSON ends early, after {} bytes", text.len())),
        Category::Syntax | Category::Io => Unreadable::Wrong(format!(
            "not valid JSON at line {} column {}: `{}`",
            e.line(),
            e.column(),
            excerpt_at(text, e.line(), e.column())
        )),
        Category::Data => {
            if let Some(kind) = serde_json::from_str::<Shape>(text).ok().and_then(|s| s.data?.result_type) {
                if kind != "matrix" {
                    return Unreadable::Wrong(not_a_matrix(&kind));
                }
            }
            Unreadable::Wrong(
                server_error(text)
                    .unwrap_or_else(|| format!("not a Prometheus API answer: {}", clip(&e.to_string(), EXCERPT))),
            )
        }
    }
}

fn not_a_matrix(kind: &str) -> String {
    let what = match kind {
        "vector" => "an instant vector",
        "scalar" => "a scalar",
        "string" => "a string",
        _ => "another result type",
    };
    format!(
        "the server answered with {what} (resultType `{}`) where a range matrix was asked for: \
         is the URL the API root (a proxy may rewrite /api/v1/query_range)?",
        clip(kind, 40)
    )
}

/// A few characters either side of a position (1-based line and column) in `text`.
fn excerpt_at(text: &str, line: usize, column: usize) -> String {
    let Some(row) = text.lines().nth(line.saturating_sub(1)) else { return String::new() };
    let at = column.saturating_sub(1).min(row.len());
    let mut from = at.saturating_sub(30);
    while !row.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (at + 30).min(row.len());
    while !row.is_char_boundary(to) {
        to += 1;
    }
    clip(&row[from..to], EXCERPT)
}

/// What the server said in a non-success answer: the API's `errorType: error`, the title of
/// an HTML page, or the first line of anything else; clipped.
pub fn describe_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Some(e) = server_error(&text) {
        return e;
    }
    if let Some(page) = html_gist(&text) {
        return page;
    }
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(empty body)");
    clip(first, EXCERPT)
}

/// `errorType: error` from an API error body, when it is one.
pub fn server_error(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let kind = v["errorType"].as_str().unwrap_or("error");
    let msg = v["error"].as_str()?;
    Some(format!("{}: {}", clip(kind, 40), clip(msg, EXCERPT)))
}

/// The title of an HTML page (else its first line of text), when `text` is one.
fn html_gist(text: &str) -> Option<String> {
    let head = text.trim_start();
    let lower = head.to_ascii_lowercase();
    if !(lower.starts_with("<!doctype html") || lower.starts_with("<html") || lower.starts_with("<head")) {
        return None;
    }
    let title = lower.find("<title").and_then(|i| {
        let open = i + lower[i..].find('>')? + 1;
        let close = open + lower[open..].find("</title")?;
        Some(&head[open..close])
    });
    let text = match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t.to_string(),
        None => strip_tags(head).lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no text").to_string(),
    };
    let text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"");
    Some(clip(&text.split_whitespace().collect::<Vec<_>>().join(" "), PAGE_GIST))
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push('\n');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Puts the `line:col:` of a PromQL parse error back into the query the user wrote, when the
/// server parsed it inside a wrapper (`quantile_over_time(0.95, (Q)[1h:1m])`) that starts
/// `prefix` bytes before it.
pub fn user_positions(message: &str, prefix: usize, written: &str) -> String {
    let Some(at) = message.find(": parse error") else { return message.to_string() };
    let head = &message[..at];
    let start = head.rfind(|c: char| !(c.is_ascii_digit() || c == ':')).map_or(0, |i| i + 1);
    let Some((line, col)) = head[start..].split_once(':') else { return message.to_string() };
    let (Ok(line), Ok(col)) = (line.parse::<usize>(), col.parse::<usize>()) else { return message.to_string() };
    // Byte offset in the wrapped text: the wrapper adds no line breaks before the query.
    let line_start: usize = written.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let offset =
        if line <= 1 { col.saturating_sub(1).saturating_sub(prefix) } else { line_start + col.saturating_sub(1) };
    let mut offset = offset.min(written.len());
    while !written.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &written[..offset];
    let user_line = before.matches('\n').count() + 1;
    let user_col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{}{user_line}:{user_col}{}", &message[..start], &message[at..])
}

/// `s` on one line, at most `max` characters.
pub fn clip(s: &str, max: usize) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().count() > max { format!("{}...", s.chars().take(max).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_matrices_and_errors() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"type":"web","component":"cpu"},"values":[[3600,"0.5"],[7200,"NaN"],[10800,"+Inf"]]}]}}"#;
        let s = read_matrix(body).unwrap();
        assert_eq!(s[0].timestamps, vec![3600, 7200, 10800]);
        assert_eq!(s[0].values[0], 0.5);
        assert!(s[0].values[1].is_nan() && s[0].values[2].is_nan());
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(read_matrix(err).unwrap_err(), Unreadable::Wrong("bad_data: parse error at char 3".into()));
    }

    #[test]
    fn cut_broken_and_wrong_bodies_are_told_apart() {
        let full = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#;
        let cut = &full.as_bytes()[..60];
        assert!(matches!(read_matrix(cut), Err(Unreadable::Cut(m)) if m.contains("after 60 bytes")));
        let broken = full.replace("[[1,", "[[1;");
        let Err(Unreadable::Wrong(m)) = read_matrix(broken.as_bytes()) else { panic!("broken JSON read") };
        assert!(m.starts_with("not valid JSON at line 1 column 86: `") && m.contains("[[1;"), "{m}");
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#;
        let Err(Unreadable::Wrong(m)) = read_matrix(vector) else { panic!("vector read") };
        assert!(m.contains("an instant vector (resultType `vector`) where a range matrix was asked for"), "{m}");
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}"#;
        assert!(matches!(read_matrix(scalar), Err(Unreadable::Wrong(m)) if m.contains("a scalar")));
        let page = b"<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title></head><body>x</body></html>";
        assert_eq!(
            read_matrix(page),
            Err(Unreadable::Wrong("not a Prometheus API answer: an HTML page (502 Bad Gateway)".into()))
        );
        assert_eq!(describe_body(page), "502 Bad Gateway");
        let untitled = format!("<html><body>\n<h1>Service  unavailable</h1>{}</body></html>", "x".repeat(5000));
        assert_eq!(describe_body(untitled.as_bytes()), "Service unavailable");
        assert_eq!(describe_body(b"\n\nupstream connect error\nmore"), "upstream connect error");
        assert!(matches!(read_matrix(&[0xff, 0xfe]), Err(Unreadable::Wrong(m)) if m.contains("not UTF-8")));
    }

    #[test]
    fn parse_error_positions_point_into_the_written_query() {
        let wrapper = "quantile_over_time(0.95, (";
        let written = "sum(rate(x[5m])";
        let msg =
            format!("invalid parameter \"query\": 1:{}: parse error: unclosed left parenthesis", wrapper.len() + 4);
        assert_eq!(
            user_positions(&msg, wrapper.len(), written),
            "invalid parameter \"query\": 1:4: parse error: unclosed left parenthesis"
        );
        // Past the written query (in the wrapper's tail): its end.
        let msg = "1:99: parse error: unexpected";
        assert_eq!(user_positions(msg, wrapper.len(), written), "1:16: parse error: unexpected");
        // A later line of a multi-line query carries no wrapper.
        assert_eq!(user_positions("2:3: parse error: x", wrapper.len(), "sum(\n  foo"), "2:3: parse error: x");
        assert_eq!(user_positions("no position here", 5, written), "no position here");
        assert_eq!(user_positions("1:4: parse error: x", 0, written), "1:4: parse error: x");
    }
}
