//! Every vector of `interop/gorilla` (written by the real gorilla/securecookie and
//! gorilla/sessions) against this crate.

use base64::Engine as _;
use fastsession_core::time::UnixTime;
use serde_json::{Map, Value, json};

use crate::gob::{self, GoType, GoValue};
use crate::{ErrorKind, SecureCookie, decode_multi, decode_multi_json, encode_multi_json, go_json};

#[path = "../tests/vectors.rs"]
mod shared;

use shared::{codec, hex, key, pairs};

const IV: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

fn vectors() -> Vec<Value> {
    shared::all()
}

fn of_kind(kind: &str) -> Vec<Value> {
    let all: Vec<Value> = vectors()
        .into_iter()
        .filter(|v| v["kind"] == kind)
        .collect();
    assert!(!all.is_empty(), "no {kind} vectors");
    all
}

fn now(spec: &Value) -> UnixTime {
    UnixTime::from_secs(spec["now"].as_u64().unwrap())
}

/// The vectors' typed Go value as the JSON Go writes for it; `None` for what JSON cannot hold
/// in this model (gob maps with non-string keys, structs with their field order, float32).
fn json_of(desc: &Value) -> Option<Value> {
    let (kind, v) = desc.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "nil" => Value::Null,
        "string" | "bool" => v.clone(),
        "float64" => Value::from(v.as_f64()?),
        k if k.starts_with("int") || k.starts_with("uint") => v.clone(),
        "bytes" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str()?)
                .ok()?;
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        "list" => Value::Array(v.as_array()?.iter().map(json_of).collect::<Option<_>>()?),
        "object" => {
            let mut map = Map::new();
            for pair in v.as_array()? {
                map.insert(pair[0].as_str()?.to_owned(), json_of(&pair[1])?);
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

#[test]
fn every_cookie_is_reproduced_byte_for_byte_and_opens() {
    let mut json_checked = 0;
    for v in of_kind("encode") {
        let id = v["id"].as_str().unwrap();
        let spec = &v["codec"];
        let codec = codec(spec);
        let payload = hex(v["payload_hex"].as_str().unwrap());
        let cookie = v["cookie"].as_str().unwrap();
        if v["deterministic"] == false {
            // Gob wrote the map's entries in another random order for the cookie than for
            // `payload_hex`: same length, same entries.
            let opened = codec.decode_bytes("session", cookie, now(spec)).unwrap();
            assert_eq!(opened.len(), payload.len(), "{id}");
            continue;
        }
        // Whatever the serializer: same payload, IV and time, same bytes as Go.
        let ours = codec
            .encode_with_iv("session", &payload, now(spec), &IV)
            .unwrap();
        assert_eq!(ours, cookie, "{id}");
        match v.get("decode_error") {
            // Go cannot open an empty encrypted value either.
            Some(_) => assert_eq!(
                codec
                    .decode_bytes("session", cookie, now(spec))
                    .unwrap_err()
                    .kind(),
                ErrorKind::Decrypt,
                "{id}"
            ),
            None => assert_eq!(
                codec.decode_bytes("session", cookie, now(spec)).unwrap(),
                payload,
                "{id}"
            ),
        }
        if spec["serializer"] == "json"
            && let Some(value) = json_of(&v["value"])
        {
            assert_eq!(go_json::to_vec(&value).unwrap(), payload, "{id}: Go's JSON");
            // JSON numbers carry no Go type: compare as Go would write them again.
            let decoded = codec.decode_json("session", cookie, now(spec)).unwrap();
            assert_eq!(go_json::to_vec(&decoded).unwrap(), payload, "{id}");
            json_checked += 1;
        }
    }
    // All but the struct (field order) and the two maps JSON cannot hold.
    assert!(json_checked >= 40, "{json_checked} JSON vectors checked");
}

#[test]
fn decode_errors_are_go_s() {
    for v in of_kind("decode_error") {
        let id = v["id"].as_str().unwrap();
        let spec = &v["codec"];
        let (name, cookie) = (
            v["cookie_name"].as_str().unwrap(),
            v["cookie"].as_str().unwrap(),
        );
        let text = v["error"].as_str().unwrap();
        let expected = [
            ("is not valid", ErrorKind::MacInvalid),
            ("base64 decode failed", ErrorKind::Base64),
            ("too long", ErrorKind::DecodeTooLong),
            ("expired timestamp", ErrorKind::TimestampExpired),
            ("too new", ErrorKind::TimestampTooNew),
            ("invalid timestamp", ErrorKind::InvalidTimestamp),
            ("could not be decrypted", ErrorKind::Decrypt),
        ]
        .into_iter()
        .find(|(t, _)| text.contains(t))
        .map(|(_, k)| k);
        let codec = codec(spec);
        let result = if spec["serializer"] == "json" {
            codec.decode_json(name, cookie, now(spec)).map(|_| ())
        } else {
            codec.decode_bytes(name, cookie, now(spec)).map(|_| ())
        };
        match (expected, spec["serializer"].as_str()) {
            (Some(kind), _) => assert_eq!(result.unwrap_err().kind(), kind, "{id}: {text}"),
            // A serializer's own failure: JSON here; gob and Go's type checks are above
            // this layer.
            (None, Some("json")) => {
                assert_eq!(result.unwrap_err().kind(), ErrorKind::Deserialize, "{id}");
            }
            (None, _) => assert!(result.is_ok(), "{id}: the signed bytes open"),
        }
        assert_eq!(v["class"], "decode", "{id}");
    }
}

#[test]
fn what_go_accepts_opens() {
    for v in of_kind("decode") {
        let spec = &v["codec"];
        let value = codec(spec)
            .decode_json("session", v["cookie"].as_str().unwrap(), now(spec))
            .unwrap();
        assert_eq!(Some(value), json_of(&v["decoded"]), "{}", v["id"]);
    }
}

#[test]
fn encode_errors_are_go_s() {
    for v in of_kind("encode_error") {
        let id = v["id"].as_str().unwrap();
        let spec = &v["codec"];
        let made = SecureCookie::new(
            spec["hash_key"].as_str().unwrap().as_bytes(),
            key(&spec["block_key"]),
        );
        match id {
            "err_hash_key_nil" => assert_eq!(made.unwrap_err().kind(), ErrorKind::HashKeyNotSet),
            "err_block_key_size" => {
                assert_eq!(made.unwrap_err().kind(), ErrorKind::InvalidBlockKey);
            }
            "err_too_long_encode" => {
                let value = json_of(&v["value"]).unwrap();
                let err = codec(spec)
                    .encode_json("session", &value, now(spec))
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::EncodeTooLong);
            }
            // NaN and maps with interface keys have no `serde_json::Value`: nothing to refuse.
            "err_json_nan" | "err_json_unsupported" => {}
            other => panic!("unexpected vector {other}"),
        }
        assert_eq!(v["class"], "usage", "{id}");
    }
    // Debian's v1.1.1 signs with an empty hash key; v1.1.2 (and this crate) refuse it.
    assert_eq!(
        SecureCookie::new(b"", None).unwrap_err().kind(),
        ErrorKind::HashKeyNotSet
    );
}

#[test]
fn rotation_and_the_stores_cookies_open() {
    let now = |v: &Value| UnixTime::from_secs(v["now"].as_u64().unwrap());
    for v in of_kind("rotation") {
        let both = pairs(&v["pairs_new_first"]);
        let old = &both[1..];
        let from_old = decode_multi(&both, "session", v["old_cookie"].as_str().unwrap(), now(&v));
        let from_new = decode_multi(&both, "session", v["new_cookie"].as_str().unwrap(), now(&v));
        assert_eq!(
            from_old.unwrap(),
            from_new.unwrap(),
            "same value under both pairs"
        );
        let err = decode_multi(old, "session", v["new_cookie"].as_str().unwrap(), now(&v));
        assert_eq!(err.unwrap_err().kind(), ErrorKind::MacInvalid);
    }
    for kind in ["cookie_store", "filesystem_store"] {
        for v in of_kind(kind) {
            let codecs = pairs(&v["pairs"]);
            let name = v["cookie_name"].as_str().unwrap();
            let cookie = v["cookie_value"].as_str().unwrap();
            assert!(
                decode_multi(&codecs, name, cookie, now(&v)).is_ok(),
                "{}",
                v["id"]
            );
            if let Some(file) = v["file_content"].as_str() {
                assert!(
                    decode_multi(&codecs, name, file, now(&v)).is_ok(),
                    "{}",
                    v["id"]
                );
            }
        }
    }
}

#[test]
fn json_multi_codec_functions_are_go_s_encode_multi_and_decode_multi() {
    let other = SecureCookie::new(
        b"fedcba9876543210fedcba9876543210",
        Some(b"fedcba9876543210"),
    )
    .unwrap();
    let mut checked = 0;
    for v in of_kind("encode") {
        let (id, spec) = (v["id"].as_str().unwrap(), &v["codec"]);
        if spec["serializer"] != "json" || v.get("decode_error").is_some() {
            continue;
        }
        let Some(value) = json_of(&v["value"]) else {
            continue;
        };
        let (codec, cookie) = (codec(spec), v["cookie"].as_str().unwrap());
        // Go's cookie opens through a key list where its pair is not the first.
        let both = [other.clone(), codec.clone()];
        let decoded = decode_multi_json(&both, "session", cookie, now(spec)).unwrap();
        assert_eq!(
            go_json::to_vec(&decoded).unwrap(),
            go_json::to_vec(&value).unwrap(),
            "{id}"
        );
        if key(&spec["block_key"]).is_none() {
            // No random IV: byte for byte Go's EncodeMulti, which encodes with the first codec
            // that can (here the second: the first refuses the length).
            let tight = other.clone().with_max_length(10);
            let ours = encode_multi_json(&[tight, codec], "session", &value, now(spec)).unwrap();
            assert_eq!(ours, cookie, "{id}");
        }
        checked += 1;
    }
    assert!(checked >= 40, "{checked} JSON vectors checked");
    let codec = codec(&of_kind("encode")[0]["codec"]);
    let t = UnixTime::from_secs(1_700_000_000);
    let not_json = codec.encode_bytes("session", b"{\"a\":", t).unwrap();
    for list in [
        [codec.clone(), other.clone()],
        [other.clone(), codec.clone()],
    ] {
        // Authentic but not JSON, whichever codec opens it: refused, as by Go.
        let error = decode_multi_json(&list, "session", &not_json, t).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Deserialize);
    }
    let cookie = codec.encode_json("session", &json!("x"), t).unwrap();
    let error = decode_multi_json(&[other], "session", &cookie, t).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::MacInvalid);
    let none = encode_multi_json(&[], "session", &json!("x"), t).unwrap_err();
    assert_eq!(none.kind(), ErrorKind::NoCodecs);
    let none = decode_multi_json(&[], "session", &cookie, t).unwrap_err();
    assert_eq!(none.kind(), ErrorKind::NoCodecs);
}

