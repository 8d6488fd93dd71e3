//! Properties over generated input, each case through the real binary (so few cases).

use proptest::prelude::*;
use serde_json::Value;

use crate::Ws;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Params and tags are stored as the text given, byte for byte: any Unicode (no NUL, which
    /// no argument can hold), `=`, quotes, JSON-looking text, leading dashes and spaces.
    #[test]
    fn param_and_tag_values_come_back_byte_exact(
        key in "[a-zA-Z_][a-zA-Z0-9_.-]{0,30}",
        value in "[^\u{0}]{0,40}",
        tag in prop_oneof![Just("{\"a\": 1}".to_owned()), Just("[1,2]".to_owned()), "[^\u{0}]{0,20}"],
    ) {
        let ws = Ws::new();
        let id = ws.start_run(&[&format!("--param={key}={value}"), &format!("--tag=t={tag}")]);
        let run = ws.show(&id);
        prop_assert_eq!(&run["params"][&key], &Value::String(value.clone()));
        prop_assert_eq!(&run["tags"]["t"], &Value::String(tag.clone()));
        // Logging the same value again is accepted: the stored text compares equal.
        ws.ok(&["run", "log", &id, &format!("--param={key}={value}")]);
    }
}
