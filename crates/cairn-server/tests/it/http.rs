//! A minimal HTTP/1.1 client over `std::net::TcpStream`: the request is written byte for byte as
//! built (no normalisation of paths, no escaping), `Connection: close`, and the whole response is
//! read and split into status line, headers and body.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// A request as it goes on the wire.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    host: Option<Vec<u8>>,
    default_host: bool,
}

impl Request {
    /// `target` is sent as is: `..`, `%2e%2e` and raw bytes stay what they are.
    pub fn new(method: &str, target: impl AsRef<[u8]>) -> Request {
        Request {
            method: method.to_owned(),
            target: target.as_ref().to_vec(),
            headers: Vec::new(),
            body: Vec::new(),
            host: None,
            default_host: true,
        }
    }

    pub fn get(target: impl AsRef<[u8]>) -> Request {
        Request::new("GET", target)
    }

    /// A POST with a JSON body.
    pub fn post(target: impl AsRef<[u8]>, body: &Value) -> Request {
        Request::new("POST", target).json_bytes(body.to_string())
    }

    /// A body sent as given, labelled as JSON (it need not be valid JSON, or UTF-8).
    pub fn json_bytes(self, body: impl AsRef<[u8]>) -> Request {
        self.header("Content-Type", "application/json").body(body)
    }

    pub fn body(mut self, body: impl AsRef<[u8]>) -> Request {
        self.body = body.as_ref().to_vec();
        self
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Replaces the default `Host: 127.0.0.1:PORT`.
    pub fn host(mut self, host: impl AsRef<[u8]>) -> Request {
        self.host = Some(host.as_ref().to_vec());
        self
    }

    /// Sends no Host header at all.
    pub fn without_host(mut self) -> Request {
        self.host = None;
        self.default_host = false;
        self
    }

    pub fn bearer(self, token: &str) -> Request {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// The bytes sent to `addr`.
    pub fn encode(&self, addr: SocketAddr) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        match (&self.host, self.default_host) {
            (Some(h), _) => push_header(&mut out, "Host", h),
            (None, true) => push_header(&mut out, "Host", addr.to_string().as_bytes()),
            (None, false) => {}
        }
        for (name, value) in &self.headers {
            push_header(&mut out, name, value);
        }
        push_header(&mut out, "Connection", b"close");
        if !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
            push_header(
                &mut out,
                "Content-Length",
                self.body.len().to_string().as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Sends the request and reads the whole response.
    ///
    /// Every response of the server is also checked for what it must never carry: a CORS
    /// `Access-Control-Allow-Origin` header (the API is not for other origins' pages).
    pub fn send(&self, addr: SocketAddr) -> Response {
        let mut stream = TcpStream::connect(addr).expect("connect to the test server");
        // A hang would otherwise stall the suite; this is a safety net, not an assertion.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("set read timeout");
        stream
            .write_all(&self.encode(addr))
            .expect("write the request");
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .expect("read the whole response");
        let resp = Response::parse(&raw);
        assert!(
            resp.header("access-control-allow-origin").is_none(),
            "{} {}: the response carries Access-Control-Allow-Origin",
            self.method,
            String::from_utf8_lossy(&self.target)
        );
        resp
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A response, parsed.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no end of headers in the response: {:?}",
                    String::from_utf8_lossy(raw)
                )
            });
        let head = std::str::from_utf8(&raw[..split]).expect("response head is UTF-8");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line: {status_line}");
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status code in '{status_line}'"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line '{l}'"));
                (n.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let rest = &raw[split + 4..];
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        if let Some(len) = headers.iter().find(|(n, _)| n == "content-length") {
            assert_eq!(
                len.1.parse::<usize>().expect("numeric content-length"),
                body.len(),
                "content-length does not match the body"
            );
        }
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts a 200 and returns the JSON body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "expected 200, got: {}", self.text());
        self.json()
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&rest[..eol]).expect("chunk size is text");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        rest = &rest[eol + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Asserts an MLflow error: `status`, a JSON body that is exactly `{"error_code","message"}`
/// with `code` and a non-empty message. Returns the message.
#[track_caller]
pub fn assert_mlflow_error(resp: &Response, status: u16, code: &str) -> String {
    assert_eq!(
        resp.status,
        status,
        "expected {status} {code}, got: {}",
        resp.text()
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "error content type"
    );
    let body = resp.json();
    let obj = body.as_object().expect("the error body is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["error_code", "message"], "error body: {body}");
    assert_eq!(body["error_code"], code, "error body: {body}");
    let message = body["message"].as_str().expect("message is a string");
    assert!(!message.trim().is_empty(), "empty error message");
    message.to_owned()
}

/// Asserts an error of Cairn's own API: `status` and exactly `{"code","message"}`.
#[track_caller]
pub fn assert_api_error(resp: &Response, status: u16, code: &str) -> String {
    assert_eq!(
        resp.status,
        status,
        "expected {status} {code}, got: {}",
        resp.text()
    );
    let body = resp.json();
    let obj = body.as_object().expect("the error body is an object");
    // `{code, message}`, and for a query error where it went wrong: column, expected, found.
    for key in obj.keys() {
        assert!(
            ["code", "message", "column", "expected", "found"].contains(&key.as_str()),
            "unexpected field '{key}' in the error body: {body}"
        );
    }
    if obj.contains_key("column") {
        assert!(body["column"].is_u64(), "the column is a number: {body}");
    }
    assert_eq!(body["code"], code, "error body: {body}");
    let message = body["message"].as_str().expect("message is a string");
    assert!(!message.trim().is_empty(), "empty error message");
    message.to_owned()
}
