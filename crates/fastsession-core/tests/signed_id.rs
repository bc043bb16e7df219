//! The signed session id cookie of server-side stores (`SessionConfig::with_signed_id`): a
//! forged, unsigned or tampered id is refused before any store call (case 68; cases 1-4, 9, 10,
//! 15 and 26 for signed ids), retired keys still verify, and without the option nothing
//! changes.

use std::sync::Arc;

use fastsession_core::codec::{KeyRing, SIGNED_FORMAT_VERSION, Signer};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::{ID_TEXT_LEN, Session, SessionId};
use fastsession_core::store::{CookieStore, MemoryStore, SaveKind, Store};
use fastsession_core::testing::SpyStore;
use http::HeaderMap;

use crate::support::{Env, NAME, b64_decode, b64_encode, key, ring};

/// The length of a signed id cookie value: 53 bytes in unpadded base64url.
const SIGNED_ID_LEN: usize = 71;
/// The purpose the id-signing keys are derived for; pinned so tests can sign ids themselves.
const PURPOSE: &str = "signed-session-id";

/// A memory store behind a spy, with its ids signed by `keys` (unsigned for `None`).
fn memory(env: &Env, keys: Option<&KeyRing>) -> (Arc<SpyStore>, SessionConfig) {
    let spy = Arc::new(SpyStore::new(Arc::new(MemoryStore::new().unwrap())));
    let config = with_keys(env, spy.clone(), keys);
    (spy, config)
}

/// A configuration over `store` (shared), signed by `keys` if given.
fn with_keys(env: &Env, store: Arc<dyn Store>, keys: Option<&KeyRing>) -> SessionConfig {
    let config = SessionConfig::with_shared_store(store, CookieConfig::new("id").unwrap())
        .with_clock(env.clock.clone());
    match keys {
        Some(keys) => config.with_signed_id(keys),
        None => config,
    }
}

/// Creates a session holding `user = "gopher"` and returns its cookie value.
async fn issue(env: &Env, config: &SessionConfig) -> String {
    let response = env
        .send_to(config, None, |s| s.insert("user", "gopher").unwrap())
        .await;
    response.assert_ok();
    response.value()
}

/// Presents `value`, asserts a fresh session and the security event `reason`, and that the
/// store was never asked.
async fn assert_refused_unread(
    env: &Env,
    spy: &SpyStore,
    config: &SessionConfig,
    value: &str,
    reason: &str,
) {
    let loads = spy.loads();
    let response = env
        .send_to(config, Some(&format!("{NAME}={value}")), |s| {
            assert!(s.is_new() && s.is_empty(), "{value:?}");
        })
        .await;
    response.assert_ok();
    assert!(response.set_cookies().is_empty(), "{value:?}");
    assert_eq!(env.reasons(), [reason], "{value:?}");
    assert_eq!(spy.loads(), loads, "the store was asked for {value:?}");
}

