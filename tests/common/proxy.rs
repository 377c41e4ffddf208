//! A fault-injecting HTTP proxy on 127.0.0.1 in front of a real Prometheus: it forwards each
//! request and breaks the answer the way gateways, proxies and dying servers do. Bounded: it
//! serves at most `MAX_REQUESTS` requests, holds a stalled or hung connection for at most
//! `HOLD`, and stops when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MAX_REQUESTS: usize = 500;
const HOLD: Duration = Duration::from_secs(30);

/// How the proxy breaks the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forwards the answer as it is.
    Pass,
    /// 401 whose body echoes every request header (as auth gateways do).
    EchoHeaders401,
    /// The real answer with each series given a label holding the request's Authorization
    /// header: a hostile server echoing the secret into names.
    EchoIntoLabels,
    /// Headers and half the body, then silence until the client gives up.
    StallBody,
    /// The first `n` answers cut in half without Content-Length (the connection closes
    /// early); later ones pass.
    Truncate(usize),
    /// The real answer, complete, with one byte broken.
    Malformed,
    /// Asks the upstream's instant-query endpoint instead: a `vector` result.
    Instant,
    /// Accepts and never answers.
    Hang,
    /// A large HTML error page with this status (a gateway's).
    HtmlPage(u16),
}

pub struct Proxy {
    pub url: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Requests the proxy has received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Starts a proxy to `upstream` (a base URL) that applies `fault`.
pub fn start(upstream: &str, fault: Fault) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, stopped, upstream) = (requests.clone(), stop.clone(), upstream.to_string());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let n = count.fetch_add(1, Ordering::SeqCst);
            if n >= MAX_REQUESTS {
                break;
            }
            let (upstream, stopped) = (upstream.clone(), stopped.clone());
            std::thread::spawn(move || serve(conn, &upstream, fault, n, &stopped));
        }
    });
    Proxy { url, requests, stop }
}

fn serve(mut conn: TcpStream, upstream: &str, fault: Fault, n: usize, stop: &AtomicBool) {
    let hold = |conn: &TcpStream| {
        let until = Instant::now() + HOLD;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = conn.shutdown(std::net::Shutdown::Both);
    };
    let Some((target, headers)) = read_head(&conn) else { return };
    if fault == Fault::Hang {
        return hold(&conn);
    }
    let (status, body) = match fault {
        Fault::EchoHeaders401 => {
            let echoed = headers.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; ");
            let body = serde_json::json!({"status": "error", "errorType": "unauthorized",
                "error": format!("credentials rejected for request with {echoed}")});
            (401, body.to_string().into_bytes())
        }
        Fault::HtmlPage(status) => {
            let filler = "<p>An upstream server did not answer in time.</p>\n".repeat(400);
            let page = format!(
                "<!DOCTYPE html>\n<html><head><title>{status} Bad Gateway</title></head>\n<body><h1>Bad Gateway</h1>{filler}</body></html>\n"
            );
            (status, page.into_bytes())
        }
        _ => {
            let target = if fault == Fault::Instant { instant(&target) } else { target };
            let Ok(r) = http().get(format!("{upstream}{target}")).send() else { return };
            let status = r.status().as_u16();
            let body = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
            (status, body)
        }
    };
    let body = match fault {
        Fault::EchoIntoLabels => {
            let auth = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.clone());
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(result) = v["data"]["result"].as_array_mut() {
                for s in result {
                    s["metric"]["echo"] = serde_json::Value::String(auth.clone().unwrap_or_default());
                }
            }
            v.to_string().into_bytes()
        }
        Fault::Malformed => {
            let mut b = body;
            if let Some(i) = b.iter().rposition(|c| *c == b',') {
                b[i] = b';';
            }
            b
        }
        _ => body,
    };
    let kind = if body.starts_with(b"<") { "text/html" } else { "application/json" };
    let head = |length: bool| {
        let len = if length { format!("Content-Length: {}\r\n", body.len()) } else { String::new() };
        format!("HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\n{len}Connection: close\r\n\r\n")
    };
    match fault {
        Fault::StallBody => {
            let _ = conn.write_all(head(true).as_bytes());
            let _ = conn.write_all(&body[..body.len() / 2]);
            let _ = conn.flush();
            hold(&conn);
        }
        Fault::Truncate(k) if n < k => {
            let _ = conn.write_all(head(false).as_bytes());
            let _ = conn.write_all(&body[..body.len() / 2]);
            let _ = conn.flush();
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        _ => {
            let _ = conn.write_all(head(true).as_bytes());
            let _ = conn.write_all(&body);
            let _ = conn.flush();
        }
    }
}

/// The request target and headers.
fn read_head(conn: &TcpStream) -> Option<(String, Vec<(String, String)>)> {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let target = line.split_whitespace().nth(1)?.to_string();
    let mut headers = vec![];
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some((target, headers))
}

/// The same query at the range's end, on the instant-query endpoint.
fn instant(target: &str) -> String {
    let end = target.split(['?', '&']).find_map(|p| p.strip_prefix("end=")).unwrap_or("0").to_string();
    format!("{}&time={end}", target.replace("/api/v1/query_range", "/api/v1/query"))
}

fn http() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}
