//! Chains, tampering and bundles: every tampering case an auditor cares about is caught by a
//! peer that checks what it holds or what it is offered, and by a bundle check on a machine with
//! no workspace.

use std::path::Path;

use cairn_audit::bundle::{Format, Header, export, verify_bundle};
use cairn_audit::{AuditStore, DeviceKey, Draft, Event, Problem, Signer, kind, verify_store};

fn key(seed: u8) -> DeviceKey {
    DeviceKey::from_secret(&[seed; 32])
}

fn draft(i: u64) -> Draft {
    Draft::new("ada", kind::RUN_CREATED, 1_700_000_000_000 + i as i64)
        .subject(format!("run:{i:032x}"))
        .field("code_commit", format!("{i:040x}"))
        .field("datasets", "[\"train@sha256:abc\"]")
}

/// A peer with `n` events of its own in a file-backed store (so tests can edit it raw).
fn peer_with(dir: &Path, name: &str, k: &DeviceKey, n: u64) -> AuditStore {
    let mut s = AuditStore::open(&dir.join(format!("{name}.db"))).unwrap();
    for i in 0..n {
        s.append(k, draft(i)).unwrap();
    }
    s
}

fn all(s: &AuditStore, device: &str) -> Vec<Event> {
    s.chain(device, 0, usize::MAX >> 1).unwrap()
}

fn roster(keys: &[(&DeviceKey, &str, Option<i64>)]) -> Vec<Signer> {
    keys.iter()
        .map(|(k, m, removed)| Signer {
            device: k.id().to_owned(),
            member: (*m).to_owned(),
            removed_ms: *removed,
        })
        .collect()
}

fn raw(s: &AuditStore) -> rusqlite::Connection {
    rusqlite::Connection::open(s.path()).unwrap()
}

#[test]
fn a_chain_links_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let s = peer_with(dir.path(), "a", &a, 20);
    let events = all(&s, a.id());
    assert_eq!(events.len(), 20);
    assert_eq!(events[0].prev, cairn_audit::event::GENESIS);
    for w in events.windows(2) {
        assert_eq!(
            w[1].prev,
            w[0].hash(),
            "event {} links to {}",
            w[1].seq,
            w[0].seq
        );
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    let report = verify_store(&s, Some(&roster(&[(&a, "ada", None)])))
        .unwrap()
        .finish();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.events, 20);
    assert_eq!(report.chains[0].member, "ada");
    assert_eq!(report.chains[0].head, events[19].hash());
    assert_eq!(s.marks().unwrap()[0].count, 20);
}

#[test]
fn a_peer_stores_a_chain_once_and_keeps_it_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let sa = peer_with(dir.path(), "a", &a, 10);
    let mut sb = AuditStore::open(&dir.join_b()).unwrap();
    let got = sb.receive(&all(&sa, a.id()), a.id()).unwrap();
    assert_eq!(
        (got.stored, got.duplicates, got.conflicts.len()),
        (10, 0, 0)
    );
    let again = sb.receive(&all(&sa, a.id()), a.id()).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 10));
    drop(sb);
    let sb = AuditStore::open(&dir.join_b()).unwrap();
    assert_eq!(sb.marks().unwrap(), sa.marks().unwrap());
    assert!(verify_store(&sb, None).unwrap().finish().ok());
}

trait JoinB {
    fn join_b(&self) -> std::path::PathBuf;
}
impl JoinB for tempfile::TempDir {
    fn join_b(&self) -> std::path::PathBuf {
        self.path().join("b.db")
    }
}