/// `true` if `value` is the Go value the vector describes; values from an interface must
/// carry the Go name of the described type.
fn matches(desc: &Value, value: &GoValue) -> bool {
    let Some(object) = desc.as_object() else {
        return false;
    };
    let (kind, d) = if let Some(name) = object.get("struct") {
        ("struct", name)
    } else {
        let Some((kind, d)) = object.iter().next() else {
            return false;
        };
        (kind.as_str(), d)
    };
    let go_name = match kind {
        "bytes" => "[]uint8".to_owned(),
        "list" => "[]interface {}".to_owned(),
        "map" => "map[interface {}]interface {}".to_owned(),
        "struct" => d.as_str().unwrap_or_default().to_owned(),
        other => other.to_owned(),
    };
    let inner = match value {
        GoValue::Named { name, value, .. } if *name == go_name => &**value,
        GoValue::Named { .. } => return false,
        other => other,
    };
    match (kind, inner) {
        ("nil", GoValue::Nil) => true,
        ("string", GoValue::String(s)) => d.as_str() == Some(s),
        ("bool", GoValue::Bool(b)) => d.as_bool() == Some(*b),
        (k, GoValue::Int(i)) if k.starts_with("int") => d.as_i64() == Some(*i),
        (k, GoValue::Uint(u)) if k.starts_with("uint") => d.as_u64() == Some(*u),
        ("float64" | "float32", GoValue::Float(f)) => d.as_f64() == Some(*f),
        ("bytes", GoValue::Bytes(b)) => {
            d.as_str() == Some(&base64::engine::general_purpose::STANDARD.encode(b))
        }
        ("list", GoValue::List(items)) => d.as_array().is_some_and(|want| {
            want.len() == items.len() && want.iter().zip(items).all(|(w, v)| matches(w, v))
        }),
        ("map", GoValue::Map(entries)) => d.as_array().is_some_and(|want| {
            want.len() == entries.len()
                && want.iter().all(|pair| {
                    entries
                        .iter()
                        .any(|(k, v)| matches(&pair[0], k) && matches(&pair[1], v))
                })
        }),
        ("struct", GoValue::Struct(fields)) => {
            // Gob leaves zero fields out.
            let zero = |v: &Value| {
                [
                    json!({"bool": false}),
                    json!({"int": 0}),
                    json!({"string": ""}),
                ]
                .contains(v)
            };
            let want: Vec<&Value> = object["fields"]
                .as_array()
                .map(|f| f.iter().filter(|pair| !zero(&pair[1])).collect())
                .unwrap_or_default();
            want.len() == fields.len()
                && want
                    .iter()
                    .zip(fields)
                    .all(|(pair, (name, v))| pair[0] == name.as_str() && matches(&pair[1], v))
        }
        _ => false,
    }
}

