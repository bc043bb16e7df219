//! Known-answer vectors for format 1 (security case 14): `tests/vectors/codec-v1.json` holds
//! values sealed by this release. Every later release must open them to the same plaintext,
//! so a change to the format, the HKDF derivation or the associated data fails here.
//!
//! The file is written only by `FASTSESSION_MINT_VECTORS=1 cargo test -p fastsession-core
//! --test integration vectors::mint`; never re-mint to make a failing check pass, since old
//! cookies in browsers would stop opening just the same.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fastsession_core::codec::{Codec, Key, KeyRing};
use fastsession_core::http::{CookieConfig, Sessions};
use fastsession_core::time::{Clock as _, UnixTime};
use serde::{Deserialize, Serialize};

use crate::support::{
    COOKIE_PURPOSE, Env, NAME, b64_decode, cookie_header, key, record_bytes, set_value,
};

/// When the session vector was created.
const SESSION_TIME: u64 = 1_700_000_000;
/// What the session vector holds, as `Record::to_bytes` writes its JSON.
const SESSION_JSON: &str = r#"{"v":{"roles":["admin","editor"],"user":"gopher","visits":3},"f":{"_flash":["Welcome back"]}}"#;
const SESSION_VECTOR: &str = "session cookie with values, a flash and remember-me";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct VectorFile {
    description: String,
    vectors: Vec<Vector>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Vector {
    name: String,
    /// The master secret, standard base64.
    secret: String,
    key_id: u32,
    purpose: String,
    cookie_name: String,
    plaintext_hex: String,
    sealed: String,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/codec-v1.json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn read_file() -> VectorFile {
    let text = std::fs::read_to_string(path()).expect(
        "tests/vectors/codec-v1.json is checked in (mint it with FASTSESSION_MINT_VECTORS=1)",
    );
    serde_json::from_str(&text).unwrap()
}

fn vector_key(v: &Vector) -> Key {
    Key::from_base64(&v.secret).unwrap().with_id(v.key_id)
}

/// The cases, with `sealed` empty.
fn cases() -> Vec<Vector> {
    let case =
        |name: &str, secret: &[u8], key_id, purpose: &str, cookie_name: &str, plaintext: &[u8]| {
            Vector {
                name: name.to_owned(),
                secret: STANDARD.encode(secret),
                key_id,
                purpose: purpose.to_owned(),
                cookie_name: cookie_name.to_owned(),
                plaintext_hex: hex(plaintext),
                sealed: String::new(),
            }
        };
    let all_bytes: Vec<u8> = (0..=255).collect();
    let long: Vec<u8> = (0..2_000u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    vec![
        case(
            "empty plaintext",
            b"fastsession vector secret no. 1!",
            1,
            COOKIE_PURPOSE,
            NAME,
            b"",
        ),
        case(
            "short text",
            b"fastsession vector secret no. 2!",
            0xdead_beef,
            "session",
            "id",
            b"hello, fastsession",
        ),
        case(
            "every byte value",
            b"fastsession vector secret no. 3!",
            0,
            "flash",
            "__Secure-sid",
            &all_bytes,
        ),
        case(
            "long plaintext, 48-byte secret, 128-byte name",
            b"fastsession vector secret no. 4, forty-eight B!!",
            u32::MAX,
            "remember-me/v2",
            &"n".repeat(128),
            &long,
        ),
        case(
            SESSION_VECTOR,
            b"fastsession vector secret no. 5!",
            7,
            COOKIE_PURPOSE,
            NAME,
            &record_bytes(1, SESSION_TIME, SESSION_TIME, SESSION_JSON),
        ),
    ]
}

/// Seals the session vector through the real request flow, so the vector is a cookie the
/// library wrote, not one assembled by hand.
async fn mint_session_cookie(env: &Env, v: &Vector) -> String {
    env.set_time(SESSION_TIME);
    let config = env.config(
        &KeyRing::new(vector_key(v)),
        CookieConfig::new("id").unwrap(),
    );
    let sessions = Sessions::new(&http::HeaderMap::new());
    let s = sessions.get(&config).await.unwrap();
    s.insert("user", "gopher").unwrap();
    s.insert("visits", 3).unwrap();
    s.insert("roles", ["admin", "editor"]).unwrap();
    s.add_flash("Welcome back").unwrap();
    s.set_persistent(true);
    let mut headers = http::HeaderMap::new();
    sessions.save_all(&mut headers).await.unwrap();
    set_value(&headers, NAME).unwrap()
}

/// Mints every case afresh and checks it against the checked-in file; writes the file only
/// when `FASTSESSION_MINT_VECTORS=1`.
#[tokio::test]
async fn mint() {
    let env = Env::new();
    let mut minted = cases();
    for v in &mut minted {
        let key = vector_key(v);
        v.sealed = if v.name == SESSION_VECTOR {
            mint_session_cookie(&env, v).await
        } else {
            Codec::new(&KeyRing::new(key.clone()), &v.purpose)
                .seal(&v.cookie_name, &unhex(&v.plaintext_hex))
                .unwrap()
        };
        // Fresh vectors open to their plaintext (the session one: to the expected record).
        let opened = Codec::new(&KeyRing::new(key), &v.purpose)
            .open(&v.cookie_name, &v.sealed)
            .unwrap();
        assert_eq!(hex(opened.plaintext()), v.plaintext_hex, "{}", v.name);
    }
    if std::env::var("FASTSESSION_MINT_VECTORS").as_deref() == Ok("1") {
        let file = VectorFile {
            description:
                "fastsession codec format 1 known-answer vectors: each `sealed` must open \
                          with Key::from_base64(secret).with_id(key_id) under `purpose` for `cookie_name` \
                          to `plaintext_hex`. Written once; never re-mint."
                    .to_owned(),
            vectors: minted.clone(),
        };
        std::fs::create_dir_all(path().parent().unwrap()).unwrap();
        std::fs::write(path(), serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
    }
    // The cases in the code and in the file agree on everything but the random nonces.
    let without_sealed = |vs: Vec<Vector>| {
        vs.into_iter()
            .map(|v| Vector {
                sealed: String::new(),
                ..v
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(without_sealed(read_file().vectors), without_sealed(minted));
}

/// Every checked-in vector opens to its plaintext, under its name and purpose only.
#[test]
fn checked_in_vectors_open() {
    let file = read_file();
    assert_eq!(file.vectors.len(), cases().len());
    for v in &file.vectors {
        let key = vector_key(v);
        let codec = Codec::new(&KeyRing::new(key.clone()), &v.purpose);
        let opened = codec
            .open(&v.cookie_name, &v.sealed)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(hex(opened.plaintext()), v.plaintext_hex, "{}", v.name);
        assert_eq!(opened.key_id(), v.key_id);

        // Header: version 1, then the key id big-endian.
        let raw = b64_decode(&v.sealed);
        assert_eq!(raw[0], 1);
        assert_eq!(raw[1..5], v.key_id.to_be_bytes());

        // Bound to name and purpose.
        assert!(
            codec
                .open(&format!("{}x", v.cookie_name), &v.sealed)
                .is_err()
        );
        let other = Codec::new(&KeyRing::new(key.clone()), &format!("{}x", v.purpose));
        assert!(other.open(&v.cookie_name, &v.sealed).is_err());

        // Still opens once its key is retired, and asks to be re-sealed.
        let successor = if v.key_id == 1 { 2 } else { 1 };
        let rotated = KeyRing::new(crate::support::key(successor))
            .with_retired(key)
            .unwrap();
        let opened = Codec::new(&rotated, &v.purpose)
            .open(&v.cookie_name, &v.sealed)
            .unwrap();
        assert!(opened.is_stale());
    }
}

/// The session vector loads through the cookie store to exactly the values it was minted with.
#[tokio::test]
async fn session_vector_loads_exact_values() {
    let file = read_file();
    let v = file
        .vectors
        .iter()
        .find(|v| v.name == SESSION_VECTOR)
        .unwrap();
    // The record encoding itself is pinned: flags, two big-endian times, then this JSON.
    assert_eq!(
        unhex(&v.plaintext_hex),
        record_bytes(1, SESSION_TIME, SESSION_TIME, SESSION_JSON)
    );

    let env = Env::new();
    env.set_time(SESSION_TIME + 60);
    let config = env.config(
        &KeyRing::new(vector_key(v)),
        CookieConfig::new("id").unwrap(),
    );
    let sessions = Sessions::new(&cookie_header(&format!("{NAME}={}", v.sealed)));
    let s = sessions.get(&config).await.unwrap();
    assert!(!s.is_new());
    assert_eq!(s.keys(), ["roles", "user", "visits"]);
    assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    assert_eq!(s.get::<u32>("visits").unwrap(), Some(3));
    assert_eq!(
        s.get::<Vec<String>>("roles").unwrap(),
        Some(vec!["admin".to_owned(), "editor".to_owned()])
    );
    assert!(s.is_persistent());
    assert_eq!(s.created(), UnixTime::from_secs(SESSION_TIME));
    assert_eq!(s.last_active(), UnixTime::from_secs(SESSION_TIME));
    assert_eq!(s.take_flashes::<String>().unwrap(), ["Welcome back"]);
    assert!(env.reasons().is_empty());
    assert_eq!(env.clock.now().as_secs(), SESSION_TIME + 60);

    // Under another key with the same id it is just a tampered cookie.
    let wrong = env.config(&KeyRing::new(key(7)), CookieConfig::new("id").unwrap());
    let sessions = Sessions::new(&cookie_header(&format!("{NAME}={}", v.sealed)));
    assert!(sessions.get(&wrong).await.unwrap().is_new());
    assert_eq!(env.reasons(), ["not_authentic"]);
}
