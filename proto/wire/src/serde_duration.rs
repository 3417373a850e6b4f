//! Durations in configuration files as humans write them: "5s", "250ms", "1m 30s".

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes "1m 30s".
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

/// Reads "90s", "1m 30s", "250ms".
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}
