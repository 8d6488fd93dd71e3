//! Logged models' rules at the API boundary: a deletion is a tombstone, params never change,
//! a model keeps the latest value of each metric series, two handles' edits both land, a
//! search filters and orders as MLflow's grammar says, and a version made from
//! `models:/<id>` is bound to the model's files.

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_core::{
    Code, LoggedModelSearch, ModelMetricValue, ModelOrderKey, NewLoggedModel, Workspace,
};
use cairn_model::{LoggedModel, LoggedModelId, LoggedModelStatus, RunId};

use crate::{start, workspace};

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn create(ws: &Workspace, name: &str, run: Option<RunId>, params: &[(&str, &str)]) -> LoggedModel {
    let experiment = match run {
        Some(r) => ws.run(r).unwrap().run.experiment,
        None => ws.default_experiment().unwrap().id,
    };
    ws.create_logged_model(NewLoggedModel {
        experiment,
        name: Some(name.into()),
        source_run: run,
        model_type: None,
        params: pairs(params),
        tags: Vec::new(),
    })
    .unwrap()
}

fn metric(model: &LoggedModelId, key: &str, value: f64, step: i64, ts: i64) -> ModelMetricValue {
    ModelMetricValue {
        model: model.clone(),
        key: key.into(),
        value,
        step,
        ts_ms: Some(ts),
        dataset_name: None,
        dataset_digest: None,
    }
}

fn search(ws: &Workspace, filter: &str, order: &[(&str, bool)]) -> Vec<String> {
    let exp = ws.default_experiment().unwrap().id;
    let (models, _) = ws
        .search_logged_models(&LoggedModelSearch {
            experiments: vec![exp],
            filter: filter.into(),
            order: order
                .iter()
                .map(|(f, asc)| ModelOrderKey {
                    field: (*f).into(),
                    ascending: *asc,
                    dataset_name: None,
                    dataset_digest: None,
                })
                .collect(),
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    models.into_iter().map(|m| m.name).collect()
}

#[test]
fn a_model_is_created_pending_and_finalized() {
    let (_d, ws) = workspace();
    let run = start(&ws, "e", &[]);
    let m = create(&ws, "clf", Some(run), &[("alpha", "0.5")]);
    assert_eq!(m.status, LoggedModelStatus::Pending);
    assert_eq!(m.source_run, Some(run));
    assert_eq!(m.creator.as_deref(), Some("alice"));
    let exp = ws.run(run).unwrap().run.experiment;
    assert_eq!(
        m.artifact_location,
        format!("mlflow-artifacts:/{exp}/models/{}/artifacts", m.id)
    );
    let ready = ws
        .finalize_logged_model(&m.id, LoggedModelStatus::Ready, None)
        .unwrap();
    assert_eq!(ready.status, LoggedModelStatus::Ready);
    assert!(ready.updated_ms >= m.updated_ms);
    assert_eq!(ws.logged_model(&m.id, false).unwrap(), ready);

    // Bad input names what was wrong and stores nothing.
    let bad = ws.create_logged_model(NewLoggedModel {
        experiment: exp,
        name: Some("a/b".into()),
        ..Default::default()
    });
    assert!(
        bad.unwrap_err()
            .to_string()
            .starts_with("Invalid model name ('a/b')")
    );
    let unknown_run = ws.create_logged_model(NewLoggedModel {
        experiment: exp,
        source_run: Some(RunId::new()),
        ..Default::default()
    });
    assert_eq!(unknown_run.unwrap_err().code(), Code::NotFound);
    let nobody = LoggedModelId::new();
    let err = ws.logged_model(&nobody, true).unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.to_string(),
        format!("Logged model with ID '{nobody}' not found.")
    );
}

#[test]
fn deleting_leaves_a_tombstone_with_who_and_when() {
    let (_d, ws) = workspace();
    let m = create(&ws, "clf", None, &[]);
    ws.delete_logged_model(&m.id).unwrap();
    assert_eq!(
        ws.logged_model(&m.id, false).unwrap_err().code(),
        Code::NotFound
    );
    let kept = ws.logged_model(&m.id, true).unwrap();
    let tomb = kept.deleted.clone().expect("a tombstone");
    assert_eq!(tomb.by, "alice");
    assert!(tomb.at_ms >= m.created_ms);
    assert_eq!(kept.name, "clf", "nothing else of the model is dropped");
    assert!(search(&ws, "", &[]).is_empty());
    // Deleting again is no error and keeps the first tombstone; a rebuild keeps it too.
    ws.delete_logged_model(&m.id).unwrap();
    ws.rebuild_projections().unwrap();
    assert_eq!(ws.logged_model(&m.id, true).unwrap().deleted, Some(tomb));
}

#[test]
fn params_never_change_and_a_refused_call_stores_nothing() {
    let (_d, ws) = workspace();
    let m = create(&ws, "clf", None, &[("alpha", "0.5")]);
    ws.log_logged_model_params(&m.id, &pairs(&[("alpha", "0.5"), ("depth", "3")]))
        .unwrap();
    let err = ws
        .log_logged_model_params(&m.id, &pairs(&[("seed", "1"), ("alpha", "0.7")]))
        .unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
    assert!(err.to_string().contains("'alpha'") && err.to_string().contains("'0.5'"));
    let got = ws.logged_model(&m.id, false).unwrap();
    assert_eq!(
        got.params,
        BTreeMap::from([("alpha".into(), "0.5".into()), ("depth".into(), "3".into())])
    );
}

#[test]
fn tags_are_set_and_a_missing_one_is_named() {
    let (_d, ws) = workspace();
    let m = create(&ws, "clf", None, &[]);
    ws.set_logged_model_tags(&m.id, &pairs(&[("a", "1"), ("b", "2")]))
        .unwrap();
    ws.delete_logged_model_tag(&m.id, "a").unwrap();
    let err = ws.delete_logged_model_tag(&m.id, "nope").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.to_string(),
        format!("No tag with key 'nope' found for model with ID '{}'.", m.id)
    );
    let got = ws.logged_model(&m.id, false).unwrap();
    assert_eq!(got.tags, BTreeMap::from([("b".into(), "2".into())]));
}

