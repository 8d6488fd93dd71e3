//! Logged models in the shard docs: edits from two devices merge, sync projects them, a
//! rebuild recomputes them, their files count as bound blobs.

use cairn_catalog::{Catalog, Error, LoggedModelEdit, LoggedModelQuery};
use cairn_model::{
    ArtifactKind, ArtifactRef, BlobHash, Deletion, Experiment, LoggedModel, LoggedModelId,
    LoggedModelStatus,
};

use super::experiment;

fn model_in(exp: &Experiment, name: &str) -> LoggedModel {
    let id = LoggedModelId::new();
    LoggedModel {
        artifact_location: format!("mlflow-artifacts:/x/models/{id}/artifacts"),
        id,
        experiment: exp.id,
        name: name.into(),
        source_run: None,
        status: LoggedModelStatus::Pending,
        status_message: None,
        model_type: Some("sklearn".into()),
        creator: Some("alice".into()),
        created_ms: 1,
        updated_ms: 1,
        params: [("alpha".to_owned(), "0.5".to_owned())].into(),
        tags: Default::default(),
        metrics: Vec::new(),
        artifacts: Default::default(),
        outputs: Default::default(),
        inputs: Default::default(),
        deleted: None,
        conflicts: Vec::new(),
    }
}

fn shard_of(cat: &Catalog) -> String {
    cat.doc_names()
        .unwrap()
        .into_iter()
        .find(|d| d != "team")
        .unwrap()
}

fn tags(cat: &mut Catalog, id: &LoggedModelId, pairs: &[(&str, &str)]) {
    let edits: Vec<LoggedModelEdit> = pairs
        .iter()
        .map(|(k, v)| LoggedModelEdit::Tag((*k).into(), (*v).into()))
        .collect();
    cat.update_logged_model::<Error>(id, |_| Ok(edits)).unwrap();
}

#[test]
fn tag_edits_made_apart_merge_and_a_clash_is_kept() {
    let mut laptop = Catalog::open_in_memory("alice").unwrap();
    let exp = experiment("e");
    laptop.create_experiment(&exp).unwrap();
    let model = model_in(&exp, "clf");
    laptop.create_logged_model(&model).unwrap();
    let shard = shard_of(&laptop);

    let mut gpu_box = Catalog::open_in_memory("bob").unwrap();
    for doc in ["team", shard.as_str()] {
        gpu_box
            .import_changes(doc, &laptop.export_doc(doc).unwrap())
            .unwrap();
    }
    assert_eq!(gpu_box.logged_model(&model.id).unwrap().unwrap(), model);

    // Offline, each sets a tag of its own and both set `stage`.
    tags(
        &mut laptop,
        &model.id,
        &[("reviewed", "yes"), ("stage", "prod")],
    );
    tags(
        &mut gpu_box,
        &model.id,
        &[("gpu", "a100"), ("stage", "staging")],
    );

    let from_box = gpu_box.export_doc(&shard).unwrap();
    let from_laptop = laptop.export_doc(&shard).unwrap();
    laptop.import_changes(&shard, &from_box).unwrap();
    gpu_box.import_changes(&shard, &from_laptop).unwrap();

    let a = laptop.logged_model_from_doc(&model.id).unwrap();
    let b = gpu_box.logged_model_from_doc(&model.id).unwrap();
    assert_eq!(a, b, "both sides converge");
    assert_eq!(a.tags.get("reviewed").map(String::as_str), Some("yes"));
    assert_eq!(a.tags.get("gpu").map(String::as_str), Some("a100"));
    let clash: Vec<&str> = a.conflicts.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(clash, ["tags.stage"]);
    assert_eq!(a.conflicts[0].values.len(), 2);
    // The projection (what searches read) holds the merged model too.
    assert_eq!(laptop.logged_model(&model.id).unwrap().unwrap(), a);
}

#[test]
fn sync_brings_a_model_and_its_changes_to_a_peer() {
    let mut laptop = Catalog::open_in_memory("alice").unwrap();
    let exp = experiment("e");
    laptop.create_experiment(&exp).unwrap();
    let model = model_in(&exp, "clf");
    laptop.create_logged_model(&model).unwrap();
    let shard = shard_of(&laptop);
    let mut peer = Catalog::open_in_memory("bob").unwrap();

    let sync = |a: &mut Catalog, b: &mut Catalog| {
        for doc in ["team".to_owned(), shard.clone()] {
            let mut sa = a.sync_state("b", &doc).unwrap();
            let mut sb = b.sync_state("a", &doc).unwrap();
            for _ in 0..16 {
                let m1 = a.sync_generate(&doc, &mut sa).unwrap();
                let m2 = b.sync_generate(&doc, &mut sb).unwrap();
                if m1.is_none() && m2.is_none() {
                    break;
                }
                if let Some(m) = m1 {
                    b.sync_receive("a", &doc, &mut sb, &m).unwrap();
                }
                if let Some(m) = m2 {
                    a.sync_receive("b", &doc, &mut sa, &m).unwrap();
                }
            }
        }
    };
    sync(&mut laptop, &mut peer);
    assert_eq!(peer.logged_model(&model.id).unwrap().unwrap(), model);

    // A later change travels as a change, and the peer re-projects the model it touched.
    laptop
        .update_logged_model::<Error>(&model.id, |_| {
            Ok(vec![LoggedModelEdit::Status {
                status: LoggedModelStatus::Ready,
                message: None,
            }])
        })
        .unwrap();
    sync(&mut laptop, &mut peer);
    assert_eq!(
        peer.logged_model(&model.id).unwrap().unwrap().status,
        LoggedModelStatus::Ready
    );
}

#[test]
fn a_deleted_model_stays_in_the_doc_and_projections_rebuild() {
    let mut cat = Catalog::open_in_memory("alice").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let model = model_in(&exp, "clf");
    cat.create_logged_model(&model).unwrap();
    let file = ArtifactRef {
        hash: BlobHash([7; 32]),
        size: 3,
        kind: ArtifactKind::File,
    };
    let gone = Deletion {
        by: "alice".into(),
        at_ms: 5,
    };
    cat.update_logged_model::<Error>(&model.id, |_| {
        Ok(vec![
            LoggedModelEdit::Artifact("MLmodel".into(), file.clone()),
            LoggedModelEdit::Deleted(Some(gone.clone())),
        ])
    })
    .unwrap();
    let stored = cat.logged_model(&model.id).unwrap().unwrap();
    assert_eq!(stored.deleted, Some(gone));
    // A deleted model's files are bound, but not by anything live (as a deleted run's).
    let bound = cat.bound_blobs().unwrap();
    assert_eq!(bound.len(), 1);
    assert_eq!(bound[0].hash, file.hash);
    assert!(!bound[0].live);

    let q = LoggedModelQuery {
        experiments: vec![exp.id],
        limit: 10,
        ..Default::default()
    };
    assert!(cat.search_logged_models(&q).unwrap().is_empty());
    let with_deleted = LoggedModelQuery {
        include_deleted: true,
        ..q.clone()
    };
    assert_eq!(cat.search_logged_models(&with_deleted).unwrap().len(), 1);

    cat.rebuild_projections().unwrap();
    assert_eq!(cat.logged_model(&model.id).unwrap().unwrap(), stored);
    assert!(matches!(
        cat.logged_model_from_doc(&LoggedModelId::new()),
        Err(Error::UnknownLoggedModel(_))
    ));
}