#[test]
fn an_edited_event_is_caught_by_its_signature_and_the_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let sa = peer_with(dir.path(), "a", &a, 10);
    raw(&sa)
        .execute(
            "UPDATE events SET fields = '{\"code_commit\":\"evil\"}' WHERE seq = 5",
            [],
        )
        .unwrap();
    // On the peer itself.
    let report = verify_store(&sa, None).unwrap().finish();
    assert_eq!(report.count(Problem::BadSignature), 1, "{report:?}");
    assert_eq!(report.findings[0].seq, Some(5));
    // On another peer that had the chain already: a rewrite (a fork), refused and reported.
    let mut sb = AuditStore::open(&dir.join_b()).unwrap();
    let original: Vec<Event> = {
        let s = peer_with(dir.path(), "a-copy", &a, 10);
        all(&s, a.id())
    };
    sb.receive(&original, "peer-a").unwrap();
    let got = sb.receive(&all(&sa, a.id()), "peer-a").unwrap();
    assert_eq!(got.stored, 0);
    assert!(!got.conflicts.is_empty());
    let report = verify_store(&sb, None).unwrap().finish();
    assert!(report.count(Problem::BadSignature) >= 1, "{report:?}");
    // On a peer that had none of it: nothing from the edit on is stored, and it says why.
    let mut sc = AuditStore::open(&dir.path().join("c.db")).unwrap();
    let got = sc.receive(&all(&sa, a.id()), "peer-a").unwrap();
    assert_eq!(got.stored, 5);
    let report = verify_store(&sc, None).unwrap().finish();
    assert_eq!(report.count(Problem::BadSignature), 1, "{report:?}");
    assert_eq!(report.count(Problem::Gap), 1, "{report:?}");
}

#[test]
fn an_edit_resigned_by_the_device_is_a_fork_on_peers_that_hold_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let sa = peer_with(dir.path(), "a", &a, 6);
    let mut sb = AuditStore::open(&dir.join_b()).unwrap();
    sb.receive(&all(&sa, a.id()), "peer-a").unwrap();
    // The device rewrites its own history from event 3 on, validly signed.
    let mut rewritten = all(&sa, a.id())[..3].to_vec();
    let mut prev = rewritten[2].hash();
    for i in 3..6 {
        let e = cairn_audit::event::seal(&a, i, &prev, draft(100 + i));
        prev = e.hash();
        rewritten.push(e);
    }
    let got = sb.receive(&rewritten, "peer-a").unwrap();
    assert_eq!(got.duplicates, 3);
    assert_eq!(got.conflicts.len(), 3);
    assert!(got.conflicts.iter().all(|c| c.problem == Problem::Fork));
    let report = verify_store(&sb, None).unwrap().finish();
    assert_eq!(report.count(Problem::Fork), 3, "{report:?}");
    // What B holds is what it had: the original chain.
    assert_eq!(all(&sb, a.id()), all(&sa, a.id()));
}

#[test]
fn a_removed_event_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let sa = peer_with(dir.path(), "a", &a, 10);
    raw(&sa)
        .execute("DELETE FROM events WHERE seq = 4", [])
        .unwrap();
    let report = verify_store(&sa, None).unwrap().finish();
    assert_eq!(report.count(Problem::Gap), 1, "{report:?}");
    assert!(report.findings[0].detail.contains("4..4"), "{report:?}");
    let mut sc = AuditStore::open(&dir.path().join("c.db")).unwrap();
    let got = sc.receive(&all(&sa, a.id()), "peer-a").unwrap();
    assert_eq!(got.stored, 4);
    assert_eq!(
        verify_store(&sc, None)
            .unwrap()
            .finish()
            .count(Problem::Gap),
        1
    );
}

#[test]
fn a_reordered_chain_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let sa = peer_with(dir.path(), "a", &a, 10);
    // Swap events 3 and 4 (their places, keeping each one's signed content).
    let c = raw(&sa);
    c.execute("UPDATE events SET seq = -1 WHERE seq = 3", [])
        .unwrap();
    c.execute("UPDATE events SET seq = 3 WHERE seq = 4", [])
        .unwrap();
    c.execute("UPDATE events SET seq = 4 WHERE seq = -1", [])
        .unwrap();
    let report = verify_store(&sa, None).unwrap().finish();
    assert_eq!(report.count(Problem::BadSignature), 2, "{report:?}");
    assert!(report.count(Problem::BrokenLink) >= 2, "{report:?}");
    // Reordered as sent (places intact): out of order.
    let mut events = all(&peer_with(dir.path(), "a2", &a, 10), a.id());
    events.swap(3, 4);
    let mut v = cairn_audit::Verifier::new(None);
    v.feed(&events);
    let report = v.finish();
    assert_eq!(report.count(Problem::OutOfOrder), 1, "{report:?}");
    assert!(report.count(Problem::Gap) == 1, "{report:?}");
}

