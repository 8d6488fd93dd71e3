//! Guards in front of every route: the Host header must name this server (against DNS
//! rebinding), and a bearer token is required when one is configured.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
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

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            // HTTP/1.1 requires Host; a request without one is not from a browser page.
            return true;
        };
        let host = host.to_ascii_lowercase();
        // Strip the port: "127.0.0.1:5000", "[::1]:5000".
        let name = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => {
                h.to_owned()
            }
            _ => host.clone(),
        };
        self.hosts.contains(&name)
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
    if !access.host_allowed(req.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "this Host is not served here (DNS rebinding protection); add it with --allow-host",
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
