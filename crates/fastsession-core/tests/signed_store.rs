//! The signed-only cookie store (`CookieStore::signed`): readable by the client, refused if
//! changed (cases 1-5, 7, 9, 10, 14, 15, 20, 34 for signed cookies), and never taken for a
//! sealed cookie nor a sealed one for it.

use std::sync::Arc;
use std::time::Duration;

use fastsession_core::ErrorKind;
use fastsession_core::codec::{KeyRing, SIGNED_FORMAT_VERSION, SIGNED_OVERHEAD, Signer};
use fastsession_core::http::{CookieConfig, SessionConfig};
use fastsession_core::session::{Expiry, Session};
use fastsession_core::store::{CookieStore, MemoryStore};

use crate::support::{Env, NAME, T0, b64_decode, b64_encode, key, record_bytes, ring};

/// The purpose signed cookie-store keys are derived for; pinned so tests can sign records.
const PURPOSE: &str = "signed-session-cookie";
/// Version and key id before the record.
const HEADER: usize = 5;

fn signed(env: &Env, store: CookieStore) -> SessionConfig {
    SessionConfig::new(store, CookieConfig::new("id").unwrap())
        .with_clock(env.clock.clone())
        .with_expiry(env.expiry)
}

async fn issue(env: &Env, config: &SessionConfig) -> String {
    let response = env
        .send_to(config, None, |s| s.insert("user", "gopher").unwrap())
        .await;
    response.assert_ok();
    response.value()
}

async fn assert_refused(env: &Env, config: &SessionConfig, value: &str, reason: &str) {
    let response = env
        .send_to(config, Some(&format!("{NAME}={value}")), |s| {
            assert!(s.is_new() && s.is_empty(), "{value:?}");
        })
        .await;
    response.assert_ok();
    assert!(response.set_cookies().is_empty());
    assert_eq!(env.reasons(), [reason], "{value:?}");
}

