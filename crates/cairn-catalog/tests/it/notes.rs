//! A run's notes are automerge text: devices editing them offline merge, character by character,
//! instead of conflicting; notes written before (a string) still read and become text when next
//! edited.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, Value};
use cairn_catalog::{Catalog, RunEdit};
use cairn_model::{Experiment, Run};

use super::{experiment, run_in};

fn shard_of(cat: &Catalog) -> String {
    cat.doc_names()
        .unwrap()
        .into_iter()
        .find(|d| d != "team")
        .unwrap()
}

/// `to` takes every change `from` has of `doc`.
fn send(from: &mut Catalog, to: &mut Catalog, doc: &str) {
    let bytes = from.export_doc(doc).unwrap();
    to.import_changes(doc, &bytes).unwrap();
}

/// Two catalogs exchange what each has of `doc`.
fn meet(a: &mut Catalog, b: &mut Catalog, doc: &str) {
    send(a, b, doc);
    send(b, a, doc);
}

/// A laptop with one run whose notes are `notes`, and `n` more devices holding a copy of it.
fn peers(n: usize, notes: &str) -> (Vec<Catalog>, Experiment, Run, String) {
    let mut first = Catalog::open_in_memory("peer-0").unwrap();
    let exp = experiment("e");
    first.create_experiment(&exp).unwrap();
    let mut run = run_in(&exp, 5);
    run.notes = notes.into();
    first.create_runs(std::slice::from_ref(&run)).unwrap();
    let shard = shard_of(&first);
    let mut all = vec![first];
    for i in 1..n {
        let mut peer = Catalog::open_in_memory(&format!("peer-{i}")).unwrap();
        for doc in ["team", shard.as_str()] {
            send(&mut all[0], &mut peer, doc);
        }
        all.push(peer);
    }
    (all, exp, run, shard)
}

fn notes(cat: &mut Catalog, run: &Run) -> String {
    let from_doc = cat.run_from_doc(run.id).unwrap();
    let projected = cat.run(run.id).unwrap().unwrap();
    assert_eq!(
        projected.notes, from_doc.notes,
        "the projection follows the doc"
    );
    assert!(
        from_doc.conflicts.is_empty(),
        "text merges: {:?}",
        from_doc.conflicts
    );
    from_doc.notes
}

fn edit(cat: &mut Catalog, run: &Run, f: impl FnOnce(&str) -> String) {
    let old = cat.run_from_doc(run.id).unwrap().notes;
    cat.update_run(run.id, &[RunEdit::Notes(f(&old))]).unwrap();
}

