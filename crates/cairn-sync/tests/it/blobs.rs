//! Which blobs travel: only live ones (bound by a run that is not deleted, directly or through a
//! directory manifest); a purge tombstone erases a blob from every peer that syncs afterwards
//! and is refused from then on; tombstones that are not validly signed by an active member
//! change nothing.

use cairn_catalog::RunEdit;
use cairn_model::BlobHash;
use cairn_sync::purge::{self, Tombstone};
use cairn_sync::wire::{Msg, VERSION, read_frame, write_frame};
use cairn_sync::{Error, Link, SecretKey, roster, run_session};
use tokio::io::AsyncWriteExt;

use crate::common::{Peer, hash_of, sync};

const SECRET: &[u8] = b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";

/// What `asker` gets when it fetches `hashes` from `holder` over `cairn/blob/1`.
async fn fetch(holder: &Peer, asker: &Peer, hashes: &[BlobHash]) -> cairn_sync::FetchReport {
    let (x, y) = tokio::io::duplex(1 << 20);
    let (xr, xw) = tokio::io::split(x);
    let (yr, yw) = tokio::io::split(y);
    let (served, fetched) = tokio::join!(
        cairn_sync::fetch::serve_blobs(&holder.stores, yr, yw),
        cairn_sync::fetch::fetch_blobs(
            &asker.stores,
            &holder.name,
            xr,
            xw,
            hashes,
            cairn_sync::fetch::FETCH_IDLE
        )
    );
    served.unwrap();
    fetched.unwrap()
}

#[tokio::test]
async fn a_deleted_artifact_or_a_deleted_runs_is_neither_offered_nor_served() {
    let (ada, bo) = (Peer::new("ada"), Peer::new("bo"));
    let exp = ada.create_experiment("e");
    let run = ada.create_run(exp, "leaky");
    ada.add_artifact(run, ".env", SECRET);
    ada.add_artifact(run, "model.bin", b"weights");
    let plots = ada.add_dir_artifact(
        run,
        "plots",
        &[("a.svg", b"<svg>a</svg>"), ("b.svg", b"<svg>b</svg>")],
    );
    ada.edit(run, RunEdit::DeleteArtifact(".env".into()));
    let old = ada.create_run(exp, "deleted");
    ada.add_artifact(old, "old.bin", b"an old run's checkpoint");
    ada.edit(old, RunEdit::Deleted(true));
    assert!(ada.holds(SECRET), "deleting an artifact only unbinds it");

    let (sent, _) = sync(&ada, &bo).await;
    assert_eq!(bo.run(run).name, "leaky");
    assert!(bo.run(old).deleted);
    assert!(bo.holds(b"weights"));
    assert!(bo.with(|s| s.artifacts.contains(&plots)));
    assert!(bo.holds(b"<svg>a</svg>") && bo.holds(b"<svg>b</svg>"));
    assert!(!bo.holds(SECRET), "a deleted artifact travelled");
    assert!(
        !bo.holds(b"an old run's checkpoint"),
        "a deleted run's artifact travelled"
    );
    assert!(sent.sent > 0);

    // Nor is it served on demand, to a teammate who knows its hash.
    let report = fetch(
        &ada,
        &bo,
        &[hash_of(SECRET), hash_of(b"an old run's checkpoint")],
    )
    .await;
    assert!(report.fetched.is_empty(), "{report:?}");
    assert_eq!(report.missing.len(), 2);
    assert!(!bo.holds(SECRET));

    // A restored run's artifacts are live again and travel.
    ada.edit(old, RunEdit::Deleted(false));
    sync(&ada, &bo).await;
    assert!(bo.holds(b"an old run's checkpoint"));
}

/// ada's team, with bo on its roster; returns ada's key.
fn team(ada: &Peer, bo_key: &SecretKey) -> SecretKey {
    let key = SecretKey::generate();
    let me = key.public().to_string();
    ada.with(|s| {
        roster::create(&mut s.catalog, "lab", &me, "Ada", "")?;
        roster::add(&mut s.catalog, &bo_key.public().to_string(), "Bo", "", &me)
    })
    .unwrap();
    key
}

fn purge_here(p: &Peer, key: &SecretKey, run: cairn_model::RunId, path: &str, blob: BlobHash) {
    p.with(|s| {
        purge::purge(
            &mut s.catalog,
            &s.artifacts,
            key,
            Tombstone::new(
                blob,
                "ada",
                1_700_000_000_000,
                &run.to_string(),
                path,
                "leaked key",
            ),
        )
    })
    .unwrap();
}