#[test]
fn a_forged_signature_is_refused_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let mallory = key(9);
    let sa = peer_with(dir.path(), "a", &a, 3);
    let mut events = all(&sa, a.id());
    // Mallory writes an event claiming to be A's next one.
    let mut forged = cairn_audit::event::seal(&mallory, 3, &events[2].hash(), draft(3));
    forged.device = a.id().to_owned();
    events.push(forged);
    let mut sb = AuditStore::open(&dir.join_b()).unwrap();
    let got = sb.receive(&events, "peer-m").unwrap();
    assert_eq!(got.stored, 3);
    assert_eq!(got.conflicts[0].problem, Problem::BadSignature);
    let report = verify_store(&sb, None).unwrap().finish();
    assert_eq!(report.count(Problem::BadSignature), 1, "{report:?}");
    assert!(report.findings[0].detail.contains("peer-m"), "{report:?}");
}

#[test]
fn signers_are_checked_against_the_roster() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let b = key(2);
    let stranger = key(3);
    let mut s = peer_with(dir.path(), "a", &a, 2);
    for i in 0..3 {
        let e = cairn_audit::event::seal(
            &b,
            i,
            &all(&s, b.id())
                .last()
                .map_or(cairn_audit::event::GENESIS.to_owned(), Event::hash),
            draft(10 + i),
        );
        s.receive(&[e], "peer-b").unwrap();
    }
    let e = cairn_audit::event::seal(&stranger, 0, cairn_audit::event::GENESIS, draft(50));
    s.receive(&[e], "peer-x").unwrap();
    // B was removed after its first event (at_ms of draft(10) < removal < draft(11)).
    let removed = 1_700_000_000_010;
    let r = roster(&[(&a, "ada", None), (&b, "bob", Some(removed))]);
    let report = verify_store(&s, Some(&r)).unwrap().finish();
    assert_eq!(report.count(Problem::UnknownSigner), 1, "{report:?}");
    assert_eq!(report.count(Problem::SignedAfterRemoval), 2, "{report:?}");
    assert!(report.roster_checked);
    // Without a roster, only signatures and links are checked: all fine.
    assert!(verify_store(&s, None).unwrap().finish().ok());
}

#[test]
fn events_out_of_bounds_are_refused_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let mut s = AuditStore::open(&dir.path().join("a.db")).unwrap();
    let mut d = draft(0);
    for i in 0..100 {
        d = d.subject(format!("run:{i}"));
    }
    let err = s.append(&a, d.clone()).unwrap_err();
    assert!(err.to_string().contains("subjects (at most 64)"), "{err}");
    // From a peer: kept out, said why, and the store still works.
    let e = cairn_audit::event::seal(&a, 0, cairn_audit::event::GENESIS, d);
    let got = s.receive(&[e], "peer").unwrap();
    assert_eq!(got.stored, 0);
    assert!(
        got.conflicts[0].why.contains("subjects"),
        "{:?}",
        got.conflicts
    );
    s.append(&a, draft(1)).unwrap();
    assert_eq!(s.count().unwrap(), 1);
}

#[test]
fn log_finds_events_by_subject_member_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let mut s = peer_with(dir.path(), "a", &a, 5);
    s.append(
        &a,
        Draft::new("grace", kind::DEPLOYED, 1_800_000_000_000)
            .subject("model:churn")
            .subject("version:churn/0192")
            .field("target", "prod-eu")
            .field("rationale", "beats champion"),
    )
    .unwrap();
    let q = |f: fn(&mut cairn_audit::Query)| {
        let mut q = cairn_audit::Query::default();
        f(&mut q);
        s.log(&q).unwrap()
    };
    assert_eq!(q(|_| {}).len(), 6);
    assert_eq!(q(|_| {})[0].kind, kind::DEPLOYED, "newest first");
    let by_model = q(|q| q.subjects = vec!["model:churn".into()]);
    assert_eq!(by_model.len(), 1);
    assert_eq!(by_model[0].field("target"), Some("prod-eu"));
    assert_eq!(q(|q| q.member = Some("ada".into())).len(), 5);
    assert_eq!(q(|q| q.since_ms = Some(1_750_000_000_000)).len(), 1);
    assert_eq!(q(|q| q.kinds = vec![kind::RUN_CREATED.into()]).len(), 5);
    assert_eq!(s.about(&format!("run:{:032x}", 2), 10).unwrap().len(), 1);
}

