//! What keeps a local Cairn to its owner: the server's token comes from a file or the
//! environment (never the command line, where `ps` shows it), and the workspace is private.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use crate::{Ws, arg, assert_mentions};

/// A `cairn serve` child, killed when dropped, and the port it listens on.
struct Served {
    child: Child,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            self.child.wait().ok();
        }
    }
}

fn serve(ws: &Ws, args: &[&str], env: &[(&str, &str)]) -> Served {
    let mut all = vec!["serve", "--port", "0"];
    all.extend_from_slice(args);
    let mut cmd = ws.cmd(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cairn serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.expect("read serve output");
        if let Some(uri) = line
            .trim()
            .strip_prefix("export MLFLOW_TRACKING_URI=http://")
        {
            port = uri.rsplit(':').next().and_then(|p| p.parse().ok());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        port: port.expect("serve printed its address"),
    }
}

/// The status code of `GET path` on loopback, with an optional bearer token.
fn status(port: u16, path: &str, token: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {reply:?}"))
}

#[test]
fn a_token_on_the_command_line_is_refused_and_named_where_it_belongs() {
    let ws = Ws::new();
    let err = ws.fail(&["serve", "--port", "0", "--token", "s3cret"]);
    assert_mentions(&err, &["--token-file", "CAIRN_TOKEN", "ps"]);
    assert!(
        !err.contains("s3cret"),
        "the refusal echoes the token: {err}"
    );

    let err = ws.fail(&["serve", "--port", "0", "--host", "0.0.0.0"]);
    assert_mentions(&err, &["0.0.0.0", "--token-file or CAIRN_TOKEN"]);

    let empty = ws.file("empty-token", "\n");
    let err = ws.fail(&["serve", "--port", "0", "--token-file", arg(&empty)]);
    assert_mentions(&err, &["empty"]);
    let err = ws.fail(&["serve", "--port", "0", "--token-file", "no-such-file"]);
    assert_mentions(&err, &["no-such-file"]);
}

#[test]
fn the_token_comes_from_a_file_or_the_environment() {
    let ws = Ws::new();
    let file = ws.file("token", "from-a-file\n");
    let served = serve(&ws, &["--host", "0.0.0.0", "--token-file", arg(&file)], &[]);
    assert_eq!(status(served.port, "/api/v1/health", None), 401);
    assert_eq!(status(served.port, "/api/v1/health", Some("wrong")), 401);
    assert_eq!(
        status(served.port, "/api/v1/health", Some("from-a-file")),
        200
    );
    drop(served);

    let served = serve(&ws, &[], &[("CAIRN_TOKEN", "from-the-env")]);
    assert_eq!(status(served.port, "/api/v1/health", None), 401);
    assert_eq!(
        status(served.port, "/api/v1/health", Some("from-the-env")),
        200
    );
}

#[cfg(unix)]
#[test]
fn the_workspace_and_its_databases_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Ws::new();
    ws.start_run(&["-p", "lr=0.1"]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ws.dir), 0o700);
    for db in ["catalog.db", "metrics.db"] {
        assert_eq!(mode(&ws.dir.join(db)), 0o600, "{db}");
    }
}
