//! Numbers that may be non-finite, through JSON: one encoding for all of Cairn. JSON has no NaN
//! or infinities, so a finite `f64` is a JSON number and the others are the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"` — what MLflow's REST API sends and expects. On input the
//! strings are read case-insensitively, with `inf` for `Infinity` and an optional `+`.
//!
//! Use [`Num`] as a value type (`BTreeMap<String, Num>`), or the functions as
//! `#[serde(with = "cairn_model::num")]` on an `f64` and `with = "cairn_model::num::option"` on
//! an `Option<f64>`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` that keeps NaN and the infinities through JSON.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[cfg_attr(
    feature = "ts",
    ts(type = r#"number | "NaN" | "Infinity" | "-Infinity""#)
)]
pub struct Num(pub f64);

impl From<f64> for Num {
    fn from(v: f64) -> Num {
        Num(v)
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        deserialize(d).map(Num)
    }
}

/// The text a non-finite value is sent as.
pub fn text_of(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// The value a text stands for: a non-finite spelling, or a number written as text.
pub fn parse_text(t: &str) -> Option<f64> {
    let t = t.trim();
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if rest.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    if rest.eq_ignore_ascii_case("infinity") || rest.eq_ignore_ascii_case("inf") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    match text_of(*v) {
        None => s.serialize_f64(*v),
        Some(text) => s.serialize_str(text),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Repr {
    Num(f64),
    Text(String),
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Repr::deserialize(d)? {
        Repr::Num(x) => Ok(x),
        Repr::Text(t) => parse_text(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "not a number: '{t}' (expected a number, \"NaN\", \"Infinity\" or \"-Infinity\")"
            ))
        }),
    }
}

/// `Option<f64>` with the same encoding (`null` for `None`).
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => super::serialize(x, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<super::Num>::deserialize(d)?.map(|n| n.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_survives_json_and_every_spelling_is_read() {
        for v in [
            0.0,
            -0.0,
            1.5,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let text = serde_json::to_string(&Num(v)).unwrap();
            let back: Num = serde_json::from_str(&text).unwrap();
            assert_eq!(back.0.to_bits(), v.to_bits(), "{text}");
        }
        let nan: Num =
            serde_json::from_str(&serde_json::to_string(&Num(f64::NAN)).unwrap()).unwrap();
        assert!(nan.0.is_nan());
        assert_eq!(serde_json::to_string(&Num(f64::NAN)).unwrap(), r#""NaN""#);
        assert_eq!(
            serde_json::to_string(&Num(f64::NEG_INFINITY)).unwrap(),
            r#""-Infinity""#
        );
        for (text, v) in [
            ("\"Infinity\"", f64::INFINITY),
            ("\"inf\"", f64::INFINITY),
            ("\"+Infinity\"", f64::INFINITY),
            ("\"-inf\"", f64::NEG_INFINITY),
            ("\"-INFINITY\"", f64::NEG_INFINITY),
            ("\"2.5\"", 2.5),
        ] {
            assert_eq!(serde_json::from_str::<Num>(text).unwrap().0, v, "{text}");
        }
        assert!(serde_json::from_str::<Num>("\"nan\"").unwrap().0.is_nan());
        let err = serde_json::from_str::<Num>("\"fast\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a number: 'fast'"), "{err}");
    }
}
