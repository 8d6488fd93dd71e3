//! The committed `ui/src/wire.gen.ts` must be exactly what the Rust types generate today.

#[test]
fn committed_bindings_match_the_rust_types() {
    let path = cairn_wire::bindings_path();
    let fresh = cairn_wire::bindings();
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): run `{}` and commit it",
            cairn_wire::BINDINGS_PATH,
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
        "{} is stale: the Rust wire types changed. Run `{}` and commit the file.\n\
         first difference, line {line}:\n  committed: {old}\n  generated: {new}",
        cairn_wire::BINDINGS_PATH,
        cairn_wire::REGENERATE,
    );
}
