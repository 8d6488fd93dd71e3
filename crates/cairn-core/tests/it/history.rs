//! A run's history between teammates over real iroh endpoints on loopback: each peer names who
//! changed each field — the roster's name for the device the change carries — whichever peer
//! wrote it and however the change travelled.

use cairn_core::team::NodeConfig;
use cairn_core::{FieldChangeView, Workspace};

use super::audit_sync::{join, runtime, sync};
use super::registry::peer;
use crate::start;

fn changes(ws: &Workspace, run: &str) -> Vec<(String, Option<String>, Option<String>, String)> {
    ws.run_history(run)
        .unwrap()
        .into_iter()
        .map(|c: FieldChangeView| (c.field, c.old, c.new, c.member))
        .collect()
}

#[test]
fn every_peer_names_who_changed_each_field_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let ada = peer(&dir, "ada", "ada");
    let bo = peer(&dir, "bo", "bo");
    let rt = runtime();
    rt.block_on(async {
        ada.team_create("lab", "ada@example.org").unwrap();
        let ada_node = ada.start_sync_node(NodeConfig::default()).await.unwrap();
        let bo_node = bo.start_sync_node(NodeConfig::default()).await.unwrap();
        join(&ada, &ada_node, &bo_node, "bo").await;

        let run = start(&ada, "churn", &[("lr", "0.1")]);
        ada.log_params(run, &[("seed".into(), "7".into())]).unwrap();
        ada.rename_run(run, "baseline").unwrap();
        sync(&bo_node, &ada, &ada_node).await;

        // Bo's device received ada's changes: it names her from the roster, not a local table.
        let id = run.to_string();
        let on_bo = bo.run_history(&id).unwrap();
        let ada_device = ada.device_id().unwrap();
        assert!(
            on_bo
                .iter()
                .all(|c| c.device.as_deref() == Some(ada_device.as_str()))
        );
        bo.set_notes(run, "lr looks high; trying 0.01 next")
            .unwrap();
        bo.set_tags(run, &[("stage".into(), "tuning".into())])
            .unwrap();
        sync(&bo_node, &ada, &ada_node).await;

        let on_ada = changes(&ada, &id);
        assert_eq!(on_ada, changes(&bo, &id), "both peers read one history");
        assert_eq!(
            on_ada[0],
            ("run".into(), None, Some("created".into()), "ada".into())
        );
        let by = |field: &str| {
            on_ada
                .iter()
                .find(|c| c.0 == field)
                .unwrap_or_else(|| panic!("no change of {field} in {on_ada:?}"))
                .clone()
        };
        assert_eq!(
            by("params.seed"),
            ("params.seed".into(), None, Some("7".into()), "ada".into())
        );
        let name = by("name");
        assert!(name.1.is_some() && name.2.as_deref() == Some("baseline") && name.3 == "ada");
        assert_eq!(
            by("notes"),
            (
                "notes".into(),
                Some(String::new()),
                Some("lr looks high; trying 0.01 next".into()),
                "bo".into()
            )
        );
        assert_eq!(
            by("tags.stage"),
            (
                "tags.stage".into(),
                None,
                Some("tuning".into()),
                "bo".into()
            )
        );
        assert!(
            ada.run_history(&id)
                .unwrap()
                .iter()
                .all(|c| c.at_ms > 0 && !c.conflict)
        );
    });
}
