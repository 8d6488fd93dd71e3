//! Identifiers: newtypes over UUIDv7 (time-ordered, so ids sort by creation) and BLAKE3 hashes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::ModelError;

macro_rules! time_ordered_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh id; ids made later sort after ids made earlier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id a given millisecond and random bits give (for deterministic demo data and tests).
            pub fn from_parts(unix_ms: u64, random: u128) -> Self {
                let rand = random.to_be_bytes();
                let mut bytes = [0u8; 16];
                bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
                bytes[6..].copy_from_slice(&rand[6..]);
                bytes[6] = (bytes[6] & 0x0f) | 0x70;
                bytes[8] = (bytes[8] & 0x3f) | 0x80;
                Self(Uuid::from_bytes(bytes))
            }

            /// Milliseconds since the Unix epoch at which the id was made.
            pub fn unix_ms(&self) -> u64 {
                let b = self.0.as_bytes();
                u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
            }

            /// 32 lowercase hex digits, no dashes (the form MLflow clients expect).
            pub fn to_hex(&self) -> String {
                self.0.simple().to_string()
            }
        }

        #[cfg(feature = "ts")]
        impl schemars::JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[0-9a-f]{32}$",
                    "description": concat!("A ", $what, ": 32 hex digits (a UUIDv7)."),
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.simple(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.simple())
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ModelError::InvalidId { what: $what, value: s.to_owned() });
                }
                Uuid::try_parse(s)
                    .map(Self)
                    .map_err(|_| ModelError::InvalidId { what: $what, value: s.to_owned() })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

time_ordered_id!(
    /// A run: one execution of training or evaluation code.
    RunId,
    "run id"
);
time_ordered_id!(
    /// An experiment: a family of runs (a sweep, a model line).
    ExperimentId,
    "experiment id"
);
time_ordered_id!(
    /// A catalog shard: one automerge document holding up to ~1,000 runs of one experiment.
    ShardId,
    "shard id"
);

time_ordered_id!(
    /// A notebook: a Markdown document of the team, its own automerge doc.
    NotebookId,
    "notebook id"
);
time_ordered_id!(
    /// A registered model version: its identity, which never changes (its number is derived
    /// from it and the other versions' claims, see `registry::number_versions`).
    VersionId,
    "model version id"
);
time_ordered_id!(
    /// A governance record of the registry (a model's creation, a deletion, a gate evaluation,
    /// an approval): its identity in the team doc.
    RecordId,
    "record id"
);

/// The BLAKE3 hash of a blob's content: the blob's name in the artifact store.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct BlobHash(pub [u8; 32]);

#[cfg(feature = "ts")]
impl schemars::JsonSchema for BlobHash {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BlobHash".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
            "description": "A BLAKE3 content hash: 64 hex digits.",
        })
    }
}

impl BlobHash {
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            s.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
        }
        s
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

impl FromStr for BlobHash {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ModelError::InvalidId {
            what: "blob hash",
            value: s.to_owned(),
        };
        let hex = s.strip_prefix("blake3:").unwrap_or(s);
        if hex.len() != 64 {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(invalid)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(invalid)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(BlobHash(out))
    }
}

impl Serialize for BlobHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time_and_round_trip() {
        let a = RunId::from_parts(1_000, 7);
        let b = RunId::from_parts(2_000, 3);
        assert!(a < b);
        assert_eq!(a.unix_ms(), 1_000);
        let parsed: RunId = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
        assert_eq!(a.to_string().len(), 32);
    }

    #[test]
    fn malformed_ids_name_the_value() {
        let err = "nope".parse::<RunId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid run id 'nope': expected 32 hex digits"
        );
    }

    #[test]
    fn blob_hash_round_trips_with_and_without_prefix() {
        let h = BlobHash([0xab; 32]);
        assert_eq!(h.to_hex().parse::<BlobHash>().unwrap(), h);
        assert_eq!(format!("blake3:{h}").parse::<BlobHash>().unwrap(), h);
        assert!("zz".parse::<BlobHash>().is_err());
    }
}
