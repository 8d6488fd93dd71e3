//! Where a request came from: this machine or another one. A run an MLflow client creates
//! carries no machine profile, so the server records its own for a client on the same machine
//! (its runs are then costed like runs `cairn exec` starts) and none for the others (their runs
//! are unpriced rather than costed at 0).
//!
//! The decision is made from the connection, not from what the client says: MLflow clients send
//! no host name (their `mlflow.source.*` tags name a script and a git commit), and a tag could be
//! copied from anywhere. A client is on this machine when it connects over loopback or from the
//! very address it connects to (a client on the server's machine dialing its LAN address). A
//! request relayed by a proxy (`Forwarded`, `X-Forwarded-For`) is from this machine only when
//! every address the proxy names is loopback: a proxy on the server's machine speaks for clients
//! anywhere. A router called without a connection (in-process) knows no client: not this machine.

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// Both ends of the connection a request came over, put in the request's extensions by
/// [`crate::Server::run`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) remote: SocketAddr,
    pub(crate) local: SocketAddr,
}

/// An address as one IP family sees it (`::ffff:127.0.0.1` is `127.0.0.1`).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client addresses a `Forwarded` or `X-Forwarded-For` header names, `None` for one that
/// is not an address (`unknown`, an obfuscated `_name`, garbage).
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(v) = v.to_str() else {
            out.push(None);
            continue;
        };
        out.extend(v.split(',').map(|a| parse_node(a.trim())));
    }
    for v in headers.get_all("forwarded") {
        let Ok(v) = v.to_str() else {
            out.push(None);
            continue;
        };
        for pair in v.split([',', ';']) {
            if let Some((k, a)) = pair.trim().split_once('=')
                && k.trim().eq_ignore_ascii_case("for")
            {
                out.push(parse_node(a.trim().trim_matches('"')));
            }
        }
    }
    out
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80` or `::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Whether the request came from a client on the server's machine (see the module's doc).
pub(crate) fn from_this_machine(peer: Option<&Peer>, headers: &HeaderMap) -> bool {
    let Some(peer) = peer else {
        return false;
    };
    let remote = canonical(peer.remote.ip());
    if !(remote.is_loopback() || remote == canonical(peer.local.ip())) {
        return false;
    }
    forwarded_for(headers)
        .into_iter()
        .all(|a| a.is_some_and(|ip| canonical(ip).is_loopback()))
}

/// Whether the request came from a client on the server's machine, as a handler's argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FromThisMachine(pub(crate) bool);

impl<S: Send + Sync> FromRequestParts<S> for FromThisMachine {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(FromThisMachine(from_this_machine(
            parts.extensions.get::<Peer>(),
            &parts.headers,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(remote: &str, local: &str) -> Peer {
        Peer {
            remote: remote.parse().unwrap(),
            local: local.parse().unwrap(),
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn loopback_and_the_servers_own_address_are_this_machine() {
        let none = HeaderMap::new();
        for (remote, local) in [
            ("127.0.0.1:50000", "127.0.0.1:5000"),
            ("127.0.0.2:50000", "127.0.0.1:5000"),
            ("[::1]:50000", "[::1]:5000"),
            ("[::ffff:127.0.0.1]:50000", "[::]:5000"),
            ("192.168.1.20:50000", "192.168.1.20:5000"),
            ("[::ffff:10.0.0.5]:50000", "10.0.0.5:5000"),
        ] {
            assert!(
                from_this_machine(Some(&peer(remote, local)), &none),
                "{remote} -> {local}"
            );
        }
    }

    #[test]
    fn other_addresses_and_unknown_peers_are_elsewhere() {
        let none = HeaderMap::new();
        for (remote, local) in [
            ("192.168.1.21:50000", "192.168.1.20:5000"),
            ("[fe80::2]:50000", "[fe80::1]:5000"),
            ("172.17.0.1:50000", "172.17.0.2:5000"),
        ] {
            assert!(
                !from_this_machine(Some(&peer(remote, local)), &none),
                "{remote} -> {local}"
            );
        }
        assert!(!from_this_machine(None, &none));
    }

    #[test]
    fn a_proxy_speaks_for_its_clients() {
        let local = peer("127.0.0.1:50000", "127.0.0.1:5000");
        for (h, v, here) in [
            ("x-forwarded-for", "10.1.2.3", false),
            ("x-forwarded-for", "127.0.0.1", true),
            ("x-forwarded-for", "127.0.0.1, 10.1.2.3", false),
            ("x-forwarded-for", "unknown", false),
            ("forwarded", "for=10.1.2.3;proto=http", false),
            ("forwarded", "for=\"[::1]:4711\";proto=http", true),
            ("forwarded", "for=127.0.0.1, for=192.0.2.60", false),
            ("forwarded", "for=_hidden", false),
        ] {
            assert_eq!(
                from_this_machine(Some(&local), &headers(&[(h, v)])),
                here,
                "{h}: {v}"
            );
        }
        // A remote client cannot claim to be local through a header.
        let remote = peer("192.168.1.21:50000", "192.168.1.20:5000");
        assert!(!from_this_machine(
            Some(&remote),
            &headers(&[("x-forwarded-for", "127.0.0.1")])
        ));
    }
}
