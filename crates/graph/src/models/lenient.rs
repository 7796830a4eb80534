//! Deserialisers that keep a record when one optional property is malformed.
//!
//! Graph's own published examples carry type placeholders (`"isDeleted": "Boolean"`), and a
//! feed that fails a whole page on one odd value would stop containment. Optional properties
//! therefore degrade to `None` (and collections to the elements that parse); required ones
//! (`id`, and `createdDateTime`/`userId` on a sign-in) stay strict in the structs themselves.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An optional property: a missing, `null` or wrongly typed value becomes `None`.
pub(crate) fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).ok())
}

/// A collection property: `null` or a non-array becomes empty, and elements that do not parse
/// (the v1.0 schema allows `null` inside `riskEventTypes_v2`) are left out.
pub(crate) fn vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(deserializer)? {
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|item| T::deserialize(item).ok())
            .collect()),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "super::option")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "super::vec")]
        names: Vec<String>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).expect("lenient fields never fail")
    }

    #[test]
    fn option_keeps_good_values_and_drops_bad_ones() {
        assert_eq!(probe(r#"{"flag": true}"#).flag, Some(true));
        assert_eq!(probe(r#"{"flag": "Boolean"}"#).flag, None);
        assert_eq!(probe(r#"{"flag": null}"#).flag, None);
        assert_eq!(probe("{}").flag, None);
    }

    #[test]
    fn vec_treats_null_and_non_arrays_as_empty() {
        assert!(probe(r#"{"names": null}"#).names.is_empty());
        assert!(probe(r#"{"names": "x"}"#).names.is_empty());
        assert!(probe("{}").names.is_empty());
        assert_eq!(probe(r#"{"names": ["a", null, 3, "b"]}"#).names, ["a", "b"]);
    }
}