#[test]
fn every_gob_payload_decodes_to_go_s_value() {
    let mut checked = 0;
    for v in of_kind("encode") {
        // The Go program leaves the default (gob) serializer unnamed.
        if !matches!(v["codec"]["serializer"].as_str(), Some("" | "gob")) {
            continue;
        }
        let id = v["id"].as_str().unwrap();
        let payload = hex(v["payload_hex"].as_str().unwrap());
        let (_, value) = gob::decode(&payload).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(matches(&v["value"], &value), "{id}: {value:?}");
        // And from the cookie itself (another map order for the non-deterministic ones).
        let spec = &v["codec"];
        let opened = codec(spec)
            .decode_bytes("session", v["cookie"].as_str().unwrap(), now(spec))
            .unwrap();
        assert!(
            matches(&v["value"], &gob::decode(&opened).unwrap().1),
            "{id}"
        );
        checked += 1;
    }
    assert!(checked >= 48, "{checked} gob vectors");
}

#[test]
fn the_go_stores_values_decode() {
    let now = |v: &Value| UnixTime::from_secs(v["now"].as_u64().unwrap());
    for kind in ["cookie_store", "filesystem_store"] {
        for v in of_kind(kind) {
            let codecs = pairs(&v["pairs"]);
            let name = v["cookie_name"].as_str().unwrap();
            let text = v["file_content"]
                .as_str()
                .unwrap_or_else(|| v["cookie_value"].as_str().unwrap());
            let payload = decode_multi(&codecs, name, text, now(&v)).unwrap();
            let (_, value) = gob::decode(&payload).unwrap();
            assert!(matches(&v["values"], &value), "{}: {value:?}", v["id"]);
            if let Some(id) = v["session_id"].as_str() {
                // The cookie of a FilesystemStore holds the session id, a gob string.
                let cookie =
                    decode_multi(&codecs, name, v["cookie_value"].as_str().unwrap(), now(&v));
                assert_eq!(
                    gob::decode(&cookie.unwrap()).unwrap(),
                    (GoType::String, GoValue::String(id.to_owned()))
                );
            }
        }
    }
}

