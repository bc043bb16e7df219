//! Arbitrary sessions (string, number and boolean values; named and default flashes;
//! "remember me") survive a whole request/response round trip through the cookie store, byte
//! for byte; arbitrary bytes survive the codec, and open under no other name.

#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use fastsession_core::ErrorKind;
use fastsession_core::http::Sessions;
use fastsession_fuzz::{
    block_on, codec, config, request_with_cookie, retired_codec, set_cookie_value,
};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

#[derive(Arbitrary, Debug)]
enum Value {
    Str(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    fn json(&self) -> String {
        match self {
            Value::Str(v) => serde_json::to_string(v),
            Value::Int(v) => serde_json::to_string(v),
            Value::Uint(v) => serde_json::to_string(v),
            Value::Float(v) => serde_json::to_string(v),
            Value::Bool(v) => serde_json::to_string(v),
            Value::List(v) => serde_json::to_string(v),
        }
        .expect("plain values serialize")
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    values: BTreeMap<String, Value>,
    /// `None` is the default flash key.
    flashes: Vec<(Option<String>, Value)>,
    persistent: bool,
    /// Raw bytes for the codec alone, and the name to seal them for.
    bytes: Vec<u8>,
    name: String,
    retired: bool,
}

fuzz_target!(|input: Input| {
    // The codec alone, with the active key or a retired one.
    let sealer = if input.retired {
        retired_codec()
    } else {
        codec()
    };
    let sealed = sealer.seal(&input.name, &input.bytes).expect("seal");
    let opened = codec()
        .open(&input.name, &sealed)
        .expect("a sealed value opens");
    assert_eq!(opened.plaintext(), &input.bytes[..]);
    assert_eq!(opened.is_stale(), input.retired);
    assert!(codec().open(&format!("{}x", input.name), &sealed).is_err());

    // A whole session through the cookie store and back.
    let expected_values: BTreeMap<&str, String> = input
        .values
        .iter()
        .map(|(k, v)| (k.as_str(), v.json()))
        .collect();
    let mut expected_flashes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (key, value) in &input.flashes {
        let key = key
            .as_deref()
            .unwrap_or(fastsession_core::session::DEFAULT_FLASH_KEY);
        expected_flashes.entry(key).or_default().push(value.json());
    }

    let sessions = Sessions::new(&HeaderMap::new());
    let session = block_on(sessions.get(config())).expect("load");
    for (key, value) in &input.values {
        session
            .insert(
                key.as_str(),
                RawValue::from_string(value.json()).expect("JSON"),
            )
            .expect("insert");
    }
    for (key, value) in &input.flashes {
        let raw = RawValue::from_string(value.json()).expect("JSON");
        match key {
            Some(key) => session.add_flash_under(key, raw),
            None => session.add_flash(raw),
        }
        .expect("add flash");
    }
    session.set_persistent(input.persistent);
    let mut response = HeaderMap::new();
    match block_on(sessions.save_all(&mut response)) {
        Ok(()) => {}
        Err(e) => {
            assert!(
                matches!(e.kind(), ErrorKind::CookieTooLarge { .. }),
                "only a session too large for a cookie fails to save: {e:?}"
            );
            assert!(set_cookie_value(&response).is_none());
            return;
        }
    }
    let Some(cookie) = set_cookie_value(&response) else {
        // A session with nothing in it and "remember me" off is never written.
        assert!(expected_values.is_empty() && expected_flashes.is_empty() && !input.persistent);
        return;
    };

    let sessions = Sessions::new(&request_with_cookie(&cookie));
    let session = block_on(sessions.get(config())).expect("load");
    assert!(!session.is_new(), "the cookie opened");
    assert_eq!(session.is_persistent(), input.persistent);
    assert_eq!(
        session.keys(),
        expected_values
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    );
    for (key, json) in &expected_values {
        let raw = session
            .get::<Box<RawValue>>(key)
            .expect("JSON")
            .expect("present");
        assert_eq!(raw.get(), json, "value of {key:?}");
    }
    for (key, jsons) in &expected_flashes {
        let taken = session
            .take_flashes_under::<Box<RawValue>>(key)
            .expect("JSON");
        let taken: Vec<&str> = taken.iter().map(|raw| raw.get()).collect();
        assert_eq!(&taken, jsons, "flashes under {key:?}");
    }
});