#[test]
fn two_handles_edit_one_model_and_both_edits_land() {
    let (dir, ws) = workspace();
    let other = Workspace::open(&dir.path().join("ws"), "bob").unwrap();
    let m = create(&ws, "clf", None, &[]);
    for i in 0..5 {
        ws.set_logged_model_tags(&m.id, &pairs(&[(&format!("a{i}"), "x")]))
            .unwrap();
        other
            .set_logged_model_tags(&m.id, &pairs(&[(&format!("b{i}"), "y")]))
            .unwrap();
    }
    let seen = other.logged_model(&m.id, false).unwrap();
    assert_eq!(seen.tags.len(), 10);
    assert_eq!(ws.logged_model(&m.id, false).unwrap(), seen);
}

#[test]
fn a_model_keeps_the_latest_value_of_each_series() {
    let (_d, ws) = workspace();
    let run = start(&ws, "e", &[]);
    let m = create(&ws, "clf", Some(run), &[]);
    let mut on_eval = metric(&m.id, "acc", 0.9, 1, 50);
    on_eval.dataset_name = Some("eval".into());
    ws.log_model_metrics(
        run,
        &[
            metric(&m.id, "acc", 0.5, 1, 100),
            metric(&m.id, "acc", 0.7, 2, 200),
            metric(&m.id, "acc", 0.6, 3, 150),
            on_eval,
        ],
    )
    .unwrap();
    // An older value logged later does not replace the latest.
    ws.log_model_metrics(run, &[metric(&m.id, "acc", 0.1, 0, 10)])
        .unwrap();
    let got = ws.logged_model(&m.id, false).unwrap();
    let values: Vec<(f64, Option<&str>)> = got
        .metrics
        .iter()
        .map(|x| (x.value, x.dataset_name.as_deref()))
        .collect();
    assert_eq!(values, [(0.7, None), (0.9, Some("eval"))]);
    assert!(got.metrics.iter().all(|x| x.run == Some(run)));

    // A batch naming an unknown model stores nothing at all.
    let ghost = LoggedModelId::new();
    let err = ws
        .log_model_metrics(
            run,
            &[
                metric(&m.id, "loss", 1.0, 9, 900),
                metric(&ghost, "loss", 1.0, 9, 900),
            ],
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.to_string().contains(ghost.as_str()));
    assert_eq!(ws.logged_model(&m.id, false).unwrap().metrics.len(), 2);
}

