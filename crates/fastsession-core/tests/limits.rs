//! Sizes and counts: nonce uniqueness over many seals, oversized and repeated cookies,
//! hostile authentic JSON, and the 4096-byte `Set-Cookie` limit (security cases 13, 17, 19,
//! 20).

use std::collections::HashSet;

use fastsession_core::ErrorKind;
use fastsession_core::codec::{MAX_SEALED_LEN, OVERHEAD};
use fastsession_core::http::{CookieConfig, Sessions};
use fastsession_core::session::{ChangeSet, Record};
use fastsession_core::store::{CookieStore, LoadRequest, SaveKind, SaveRequest, Saved, Store as _};
use fastsession_core::time::UnixTime;
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};

use crate::support::{Env, NAME, T0, b64_decode, forge, record_bytes};
use crate::tamper::{assert_rejected, assert_rejected_request, issue, vary_only};

/// Case 13: sealing one session many times never repeats a nonce or a ciphertext.
#[tokio::test]
async fn resealing_one_session_never_repeats_a_nonce() {
    // 10^5 seals take about a second in a debug build.
    let n = 100_000;
    let env = Env::new();
    let value = issue(&env).await;
    let store = CookieStore::new(&env.ring);
    let now = UnixTime::from_secs(T0);
    let loaded = store
        .load(LoadRequest::new(NAME, &value, None, &env.expiry, now))
        .await
        .unwrap();
    let record = loaded.record().unwrap().clone();
    let changes = ChangeSet::default();
    let mut nonces = HashSet::with_capacity(n);
    let mut bodies = HashSet::with_capacity(n);
    for i in 0..n {
        let request = SaveRequest::new(NAME, SaveKind::Update, &record, &changes, &env.expiry, now);
        let Saved::Cookie { value, id: None } = store.save(request).await.unwrap() else {
            panic!("a cookie store saves to the cookie");
        };
        let raw = b64_decode(&value);
        assert!(
            nonces.insert(raw[5..29].to_vec()),
            "nonce repeated at seal {i}"
        );
        assert!(
            bodies.insert(raw[29..].to_vec()),
            "ciphertext repeated at seal {i}"
        );
        if i % 5_000 == 0 {
            let back = store
                .load(LoadRequest::new(NAME, &value, None, &env.expiry, now))
                .await
                .unwrap();
            assert_eq!(back.record(), Some(&record));
        }
    }
    // A second store on the same key (another process) draws its own nonces.
    let other = CookieStore::new(&env.ring);
    for _ in 0..1_000 {
        let request = SaveRequest::new(NAME, SaveKind::Update, &record, &changes, &env.expiry, now);
        let Saved::Cookie { value, .. } = other.save(request).await.unwrap() else {
            panic!("a cookie store saves to the cookie");
        };
        assert!(nonces.insert(b64_decode(&value)[5..29].to_vec()));
    }
}

/// Case 17: values over the 4096-byte limit are refused before any decoding.
#[tokio::test]
async fn oversized_values_are_refused_unread() {
    let env = Env::new();
    // At the limit, the value is decoded: 'A's are zero bytes, so version 0.
    assert_rejected(&env, &"A".repeat(MAX_SEALED_LEN), "unknown_version").await;
    // Above it, the same valid base64 is "malformed": it was never decoded.
    for len in [MAX_SEALED_LEN + 1, 64 << 10, 1 << 20] {
        assert_rejected(&env, &"A".repeat(len), "malformed").await;
    }
}

