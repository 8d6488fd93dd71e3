//! Notebooks are docs of their own holding Markdown as automerge text: three devices editing one
//! notebook offline, meeting two at a time through automerge's sync protocol (what peer sync
//! runs), end with the same text holding every insertion, and each one's listing follows.

use cairn_catalog::{Catalog, Error, NotebookEdit};
use cairn_model::NotebookId;
use cairn_model::notebook::{Notebook, NotebookMeta};

fn notebook(text: &str) -> Notebook {
    Notebook {
        meta: NotebookMeta {
            id: NotebookId::new(),
            title: "LR schedule ablations".into(),
            owners: vec!["ada".into()],
            tags: vec!["nlp".into()],
            experiment: None,
            created_ms: 1_700_000_000_000,
            created_by: "ada".into(),
            updated_ms: 1_700_000_000_000,
            updated_by: "ada".into(),
            bytes: text.len() as u64,
        },
        text: text.into(),
        heads: Vec::new(),
    }
}

/// Runs automerge's sync protocol for `doc` between two catalogs until neither has anything to
/// say; answers the bytes of messages sent.
fn meet(a: &mut Catalog, an: &str, b: &mut Catalog, bn: &str, doc: &str) -> usize {
    let mut sa = a.sync_state(bn, doc).unwrap();
    let mut sb = b.sync_state(an, doc).unwrap();
    let mut bytes = 0;
    for _ in 0..64 {
        let ma = a.sync_generate(doc, &mut sa).unwrap();
        let mb = b.sync_generate(doc, &mut sb).unwrap();
        if ma.is_none() && mb.is_none() {
            return bytes;
        }
        if let Some(m) = ma {
            bytes += m.len();
            b.sync_receive(an, doc, &mut sb, &m).unwrap();
        }
        if let Some(m) = mb {
            bytes += m.len();
            a.sync_receive(bn, doc, &mut sa, &m).unwrap();
        }
    }
    panic!("sync of {doc} did not finish in 64 rounds");
}

fn text(cat: &mut Catalog, id: NotebookId) -> String {
    let nb = cat.notebook(id).unwrap().unwrap();
    let listed = cat.notebooks().unwrap();
    let row = listed.iter().find(|m| m.id == id).expect("listed");
    assert_eq!(row, &nb.meta, "the listing follows the doc");
    nb.text
}

fn edit(cat: &mut Catalog, id: NotebookId, who: &str, f: impl FnOnce(&str) -> String) {
    let old = cat.notebook(id).unwrap().unwrap().text;
    cat.edit_notebook(id, &[NotebookEdit::Text(f(&old))], who, 1_700_000_000_001)
        .unwrap();
}

#[test]
fn three_peers_editing_one_notebook_offline_keep_every_insertion_after_partitioned_syncs() {
    let start = "# LR\n\nlr 0.01 diverges.\nwarmup helps.\n";
    let nb = notebook(start);
    let id = nb.meta.id;
    let doc = Catalog::notebook_doc_name(id);
    let mut a = Catalog::open_in_memory("a").unwrap();
    let mut b = Catalog::open_in_memory("b").unwrap();
    let mut c = Catalog::open_in_memory("c").unwrap();
    a.create_notebook(&nb).unwrap();
    assert!(Catalog::is_doc_name(&doc));
    meet(&mut a, "a", &mut b, "b", &doc);
    meet(&mut a, "a", &mut c, "c", &doc);
    assert_eq!(text(&mut c, id), start);

    // Offline: each writes somewhere else, two of them at the same place (the end), and the
    // title and tags change concurrently too.
    edit(&mut a, id, "ada", |t| {
        t.replace("# LR\n", "# LR\n\nSummary: try 0.003.\n")
    });
    edit(&mut b, id, "bob", |t| {
        t.replace("warmup helps.", "warmup helps (5% of steps).")
    });
    edit(&mut c, id, "cy", |t| format!("{t}C: seed 2 agrees.\n"));
    edit(&mut b, id, "bob", |t| format!("{t}B: loss spikes gone.\n"));
    b.edit_notebook(id, &[NotebookEdit::AddTag("lr".into())], "bob", 2)
        .unwrap();
    c.edit_notebook(id, &[NotebookEdit::AddTag("warmup".into())], "cy", 3)
        .unwrap();

    // Partitions heal one link at a time: A↔B, then B↔C, then A↔C.
    meet(&mut a, "a", &mut b, "b", &doc);
    assert_eq!(text(&mut a, id), text(&mut b, id));
    meet(&mut b, "b", &mut c, "c", &doc);
    meet(&mut a, "a", &mut c, "c", &doc);
    let merged = text(&mut a, id);
    assert_eq!(merged, text(&mut b, id));
    assert_eq!(merged, text(&mut c, id));
    for words in [
        "Summary: try 0.003.\n",
        "lr 0.01 diverges.\n",
        "warmup helps (5% of steps).\n",
        "C: seed 2 agrees.\n",
        "B: loss spikes gone.\n",
    ] {
        assert!(merged.contains(words), "{words:?} kept in {merged:?}");
    }
    let inserted = [
        "\nSummary: try 0.003.\n",
        " (5% of steps)",
        "C: seed 2 agrees.\n",
        "B: loss spikes gone.\n",
    ];
    assert_eq!(
        merged.len(),
        start.len() + inserted.iter().map(|s| s.len()).sum::<usize>(),
        "nothing doubled: {merged:?}"
    );
    let metas: Vec<NotebookMeta> = [&a, &b, &c]
        .iter()
        .map(|cat| cat.notebooks().unwrap().remove(0))
        .collect();
    assert_eq!(metas[0], metas[1]);
    assert_eq!(metas[0], metas[2]);
    assert_eq!(metas[0].tags, ["lr", "nlp", "warmup"]);
}

