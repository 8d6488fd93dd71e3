//! Request decoding as MLflow's server words its refusals: a field of the wrong type is
//! `Invalid value <json> for parameter '<path>' supplied:  Hint: Value was of type '<type>'.`,
//! a missing one `Missing value for required parameter '<name>'.`, both followed by MLflow's
//! "See the API docs…" — never a serde message.
//!
//! MLflow parses a body into its protobuf message and, when that fails, runs the endpoint's
//! type checks on the raw JSON, naming the parameter and showing its value as Python's
//! `json.dumps(value, sort_keys=True, separators=(",", ":"))` writes it. Here a body decodes
//! straight into the handler's request type (the fast path, no extra cost for a 16 MiB
//! `log-batch`); only a body that fails is decoded again, as a stream, with the path of the
//! failing field tracked, and only the value at that path is built to word the refusal. A GET's query string becomes the same JSON object Flask's
//! `request.args` gives MLflow (each parameter's first value; every value of a list field) and
//! goes through the same decoding.

use axum::http::Uri;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::MlflowError;

/// What MLflow appends to every refusal of a request parameter.
pub(crate) const SEE_DOCS: &str =
    " See the API docs for more information about request parameters.";

/// A serde error message that is to reach the client as it is, not reworded as an invalid
/// value (a batch over MLflow's limits, say). Decoders mark such messages with [`verbatim`].
const VERBATIM: char = '\u{1}';

/// Marks a custom deserialisation error to be passed on as it is.
pub(crate) fn verbatim(message: impl std::fmt::Display) -> String {
    format!("{VERBATIM}{message}")
}

/// MLflow's refusal of a request without a required parameter.
pub(crate) fn missing(param: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "Missing value for required parameter '{param}'.{SEE_DOCS}"
    ))
}

/// A required text parameter: absent or empty is [`missing`] (MLflow reads an empty string as
/// absent, as protobuf does).
pub(crate) fn required(value: Option<String>, param: &str) -> Result<String, MlflowError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing(param))
}

/// MLflow's `invalid_value(path, value, message)`: the value as `json.dumps` writes it, then the
/// message after a colon (or a full stop without one).
pub(crate) fn invalid_value(param: &str, value: &Value, message: Option<&str>) -> String {
    let shown = py_json(value);
    match message {
        Some(m) => format!("Invalid value {shown} for parameter '{param}' supplied: {m}"),
        None => format!("Invalid value {shown} for parameter '{param}' supplied."),
    }
}

/// The refusal of a value of the wrong type, as MLflow's schema check words it.
pub(crate) fn wrong_type(param: &str, value: &Value) -> MlflowError {
    let hint = format!(" Hint: Value was of type '{}'.", py_type(value));
    MlflowError::invalid(format!(
        "{}{SEE_DOCS}",
        invalid_value(param, value, Some(&hint))
    ))
}

/// Python's name of the type `json.loads` gives a JSON value.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// `json.dumps(v, sort_keys=True, separators=(",", ":"))`: keys sorted, no spaces, non-ASCII
/// escaped as `\uXXXX`, floats as Python's `repr` writes them (`1e+20`, `1.0`).
pub(crate) fn py_json(v: &Value) -> String {
    let mut out = String::new();
    write_py_json(v, &mut out);
    out
}

