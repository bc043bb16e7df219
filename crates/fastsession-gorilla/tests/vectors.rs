//! Reading the `interop/gorilla` vectors: shared by the unit tests (`src/vectors.rs`, through
//! `#[path]`) and the integration tests, each of which uses a part. The including module
//! brings `SecureCookie` into scope.

#![allow(dead_code)]

use serde_json::Value;

use super::SecureCookie;

/// Every vector, in file order.
pub(crate) fn all() -> Vec<Value> {
    include_str!("../../../interop/gorilla/vectors/gorilla-v1.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The vector named `id`.
pub(crate) fn vector(id: &str) -> Value {
    all()
        .into_iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no vector {id}"))
}

/// A key of a codec spec: `None` for an absent or empty one.
pub(crate) fn key(v: &Value) -> Option<&[u8]> {
    v.as_str().filter(|s| !s.is_empty()).map(str::as_bytes)
}

/// The codec a vector's spec describes (keys, ages, length).
pub(crate) fn codec(spec: &Value) -> SecureCookie {
    let mut codec = SecureCookie::new(key(&spec["hash_key"]).unwrap(), key(&spec["block_key"]))
        .unwrap()
        .with_min_age(spec["min_age"].as_u64().unwrap_or(0));
    if let Some(age) = spec["max_age"].as_u64() {
        codec = codec.with_max_age(age);
    }
    if let Some(len) = spec["max_length"].as_u64() {
        codec = codec.with_max_length(usize::try_from(len).unwrap());
    }
    codec
}

/// The codecs of Go's `CodecsFromPairs(keys...)`: hash key, block key, hash key, ...
pub(crate) fn pairs(keys: &Value) -> Vec<SecureCookie> {
    let keys: Vec<&[u8]> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().as_bytes())
        .collect();
    keys.chunks(2)
        .map(|pair| SecureCookie::new(pair[0], pair.get(1).copied()).unwrap())
        .collect()
}

/// Bytes from lower-case hex.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}
