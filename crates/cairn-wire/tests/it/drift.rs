//! The committed generated files (`ui/src/wire.gen.ts`, the wire types; `ui/src/api.gen.ts`, the
//! typed client of every declared operation) must be exactly what the Rust generates today.

#[test]
fn committed_bindings_match_the_rust_types() {
    check(cairn_wire::BINDINGS_PATH, &cairn_wire::bindings());
}

#[test]
fn committed_client_matches_the_declared_operations() {
    let client = cairn_wire::client();
    for op in cairn_core::api::OPERATIONS {
        assert!(
            client.contains(&format!(
                "\"{}\", \"{}\", \"{}\"",
                op.name,
                op.method.as_str(),
                op.path
            )),
            "the client has no call of {}",
            op.name
        );
    }
    check(cairn_wire::CLIENT_PATH, &client);
}

#[test]
fn committed_openapi_document_matches_the_declared_operations() {
    let doc = cairn_wire::openapi();
    let parsed: serde_json::Value = serde_json::from_str(&doc).expect("the document is JSON");
    for op in cairn_core::api::OPERATIONS {
        let path = op.path.replace("{*", "{");
        let method = op.method.as_str().to_ascii_lowercase();
        let entry = &parsed["paths"][&path][&method];
        assert_eq!(entry["operationId"], op.name, "{method} {path}");
    }
    // Every reference resolves to a schema in components.
    let schemas = &parsed["components"]["schemas"];
    for reference in doc.match_indices("#/components/schemas/").map(|(i, _)| {
        let rest = &doc[i + "#/components/schemas/".len()..];
        &rest[..rest.find('"').unwrap_or(rest.len())]
    }) {
        assert!(
            schemas.get(reference).is_some(),
            "{reference} is referenced but not defined"
        );
    }
    check(cairn_wire::OPENAPI_PATH, &doc);
}

fn check(rel: &str, fresh: &str) {
    let path = cairn_wire::repo_root().join(rel);
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {rel} ({e}): run `{}` and commit it",
            cairn_wire::REGENERATE
        )
    });
    if committed == fresh {
        return;
    }
    let (line, old, new) = committed
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(fresh.lines().map(Some).chain(std::iter::repeat(None)))
        .take_while(|pair| *pair != (None, None))
        .enumerate()
        .find(|(_, (old, new))| old != new)
        .map(|(i, (old, new))| (i + 1, old.unwrap_or("<end>"), new.unwrap_or("<end>")))
        .unwrap_or((0, "", ""));
    panic!(
        "{rel} is stale: the Rust it is generated from changed. Run `{}` and commit the file.\n\
         first difference, line {line}:\n  committed: {old}\n  generated: {new}",
        cairn_wire::REGENERATE,
    );
}