fn write_py_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => out.push_str(&py_float(f)),
            None => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_py_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_py_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_py_str(k, out);
                out.push(':');
                write_py_json(&map[k], out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr` of a finite float: the shortest text that reads back, with `.0` on whole
/// numbers and the exponent signed and of at least two digits (`1e+20`, `1.5e-07`).
fn py_float(f: f64) -> String {
    // serde_json writes the shortest round-trip digits (ryu), switching to the exponent form
    // where Python does except below 1e-4 (ryu still writes 0.00001); the exponent's spelling
    // differs.
    let text = if f != 0.0 && f.abs() < 1e-4 {
        format!("{f:e}")
    } else {
        Value::from(f).to_string()
    };
    match text.split_once('e') {
        None => text,
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp.trim_start_matches('+')),
            };
            let mantissa = mantissa.strip_suffix(".0").unwrap_or(mantissa);
            format!("{mantissa}e{sign}{digits:0>2}")
        }
    }
}

fn write_py_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e && (c as u32) != 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    // Writing to a String cannot fail.
                    write!(out, "\\u{unit:04x}").unwrap_or(());
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Decodes a JSON body (an empty body is `{}`) into `T`, refusing as MLflow does.
pub(crate) fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MlflowError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(e) if !e.is_data() => Err(MlflowError::invalid(format!("malformed request body: {e}"))),
        Err(e) => body_refusal::<T>(bytes, &e),
    }
}

/// The slow path, only for a body that was refused: the body is decoded again as a stream,
/// tracking the path of the failing field, and only the value at that path is kept to show
/// it. Neither pass builds a tree of the whole body (a refused 16 MiB `log-batch` would take
/// ten times its size as a `serde_json::Value`), and the request type's own bounds (at most
/// 1,000 metrics, say) stop both passes early.
fn body_refusal<T: DeserializeOwned>(
    bytes: &[u8],
    first: &serde_json::Error,
) -> Result<T, MlflowError> {
    let kind = leading_type(bytes);
    if kind != "dict" {
        return Err(MlflowError::invalid(format!(
            "malformed request body: expected a JSON object, got {kind}"
        )));
    }
    let mut stream = serde_json::Deserializer::from_slice(bytes);
    let e = match serde_path_to_error::deserialize::<_, T>(&mut stream) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let message = e.inner().to_string();
    let message = without_position(&message);
    word(message, &e.path().to_string(), first, |path| {
        value_in(bytes, path)
    })
}

/// The Python type of the JSON value a body starts with (it is well formed: the fast path
/// refused it for its data, not its syntax).
fn leading_type(bytes: &[u8]) -> &'static str {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => "dict",
        Some(b'[') => "list",
        Some(b'"') => "str",
        Some(b't' | b'f') => "bool",
        Some(b'n') => "NoneType",
        _ => "number",
    }
}

/// A streaming decoder's message without the " at line L column C" it appends.
fn without_position(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((text, at))
            if at
                .split_once(" column ")
                .is_some_and(|(l, c)| l.parse::<u64>().is_ok() && c.parse::<u64>().is_ok()) =>
        {
            text
        }
        _ => message,
    }
}

/// Decodes a GET's query string into `T`, as Flask's `request.args` gives it to MLflow: each
/// parameter's first value, except the parameters in `lists`, which take every value.
pub(crate) fn query_lists<T: DeserializeOwned>(
    uri: &Uri,
    lists: &[&str],
) -> Result<T, MlflowError> {
    // A query string is bounded by the URL's length, so it is decoded as a value.
    let value = query_value(uri.query().unwrap_or(""), lists);
    match serde_json::from_value::<T>(value.clone()) {
        Ok(v) => Ok(v),
        Err(first) => {
            let e = match serde_path_to_error::deserialize::<_, T>(&value) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let message = e.inner().to_string();
            word(&message, &e.path().to_string(), &first, |path| {
                lookup(&value, path).cloned()
            })
        }
    }
}

/// The JSON object a query string stands for (see [`query_lists`]).
fn query_value(query: &str, lists: &[&str]) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = Value::String(v.into_owned());
        if lists.contains(&k.as_ref()) {
            match map
                .entry(k.into_owned())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(items) => items.push(v),
                other => *other = Value::Array(vec![v]),
            }
        } else {
            map.entry(k.into_owned()).or_insert(v);
        }
    }
    Value::Object(map)
}

/// Words a refusal as MLflow does, from the decoder's `message` and the serde `path` of the
/// failing field; `value_at` finds the value at a path to show it. `first` is the error of
/// the fast path, used when neither a path nor a field can be named.
fn word<T>(
    message: &str,
    path: &str,
    first: &serde_json::Error,
    value_at: impl FnOnce(&str) -> Option<Value>,
) -> Result<T, MlflowError> {
    if let Some(text) = message.strip_prefix(VERBATIM) {
        return Err(MlflowError::invalid(text.to_owned()));
    }
    let here = if path == "." { "" } else { path };
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split_once('`'))
        .map(|(f, _)| f)
    {
        let param = if here.is_empty() {
            field.to_owned()
        } else {
            format!("{here}.{field}")
        };
        return Err(missing(&param));
    }
    match value_at(here) {
        Some(v) if !here.is_empty() => Err(wrong_type(here, &v)),
        _ => Err(MlflowError::invalid(format!(
            "malformed request body: {first}"
        ))),
    }
}

/// One step of a serde path: a field's name or an element's index.
#[derive(Clone, Copy)]
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

/// The steps of a serde path (`metrics[0].value`), or `None` when it cannot be read.
fn steps(path: &str) -> Option<Vec<Step<'_>>> {
    let mut out = Vec::new();
    for segment in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indices) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            out.push(Step::Field(name));
        }
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            out.push(Step::Index(index.trim_end_matches(']').parse().ok()?));
        }
    }
    Some(out)
}

/// The value at a serde path of `root`.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = root;
    for step in steps(path)? {
        at = match step {
            Step::Field(name) => at.get(name)?,
            Step::Index(i) => at.get(i)?,
        };
    }
    Some(at)
}

/// The value at a serde path of a JSON body, read as a stream that skips everything off the
/// path: only that value is built.
fn value_in(bytes: &[u8], path: &str) -> Option<Value> {
    use serde::de::DeserializeSeed;
    let steps = steps(path)?;
    let mut stream = serde_json::Deserializer::from_slice(bytes);
    At(&steps).deserialize(&mut stream).ok().flatten()
}

/// Follows the steps left of a path through a stream of JSON (see [`value_in`]).
struct At<'p, 'a>(&'p [Step<'a>]);

