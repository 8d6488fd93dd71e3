//! Tauri's build step, reading the top-level `tauri.conf.json` (the design card keeps it there).

fn main() {
    let attrs = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build step failed: {e:#}");
    }
}