#[tokio::test]
async fn a_purged_blob_disappears_from_peers_that_had_it_and_is_refused_from_then_on() {
    let (ada, bo, cy) = (Peer::new("ada"), Peer::new("bo"), Peer::new("cy"));
    let (bo_key, cy_key) = (SecretKey::generate(), SecretKey::generate());
    let ada_key = team(&ada, &bo_key);
    ada.with(|s| {
        roster::add(
            &mut s.catalog,
            &cy_key.public().to_string(),
            "Cy",
            "",
            &ada_key.public().to_string(),
        )
    })
    .unwrap();
    let exp = ada.create_experiment("e");
    let run = ada.create_run(exp, "leaky");
    ada.add_artifact(run, ".env", SECRET);
    ada.add_artifact(run, "model.bin", b"weights");
    // Another run bound the same content (a second job that read the same .env).
    let other = ada.create_run(exp, "also-leaky");
    ada.add_artifact(other, "config/.env", SECRET);
    sync(&ada, &bo).await;
    sync(&ada, &cy).await;
    assert!(bo.holds(SECRET) && cy.holds(SECRET));

    purge_here(&ada, &ada_key, run, ".env", hash_of(SECRET));
    assert!(!ada.holds(SECRET));
    assert!(!ada.run(run).artifacts.contains_key(".env"));
    assert!(!ada.run(other).artifacts.contains_key("config/.env"));
    assert!(ada.holds(b"weights"));

    // bo syncs with ada: the tombstone arrives with the team doc and bo erases the blob.
    let (_, at_bo) = sync(&ada, &bo).await;
    assert_eq!(at_bo.purges_applied, 1);
    assert!(!bo.holds(SECRET), "the purged blob is still on bo");
    assert!(!bo.run(run).artifacts.contains_key(".env"));
    assert!(!bo.run(other).artifacts.contains_key("config/.env"));
    assert!(bo.holds(b"weights"));

    // cy, offline meanwhile, still holds it bound; it syncs with bo, not ada: cy erases it and
    // bo does not take it back.
    let (_, at_cy) = sync(&bo, &cy).await;
    assert_eq!(at_cy.purges_applied, 1);
    assert!(!cy.holds(SECRET) && !bo.holds(SECRET));
    let valid = bo
        .with(|s| purge::tombstones(&mut s.catalog, None))
        .unwrap();
    assert_eq!(valid.valid.len(), 1);
    assert_eq!(valid.valid[0].reason, "leaked key");
    assert_eq!(valid.valid[0].device, ada_key.public().to_string());

    // A peer that never heard of the purge offers it and sends it anyway: refused, not stored.
    let r = offer_and_push(&bo, SECRET).await;
    match r {
        Err(Error::Protocol(msg)) => assert!(msg.contains("not asked for"), "{msg}"),
        other => panic!("a purged blob was accepted: {other:?}"),
    }
    assert!(!bo.holds(SECRET));
    // Nor is it served, nor asked for, on demand.
    bo.with(|s| s.artifacts.put_bytes(SECRET)).unwrap();
    let r = fetch(&bo, &cy, &[hash_of(SECRET)]).await;
    assert!(r.fetched.is_empty(), "a purged blob was served");
    bo.with(|s| s.artifacts.remove(&hash_of(SECRET))).unwrap();
}

/// A scripted peer that offers `bytes` as a blob and sends it before being asked.
async fn offer_and_push(
    victim: &Peer,
    bytes: &'static [u8],
) -> Result<cairn_sync::SessionReport, Error> {
    let (catalog, metrics) = victim.with(|s| {
        (
            s.catalog_manifest().unwrap().1,
            s.metrics_manifest().unwrap().1,
        )
    });
    let traces = victim.with(|s| s.traces_manifest().unwrap().1);
    let audit = victim.with(|s| s.audit_manifest().unwrap().1);
    let (x, y) = tokio::io::duplex(1 << 20);
    let (xr, xw) = tokio::io::split(x);
    let hash = hash_of(bytes).0;
    let script = async move {
        let mut s = y;
        for m in [
            Msg::Hello {
                version: VERSION,
                catalog,
                metrics,
                traces,
                audit,
                blobs: [9; 32],
            },
            Msg::BlobList(vec![(hash, bytes.len() as u64)]),
            Msg::BlobWant(vec![]),
            Msg::Blob {
                hash,
                bytes: bytes.to_vec(),
            },
            Msg::RoundEnd,
        ] {
            write_frame(&mut s, &m.encode()).await.unwrap();
        }
        s.shutdown().await.ok();
        while let Ok(Some(_)) = read_frame(&mut s).await {}
    };
    let (r, ()) = tokio::join!(
        run_session(&victim.stores, "mallory", Link::new(xr, xw)),
        script
    );
    r
}