#[test]
fn hostile_gob_is_an_error() {
    let flash = vectors()
        .into_iter()
        .find(|v| v["id"] == "gob_map_flash_plain")
        .unwrap();
    let payload = hex(flash["payload_hex"].as_str().unwrap());
    // Every truncation, and every single-byte change, decodes or fails: never a panic.
    for end in 0..payload.len() {
        assert!(gob::decode(&payload[..end]).is_err(), "truncated at {end}");
    }
    for i in 0..payload.len() {
        for b in [0x00, 0x01, 0x7f, 0x80, 0xf8, 0xff] {
            let mut bytes = payload.clone();
            bytes[i] = b;
            let _ = gob::decode(&bytes);
        }
    }
    // Found by the fuzzer: a map type keyed by itself, 17 deep. Refused: a type that
    // contains itself.
    let keyed_by_maps: &[u8] = &[
        0xe, 0xff, 0x81, 0x4, 0x1, 0x2, 0x10, 0x0, 0x1, 0xff, 0x82, 0x1, 0x2, 0x0, 0x0, 0x34, 0xff,
        0x82, 0x0, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1, 0x1,
        0x1, 0x0, 0x1, 0x1, 0x1, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
        0x0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,
    ];
    assert!(gob::decode(keyed_by_maps).is_err());

    // A slice type of itself, nested 100 deep: refused, not followed (types that contain
    // themselves are refused, however shallow the value).
    let mut deep = vec![
        0x0d, 0xff, 0x81, 0x02, 0x01, 0x02, 0xff, 0x82, 0x00, 0x01, 0xff, 0x82, 0x00, 0x00,
    ];
    deep.extend_from_slice(&[104, 0xff, 0x82, 0x00]);
    deep.extend_from_slice(&[0x01; 100]);
    deep.push(0x00);
    assert!(gob::decode(&deep).is_err());
    let mut shallow = deep[..14].to_vec();
    shallow.extend_from_slice(&[7, 0xff, 0x82, 0x00, 0x01, 0x01, 0x01, 0x00]);
    assert_eq!(
        gob::decode(&shallow).unwrap_err().kind(),
        crate::ErrorKind::Deserialize
    );
    // A count far beyond the input is refused before anything is allocated for it.
    let mut huge = deep[..14].to_vec();
    huge.extend_from_slice(&[0x0c, 0xff, 0x82, 0x00, 0xf8, 0x7f, 0xff, 0xff, 0xff]);
    huge.extend_from_slice(&[0xff; 4]);
    assert!(gob::decode(&huge).is_err());
}

#[test]
fn gob_written_here_reads_back_and_matches_go_where_go_is_not_random() {
    let mut same_bytes = 0;
    for v in of_kind("encode") {
        if !matches!(v["codec"]["serializer"].as_str(), Some("" | "gob")) {
            continue;
        }
        let id = v["id"].as_str().unwrap();
        let payload = hex(v["payload_hex"].as_str().unwrap());
        let (ty, value) = gob::decode(&payload).unwrap();
        let ours = gob::encode(&ty, &value).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(gob::decode(&ours).unwrap(), (ty, value), "{id}");
        // Go defines nested composite types inside the value's message, this crate before
        // it; without nested ones, and in a fixed map order, the bytes are Go's.
        let text = v["value"].to_string();
        let nested = text.matches("\"list\"").count()
            + text.matches("\"map\"").count()
            + text.matches("\"struct\"").count()
            > 1;
        if v["deterministic"] == true && !nested && !text.starts_with("{\"list\"") {
            assert_eq!(ours, payload, "{id}");
            same_bytes += 1;
        }
    }
    assert!(same_bytes >= 30, "{same_bytes} byte-equal gob vectors");
}
