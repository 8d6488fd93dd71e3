//! The guards: bearer token, Host header (DNS rebinding), no CORS, and no listening beyond
//! loopback without a token. (Every response of every test is checked for
//! `Access-Control-Allow-Origin` in `http.rs`.)

use cairn_core::Workspace;
use cairn_server::Server;
use serde_json::json;

use crate::http::{Request, assert_mlflow_error};
use crate::server::{Guard, TestServer, USER, config};

const TOKEN: &str = "s3cr3t-t0ken-for-tests";

fn guarded() -> TestServer {
    TestServer::start_with(
        Guard {
            token: Some(TOKEN.into()),
            allowed_hosts: Vec::new(),
            ..Guard::default()
        },
        |_| {},
    )
}

#[test]
fn a_token_is_required_when_configured() {
    let server = guarded();
    let targets = [
        "/api/2.0/mlflow/experiments/get?experiment_id=0",
        "/api/v1/health",
        "/api/v1/runs",
        "/health",
    ];
    for target in targets {
        let refusals = [
            Request::get(target),
            Request::get(target).bearer("wrong"),
            Request::get(target).bearer(&TOKEN[..TOKEN.len() - 1]),
            Request::get(target).bearer(&format!("{TOKEN}x")),
            Request::get(target).bearer(""),
            Request::get(target).header("Authorization", TOKEN),
            Request::get(target).header("Authorization", format!("Basic {TOKEN}")),
            Request::get(target).header("Authorization", format!("Bearer  {TOKEN}")),
            Request::get(target).header("X-Token", TOKEN),
            Request::get(format!(
                "{target}{}token={TOKEN}",
                if target.contains('?') { '&' } else { '?' }
            )),
        ];
        for req in &refusals {
            let resp = server.send(req);
            let msg = assert_mlflow_error(&resp, 401, "UNAUTHENTICATED");
            assert!(!msg.contains(TOKEN), "the 401 reveals the token");
        }
        let resp = server.send(&Request::get(target).bearer(TOKEN));
        assert_eq!(resp.status, 200, "{target} with the token: {}", resp.text());
        let resp =
            server.send(&Request::get(target).header("Authorization", format!("bearer {TOKEN}")));
        assert_eq!(resp.status, 200, "{target} with 'bearer': {}", resp.text());
    }

    // A refused write is not applied.
    let create =
        |req: Request| server.send(&req.json_bytes(json!({ "name": "sneaky" }).to_string()));
    let resp = create(Request::new("POST", "/api/2.0/mlflow/experiments/create"));
    assert_mlflow_error(&resp, 401, "UNAUTHENTICATED");
    let resp = create(Request::new("POST", "/api/2.0/mlflow/experiments/create").bearer("wrong"));
    assert_mlflow_error(&resp, 401, "UNAUTHENTICATED");
    let resp = server.send(
        &Request::get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=sneaky")
            .bearer(TOKEN),
    );
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    create(Request::new("POST", "/api/2.0/mlflow/experiments/create").bearer(TOKEN)).ok();

    let stopped = server.stop();
    let names: Vec<String> = stopped
        .ws
        .experiments_all()
        .expect("experiments")
        .into_iter()
        .map(|e| e.name)
        .collect();
    // What the token let through created "sneaky" beside the default experiment, and nothing
    // else: the refused requests wrote nothing.
    assert_eq!(names, ["Default", "sneaky"]);
}