#[test]
fn an_edit_syncs_at_the_cost_of_the_edit_not_the_notebook() {
    // A 1 MB notebook both peers hold; one types a sentence.
    let big: String = (0..25_000)
        .map(|i| format!("line {i:05} of the notebook, some prose here.\n"))
        .collect();
    assert!(big.len() > 900_000);
    let nb = notebook(&big);
    let id = nb.meta.id;
    let doc = Catalog::notebook_doc_name(id);
    let mut a = Catalog::open_in_memory("a").unwrap();
    let mut b = Catalog::open_in_memory("b").unwrap();
    a.create_notebook(&nb).unwrap();
    // A notebook that has been written in a while: automerge sends the whole doc (compressed)
    // when a peer lacks more than a third of its changes, which a notebook of one or two
    // changes always does.
    for i in 0..4 {
        edit(&mut a, id, "ada", |t| format!("{t}edit {i}\n"));
    }
    let first = meet(&mut a, "a", &mut b, "b", &doc);
    assert!(
        first > 50_000,
        "the first sync carries the notebook: {first} bytes"
    );
    edit(&mut b, id, "bob", |t| {
        t.replace("line 10000 of", "line 10000 (the middle) of")
    });
    let second = meet(&mut b, "b", &mut a, "a", &doc);
    assert!(
        second < 2_000,
        "an edit of 15 characters travels in {second} bytes, not the notebook's"
    );
    assert!(text(&mut a, id).contains("line 10000 (the middle) of"));
}

#[test]
fn unknown_and_duplicate_notebooks_are_refused_and_listing_survives_a_rebuild() {
    let mut cat = Catalog::open_in_memory("a").unwrap();
    let nb = notebook("hello");
    let missing = NotebookId::new();
    assert!(matches!(
        cat.edit_notebook(missing, &[NotebookEdit::Title("x".into())], "a", 1),
        Err(Error::UnknownNotebook(id)) if id == missing
    ));
    assert!(cat.notebook(missing).unwrap().is_none());
    cat.create_notebook(&nb).unwrap();
    assert!(matches!(
        cat.create_notebook(&nb),
        Err(Error::DuplicateNotebook(_))
    ));
    let after = cat
        .edit_notebook(
            nb.meta.id,
            &[
                NotebookEdit::Title("Renamed".into()),
                NotebookEdit::RemoveTag("nlp".into()),
                NotebookEdit::AddOwner("bob".into()),
            ],
            "bob",
            5,
        )
        .unwrap();
    assert_eq!(after.meta.title, "Renamed");
    assert!(after.meta.tags.is_empty());
    assert_eq!(after.meta.owners, ["ada", "bob"]);
    assert_eq!(
        (after.meta.updated_by.as_str(), after.meta.updated_ms),
        ("bob", 5)
    );
    let before = cat.notebooks().unwrap();
    cat.rebuild_projections().unwrap();
    assert_eq!(cat.notebooks().unwrap(), before);
}