/// Case 17: a header of 10 000 cookies is scanned without trouble; 1 000 copies of the
/// session cookie, in one header or many, are one duplicate and one event.
#[tokio::test]
async fn many_cookies_and_many_copies_of_the_session_cookie() {
    let env = Env::new();
    let value = issue(&env).await;
    let crowd: Vec<String> = (0..10_000).map(|i| format!("c{i}=v{i}")).collect();
    let crowd = crowd.join("; ");

    let response = env
        .send(Some(&format!("{crowd}; {NAME}={value}")), |s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    assert_eq!(response.dump(), vary_only());
    let response = env.send(Some(&crowd), |s| assert!(s.is_new())).await;
    assert_eq!(response.dump(), vary_only());
    assert!(
        env.reasons().is_empty(),
        "no session cookie is not an event"
    );

    let copies = vec![format!("{NAME}={value}"); 1_000].join("; ");
    let request = crate::support::cookie_header(&copies);
    assert_rejected_request(&env, &request, "duplicate_cookies").await;

    let mut request = HeaderMap::new();
    for _ in 0..1_000 {
        let line = HeaderValue::from_str(&format!("{NAME}={value}")).unwrap();
        request.append(COOKIE, line);
    }
    assert_rejected_request(&env, &request, "duplicate_cookies").await;
}

/// Case 19: authentic plaintexts whose body is not a session record are rejected as corrupt,
/// whole: nothing of them reaches the session.
#[tokio::test]
async fn hostile_authentic_json_is_rejected_as_corrupt() {
    let env = Env::new();
    // The record allows 64 levels, counting the body object and its map: `{"v":{"a":[..]}}`.
    let nested = |depth: usize| {
        format!(
            r#"{{"v":{{"user":"gopher","a":{}{}}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    let deepest = forge(&env.ring, NAME, &record_bytes(0, T0, T0, &nested(62)));
    env.send(Some(&format!("{NAME}={deepest}")), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await;
    assert!(env.reasons().is_empty());

    let bodies = [
        nested(63),
        nested(1_400),
        r#"{"v":[]}"#.to_owned(),
        r#"{"v":null}"#.to_owned(),
        r#"{"v":{"a":1},"f":{"_flash":1}}"#.to_owned(),
        r#"{"f":[]}"#.to_owned(),
        r#"{"v":{},"v":{}}"#.to_owned(),
        r#"{"v":{"a":1,"a":2}}"#.to_owned(),
        r#"{"f":{"_flash":[1],"_flash":[2]}}"#.to_owned(),
        r#"{"x":1}"#.to_owned(),
        "[]".to_owned(),
        "\"str\"".to_owned(),
        "1".to_owned(),
        "null".to_owned(),
        r#"{"v":{"a":1}} x"#.to_owned(),
        r#"{"v":{"a":1}}{}"#.to_owned(),
        r#"{"v":{"a":}}"#.to_owned(),
        r#"{"v":{"a":1}"#.to_owned(),
        r#"{"v":{"a":1e}}"#.to_owned(),
        "{".to_owned(),
    ];
    for body in &bodies {
        let value = forge(&env.ring, NAME, &record_bytes(0, T0, T0, body));
        assert_rejected(&env, &value, "corrupt").await;
    }
    let mut invalid_utf8 = record_bytes(0, T0, T0, r#"{"v":{"a":""#);
    invalid_utf8.extend_from_slice(b"\xff\"}}");
    assert_rejected(&env, &forge(&env.ring, NAME, &invalid_utf8), "corrupt").await;
    // Unknown flag bits, and the id flag without an id.
    for flags in [0x04, 0x80, 0xff, 0x02] {
        let value = forge(&env.ring, NAME, &record_bytes(flags, T0, T0, ""));
        assert_rejected(&env, &value, "corrupt").await;
    }
    // Too short to hold the timestamps.
    assert_rejected(&env, &forge(&env.ring, NAME, &[0; 16]), "corrupt").await;
    assert_rejected(&env, &forge(&env.ring, NAME, b""), "corrupt").await;

    // Nesting far beyond any cookie parses without exhausting the stack, through the public
    // record decoder that every store uses.
    let mut deep = record_bytes(0, T0, T0, "");
    deep.extend_from_slice(nested(100_000).as_bytes());
    assert!(Record::from_bytes(&deep).is_err());
    let mut wide = record_bytes(0, T0, T0, r#"{"v":{"a":["#);
    wide.extend_from_slice("0,".repeat(1_000_000).as_bytes());
    wide.extend_from_slice(b"0]}}");
    assert_eq!(Record::from_bytes(&wide).unwrap().values().len(), 1);
}

/// Case 19: well-formed records with values of unexpected types or sizes load, and the
/// mismatch is a typed error where the application reads the value.
#[tokio::test]
async fn authentic_values_of_the_wrong_type_fail_on_read() {
    let env = Env::new();
    let big_array = format!("[{}0]", "0,".repeat(1_400));
    let json = format!(
        r#"{{"v":{{"user":42,"lone":"\ud800","huge":1e400,"long":123456789012345678901234567890,"arr":{big_array}}},"f":{{"_flash":[1,"two"]}}}}"#
    );
    let value = forge(&env.ring, NAME, &record_bytes(0, T0, T0, &json));
    assert!(value.len() <= MAX_SEALED_LEN);
    env.send(Some(&format!("{NAME}={value}")), |s| {
        assert!(!s.is_new());
        assert_eq!(
            s.get::<String>("user").unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        assert_eq!(s.get::<u8>("user").unwrap(), Some(42));
        // A lone surrogate is valid JSON syntax but no Rust string.
        assert_eq!(
            s.get::<String>("lone").unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        assert_eq!(
            s.get::<f64>("huge").unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        assert_eq!(
            s.get::<u64>("long").unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        assert_eq!(
            s.get::<Vec<u8>>("arr").unwrap().map(|v| v.len()),
            Some(1_401)
        );
        assert_eq!(
            s.get::<()>("arr").unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        // A failed take leaves the flashes in place.
        assert_eq!(
            s.take_flashes::<String>().unwrap_err().kind(),
            ErrorKind::Deserialize
        );
        let all = s.take_flashes::<serde_json::Value>().unwrap();
        assert_eq!(all, [serde_json::json!(1), serde_json::json!("two")]);
    })
    .await
    .assert_ok();
    assert!(env.reasons().is_empty());
}

/// The JSON body length of `{"v":{"k":"xxx…"}}` with `n` x's.
fn body_len(n: usize) -> usize {
    r#"{"v":{"k":""}}"#.len() + n
}

/// Saves a fresh session holding `k = "x" * n`, returning the response.
async fn save_string(env: &Env, n: usize, persistent: bool) -> crate::support::Response {
    env.send(None, |s| {
        s.insert("k", "x".repeat(n)).unwrap();
        s.set_persistent(persistent);
    })
    .await
}

/// Case 20: a session too large for a cookie is a typed error at save time, and no
/// `Set-Cookie` is written (so no response "succeeds" while the browser keeps an old cookie
/// or truncates a new one). This also pins how much JSON fits under the default settings.
#[tokio::test]
async fn too_large_for_a_cookie_is_an_error_and_sets_nothing() {
    let env = Env::new();
    let suffix_len = env.config.cookie().cookie_line("").len() - NAME.len() - 1;
    assert_eq!(suffix_len, "; HttpOnly; SameSite=Lax; Secure; Path=/".len());

    // The largest body whose Set-Cookie line is at most 4096 bytes: 2972 bytes of JSON, as
    // base64 inflates (record header + sealing overhead + JSON) by 4/3.
    let mut largest = None;
    for n in 2_940..2_980 {
        if save_string(&env, n, false).await.result.is_ok() {
            largest = Some(n);
        }
    }
    let n = largest.unwrap();
    assert_eq!(body_len(n), 2_972);
    let sealed_len = (4 * (OVERHEAD + 17 + body_len(n))).div_ceil(3);
    assert_eq!(NAME.len() + 1 + sealed_len + suffix_len, 4_096);
    let response = save_string(&env, n, false).await;
    response.assert_ok();
    assert_eq!(response.set_cookies()[0].len(), 4_096);

    let response = save_string(&env, n + 1, false).await;
    let err = response.result.as_ref().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::CookieTooLarge {
            size: 4_097,
            limit: 4_096
        }
    );
    assert!(err.is_cookie_too_large());
    assert_eq!(
        response.dump(),
        vary_only(),
        "no Set-Cookie, no Cache-Control"
    );
    assert_eq!(
        err.to_string(),
        "session cookie `__Host-id` not set: Set-Cookie would be 4097 bytes, over the limit of 4096"
    );

    // "Remember me" adds `; Max-Age=2592000` (17 bytes), so 13 bytes less JSON fit.
    save_string(&env, n - 13, true).await.assert_ok();
    let response = save_string(&env, n - 12, true).await;
    assert!(response.result.as_ref().unwrap_err().is_cookie_too_large());
    assert!(response.set_cookies().is_empty());

    // Growing an existing session over the limit: error, and its old cookie is left alone.
    let old = issue(&env).await;
    let response = env
        .send(Some(&format!("{NAME}={old}")), |s| {
            s.insert("k", "x".repeat(4_000)).unwrap();
        })
        .await;
    assert!(response.result.as_ref().unwrap_err().is_cookie_too_large());
    assert_eq!(response.dump(), vary_only());

    // A lower limit for clients that keep less.
    let small = env.config.clone().with_max_set_cookie_len(200);
    let response = env
        .send_to(&small, None, |s| s.insert("k", "x".repeat(100)).unwrap())
        .await;
    let ErrorKind::CookieTooLarge { size, limit } = response.result.as_ref().unwrap_err().kind()
    else {
        panic!("expected CookieTooLarge");
    };
    assert_eq!((limit, size > 200), (200, true));
}

/// Case 20 with two sessions: the one that fits is still written, the error is returned, and
/// the too-large one sets nothing (an adapter turns the error into a 500).
#[tokio::test]
async fn one_session_too_large_does_not_block_the_other() {
    let env = Env::new();
    let other = env.config(&env.ring, CookieConfig::new("other").unwrap());
    let sessions = Sessions::new(&HeaderMap::new());
    sessions
        .get(&env.config)
        .await
        .unwrap()
        .insert("k", "x".repeat(4_000))
        .unwrap();
    sessions.get(&other).await.unwrap().insert("k", 1).unwrap();
    let mut headers = HeaderMap::new();
    let err = sessions.save_all(&mut headers).await.unwrap_err();
    assert!(err.is_cookie_too_large());
    let lines: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].to_str().unwrap().starts_with("__Host-other="));
    assert_eq!(headers[VARY], "Cookie");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
}