/// Writes `entries` (team-doc key, JSON) into a fresh ada's catalog, syncs her with bo (who
/// holds the blob the entries name), and checks that nothing was erased and why.
async fn ignored_on_both(
    make: impl Fn(&SecretKey, &SecretKey, cairn_model::RunId) -> (String, String),
    expect: &str,
) {
    let (ada, bo) = (Peer::new("ada"), Peer::new("bo"));
    let bo_key = SecretKey::generate();
    let ada_key = team(&ada, &bo_key);
    let exp = ada.create_experiment("e");
    let run = ada.create_run(exp, "r");
    ada.add_artifact(run, "model.bin", b"weights");
    sync(&ada, &bo).await;
    assert!(bo.holds(b"weights"));
    let gone_key = SecretKey::generate();
    let ada_id = ada_key.public().to_string();
    ada.with(|s| {
        roster::add(
            &mut s.catalog,
            &gone_key.public().to_string(),
            "Gone",
            "",
            &ada_id,
        )?;
        roster::remove(&mut s.catalog, "Gone", &ada_id)?;
        let (key, text) = make(&ada_key, &gone_key, run);
        s.catalog.put_team_entry(&key, Some(&text))?;
        Ok::<_, Error>(())
    })
    .unwrap();
    let (_, at_bo) = sync(&ada, &bo).await;
    assert_eq!(at_bo.purges_applied, 0, "{expect}");
    for p in [&ada, &bo] {
        assert!(
            p.holds(b"weights"),
            "{expect}: an invalid tombstone was acted on"
        );
        assert!(p.run(run).artifacts.contains_key("model.bin"), "{expect}");
        let t = p.with(|s| purge::tombstones(&mut s.catalog, None)).unwrap();
        assert!(t.valid.is_empty(), "{expect}: {:?}", t.valid);
        assert_eq!(t.ignored.len(), 1, "{expect}");
        assert!(t.ignored[0].why.contains(expect), "{}", t.ignored[0].why);
    }
}

#[tokio::test]
async fn tombstones_not_validly_signed_by_an_active_member_are_ignored_and_reported() {
    let blob = hash_of(b"weights");
    let record = |run: cairn_model::RunId| {
        Tombstone::new(blob, "ada", 1, &run.to_string(), "model.bin", "spite")
    };
    let filed = |t: Tombstone| (t.key(), serde_json::to_string(&t).unwrap());
    // Unsigned, in ada's name.
    ignored_on_both(
        |ada, _, run| {
            let mut t = record(run).signed(ada);
            t.signature.clear();
            filed(t)
        },
        "64 bytes",
    )
    .await;
    // Signed by a stranger's key, in ada's name.
    ignored_on_both(
        |ada, _, run| {
            let mut t = record(run).signed(&SecretKey::generate());
            t.device = ada.public().to_string();
            filed(t)
        },
        "does not verify",
    )
    .await;
    // Signed by ada, then altered.
    ignored_on_both(
        |ada, _, run| {
            let mut t = record(run).signed(ada);
            t.reason = "changed after signing".into();
            filed(t)
        },
        "does not verify",
    )
    .await;
    // Validly signed by a device that is not on the roster.
    ignored_on_both(
        |_, _, run| filed(record(run).signed(&SecretKey::generate())),
        "not an active member",
    )
    .await;
    // Validly signed by a member who was removed.
    ignored_on_both(
        |_, gone, run| filed(record(run).signed(gone)),
        "not an active member",
    )
    .await;
    // Validly signed by ada, filed under another blob's key.
    ignored_on_both(
        |ada, _, run| {
            let t = record(run).signed(ada);
            (
                format!("purge/{}/{}", hash_of(b"other"), t.device),
                serde_json::to_string(&t).unwrap(),
            )
        },
        "names blob",
    )
    .await;
    // Not a record at all.
    ignored_on_both(
        |ada, _, _| {
            (
                format!("purge/{blob}/{}", ada.public()),
                "{\"blob\": 1}".into(),
            )
        },
        "does not parse",
    )
    .await;
}
