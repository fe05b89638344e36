//! A secret that arrives in request params (UDS, Wi-Fi password, DPS connection string).
//!
//! Deliberately has no `Debug`, `Display` or `Serialize`: it cannot end up in a log line, a
//! notification or an error message by accident. The text is zeroized on drop.

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// A secret string from params. Read it with [`Secret::expose`] only where it is used.
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(Zeroizing::new(text.into()))
    }
    /// The secret text; keep the borrow short and never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(Zeroizing::new(v)))
            }
        }
        deserializer.deserialize_string(Visitor)
    }
}

/// A secret the daemon hands back once in a result (a generated UDS for the client's secret
/// storage). It serializes into that result and nowhere else: no `Debug`, no `Display`, and
/// results are never logged. Zeroized on drop.
pub struct ReturnedSecret(Zeroizing<String>);

impl ReturnedSecret {
    pub fn new(text: impl Into<String>) -> Self {
        ReturnedSecret(Zeroizing::new(text.into()))
    }
}

impl serde::Serialize for ReturnedSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ReturnedSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Secret::deserialize(deserializer).map(|s| ReturnedSecret(s.0))
    }
}