#[test]
fn an_edit_from_an_older_version_keeps_what_arrived_since() {
    let nb = notebook("one\ntwo\n");
    let id = nb.meta.id;
    let doc = Catalog::notebook_doc_name(id);
    let mut a = Catalog::open_in_memory("a").unwrap();
    let mut b = Catalog::open_in_memory("b").unwrap();
    a.create_notebook(&nb).unwrap();
    meet(&mut a, "a", &mut b, "b", &doc);
    // a opens the notebook in an editor; meanwhile b's edit arrives.
    let opened = a.notebook(id).unwrap().unwrap();
    edit(&mut b, id, "bob", |t| format!("zero\n{t}"));
    meet(&mut a, "a", &mut b, "b", &doc);
    let saved = a
        .edit_notebook(
            id,
            &[NotebookEdit::TextFrom {
                base: opened.heads.clone(),
                text: opened.text.replace("two", "two (edited)"),
            }],
            "ada",
            9,
        )
        .unwrap();
    assert_eq!(saved.text, "zero\none\ntwo (edited)\n");
    // A version this device never held is refused, naming it, and changes nothing.
    let err = a
        .edit_notebook(
            id,
            &[NotebookEdit::TextFrom {
                base: vec!["00".repeat(32)],
                text: String::new(),
            }],
            "ada",
            10,
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
    assert_eq!(text(&mut a, id), "zero\none\ntwo (edited)\n");
}

fn found(cat: &Catalog, q: &str) -> Vec<NotebookId> {
    cat.search_notebooks(q, 50)
        .unwrap()
        .into_iter()
        .map(|h| h.meta.id)
        .collect()
}

#[test]
fn notebooks_are_found_by_their_words_fields_and_what_a_peer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Catalog::open(&dir.path().join("a.db"), "ada").unwrap();
    let mut b = Catalog::open(&dir.path().join("b.db"), "bo").unwrap();
    let warm = notebook("# Warmup\n\nA linear warmup of 500 steps helps the transformer.\n");
    let mut vision = notebook("# Augmentation\n\nRandAugment beats AutoAugment on CIFAR.\n");
    vision.meta.title = "Vision augmentation".into();
    vision.meta.tags = vec!["cv".into()];
    vision.meta.owners = vec!["bo".into()];
    a.create_notebook(&warm).unwrap();
    a.create_notebook(&vision).unwrap();
    let (w, v) = (warm.meta.id, vision.meta.id);

    // Words of the text, as prefixes, all required; any case and accents.
    assert_eq!(found(&a, "warmup"), vec![w]);
    assert_eq!(found(&a, "TRANSFORM"), vec![w]);
    assert_eq!(found(&a, "randaugment cifar"), vec![v]);
    assert!(found(&a, "randaugment transformer").is_empty());
    // A phrase matches as written; fields look in one place only.
    assert_eq!(found(&a, "\"linear warmup\""), vec![w]);
    assert!(found(&a, "\"warmup linear\"").is_empty());
    assert_eq!(found(&a, "tag:cv"), vec![v]);
    assert_eq!(found(&a, "owner:ada"), vec![w]);
    assert_eq!(found(&a, "title:vision"), vec![v]);
    assert!(found(&a, "title:cifar").is_empty());
    // A snippet of the text around the match.
    let hit = &a.search_notebooks("steps", 10).unwrap()[0];
    assert!(hit.snippet.contains("500 steps"), "{}", hit.snippet);
    // No term: the listing, newest first.
    assert_eq!(found(&a, "").len(), 2);
    assert_eq!(found(&a, " ::: ").len(), 2);

    // An edit replaces what the index holds of the notebook.
    edit(&mut a, w, "ada", |t| t.replace("transformer", "ViT"));
    assert!(found(&a, "transformer").is_empty());
    assert_eq!(found(&a, "vit"), vec![w]);

    // What arrives from a peer is findable there at once.
    let doc = Catalog::notebook_doc_name(w);
    meet(&mut a, "a", &mut b, "b", &doc);
    assert_eq!(found(&b, "vit warmup"), vec![w]);
    edit(&mut b, w, "bo", |t| {
        format!("{t}\nbo: cosine decay after it.\n")
    });
    meet(&mut a, "a", &mut b, "b", &doc);
    assert_eq!(found(&a, "cosine"), vec![w]);
}

#[test]
fn any_notebook_query_runs_or_is_refused_by_name_never_as_fts_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Catalog::open(&dir.path().join("a.db"), "ada").unwrap();
    a.create_notebook(&notebook(
        "NEAR(a b) \"quoted\" -minus col:on AND OR NOT *\n",
    ))
    .unwrap();
    for q in [
        "\"",
        "\"unterminated phrase",
        "NEAR(a b)",
        "a OR b",
        "-minus",
        "col:on",
        "body:x",
        "title:",
        "tag:\"\"",
        "*",
        "^start",
        "x AND",
        "(",
        "ünïcödé 数据",
    ] {
        a.search_notebooks(q, 10)
            .unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    assert_eq!(found(&a, "near"), found(&a, "minus"));
    let long = "word ".repeat(300);
    let e = a.search_notebooks(&long, 10).unwrap_err();
    assert!(matches!(e, Error::BadQuery(_)), "{e}");
    assert!(e.to_string().contains("1000 bytes"), "{e}");
    let many = (0..40)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let e = a.search_notebooks(&many, 10).unwrap_err();
    assert!(e.to_string().contains("32 terms"), "{e}");
}

#[test]
fn a_catalog_from_before_the_notebook_index_indexes_its_notebooks_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let id = {
        let mut a = Catalog::open(&path, "ada").unwrap();
        let nb = notebook("# Warmup\n\nwarmup helps.\n");
        a.create_notebook(&nb).unwrap();
        nb.meta.id
    };
    // As revision 12 left it: no search index, the revision recorded.
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "DROP TABLE notebook_text; UPDATE meta SET value = '12' WHERE key = 'schema';",
        )
        .unwrap();
    }
    let a = Catalog::open(&path, "ada").unwrap();
    assert_eq!(found(&a, "warmup"), vec![id]);
}