impl<'de> serde::de::DeserializeSeed<'de> for At<'_, '_> {
    type Value = Option<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        if self.0.is_empty() {
            return <Value as serde::Deserialize>::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for At<'_, '_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object or array on the path")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (Step::Field(name), rest) = (self.0[0], &self.0[1..]) else {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(None);
        };
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && key == name {
                found = map.next_value_seed(At(rest))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (Step::Index(index), rest) = (self.0[0], &self.0[1..]) else {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        let mut found = None;
        for i in 0.. {
            let more = if i == index {
                match seq.next_element_seed(At(rest))? {
                    Some(v) => {
                        found = v;
                        true
                    }
                    None => false,
                }
            } else {
                seq.next_element::<serde::de::IgnoredAny>()?.is_some()
            };
            if !more {
                break;
            }
        }
        Ok(found)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_shown_as_python_dumps_them() {
        assert_eq!(py_json(&json!(31)), "31");
        assert_eq!(py_json(&json!("foo")), r#""foo""#);
        assert_eq!(py_json(&json!("é")), r#""\u00e9""#);
        assert_eq!(py_json(&json!("🦀")), r#""\ud83e\udd80""#);
        assert_eq!(
            py_json(&json!({"b": 1, "a": [1.0, 1e20, null, true]})),
            r#"{"a":[1.0,1e+20,null,true],"b":1}"#
        );
        for (f, python) in [
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (-2.5e-10, "-2.5e-10"),
            (1e300, "1e+300"),
        ] {
            assert_eq!(py_json(&json!(f)), python);
        }
        assert_eq!(py_json(&json!(0.25)), "0.25");
        assert_eq!(py_json(&json!("a\"b\\c\nd\u{1}")), r#""a\"b\\c\nd\u0001""#);
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Req {
        run_id: Option<String>,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        key: String,
    }

    #[test]
    fn refusals_name_the_parameter_and_its_value() {
        let e = body::<Req>(br#"{"run_id": 31}"#).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid value 31 for parameter 'run_id' supplied:  Hint: Value was of type 'int'. \
             See the API docs for more information about request parameters."
        );
        let e = body::<Req>(br#"{"items": "foo"}"#).unwrap_err();
        assert!(
            e.message
                .starts_with(r#"Invalid value "foo" for parameter 'items' supplied:  Hint: Value was of type 'str'."#),
            "{}",
            e.message
        );
        let e = body::<Req>(br#"{"items": [{"key": "a"}, {"key": 1.5}]}"#).unwrap_err();
        assert!(
            e.message
                .starts_with("Invalid value 1.5 for parameter 'items[1].key'"),
            "{}",
            e.message
        );
        let e = body::<Req>(br#"{"items": [{}]}"#).unwrap_err();
        assert!(
            e.message
                .starts_with("Missing value for required parameter 'items[0].key'."),
            "{}",
            e.message
        );
        for bad in [&b"[1]"[..], b"{", b"null", b"\"x\""] {
            let e = body::<Req>(bad).unwrap_err();
            assert!(
                e.message.starts_with("malformed request body"),
                "{}",
                e.message
            );
        }
        assert!(body::<Req>(b"  ").is_ok());
    }

    #[test]
    fn the_value_shown_is_found_past_everything_before_it() {
        let items: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"key":"k{i}","x":[1,{{}}]}}"#))
            .collect();
        let bad = format!(
            r#"{{"other":{{"items":[1]}},"items":[{},{{"key":[true,{{"a":null}}]}}],"run_id":"r"}}"#,
            items.join(",")
        );
        let e = body::<Req>(bad.as_bytes()).unwrap_err();
        assert!(
            e.message.starts_with(
                r#"Invalid value [true,{"a":null}] for parameter 'items[10000].key' supplied:  Hint: Value was of type 'list'."#
            ),
            "{}",
            e.message
        );
        assert_eq!(
            without_position("expected `,` at line 1 column 7"),
            "expected `,`"
        );
        assert_eq!(without_position("a line at line x"), "a line at line x");
    }

    #[test]
    fn query_strings_decode_as_flask_reads_them() {
        #[derive(serde::Deserialize)]
        struct Q {
            run_id: Option<String>,
            #[serde(default)]
            ids: Vec<String>,
            #[serde(default, deserialize_with = "super::super::dto::de_opt_i64")]
            n: Option<i64>,
        }
        let uri: Uri = "/x?run_id=a&run_id=b&ids=1&ids=2&n=5".parse().unwrap();
        let q: Q = query_lists(&uri, &["ids"]).unwrap();
        assert_eq!(q.run_id.as_deref(), Some("a"));
        assert_eq!(q.ids, ["1", "2"]);
        assert_eq!(q.n, Some(5));
        let uri: Uri = "/x?n=ten".parse().unwrap();
        let e = query_lists::<Q>(&uri, &["ids"]).err().unwrap();
        assert!(
            e.message.starts_with(
                r#"Invalid value "ten" for parameter 'n' supplied:  Hint: Value was of type 'str'."#
            ),
            "{}",
            e.message
        );
    }
}
