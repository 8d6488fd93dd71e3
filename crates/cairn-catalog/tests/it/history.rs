//! A run's history from its shard doc's changes: field, old → new, which device, when — also on
//! a peer that only received the changes.

use cairn_catalog::{Catalog, FieldChange, RunEdit};
use cairn_model::{MetricSummary, RunStatus};

use super::{experiment, run_in};

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fields(history: &[FieldChange]) -> Vec<(&str, Option<&str>, Option<&str>)> {
    history
        .iter()
        .map(|c| (c.field.as_str(), c.old.as_deref(), c.new.as_deref()))
        .collect()
}

#[test]
fn a_runs_history_names_each_field_change_its_device_and_time_on_every_peer() {
    let (alice_key, bob_key) = ([0xa1; 32], [0xb0; 32]);
    let mut laptop = Catalog::open_in_memory("alice").unwrap();
    laptop.set_author(alice_key);
    let exp = experiment("e");
    laptop.create_experiment(&exp).unwrap();
    let run = run_in(&exp, 3);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    laptop.create_runs(std::slice::from_ref(&run)).unwrap();
    laptop
        .update_run(
            run.id,
            &[
                RunEdit::Name("warmup-5".into()),
                RunEdit::Param("lr".into(), "0.01".into()),
                RunEdit::Tag("stage".into(), "tuning".into()),
            ],
        )
        .unwrap();
    // A metric summary moves with its series: not a history entry.
    laptop
        .update_run(
            run.id,
            &[RunEdit::Metric(
                "loss".into(),
                MetricSummary {
                    last: 0.5,
                    min: Some(0.5),
                    max: Some(0.5),
                    step: 1,
                    count: 1,
                    ts_ms: 1,
                },
            )],
        )
        .unwrap();
    let shard = laptop
        .doc_names()
        .unwrap()
        .into_iter()
        .find(|d| d != "team")
        .unwrap();

    // Bob's device receives the doc and edits on top of it; the laptop gets his change back.
    let mut gpu_box = Catalog::open_in_memory("bob").unwrap();
    gpu_box.set_author(bob_key);
    for doc in ["team", shard.as_str()] {
        gpu_box
            .import_changes(doc, &laptop.export_doc(doc).unwrap())
            .unwrap();
    }
    gpu_box
        .update_run(
            run.id,
            &[
                RunEdit::Status {
                    status: RunStatus::Finished,
                    end_ms: Some(run.start_ms + 60_000),
                },
                RunEdit::DeleteTag("stage".into()),
            ],
        )
        .unwrap();
    laptop
        .import_changes(&shard, &gpu_box.export_doc(&shard).unwrap())
        .unwrap();

    // No table on the laptop names bob's device: his change does.
    let history = laptop.run_history(run.id).unwrap();
    assert_eq!(
        history,
        gpu_box.run_history(run.id).unwrap(),
        "every peer reads the same"
    );
    assert_eq!(
        fields(&history),
        [
            ("run", None, Some("created")),
            ("name", Some("trial-3"), Some("warmup-5")),
            ("params.lr", Some("0.004"), Some("0.01")),
            ("tags.stage", None, Some("tuning")),
            // One change's fields come in key order.
            (
                "end_ms",
                None,
                Some((run.start_ms + 60_000).to_string().as_str())
            ),
            ("status", Some("running"), Some("finished")),
            ("tags.stage", Some("tuning"), None),
        ]
    );
    let devices: Vec<&str> = history
        .iter()
        .map(|c| c.device.as_deref().unwrap())
        .collect();
    assert_eq!(&devices[..4], [hex(&alice_key).as_str(); 4]);
    assert_eq!(&devices[4..], [hex(&bob_key).as_str(); 3]);
    assert!(history.iter().all(|c| c.at_ms >= before && !c.conflict));

    // Folded into a snapshot and loaded again from it, the doc keeps every author and time.
    laptop.compact_all().unwrap();
    assert_eq!(laptop.run_history(run.id).unwrap(), history);
}

#[test]
fn changes_without_an_author_fall_back_to_the_local_writer_and_unknown_runs_are_errors() {
    let mut cat = Catalog::open_in_memory("carol").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let run = run_in(&exp, 1);
    cat.create_runs(std::slice::from_ref(&run)).unwrap();
    cat.update_run(run.id, &[RunEdit::Notes("first look: lr too high".into())])
        .unwrap();
    let history = cat.run_history(run.id).unwrap();
    assert_eq!(
        fields(&history),
        [
            ("run", None, Some("created")),
            ("notes", Some(""), Some("first look: lr too high")),
        ]
    );
    assert!(
        history
            .iter()
            .all(|c| c.device.is_none() && c.writer.as_deref() == Some("carol"))
    );
    let other = run_in(&exp, 2);
    assert!(cat.run_history(other.id).is_err());
}
