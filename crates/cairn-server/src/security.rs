//! Guards in front of every route: the Host header must name this server (against DNS
//! rebinding), a request that changes data must not come from another origin's page (CSRF), and
//! a bearer token is required when one is configured.
//!
//! A web page can make the browser send requests here (an `<img>`, a form, `fetch` with
//! `no-cors`) but cannot read the answers (no CORS headers are ever sent) nor choose the Origin
//! and Sec-Fetch-Site headers the browser adds. So every method but GET and HEAD is refused when
//! it carries an Origin other than this server's own (`http://` + the Host it was sent to), the
//! opaque `Origin: null` (sandboxed frames, `file:` pages), or `Sec-Fetch-Site: cross-site`.
//! Tracking clients (the MLflow client, curl) send none of them. GET routes change nothing.
//!
//! The refusals are MLflow's `{error_code, message}` on every route: they come before routing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ServerConfig;

/// Who may talk to the server.
#[derive(Debug)]
pub struct Access {
    token: Option<String>,
    hosts: Vec<String>,
}

impl Access {
    pub fn new(config: &ServerConfig) -> Access {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]", "::1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let ip = config.bind.ip();
        if !ip.is_unspecified() {
            hosts.push(if ip.is_ipv6() {
                format!("[{ip}]")
            } else {
                ip.to_string()
            });
        }
        hosts.extend(config.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        Access {
            token: config.token.clone(),
            hosts,
        }
    }

    /// Whether `host` (a readable Host header) names this server.
    fn host_allowed(&self, host: &str) -> bool {
        self.hosts.contains(&host_name(host))
    }

    fn token_ok(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .unwrap_or("");
        constant_time_eq(given.as_bytes(), expected.as_bytes())
    }
}

/// The one Host header, as text; `None` when there is none (HTTP/1.0 clients, not a browser
/// page). Two Host headers, or one that is not visible ASCII, are refused: which one a check
/// reads and which one a proxy or the router reads could differ.
fn host_header(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut all = headers.get_all(header::HOST).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err("the request has more than one Host header"),
        (Some(v), None) => v
            .to_str()
            .map(Some)
            .map_err(|_| "the Host header is not readable text"),
    }
}

/// The host name of a Host header, lower-cased, without its port: "127.0.0.1:5000",
/// "[::1]:5000" → "127.0.0.1", "[::1]".
fn host_name(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => {
            h.to_owned()
        }
        _ => host,
    }
}

/// An origin or host as compared: lower-cased, without the default port of http.
fn authority(text: &str) -> String {
    let text = text.to_ascii_lowercase();
    match text.strip_suffix(":80") {
        Some(bare) => bare.to_owned(),
        None => text,
    }
}

/// Why a request that changes data is refused as coming from another origin's page, if it is.
fn foreign_page(headers: &HeaderMap, host: Option<&str>) -> Option<String> {
    if headers
        .get_all("sec-fetch-site")
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Some(
            "the browser says it comes from another site (Sec-Fetch-Site: cross-site)".into(),
        );
    }
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin = match (origins.next(), origins.next()) {
        (None, _) => return None,
        (Some(_), Some(_)) => return Some("the request has more than one Origin header".into()),
        (Some(v), None) => match v.to_str() {
            Ok(o) => o.trim(),
            Err(_) => return Some("its Origin header is not readable text".into()),
        },
    };
    if origin.eq_ignore_ascii_case("null") {
        return Some("it comes from a page without an origin (Origin: null)".into());
    }
    let own = host.map(|h| format!("http://{}", authority(h)));
    if own.as_deref() == Some(authority(origin).as_str()) {
        return None;
    }
    Some(format!(
        "it comes from a page of {origin}, not of this server ({})",
        own.as_deref().unwrap_or("no Host header")
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error_code": code, "message": message });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let host = match host_header(req.headers()) {
        Ok(host) => host,
        Err(why) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                &format!("{why}: send exactly one Host header naming this server"),
            );
        }
    };
    if host.is_some_and(|h| !access.host_allowed(h)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "this Host is not served here (DNS rebinding protection); add it with --allow-host",
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(why) = foreign_page(req.headers(), host)
    {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), why, "refused a cross-origin request");
        return refuse(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!(
                "{} {} is refused: {why}. Web pages of other origins may not change this server's data",
                req.method(),
                req.uri().path()
            ),
        );
    }
    if !access.token_ok(req.headers()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "a bearer token is required (set MLFLOW_TRACKING_TOKEN)",
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_bytes(value).expect("value"),
            );
        }
        h
    }

    #[test]
    fn only_this_servers_own_origin_passes() {
        let host = Some("127.0.0.1:5000");
        let pass = |o: &[u8]| foreign_page(&headers(&[("origin", o)]), host).is_none();
        assert!(pass(b"http://127.0.0.1:5000"));
        assert!(pass(b"HTTP://127.0.0.1:5000"));
        assert!(
            foreign_page(&HeaderMap::new(), host).is_none(),
            "no Origin: not a page"
        );
        for bad in [
            &b"null"[..],
            b"http://evil.example",
            b"http://127.0.0.1:5001",
            b"https://127.0.0.1:5000",
            b"http://127.0.0.1",
            b"http://localhost:5000",
            b"http://127.0.0.1:5000.evil.example",
            b"http://127.0.0.1:5000/",
            b"\xff",
        ] {
            assert!(!pass(bad), "{}", String::from_utf8_lossy(bad));
        }
        assert!(
            foreign_page(
                &headers(&[("origin", b"http://localhost")]),
                Some("localhost:80")
            )
            .is_none(),
            "http's default port is the same origin"
        );
        assert!(foreign_page(&headers(&[("origin", b"http://localhost")]), None).is_some());
        let two = headers(&[
            ("origin", b"http://127.0.0.1:5000"),
            ("origin", b"http://evil.example"),
        ]);
        assert!(foreign_page(&two, host).is_some());
        let cross = headers(&[("sec-fetch-site", b"cross-site")]);
        assert!(foreign_page(&cross, host).is_some());
        let same = headers(&[("sec-fetch-site", b"same-origin")]);
        assert!(foreign_page(&same, host).is_none());
    }

    #[test]
    fn a_host_is_one_readable_header() {
        assert_eq!(host_header(&HeaderMap::new()), Ok(None));
        assert_eq!(
            host_header(&headers(&[("host", b"127.0.0.1:5000")])),
            Ok(Some("127.0.0.1:5000"))
        );
        assert!(host_header(&headers(&[("host", b"caf\xc3\xa9.example")])).is_err());
        assert!(
            host_header(&headers(&[
                ("host", b"127.0.0.1"),
                ("host", b"evil.example")
            ]))
            .is_err()
        );
    }
}