fn header(k: &DeviceKey, r: Vec<Signer>) -> Header {
    Header {
        format: cairn_audit::bundle::BUNDLE_FORMAT.into(),
        workspace: "ws-1".into(),
        device: k.id().into(),
        member: "ada".into(),
        exported_ms: 1_900_000_000_000,
        roster: r,
    }
}

#[test]
fn bundles_round_trip_and_any_change_breaks_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let mut s = peer_with(dir.path(), "a", &a, 30);
    s.append(&a, draft(31).field("note", "</script><b>x</b> & \"q\""))
        .unwrap();
    let r = roster(&[(&a, "ada", None)]);
    for (format, name) in [(Format::Jsonl, "b.jsonl"), (Format::Html, "b.html")] {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        assert_eq!(
            export(&s, &a, header(&a, r.clone()), format, &mut f).unwrap(),
            31
        );
        drop(f);
        let check = verify_bundle(&path).unwrap();
        assert!(check.ok(), "{name}: {check:?}");
        assert_eq!(check.report.events, 31);
        assert_eq!(check.header.workspace, "ws-1");

        let text = std::fs::read_to_string(&path).unwrap();
        // An edited event.
        let edited = text.replacen(
            "\"member\":\"ada\",\"kind\":\"run.created\"",
            "\"member\":\"eve\",\"kind\":\"run.created\"",
            1,
        );
        assert_ne!(edited, text);
        std::fs::write(&path, &edited).unwrap();
        let check = verify_bundle(&path).unwrap();
        assert!(check.sealed.is_err(), "{name}");
        assert_eq!(check.report.count(Problem::BadSignature), 1, "{name}");
        // A removed event line (the 5th line: event 3).
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("{\"event\""))
            .unwrap()
            + 3;
        let cut: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at)
            .map(|(_, l)| *l)
            .collect();
        std::fs::write(&path, &cut).unwrap();
        let check = verify_bundle(&path).unwrap();
        assert!(check.sealed.is_err(), "{name}");
        assert_eq!(
            check.report.count(Problem::Gap),
            1,
            "{name}: {:?}",
            check.report
        );
        // Cut short before the end line.
        let short: String = lines[..lines.len() - 4].concat();
        std::fs::write(&path, &short).unwrap();
        let check = verify_bundle(&path).unwrap();
        assert!(
            check.sealed.unwrap_err().contains("cut short") || name.ends_with("html"),
            "{name}"
        );
    }
    // CSV is a table, not a bundle.
    let path = dir.path().join("b.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    export(&s, &a, header(&a, r.clone()), Format::Csv, &mut f).unwrap();
    drop(f);
    let csv = std::fs::read_to_string(&path).unwrap();
    assert_eq!(csv.lines().count(), 32);
    assert!(
        verify_bundle(&path)
            .unwrap_err()
            .to_string()
            .contains("line 1")
    );
}

#[test]
fn a_bundle_resealed_by_someone_off_the_roster_fails() {
    let dir = tempfile::tempdir().unwrap();
    let a = key(1);
    let mallory = key(9);
    let s = peer_with(dir.path(), "a", &a, 3);
    let path = dir.path().join("m.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    export(
        &s,
        &mallory,
        header(&mallory, roster(&[(&a, "ada", None)])),
        Format::Jsonl,
        &mut f,
    )
    .unwrap();
    drop(f);
    let check = verify_bundle(&path).unwrap();
    assert!(check.sealed.unwrap_err().contains("not on the roster"));
}

#[test]
fn garbage_is_not_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty", &b""[..]),
        ("text", &b"hello\n"[..]),
        ("json", &b"{\"header\":{}}\n"[..]),
        ("html", &b"<!doctype html>\n<p>no bundle</p>\n"[..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = verify_bundle(&path).unwrap_err().to_string();
        assert!(err.contains("audit bundle"), "{name}: {err}");
    }
}
