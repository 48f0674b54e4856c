//! Reads a JSON document into a [`serde_json::Value`], refusing an object that repeats a
//! key (serde_json keeps the last one silently; a message whose `subject` is given twice
//! is ambiguous, and two readers may pick different ones). Linear in the input; the depth
//! is bounded by the deserializer's own recursion limit (128 for `serde_json::from_str`).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Where a value sits in the document, rendered only when a duplicate is found.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// The duplicate found, as (path, key).
type Found = RefCell<Option<(String, String)>>;

struct Strict<'a> {
    path: Path<'a>,
    found: &'a Found,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(Strict {
            path: Path::Index(&self.path, items.len()),
            found: self.found,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                *self.found.borrow_mut() = Some((self.path.to_string(), key.clone()));
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = access.next_value_seed(Strict {
                path: Path::Key(&self.path, &key),
                found: self.found,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// The error for a duplicate key found at `path` (empty for the top level).
fn duplicate(path: &str, key: &str) -> Error {
    let field = if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    };
    Error::invalid(
        field,
        "is given twice; give each field once (readers disagree on which one counts)",
    )
}

/// Parses `json`; a syntax error is reported as field `json`, a repeated key by its path
/// (`subject`, `attachments[0].filename`).
pub(super) fn from_str(json: &str) -> Result<Value> {
    let found = Found::default();
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let parsed = Strict {
        path: Path::Root,
        found: &found,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, found.into_inner()) {
        (_, Some((path, key))) => Err(duplicate(&path, &key)),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(Error::invalid("json", format!("is not valid: {e}"))),
    }
}

/// Reads a value from any deserializer, refusing repeated keys (for `impl Deserialize`).
pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    let found = Found::default();
    let parsed = Strict {
        path: Path::Root,
        found: &found,
    }
    .deserialize(deserializer);
    match (parsed, found.into_inner()) {
        (_, Some((path, key))) => Err(de::Error::custom(duplicate(&path, &key))),
        (parsed, None) => parsed,
    }
}