async fn assert_opens(env: &Env, config: &SessionConfig, value: &str) {
    env.send_to(config, Some(&format!("{NAME}={value}")), |s| {
        assert!(!s.is_new());
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await
    .assert_ok();
    assert!(env.reasons().is_empty());
}

/// The value is the record in the clear between a 5-byte header and a 16-byte tag: a client
/// reads the JSON as the store's docs show.
#[tokio::test]
async fn the_client_can_read_it() {
    let env = Env::new();
    let config = signed(&env, CookieStore::signed(&env.ring));
    let value = issue(&env, &config).await;
    let raw = b64_decode(&value);
    assert_eq!(b64_encode(&raw), value, "canonical");
    assert_eq!(raw[0], SIGNED_FORMAT_VERSION);
    assert_eq!(raw[1..5], 1u32.to_be_bytes());
    let json = br#"{"v":{"user":"gopher"}}"#;
    assert_eq!(
        raw[HEADER..raw.len() - 16],
        record_bytes(0, T0, T0, std::str::from_utf8(json).unwrap())
    );
    assert_eq!(raw.len(), SIGNED_OVERHEAD + 17 + json.len());
    assert_opens(&env, &config, &value).await;
}

/// Any change is refused: every byte flipped, the JSON rewritten, the header moved, other
/// encodings of the same bytes, another cookie name.
#[tokio::test]
async fn changes_are_refused() {
    let env = Env::new();
    let config = signed(&env, CookieStore::signed(&env.ring));
    let value = issue(&env, &config).await;
    let raw = b64_decode(&value);
    for at in 0..raw.len() {
        let mut changed = raw.clone();
        changed[at] ^= 0x04;
        let reason = match at {
            0 => "unknown_version",
            1..5 => "unknown_key",
            _ => "not_authentic",
        };
        assert_refused(&env, &config, &b64_encode(&changed), reason).await;
    }
    // The client edits its own data, keeping the length.
    let at = raw.windows(6).position(|w| w == b"gopher").unwrap();
    let mut edited = raw.clone();
    edited[at..at + 6].copy_from_slice(b"admin!");
    assert_ne!(edited, raw);
    assert_refused(&env, &config, &b64_encode(&edited), "not_authentic").await;
    // Cut, extended, padded, the standard alphabet, a cookie name's prefix.
    for (text, reason) in [
        (value[..value.len() - 1].to_owned(), "malformed"),
        (b64_encode(&raw[..raw.len() - 1]), "not_authentic"),
        (b64_encode(&[&raw[..], &[0]].concat()), "not_authentic"),
        (format!("{value}="), "malformed"),
        (format!(" {value}"), "malformed"),
        (b64_encode(&raw[..SIGNED_OVERHEAD - 1]), "malformed"),
    ] {
        assert_refused(&env, &config, &text, reason).await;
    }
    // Moved to another cookie name.
    let other = SessionConfig::new(
        CookieStore::signed(&env.ring),
        CookieConfig::new("other").unwrap(),
    )
    .with_clock(env.clock.clone());
    let response = env
        .send_to(&other, Some(&format!("__Host-other={value}")), |s| {
            assert!(s.is_new());
        })
        .await;
    response.assert_ok();
    assert_eq!(env.reasons(), ["not_authentic"]);
}

/// With one key ring and one cookie name, a sealed cookie is refused by the signed store and a
/// signed one by the sealing store: each format has its own version byte and key purpose.
#[tokio::test]
async fn sealed_and_signed_never_cross() {
    let env = Env::new();
    let signed_config = signed(&env, CookieStore::signed(&env.ring));
    let sealed_config = env.config.clone();
    let signed_value = issue(&env, &signed_config).await;
    let sealed_value = issue(&env, &sealed_config).await;
    assert_refused(&env, &sealed_config, &signed_value, "unknown_version").await;
    assert_refused(&env, &signed_config, &sealed_value, "unknown_version").await;
    // With the version bytes swapped, the tags still fail.
    let mut raw = b64_decode(&signed_value);
    raw[0] = 1;
    let padded = [&raw[..], &[0; 32]].concat();
    assert_refused(&env, &sealed_config, &b64_encode(&padded), "not_authentic").await;
    let mut raw = b64_decode(&sealed_value);
    raw[0] = SIGNED_FORMAT_VERSION;
    assert_refused(&env, &signed_config, &b64_encode(&raw), "not_authentic").await;
}

/// The times are signed with the data: the idle timeout and absolute lifetime hold, and a
/// record dated in the future (signed with our key) is refused.
#[tokio::test]
async fn expiry_is_in_the_envelope() {
    let env = Env::with_expiry(
        Expiry::default()
            .with_idle_timeout(Duration::from_secs(1_800))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(43_200))
            .unwrap(),
    );
    let config = signed(&env, CookieStore::signed(&env.ring));
    let value = issue(&env, &config).await;
    env.set_time(T0 + 1_799);
    assert_opens(&env, &config, &value).await;
    env.set_time(T0 + 1_800 + 1_799);
    assert_refused(&env, &config, &value, "idle_timeout").await;

    let signer = Signer::new(&env.ring, PURPOSE);
    let forge = |created: u64, last: u64| {
        signer.sign(
            NAME,
            &record_bytes(0, created, last, r#"{"v":{"user":"gopher"}}"#),
        )
    };
    env.set_time(T0);
    assert_opens(&env, &config, &forge(T0, T0)).await;
    assert_refused(&env, &config, &forge(T0, T0 + 3_600), "from_the_future").await;
    assert_refused(&env, &config, &forge(T0 - 43_200, T0), "absolute_timeout").await;
    assert_refused(&env, &config, &signer.sign(NAME, b"\x80"), "corrupt").await;
}

/// The same size rule: a session too large for the cookie is an error and no `Set-Cookie`.
#[tokio::test]
async fn too_large_is_an_error() {
    let env = Env::new();
    let config = signed(&env, CookieStore::signed(&env.ring));
    let response = env
        .send_to(&config, None, |s| {
            s.insert("big", "x".repeat(4_000)).unwrap()
        })
        .await;
    assert!(matches!(
        response.result.as_ref().unwrap_err().kind(),
        ErrorKind::CookieTooLarge { .. }
    ));
    assert!(response.set_cookies().is_empty());
    // As much fits as in a sealed cookie (a little more: no nonce).
    let response = env
        .send_to(&config, None, |s| {
            s.insert("big", "x".repeat(2_900)).unwrap()
        })
        .await;
    response.assert_ok();
}

/// Rotation: a cookie signed by a retired key opens and is signed again with the active key;
/// without the old key it is refused.
#[tokio::test]
async fn rotation_resigns_with_the_active_key() {
    let env = Env::new();
    env.watch_key(2);
    let value = issue(&env, &signed(&env, CookieStore::signed(&ring(1)))).await;
    let rotated = signed(
        &env,
        CookieStore::signed(&KeyRing::new(key(2)).with_retired(key(1)).unwrap()),
    );
    let response = env
        .send_to(&rotated, Some(&format!("{NAME}={value}")), |s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    response.assert_ok();
    let resigned = response.value();
    assert_eq!(b64_decode(&resigned)[1..5], 2u32.to_be_bytes());
    let only_new = signed(&env, CookieStore::signed(&ring(2)));
    assert_opens(&env, &only_new, &resigned).await;
    assert_refused(&env, &only_new, &value, "unknown_key").await;
}

/// A revocation list works as with the sealing store: a copy kept past a logout is refused.
#[tokio::test]
async fn logouts_are_final_with_a_revocation_list() {
    let env = Env::new();
    let store =
        CookieStore::signed(&env.ring).with_revocation(Arc::new(MemoryStore::new().unwrap()));
    let config = signed(&env, store);
    let value = issue(&env, &config).await;
    assert_opens(&env, &config, &value).await;
    let logout = env
        .send_to(&config, Some(&format!("{NAME}={value}")), Session::destroy)
        .await;
    logout.assert_ok();
    assert_refused(&env, &config, &value, "revoked").await;
}
