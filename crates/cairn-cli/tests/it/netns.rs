//! Sync across a real network link that this test builds: two network namespaces joined by a
//! veth pair, shaped with `tc` (a token bucket, so a transfer takes seconds), and the link cut
//! in the middle of a transfer; then the receiving process is killed (SIGKILL) in the middle of
//! another. Each time, syncing again completes, and every run and metric point is there exactly
//! once. Needs root and iproute2 (CI runs as root; `.ci/run` installs iproute2). The kernel here
//! has no `sch_netem`, so loss and delay are not injected; the cut and the kill are.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Ws, array, str_of};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces and the veth pair between them, removed on drop.
struct Link {
    a: String,
    b: String,
    va: String,
    subnet: u32,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Link {
    fn new() -> Link {
        let n = std::process::id() % 10_000 * 10 + NEXT.fetch_add(1, Ordering::Relaxed);
        let subnet = 100 + n % 100;
        let l = Link {
            a: format!("cairn-a-{n}"),
            b: format!("cairn-b-{n}"),
            va: format!("cva{n}"),
            subnet,
        };
        let vb = format!("cvb{n}");
        ip(&["netns", "add", &l.a]);
        ip(&["netns", "add", &l.b]);
        ip(&["link", "add", &l.va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &l.va, "netns", &l.a]);
        ip(&["link", "set", &vb, "netns", &l.b]);
        for (ns, dev, host) in [(&l.a, &l.va, 1), (&l.b, &vb, 2)] {
            let addr = format!("10.213.{subnet}.{host}/24");
            ip(&["-n", ns, "addr", "add", &addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            // 2 Mbit/s each way: the catalog below takes seconds to cross.
            let out = Command::new("ip")
                .args([
                    "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                ])
                .args(["rate", "2mbit", "burst", "32kbit", "latency", "400ms"])
                .output()
                .expect("run tc");
            assert!(
                out.status.success(),
                "tc: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        l
    }

    fn addr(&self, host: u32) -> String {
        format!("10.213.{}.{host}", self.subnet)
    }

    fn set(&self, up: bool) {
        ip(&[
            "-n",
            &self.a,
            "link",
            "set",
            &self.va,
            if up { "up" } else { "down" },
        ]);
    }

    /// `cairn` inside namespace `ns`, for workspace `ws`.
    fn cairn(&self, ns: &str, ws: &Ws, args: &[&str]) -> Command {
        let inner = ws.cmd(args);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(inner.get_program());
        cmd.args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = inner.get_current_dir() {
            cmd.current_dir(d);
        }
        cmd
    }
}

/// A child process killed and reaped when dropped, also when the test panics (a leaked
/// `serve` would keep its namespace alive).
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            self.0.wait().ok();
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            // Deleting a namespace deletes its end of the veth pair, and so the pair.
            Command::new("ip").args(["netns", "del", ns]).output().ok();
        }
    }
}

fn names(ws: &Ws) -> Vec<String> {
    let mut v: Vec<String> = ws
        .list()
        .iter()
        .map(|r| str_of(r, "/name").to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn sync_completes_after_a_link_cut_and_a_kill_mid_transfer() {
    let link = Link::new();
    let mut ada = Ws::new();
    ada.user = "ada".into();
    let mut bo = Ws::new();
    bo.user = "bo".into();
    ada.ok(&["team", "create", "lab"]);
    ada.ok(&["demo", "--runs", "300", "--steps", "100"]);
    let sync_addr = format!("{}:7420", link.addr(1));

    let serve = Reaped(
        link.cairn(
            &link.a,
            &ada,
            &["serve", "--port", "0", "--sync", "--sync-bind", &sync_addr],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve in namespace a"),
    );
    // The node records where it listens before the HTTP server starts; wait for that.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ticket = loop {
        let out = ada.output(&["team", "invite", "--addr", &sync_addr]);
        if out.status.success()
            && ada.json(&["sync", "status"])["advertised"] != Value::Array(vec![])
        {
            break String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        assert!(Instant::now() < deadline, "serve --sync never came up");
        std::thread::sleep(Duration::from_millis(100));
    };

    let bind = format!("{}:0", link.addr(2));
    let mut join = link
        .cairn(&link.b, &bo, &["team", "join", &ticket, "--bind", &bind])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("join in namespace b");
    // Cut the link once the transfer is under way, for longer than a blip.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        join.try_wait().expect("poll join").is_none(),
        "the join finished before the cut: nothing was interrupted"
    );
    link.set(false);
    std::thread::sleep(Duration::from_secs(3));
    link.set(true);
    let joined = join.wait().expect("join finished");

    // Whatever the interrupted join got done, syncing again completes it.
    let sync_until_done = |why: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = link
                .cairn(&link.b, &bo, &["sync", "now", "--bind", &bind, "--json"])
                .output()
                .expect("sync now");
            if out.status.success() {
                let results = array(serde_json::from_slice(&out.stdout).expect("json"));
                if !results.is_empty() && results.iter().all(|r| r["ok"] == Value::Bool(true)) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "sync never completed after {why}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    sync_until_done(&format!("the cut (join exited {joined})"));
    assert_eq!(names(&bo), names(&ada));

    // A restart mid-sync: more runs on ada, bo's `sync now` killed (SIGKILL) while they cross,
    // then bo syncs again from what it had stored.
    ada.ok(&["demo", "--runs", "300", "--steps", "100", "--seed", "8"]);
    let mut interrupted = link
        .cairn(&link.b, &bo, &["sync", "now", "--bind", &bind])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sync now in namespace b");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        interrupted.try_wait().expect("poll sync").is_none(),
        "the sync finished before it was killed"
    );
    interrupted.kill().expect("kill sync now");
    interrupted.wait().ok();
    sync_until_done("a kill -9");
    drop(serve);

    // Nothing lost, nothing doubled: the same runs, and a run's curve point for point.
    let expected = names(&ada);
    assert_eq!(expected.len(), 600);
    assert_eq!(names(&bo), expected);
    let run = str_of(&ada.list()[0], "/id").to_owned();
    let shown = ada.show(&run);
    let key = shown["metrics"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("a demo run has metrics");
    let a_points = ada.json(&["runs", "metric", &run, &key]);
    let b_points = bo.json(&["runs", "metric", &run, &key]);
    assert!(!array(a_points.clone()).is_empty());
    assert_eq!(a_points, b_points);
}