#[test]
fn three_peers_editing_one_runs_notes_offline_keep_every_insertion_after_partitioned_syncs() {
    let start = "lr 0.01 diverges.\nwarmup helps.\n";
    let (mut p, _, run, shard) = peers(3, start);
    let [a, b, c] = &mut p[..] else {
        unreachable!()
    };

    // Offline, each writes somewhere else in the notes; two of them at the same place (the end).
    edit(a, &run, |n| format!("Summary: try 0.003.\n{n}"));
    edit(b, &run, |n| {
        n.replace("warmup helps.", "warmup helps (5% of steps).")
    });
    edit(c, &run, |n| format!("{n}C: seed 2 agrees.\n"));
    edit(b, &run, |n| format!("{n}B: loss spikes gone.\n"));
    let offline: Vec<Vec<u8>> = [&mut *a, &mut *b, &mut *c]
        .into_iter()
        .map(|cat| cat.export_doc(&shard).unwrap())
        .collect();

    // Partitions heal one link at a time: A↔B, then B↔C, then A↔C.
    meet(a, b, &shard);
    assert_eq!(notes(a, &run), notes(b, &run));
    meet(b, c, &shard);
    meet(a, c, &shard);
    let merged = notes(a, &run);
    assert_eq!(merged, notes(b, &run));
    assert_eq!(merged, notes(c, &run));
    for words in [
        "Summary: try 0.003.\n",
        "lr 0.01 diverges.\n",
        "warmup helps (5% of steps).\n",
        "C: seed 2 agrees.\n",
        "B: loss spikes gone.\n",
    ] {
        assert!(merged.contains(words), "{words:?} kept in {merged:?}");
    }
    assert!(
        merged.starts_with("Summary: try 0.003.\nlr 0.01 diverges.\nwarmup helps (5% of steps).\n")
    );
    let inserted = [
        "Summary: try 0.003.\n",
        " (5% of steps)",
        "C: seed 2 agrees.\n",
        "B: loss spikes gone.\n",
    ];
    assert_eq!(
        merged.len(),
        start.len() + inserted.iter().map(|s| s.len()).sum::<usize>(),
        "every insertion once, nothing else: {merged:?}"
    );

    // The outcome does not hang on the order the changes arrive in.
    let mut late = Catalog::open_in_memory("late").unwrap();
    send(a, &mut late, "team");
    for bytes in offline.iter().rev() {
        late.import_changes(&shard, bytes).unwrap();
    }
    assert_eq!(notes(&mut late, &run), merged);

    // A second offline round on the merged text: a deletion on one side, an insertion inside
    // the deleted stretch's neighbour on another.
    edit(a, &run, |n| n.replace("lr 0.01 diverges.\n", ""));
    edit(c, &run, |n| n.replace("try 0.003", "try 0.003 or 0.005"));
    meet(c, b, &shard);
    meet(b, a, &shard);
    meet(a, c, &shard);
    let again = notes(a, &run);
    assert_eq!(again, notes(b, &run));
    assert_eq!(again, notes(c, &run));
    assert!(
        again.starts_with("Summary: try 0.003 or 0.005.\nwarmup helps"),
        "{again:?}"
    );
    assert!(!again.contains("diverges"), "{again:?}");

    // Each peer's edit is in the run's history with the whole notes before and after.
    let history = a.run_history(run.id).unwrap();
    // Concurrent changes list in the order each peer received them.
    let entries = |h: &[cairn_catalog::FieldChange]| {
        let mut v: Vec<_> = h
            .iter()
            .map(|c| {
                (
                    c.actor.clone(),
                    c.at_ms,
                    c.field.clone(),
                    c.old.clone(),
                    c.new.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(entries(&history), entries(&c.run_history(run.id).unwrap()));
    let edits: Vec<_> = history.iter().filter(|h| h.field == "notes").collect();
    assert_eq!(edits.len(), 6, "{history:#?}");
    assert_eq!(edits[0].old.as_deref(), Some(start));
    assert!(edits.iter().all(|h| !h.conflict && h.old != h.new));
    let mut writers: Vec<&str> = edits.iter().map(|h| h.actor.as_str()).collect();
    writers.sort_unstable();
    writers.dedup();
    assert_eq!(writers.len(), 3, "each peer's edits are there");
    // The second round's edits were made on the merged text.
    assert_eq!(
        edits
            .iter()
            .filter(|h| h.old.as_deref() == Some(merged.as_str()))
            .count(),
        2
    );
}

#[test]
fn notes_are_text_from_the_runs_creation_and_an_edit_is_a_splice() {
    let (mut p, _, run, shard) = peers(1, "first look");
    let cat = &mut p[0];
    let doc = AutoCommit::load(&cat.export_doc(&shard).unwrap()).unwrap();
    let (_, obj) = doc
        .get(automerge::ROOT, format!("run/{}", run.id).as_str())
        .unwrap()
        .unwrap();
    let (value, text) = doc.get(&obj, "notes").unwrap().unwrap();
    assert_eq!(value, Value::Object(ObjType::Text));
    assert_eq!(doc.text(&text).unwrap(), "first look");

    edit(cat, &run, |n| format!("{n}: lr too high"));
    let mut doc = AutoCommit::load(&cat.export_doc(&shard).unwrap()).unwrap();
    let (_, same) = doc.get(&obj, "notes").unwrap().unwrap();
    assert_eq!(
        same, text,
        "the edit goes into the run's text, not a new one"
    );
    assert_eq!(doc.text(&text).unwrap(), "first look: lr too high");
    // Only the inserted characters are new ops: a splice, not a rewrite.
    let last = doc.get_changes(&[]).into_iter().last().unwrap().clone();
    assert_eq!(last.len(), ": lr too high".chars().count());
}

/// Writes `notes` as a string into the run, as Cairn did before notes were text.
fn legacy_notes(cat: &mut Catalog, shard: &str, run: &Run, notes: &str) {
    let mut doc = AutoCommit::load(&cat.export_doc(shard).unwrap()).unwrap();
    let (_, obj) = doc
        .get(automerge::ROOT, format!("run/{}", run.id).as_str())
        .unwrap()
        .unwrap();
    doc.put(&obj, "notes", notes).unwrap();
    cat.import_changes(shard, &doc.save()).unwrap();
}

#[test]
fn notes_written_as_a_string_read_and_become_text_when_edited() {
    let (mut p, _, run, shard) = peers(1, "");
    let cat = &mut p[0];
    legacy_notes(cat, &shard, &run, "old note");
    assert_eq!(notes(cat, &run), "old note");

    edit(cat, &run, |n| format!("{n}, edited"));
    assert_eq!(notes(cat, &run), "old note, edited");
    let doc = AutoCommit::load(&cat.export_doc(&shard).unwrap()).unwrap();
    let (_, obj) = doc
        .get(automerge::ROOT, format!("run/{}", run.id).as_str())
        .unwrap()
        .unwrap();
    let (value, _) = doc.get(&obj, "notes").unwrap().unwrap();
    assert_eq!(value, Value::Object(ObjType::Text));

    let history = cat.run_history(run.id).unwrap();
    let changes: Vec<(Option<&str>, Option<&str>)> = history
        .iter()
        .filter(|h| h.field == "notes")
        .map(|h| (h.old.as_deref(), h.new.as_deref()))
        .collect();
    assert_eq!(
        changes,
        [
            (Some(""), Some("old note")),
            (Some("old note"), Some("old note, edited"))
        ]
    );
    // Once text, it merges.
    let mut other = Catalog::open_in_memory("other").unwrap();
    for doc in ["team", shard.as_str()] {
        send(cat, &mut other, doc);
    }
    edit(cat, &run, |n| format!("NB: {n}"));
    edit(&mut other, &run, |n| format!("{n}."));
    meet(cat, &mut other, &shard);
    assert_eq!(notes(cat, &run), "NB: old note, edited.");
    assert_eq!(notes(&mut other, &run), "NB: old note, edited.");
}

#[test]
fn two_devices_converting_string_notes_at_once_keep_both_texts_the_same_way_everywhere() {
    let (mut p, _, run, shard) = peers(2, "");
    let [a, b] = &mut p[..] else { unreachable!() };
    legacy_notes(a, &shard, &run, "shared");
    meet(a, b, &shard);
    assert_eq!(notes(b, &run), "shared");

    // Both convert the string to text offline.
    edit(a, &run, |n| format!("{n} by a"));
    edit(b, &run, |n| format!("{n} by b"));
    meet(a, b, &shard);

    let (ra, rb) = (
        a.run_from_doc(run.id).unwrap(),
        b.run_from_doc(run.id).unwrap(),
    );
    assert_eq!(
        ra, rb,
        "every peer shows the same text and the same conflict"
    );
    assert_eq!(a.run(run.id).unwrap().unwrap(), ra);
    assert_eq!(ra.conflicts.len(), 1, "{:?}", ra.conflicts);
    let conflict = &ra.conflicts[0];
    assert_eq!(conflict.field, "notes");
    let values: Vec<&str> = conflict
        .values
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(values[0], ra.notes, "the shown text comes first");
    let mut sorted = values.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["shared by a", "shared by b"], "nothing is lost");

    // A later edit on either side goes to the shown text, and those edits merge.
    let shown = ra.notes.clone();
    edit(a, &run, |n| format!("A: {n}"));
    edit(b, &run, |n| format!("{n}!"));
    meet(a, b, &shard);
    let ra = a.run_from_doc(run.id).unwrap();
    assert_eq!(ra, b.run_from_doc(run.id).unwrap());
    assert_eq!(ra.notes, format!("A: {shown}!"));
    let values: Vec<&str> = ra.conflicts[0]
        .values
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(values.len(), 2);
    assert_eq!(values[0], ra.notes);
}
