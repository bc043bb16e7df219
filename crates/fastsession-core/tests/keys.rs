//! Keys and key rotation (security cases 9, 10, 21).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fastsession_core::ErrorKind;
use fastsession_core::codec::{Codec, Key, KeyRing};
use fastsession_core::http::CookieConfig;

use crate::support::{COOKIE_PURPOSE, Env, NAME, b64_decode, key, ring};
use crate::tamper::{assert_rejected, issue, vary_only};

fn ring_of(active: u32, retired: &[u32]) -> KeyRing {
    retired
        .iter()
        .fold(ring(active), |r, &id| r.with_retired(key(id)).unwrap())
}

/// Case 9: a cookie sealed by a retired key opens, and the same response seals it again with
/// the active key even though the handler changed nothing. Once the key is removed from the
/// ring, its cookies give fresh sessions.
#[tokio::test]
async fn retired_key_opens_and_the_response_reseals_with_the_active_key() {
    let env = Env::new();
    env.watch_key(2);
    let old = issue(&env).await;
    assert_eq!(&b64_decode(&old)[1..5], &1u32.to_be_bytes());

    let rotated = env.config(&ring_of(2, &[1]), CookieConfig::new("id").unwrap());
    let response = env
        .send_to(&rotated, Some(&format!("{NAME}={old}")), |s| {
            assert!(!s.is_new());
            assert!(!s.is_modified());
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    response.assert_ok();
    assert!(env.reasons().is_empty());
    // A few seconds after issue, so this is the re-seal and not an expiry refresh.
    let resealed = response.value();
    assert_eq!(&b64_decode(&resealed)[1..5], &2u32.to_be_bytes());
    assert_eq!(response.headers["cache-control"], "no-store");
    // It opens with the new key alone, and not with the old one.
    let only_new = Codec::new(&ring(2), COOKIE_PURPOSE);
    assert!(!only_new.open(NAME, &resealed).unwrap().is_stale());
    assert!(
        Codec::new(&ring(1), COOKIE_PURPOSE)
            .open(NAME, &resealed)
            .is_err()
    );

    // Read again with the re-sealed cookie: nothing more to write.
    let again = env
        .send_to(&rotated, Some(&format!("{NAME}={resealed}")), |s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    assert_eq!(again.dump(), vary_only());

    // Key 1 removed: its cookies are rejected by id, with no attempt to decrypt.
    let removed = env.config(&ring(2), CookieConfig::new("id").unwrap());
    let response = env
        .send_to(&removed, Some(&format!("{NAME}={old}")), |s| {
            assert!(s.is_new() && s.is_empty());
        })
        .await;
    assert_eq!(response.dump(), vary_only());
    assert_eq!(env.reasons(), ["unknown_key"]);
    env.send_to(&removed, Some(&format!("{NAME}={resealed}")), |s| {
        assert!(!s.is_new());
    })
    .await;
}

/// Case 10: a key ring has no "revoked but present" state on purpose. Revoking a key *is*
/// removing it from the ring (a retired key still opens: it exists for rotation, not for
/// revocation), so a revoked key can never be half-trusted. Removing one key ends exactly
/// the sessions it sealed.
#[tokio::test]
async fn revoking_a_key_means_removing_it_from_the_ring() {
    let mut env = Env::new();
    for id in [2, 3] {
        env.watch_key(id);
    }
    let mut sealed = Vec::new();
    for id in [1, 2, 3] {
        let config = env.config(&ring(id), CookieConfig::new("id").unwrap());
        let response = env
            .send_to(&config, None, |s| s.insert("user", "gopher").unwrap())
            .await;
        sealed.push(response.value());
    }
    let [by_1, by_2, by_3] = <[String; 3]>::try_from(sealed).unwrap();

    // Key 2 revoked: the ring is rebuilt without it.
    env.config = env.config(&ring_of(3, &[1]), CookieConfig::new("id").unwrap());
    assert_rejected(&env, &by_2, "unknown_key").await;
    for live in [&by_1, &by_3] {
        env.send(Some(&format!("{NAME}={live}")), |s| assert!(!s.is_new()))
            .await
            .assert_ok();
    }
    assert!(env.reasons().is_empty());
}

/// Case 21: empty, short and constant secrets are construction errors; nothing weak is ever
/// returned in their place.
#[test]
fn weak_secrets_are_refused() {
    let weak: [&[u8]; 7] = [
        b"",
        &[0x5a; 16],
        b"0123456789abcdef",
        &[0; 32],
        &[0xff; 64],
        b"0123456789abcdef0123456789abcde",
        &[7; 1024],
    ];
    for secret in weak {
        let err = Key::from_secret(secret).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{} bytes", secret.len());
        let err = Key::from_base64(&STANDARD.encode(secret)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey);
    }
    for text in ["", "   ", "not base64!", "c2hvcnQ=", &"A".repeat(44)] {
        assert_eq!(
            Key::from_base64(text).unwrap_err().kind(),
            ErrorKind::InvalidKey,
            "{text:?}"
        );
    }
    // 32 distinct bytes are the minimum that works.
    assert!(Key::from_secret(b"0123456789abcdef0123456789abcdef").is_ok());
    // Two keys with one id would make the id ambiguous.
    assert_eq!(
        ring(1).with_retired(key(1)).unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
    // The error says why without echoing the secret.
    let err = Key::from_secret(b"hunter2").unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}