#[test]
fn search_filters_and_orders_by_metrics_params_and_attributes() {
    let (_d, ws) = workspace();
    let run = start(&ws, "Default", &[]);
    let names = ["a", "b", "c", "d"];
    let accs = [0.5, 0.9, 0.7, f64::NAN];
    let mut models = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let lr = format!("{}", [10, 2, 3, 4][i]);
        let m = create(
            &ws,
            name,
            Some(run),
            &[("lr", &lr), ("opt", ["adam", "sgd"][i % 2])],
        );
        if i < 3 {
            ws.log_model_metrics(run, &[metric(&m.id, "acc", accs[i], 0, 1)])
                .unwrap();
        }
        models.push(m);
        // Distinct creation times, so the default order is by creation.
        std::thread::sleep(Duration::from_millis(3));
    }
    ws.finalize_logged_model(&models[1].id, LoggedModelStatus::Ready, None)
        .unwrap();
    assert_eq!(search(&ws, "", &[]), ["d", "c", "b", "a"], "newest first");
    assert_eq!(
        search(&ws, "", &[("metrics.acc", false)]),
        ["b", "c", "a", "d"]
    );
    assert_eq!(
        search(&ws, "", &[("metrics.acc", true)]),
        ["a", "c", "b", "d"]
    );
    // Params order by number (10 after 2), missing ones last.
    assert_eq!(
        search(&ws, "", &[("params.lr", true)]),
        ["b", "c", "d", "a"]
    );
    assert_eq!(search(&ws, "", &[("name", false)]), ["d", "c", "b", "a"]);
    assert_eq!(
        search(&ws, "metrics.acc > 0.6", &[("name", true)]),
        ["b", "c"]
    );
    assert_eq!(
        search(&ws, "params.opt = 'sgd' AND metrics.acc >= 0.7", &[]),
        ["b"]
    );
    assert_eq!(search(&ws, "name IN ('a', 'd')", &[]), ["d", "a"]);
    assert_eq!(search(&ws, "name LIKE 'A%'", &[]), Vec::<String>::new());
    assert_eq!(search(&ws, "name ILIKE 'A%'", &[]), ["a"]);
    assert_eq!(search(&ws, "status = 'READY'", &[]), ["b"]);
    assert_eq!(
        search(&ws, "status = 'LOGGED_MODEL_PENDING'", &[("name", true)]),
        ["a", "c", "d"]
    );
    assert_eq!(
        search(
            &ws,
            &format!("source_run_id = '{run}' AND experiment_id = '0'"),
            &[]
        )
        .len(),
        4
    );

    // Pages see every model once.
    let exp = ws.default_experiment().unwrap().id;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (page, next) = ws
            .search_logged_models(&LoggedModelSearch {
                experiments: vec![exp],
                limit: 3,
                offset,
                ..Default::default()
            })
            .unwrap();
        seen.extend(page.into_iter().map(|m| m.name));
        match next {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(seen, ["d", "c", "b", "a"]);

    let bad = ws
        .search_logged_models(&LoggedModelSearch {
            experiments: vec![exp],
            filter: "params.lr > 1".into(),
            limit: 10,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[test]
fn a_version_from_a_logged_model_is_bound_to_its_files_and_run() {
    let (dir, ws) = workspace();
    let run = start(&ws, "e", &[]);
    let m = create(&ws, "clf", Some(run), &[]);
    for (path, body) in [("MLmodel", "flavors: {}"), ("model.pkl", "weights")] {
        let upload = ws.model_artifact_upload(&m.id, path).unwrap();
        let stored = upload.store(&mut body.as_bytes()).unwrap();
        ws.bind_model_artifact(stored).unwrap();
    }
    let top = ws.list_model_artifacts(&m.id, "").unwrap();
    assert_eq!(top.len(), 2);
    let mut read = String::new();
    std::io::Read::read_to_string(
        &mut ws.open_model_artifact(&m.id, "model.pkl").unwrap(),
        &mut read,
    )
    .unwrap();
    assert_eq!(read, "weights");

    ws.create_registered_model("clf", None, BTreeMap::new())
        .unwrap();
    let v = ws
        .create_model_version(
            "clf",
            &format!("models:/{}", m.id),
            None,
            None,
            BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(v.run, Some(run));
    let content = v
        .content
        .expect("the version is bound to the model's files");
    let manifest = cairn_artifacts::ArtifactStore::open(&dir.path().join("ws/artifacts"))
        .unwrap()
        .manifest(&content)
        .unwrap();
    let files: Vec<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(files, ["MLmodel", "model.pkl"]);
    let tagged = ws.logged_model(&m.id, false).unwrap();
    assert_eq!(
        tagged.tags.get("mlflow.modelVersions").map(String::as_str),
        Some(r#"[{"name":"clf","version":"1"}]"#)
    );

    // The model's files are live: gc keeps them (and the version's manifest).
    let report = ws.gc(Duration::ZERO, false).unwrap();
    assert_eq!(report.removed, 0);
    assert_eq!(ws.list_model_artifacts(&m.id, "").unwrap().len(), 2);

    // A deleted or unknown model is no source.
    let ghost = format!("models:/{}", LoggedModelId::new());
    let err = ws
        .create_model_version("clf", &ghost, None, None, BTreeMap::new())
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[test]
fn runs_know_the_models_they_produced_and_read() {
    let (_d, ws) = workspace();
    let run = start(&ws, "e", &[]);
    let reader = start(&ws, "e", &[]);
    let m = create(&ws, "clf", Some(run), &[]);
    ws.log_model_outputs(run, &[(m.id.clone(), 7)]).unwrap();
    ws.log_model_inputs(reader, std::slice::from_ref(&m.id))
        .unwrap();
    let links = ws.run_model_links(&[run, reader]).unwrap();
    let seen: Vec<(RunId, &str, i64)> = links
        .iter()
        .map(|l| (l.run, l.role.as_str(), l.step))
        .collect();
    assert_eq!(seen, [(run, "output", 7), (reader, "input", 0)]);
    let page = ws.run_logged_models(&run.to_string()).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].model.id, m.id);
    let err = ws
        .log_model_outputs(run, &[(LoggedModelId::new(), 1)])
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}