#[test]
fn a_foreign_host_header_is_refused() {
    let server = TestServer::start_with(
        Guard {
            token: None,
            allowed_hosts: vec!["Cairn.Internal".into()],
            ..Guard::default()
        },
        |_| {},
    );
    let port = server.addr.port();
    let target = "/api/2.0/mlflow/experiments/get?experiment_id=0";
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("127.0.0.2:{port}"),
        format!("0.0.0.0:{port}"),
        format!("cairn.internal.evil.example:{port}"),
        format!("evil.example@127.0.0.1:{port}"),
        "".to_owned(),
    ] {
        let resp = server.send(&Request::get(target).host(&host));
        let msg = assert_mlflow_error(&resp, 403, "PERMISSION_DENIED");
        assert!(msg.contains("Host"), "{msg}");
        let resp = server.send(&Request::get("/api/v1/health").host(&host));
        assert_eq!(resp.status, 403, "Host '{host}' on /api/v1");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        format!("[::1]:{port}"),
        format!("cairn.internal:{port}"),
        "CAIRN.INTERNAL".to_owned(),
    ] {
        let resp = server.send(&Request::get(target).host(&host));
        assert_eq!(resp.status, 200, "Host '{host}': {}", resp.text());
    }
    // Not a browser: no Host header at all.
    let resp = server.send(&Request::get(target).without_host());
    assert_eq!(resp.status, 200, "no Host: {}", resp.text());

    // A rebinding page's write is not applied, even with a valid-looking body.
    let resp = server.send(
        &Request::new("POST", "/api/2.0/mlflow/experiments/create")
            .host(format!("evil.example:{port}"))
            .json_bytes(json!({ "name": "rebound" }).to_string()),
    );
    assert_mlflow_error(&resp, 403, "PERMISSION_DENIED");
    let stopped = server.stop();
    let names: Vec<String> = stopped
        .ws
        .experiments_all()
        .expect("experiments")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        ["Default"],
        "the refused create was applied: {names:?}"
    );
}

#[test]
fn the_host_check_comes_before_the_token_check() {
    let server = guarded();
    let resp = server.send(
        &Request::get("/api/v1/health")
            .host("evil.example")
            .bearer(TOKEN),
    );
    assert_mlflow_error(&resp, 403, "PERMISSION_DENIED");
}

#[test]
fn no_cors_headers_even_when_asked() {
    let server = guarded();
    let origin = "http://evil.example";
    let reqs = [
        Request::get("/api/v1/health")
            .header("Origin", origin)
            .bearer(TOKEN),
        Request::get("/api/v1/health").header("Origin", origin),
        Request::get("/api/2.0/mlflow/experiments/get?experiment_id=0")
            .header("Origin", format!("http://127.0.0.1:{}", server.addr.port()))
            .bearer(TOKEN),
        Request::new("OPTIONS", "/api/2.0/mlflow/runs/create")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        Request::new("OPTIONS", "/api/2.0/mlflow/runs/create")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .bearer(TOKEN),
        Request::new("OPTIONS", "/api/v1/runs")
            .header("Origin", "null")
            .header("Access-Control-Request-Method", "GET")
            .bearer(TOKEN),
        Request::new("POST", "/api/2.0/mlflow/experiments/create")
            .header("Origin", origin)
            .bearer(TOKEN)
            .json_bytes(json!({ "name": "from-a-page" }).to_string()),
    ];
    for req in &reqs {
        // `send` asserts that no Access-Control-Allow-Origin came back.
        let resp = server.send(req);
        for name in [
            "access-control-allow-credentials",
            "access-control-allow-methods",
            "access-control-allow-headers",
        ] {
            assert!(
                resp.header(name).is_none(),
                "{name} sent: {:?}",
                resp.headers
            );
        }
        if req.encode(server.addr).starts_with(b"OPTIONS") {
            assert!(
                !(200..300).contains(&resp.status),
                "a preflight was answered {}",
                resp.status
            );
        }
    }
}

fn bind(addr: &str, token: Option<&str>) -> Result<Server, cairn_server::Error> {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let ws = Workspace::create(&tmp.path().join("ws"), USER).expect("workspace");
    let config = config(addr, token.map(str::to_owned), Vec::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(Server::bind(ws, config))
}

#[test]
fn listening_beyond_loopback_requires_a_token() {
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let err = bind(addr, None).expect_err("bound beyond loopback without a token");
        assert!(
            matches!(err, cairn_server::Error::TokenRequired(_)),
            "{addr}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("token"), "{addr}: {msg}");
    }
    // Loopback needs none.
    bind("127.0.0.1:0", None).expect("loopback without a token");
}

#[test]
fn an_empty_token_is_no_token() {
    // `--token ""` (or CAIRN_TOKEN set to nothing) must not open the server to the network:
    // with an empty token every request passes, `Authorization` header or not.
    let err = bind("0.0.0.0:0", Some("")).expect_err("bound 0.0.0.0 with an empty token");
    assert!(err.to_string().contains("token"), "{err}");
}

#[test]
fn the_config_does_not_print_its_token() {
    let config = config("127.0.0.1:0", Some(TOKEN.into()), Vec::new());
    let shown = format!("{config:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}