/// The option on: the cookie is 71 characters of canonical base64url holding the id the
/// store issued (the store itself sees and returns only the bare id), and it loads.
#[tokio::test]
async fn a_signed_id_round_trips() {
    let env = Env::new();
    let keys = ring(1);
    let (spy, config) = memory(&env, Some(&keys));
    let value = issue(&env, &config).await;
    assert_eq!(value.len(), SIGNED_ID_LEN);
    assert!(SessionId::parse(&value).is_none(), "not a bare id");
    let raw = b64_decode(&value);
    assert_eq!(b64_encode(&raw), value, "canonical");
    assert_eq!(raw[0], SIGNED_FORMAT_VERSION);
    assert_eq!(raw[1..5], 1u32.to_be_bytes());
    let issued = spy.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].len(), ID_TEXT_LEN, "the store issues a bare id");
    assert_eq!(
        raw[5..37],
        *SessionId::parse(&issued[0]).unwrap().as_bytes()
    );

    env.send_to(&config, Some(&format!("{NAME}={value}")), |s| {
        assert!(!s.is_new());
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await
    .assert_ok();
    assert!(env.reasons().is_empty());
    assert_eq!(spy.loads(), 1);
}

/// Without the option the cookie is the bare id, as before; a signed cookie is refused.
#[tokio::test]
async fn without_the_option_nothing_changes() {
    let env = Env::new();
    let (spy, plain) = memory(&env, None);
    assert!(plain.id_signer().is_none());
    let value = issue(&env, &plain).await;
    assert_eq!(value.len(), ID_TEXT_LEN);
    assert_eq!(spy.issued(), std::slice::from_ref(&value));
    let signed = with_keys(&env, spy.clone(), Some(&ring(1)));
    let signed_value = issue(&env, &signed).await;
    assert_refused_unread(&env, &spy, &plain, &signed_value, "malformed").await;
}

/// The point of the option: a flood of made-up ids, bare ids of live sessions, forged,
/// tampered, moved, re-encoded or foreign-key signatures cost no store call.
#[tokio::test]
async fn forged_ids_never_reach_the_store() {
    let env = Env::new();
    let keys = ring(1);
    let (spy, config) = memory(&env, Some(&keys));
    let value = issue(&env, &config).await;
    let bare = spy.issued()[0].clone();
    let raw = b64_decode(&value);

    // A flood of random ids, bare and in the signed layout with a made-up tag.
    for _ in 0..200 {
        let id = SessionId::generate().unwrap();
        assert_refused_unread(&env, &spy, &config, id.as_str(), "malformed").await;
        let forged = [&raw[..5], id.as_bytes(), &[0x5a; 16]].concat();
        assert_refused_unread(&env, &spy, &config, &b64_encode(&forged), "not_authentic").await;
    }
    // The bare id of a live session: unsigned.
    assert_refused_unread(&env, &spy, &config, &bare, "malformed").await;
    // One bit flipped anywhere.
    for at in 0..raw.len() {
        let mut changed = raw.clone();
        changed[at] ^= 0x10;
        let reason = match at {
            0 => "unknown_version",
            1..5 => "unknown_key",
            _ => "not_authentic",
        };
        assert_refused_unread(&env, &spy, &config, &b64_encode(&changed), reason).await;
    }
    // Cut short, extended, padded, the standard alphabet, trailing bits, another cookie's
    // signature, another key's, another purpose's.
    let mut trailing = value.clone().into_bytes();
    let last = trailing.last_mut().unwrap();
    *last = if *last == b'B' { b'C' } else { b'B' };
    let moved = Signer::new(&keys, PURPOSE).sign("__Host-other", &raw[5..37]);
    let foreign = Signer::new(&ring(9), PURPOSE).sign(NAME, &raw[5..37]);
    let foreign_purpose = Signer::new(&keys, "signed-session-cookie").sign(NAME, &raw[5..37]);
    let cases = [
        (value[..SIGNED_ID_LEN - 1].to_owned(), "malformed"),
        (format!("{value}A"), "malformed"),
        (format!("{value}="), "malformed"),
        (value.replace('-', "+").replace('_', "/"), "malformed"),
        (String::from_utf8(trailing).unwrap(), "malformed"),
        (String::new(), "malformed"),
        (moved, "not_authentic"),
        (foreign, "unknown_key"),
        (foreign_purpose, "not_authentic"),
    ];
    for (text, reason) in &cases {
        if text != &value {
            assert_refused_unread(&env, &spy, &config, text, reason).await;
        }
    }
    assert_eq!(spy.loads(), 0, "not one store look-up");

    // The authentic cookie still opens.
    env.send_to(&config, Some(&format!("{NAME}={value}")), |s| {
        assert!(!s.is_new());
    })
    .await;
    assert_eq!(spy.loads(), 1);
}

/// A value our own key signed for this purpose but with a payload that is not 32 bytes (only
/// a key leak could make one) is refused by its length, before the store.
#[tokio::test]
async fn a_signed_payload_that_is_no_id_is_refused() {
    let env = Env::new();
    let keys = ring(1);
    let (spy, config) = memory(&env, Some(&keys));
    let signer = Signer::new(&keys, PURPOSE);
    // 31 and 33 bytes give 70 and 72 characters: only 32 bytes give 71.
    for payload in [&[1u8; 31][..], &[1u8; 33][..]] {
        let text = signer.sign(NAME, payload);
        assert_refused_unread(&env, &spy, &config, &text, "malformed").await;
    }
}

/// Rotation: a cookie signed with a retired key opens and is signed again with the active key
/// in the same response; once the old key is removed, its cookies are refused unread.
#[tokio::test]
async fn rotation_resigns_with_the_active_key() {
    let env = Env::new();
    env.watch_key(2);
    let store: Arc<SpyStore> = Arc::new(SpyStore::new(Arc::new(MemoryStore::new().unwrap())));
    let old = with_keys(&env, store.clone(), Some(&ring(1)));
    let value = issue(&env, &old).await;

    let rotated_keys = KeyRing::new(key(2)).with_retired(key(1)).unwrap();
    let rotated = with_keys(&env, store.clone(), Some(&rotated_keys));
    let response = env
        .send_to(&rotated, Some(&format!("{NAME}={value}")), |s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    response.assert_ok();
    assert_eq!(
        store.saves_of(SaveKind::Touch),
        1,
        "re-signed through a refresh"
    );
    let resigned = response.value();
    assert_ne!(resigned, value);
    assert_eq!(b64_decode(&resigned)[1..5], 2u32.to_be_bytes());
    assert_eq!(
        b64_decode(&resigned)[5..37],
        b64_decode(&value)[5..37],
        "same id"
    );

    // Key 1 removed: the new cookie opens, the old one is refused before the store.
    let only_new = with_keys(&env, store.clone(), Some(&KeyRing::new(key(2))));
    env.send_to(&only_new, Some(&format!("{NAME}={resigned}")), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await;
    assert!(env.reasons().is_empty());
    assert_refused_unread(&env, &store, &only_new, &value, "unknown_key").await;
}

/// Regeneration and logout with signed ids: the new id is signed, the old cookie (signed and
/// authentic) loads nothing afterwards, a logout clears the cookie.
#[tokio::test]
async fn regenerate_and_destroy_with_signed_ids() {
    let env = Env::new();
    let (spy, config) = memory(&env, Some(&ring(1)));
    let before = issue(&env, &config).await;
    let response = env
        .send_to(
            &config,
            Some(&format!("{NAME}={before}")),
            Session::regenerate,
        )
        .await;
    response.assert_ok();
    let after = response.value();
    assert_eq!(after.len(), SIGNED_ID_LEN);
    assert_ne!(b64_decode(&after)[5..37], b64_decode(&before)[5..37]);

    env.send_to(&config, Some(&format!("{NAME}={before}")), |s| {
        assert!(s.is_new());
    })
    .await;
    assert_eq!(env.reasons(), ["unknown_id"], "authentic, but ended");

    let logout = env
        .send_to(&config, Some(&format!("{NAME}={after}")), Session::destroy)
        .await;
    logout.assert_ok();
    assert!(logout.set_cookies()[0].contains("Max-Age=0"));
    assert_eq!(spy.saves_of(SaveKind::Destroy), 1);
}

/// A logout with the cookie sent twice ends every authentic session among the values, and
/// looks up none of the unsigned ones (a bare id of a live session included).
#[tokio::test]
async fn a_logout_with_duplicates_looks_up_only_signed_ids() {
    let env = Env::new();
    let (spy, config) = memory(&env, Some(&ring(1)));
    let alice = issue(&env, &config).await;
    let bob = issue(&env, &config).await;
    let bob_bare = spy.issued()[1].clone();
    let header = format!("{NAME}={alice}; {NAME}={bob_bare}");
    let loads = spy.loads();
    let response = env.send_to(&config, Some(&header), Session::destroy).await;
    response.assert_ok();
    assert_eq!(env.reasons(), ["duplicate_cookies"]);
    assert_eq!(
        spy.loads(),
        loads + 1,
        "only the signed value was looked up"
    );
    assert_eq!(spy.saves_of(SaveKind::Destroy), 1);
    for (value, alive) in [(&alice, false), (&bob, true)] {
        env.send_to(&config, Some(&format!("{NAME}={value}")), |s| {
            assert_eq!(!s.is_new(), alive);
        })
        .await;
    }
}

/// A cookie store's cookie is sealed already: the option leaves it as it is.
#[tokio::test]
async fn a_cookie_store_is_left_as_it_is() {
    let env = Env::new();
    let keys = ring(1);
    let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("id").unwrap())
        .with_clock(env.clock.clone())
        .with_signed_id(&keys);
    assert!(config.id_signer().is_none());
    let value = issue(&env, &config).await;
    let plain = env.config.clone();
    env.send_to(&plain, Some(&format!("{NAME}={value}")), |s| {
        assert!(!s.is_new(), "the same sealed format");
    })
    .await;
}

/// A signed id is checked in `Sessions` itself: a registry built from the raw `Cookie` bytes
/// (as actix-web's adapter builds it) refuses a forged one the same way.
#[tokio::test]
async fn raw_cookie_headers_are_checked_alike() {
    let env = Env::new();
    let (spy, config) = memory(&env, Some(&ring(1)));
    let forged = format!("{NAME}={}", SessionId::generate().unwrap().as_str());
    let sessions = Sessions::from_cookie_headers([forged.as_bytes()]);
    assert!(sessions.get(&config).await.unwrap().is_new());
    let mut response = HeaderMap::new();
    sessions.save_all(&mut response).await.unwrap();
    assert_eq!(env.reasons(), ["malformed"]);
    assert_eq!(spy.loads(), 0);
}

/// A write to a session whose cookie the browser already holds (same id, signed by the active
/// key, no `Max-Age` to slide) sends no `Set-Cookie`, signed or not; a remembered session's
/// write sends its cookie again (its `Max-Age` slides), and so does switching "remember me"
/// off (the browser must get a session cookie in its place).
#[tokio::test]
async fn a_write_sends_the_cookie_again_only_when_it_changes() {
    let env = Env::new();
    for keys in [None, Some(ring(1))] {
        let (spy, config) = memory(&env, keys.as_ref());
        let value = issue(&env, &config).await;
        let cookie = format!("{NAME}={value}");
        let response = env
            .send_to(&config, Some(&cookie), |s| s.insert("n", 2).unwrap())
            .await;
        response.assert_ok();
        assert_eq!(spy.saves_of(SaveKind::Update), 1);
        assert!(
            response.set_cookies().is_empty(),
            "{:?}",
            response.set_cookies()
        );

        let remembered = env
            .send_to(&config, Some(&cookie), |s| s.set_persistent(true))
            .await;
        assert_eq!(remembered.value(), value);
        assert!(remembered.set_cookies()[0].contains("; Max-Age="));
        let slid = env
            .send_to(&config, Some(&cookie), |s| s.insert("n", 3).unwrap())
            .await;
        assert_eq!(slid.value(), value);
        assert!(slid.set_cookies()[0].contains("; Max-Age="));

        let forgotten = env
            .send_to(&config, Some(&cookie), |s| s.set_persistent(false))
            .await;
        assert_eq!(forgotten.value(), value);
        assert!(!forgotten.set_cookies()[0].contains("Max-Age"));
        let quiet = env
            .send_to(&config, Some(&cookie), |s| s.insert("n", 4).unwrap())
            .await;
        quiet.assert_ok();
        assert!(quiet.set_cookies().is_empty());
    }
}
