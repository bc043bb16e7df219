//! Tampered, truncated, moved and re-encoded cookies (security cases 1-5, 12, 14, 15, 16).
//!
//! Every one must give the request a fresh, empty session, write nothing but `Vary: Cookie`,
//! and emit one security event whose `reason` says why.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use fastsession_core::codec::{Codec, OVERHEAD};
use fastsession_core::http::CookieConfig;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::support::{COOKIE_PURPOSE, Env, NAME, T0, b64_decode, b64_encode, forge, record_bytes};

/// Byte offsets of the sealed layout: version, key id, nonce, ciphertext, tag.
const KEY_ID: std::ops::Range<usize> = 1..5;
const NONCE_END: usize = 29;
const TAG_LEN: usize = 16;

/// The only header a request with a rejected cookie and a read-only handler gets.
pub(crate) fn vary_only() -> Vec<(String, String)> {
    vec![("vary".to_owned(), "Cookie".to_owned())]
}

/// Issues a session holding `user = "gopher"` and returns its cookie value.
pub(crate) async fn issue(env: &Env) -> String {
    let response = env
        .send(None, |s| s.insert("user", "gopher").unwrap())
        .await;
    response.assert_ok();
    response.value()
}

/// Presents `value` as the session cookie and asserts it is rejected for `reason`.
pub(crate) async fn assert_rejected(env: &Env, value: &str, reason: &str) {
    let mut request = HeaderMap::new();
    let header = format!("{NAME}={value}");
    request.insert(COOKIE, HeaderValue::from_bytes(header.as_bytes()).unwrap());
    assert_rejected_request(env, &request, reason).await;
}

pub(crate) async fn assert_rejected_request(env: &Env, request: &HeaderMap, reason: &str) {
    let mut seen = None;
    let response = env
        .send_headers(&env.config, request, |s| {
            seen = Some((
                s.is_new(),
                s.is_empty(),
                s.get::<String>("user").ok().flatten(),
            ));
        })
        .await;
    let shown: String = format!("{request:?}").chars().take(300).collect();
    assert_eq!(
        seen,
        Some((true, true, None)),
        "not a fresh session for {reason}: {shown}"
    );
    response.assert_ok();
    assert_eq!(response.dump(), vary_only(), "{shown}");
    assert_eq!(env.reasons(), [reason], "{shown}");
}

async fn assert_accepted(env: &Env, value: &str) {
    let response = env
        .send(Some(&format!("{NAME}={value}")), |s| {
            assert!(!s.is_new());
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    response.assert_ok();
    assert!(env.reasons().is_empty());
}

/// What the spec says a modified text must give: not canonical base64url or too short to
/// hold a header, nonce and tag is malformed; anything else fails the tag.
fn expected_reason(text: &str) -> &'static str {
    match URL_SAFE_NO_PAD.decode(text) {
        Ok(raw) if raw.len() >= OVERHEAD => match raw[0] {
            1 if raw[KEY_ID] == [0, 0, 0, 1] => "not_authentic",
            1 => "unknown_key",
            _ => "unknown_version",
        },
        _ => "malformed",
    }
}

/// Case 1: one bit flipped in every position of the decoded cookie.
#[tokio::test]
async fn every_single_bit_flip_is_rejected() {
    let env = Env::new();
    let sealed = issue(&env).await;
    let raw = b64_decode(&sealed);
    assert_eq!(&raw[..5], &[1, 0, 0, 0, 1], "version 1, key id 1");
    for i in 0..raw.len() {
        let reason = match i {
            0 => "unknown_version",
            i if KEY_ID.contains(&i) => "unknown_key",
            _ => "not_authentic",
        };
        for bit in 0..8 {
            let mut flipped = raw.clone();
            flipped[i] ^= 1 << bit;
            assert_rejected(&env, &b64_encode(&flipped), reason).await;
        }
    }
    // The untouched cookie still opens: the loop above rejected changes, not the cookie.
    assert_accepted(&env, &sealed).await;
}

/// Case 2: a truncated tag, an empty ciphertext, and values shorter than nonce + tag.
#[tokio::test]
async fn truncations_are_rejected() {
    let env = Env::new();
    let raw = b64_decode(&issue(&env).await);
    let len = raw.len();
    for kept_tag in [15, 12, 4, 1, 0] {
        let cut = &raw[..len - TAG_LEN + kept_tag];
        // Still long enough to parse: the last 16 bytes are taken as the tag and fail.
        assert!(cut.len() >= OVERHEAD);
        assert_rejected(&env, &b64_encode(cut), "not_authentic").await;
    }
    let mut empty_ciphertext = raw[..NONCE_END].to_vec();
    empty_ciphertext.extend_from_slice(&raw[len - TAG_LEN..]);
    assert_rejected(&env, &b64_encode(&empty_ciphertext), "not_authentic").await;
    for short in [OVERHEAD - 1, NONCE_END, 5, 1] {
        assert_rejected(&env, &b64_encode(&raw[..short]), "malformed").await;
    }
    assert_rejected(&env, "", "malformed").await;
}

/// Case 3: parts moved around, separators other formats use, trailing garbage.
#[tokio::test]
async fn reordered_parts_and_trailing_garbage_are_rejected() {
    let env = Env::new();
    let sealed = issue(&env).await;
    let raw = b64_decode(&sealed);
    let len = raw.len();
    let (header, nonce) = (&raw[..5], &raw[5..NONCE_END]);
    let (body, tag) = (&raw[NONCE_END..len - TAG_LEN], &raw[len - TAG_LEN..]);

    let reorder = |parts: &[&[u8]]| b64_encode(&parts.concat());
    let mut cases = vec![
        reorder(&[header, tag, body, nonce]),
        reorder(&[header, body, nonce, tag]),
        reorder(&[header, nonce, tag, body]),
        reorder(&[nonce, header, body, tag]),
        format!("{}{}", &sealed[1..], &sealed[..1]),
    ];
    // Separators of dotted formats (JWT, itsdangerous, gorilla's `|`): this format has none.
    let mid = sealed.len() / 2;
    for sep in [".", "..", "|", "||", ":"] {
        cases.push(format!("{}{sep}{}", &sealed[..mid], &sealed[mid..]));
        cases.push(format!("{sealed}{sep}"));
        cases.push(format!("{sep}{sealed}"));
    }
    cases.push(".".to_owned());
    for garbage in ["A", "AA", "AAA", "AAAA", "x", "-_", &sealed] {
        cases.push(format!("{sealed}{garbage}"));
    }
    for case in cases {
        assert_ne!(case, sealed);
        assert_rejected(&env, &case, expected_reason(&case)).await;
    }
    // Both kinds of rejection occurred, so the oracle did not classify everything alike.
    assert_eq!(expected_reason(&format!("{sealed}.")), "malformed");
    assert_eq!(
        expected_reason(&reorder(&[header, tag, body, nonce])),
        "not_authentic"
    );
}

/// Case 4: a cookie moved to another cookie name does not open (the name is associated data).
#[tokio::test]
async fn cookie_moved_to_another_name_is_rejected() {
    let env = Env::new();
    let a = env.config(&env.ring, CookieConfig::new("a").unwrap());
    let b = env.config(&env.ring, CookieConfig::new("b").unwrap());
    let issued = env
        .send_to(&a, None, |s| s.insert("user", "gopher").unwrap())
        .await;
    let value = crate::support::set_value(&issued.headers, "__Host-a").unwrap();

    let swapped = env
        .send_to(&b, Some(&format!("__Host-b={value}")), |s| {
            assert!(s.is_new() && s.is_empty());
        })
        .await;
    assert!(swapped.set_cookies().is_empty());
    assert_eq!(env.reasons(), ["not_authentic"]);

    // The prefix is part of the name: the same value under the bare name fails too.
    let bare = env.config(
        &env.ring,
        CookieConfig::builder("a")
            .with_insecure_development_mode()
            .build()
            .unwrap(),
    );
    let response = env
        .send_to(&bare, Some(&format!("a={value}")), |s| assert!(s.is_new()))
        .await;
    assert!(response.set_cookies().is_empty());
    assert_eq!(env.reasons(), ["not_authentic"]);

    // Under its own name it opens.
    env.send_to(&a, Some(&format!("__Host-a={value}")), |s| {
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
    })
    .await;
    assert!(env.reasons().is_empty());
}

/// Case 5: a value the same key ring sealed for another purpose is not a session.
#[tokio::test]
async fn value_sealed_for_another_purpose_is_rejected() {
    let env = Env::new();
    let plaintext = record_bytes(0, T0, T0, r#"{"v":{"user":"gopher"}}"#);
    for purpose in [
        "flash",
        "csrf",
        "remember-me",
        "session",
        "session-cookie\0",
    ] {
        let other = Codec::new(&env.ring, purpose)
            .seal(NAME, &plaintext)
            .unwrap();
        assert_rejected(&env, &other, "not_authentic").await;
    }
    // The same plaintext sealed for the store's own purpose opens: only the purpose differed.
    let own = Codec::new(&env.ring, COOKIE_PURPOSE)
        .seal(NAME, &plaintext)
        .unwrap();
    assert_accepted(&env, &own).await;
}

/// Case 12: every kind of bad cookie gives byte-identical response headers and an identical
/// fresh session; only the internal event differs.
#[tokio::test]
async fn failures_are_externally_identical() {
    let env = Env::new();
    let good = issue(&env).await;
    let mut raw = b64_decode(&good);
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let bad_tag = b64_encode(&raw);
    raw[last] ^= 1;
    raw[0] = 2;
    let bad_version = b64_encode(&raw);
    raw[0] = 1;
    raw[4] = 9;
    let unknown_key = b64_encode(&raw);
    let expired = forge(
        &env.ring,
        NAME,
        &record_bytes(0, T0 - 86_400, T0 - 86_400, ""),
    );
    let future = forge(
        &env.ring,
        NAME,
        &record_bytes(0, T0 + 3_600, T0 + 3_600, ""),
    );
    let undeserializable = forge(&env.ring, NAME, &record_bytes(0, T0, T0, "{\"v\":[1]}"));
    let not_a_record = forge(&env.ring, NAME, b"\x00short");

    let cases = [
        ("malformed", "!!not base64!!".to_owned()),
        ("not_authentic", bad_tag),
        ("unknown_version", bad_version),
        ("unknown_key", unknown_key),
        ("idle_timeout", expired),
        ("from_the_future", future),
        ("corrupt", undeserializable),
        ("corrupt", not_a_record),
    ];
    let baseline = env.send(None, |s| _ = s.get::<String>("user")).await;
    for (reason, value) in cases {
        let response = env
            .send(Some(&format!("{NAME}={value}")), |s| {
                _ = s.get::<String>("user");
            })
            .await;
        response.assert_ok();
        assert_eq!(response.dump(), baseline.dump(), "{reason}");
        assert_eq!(response.dump(), vary_only(), "{reason}");
        assert!(response.was_new, "{reason}");
        assert_eq!(
            format!("{:?}", response.session),
            format!("{:?}", baseline.session)
        );
        assert_eq!(response.session.created(), baseline.session.created());
        assert_eq!(env.reasons(), [reason]);
    }

    // A handler that writes gets the same Set-Cookie attributes whatever was wrong.
    let shape = |line: &str| line.split_once(';').map(|(_, attrs)| attrs.to_owned());
    let fresh = env.send(None, |s| s.insert("k", 1).unwrap()).await;
    let tampered = env
        .send(Some(&format!("{NAME}=!!")), |s| s.insert("k", 1).unwrap())
        .await;
    assert_eq!(
        shape(&fresh.set_cookies()[0]),
        shape(&tampered.set_cookies()[0])
    );
    assert_eq!(
        fresh.set_cookies()[0].len(),
        tampered.set_cookies()[0].len()
    );
}

/// Case 14 (second half): a format version this build does not know.
#[tokio::test]
async fn unknown_format_versions_are_rejected() {
    let env = Env::new();
    let mut raw = b64_decode(&issue(&env).await);
    for version in [0, 2, 0x7f, 0x80, 0xff] {
        raw[0] = version;
        assert_rejected(&env, &b64_encode(&raw), "unknown_version").await;
    }
}

/// A sealed value whose decoded length leaves 4 trailing bits in its last character, with
/// both `-` and `_` in its text, so every encoding variant below really changes it.
fn awkward_token(env: &Env) -> String {
    for pad in 0..3 {
        let json = format!(r#"{{"v":{{"user":"gopher{}"}}}}"#, "x".repeat(pad));
        let plaintext = record_bytes(0, T0, T0, &json);
        if (OVERHEAD + plaintext.len()) % 3 != 1 {
            continue;
        }
        for _ in 0..10_000 {
            let token = forge(&env.ring, NAME, &plaintext);
            if token.contains('-') && token.contains('_') {
                return token;
            }
        }
    }
    unreachable!("one of three padding lengths is 1 mod 3, and random nonces vary the text")
}

/// Case 15: exactly one encoding of a token is accepted.
#[tokio::test]
async fn only_the_canonical_encoding_is_accepted() {
    let env = Env::new();
    let token = awkward_token(&env);
    assert_eq!(token.len() % 4, 2, "two characters for the last byte");
    let mut cases = vec![
        // Standard alphabet.
        token.replace('-', "+").replace('_', "/"),
        token.replace('-', "+"),
        token.replace('_', "/"),
        // Padding.
        format!("{token}=="),
        format!("{token}="),
        // Whitespace inside or in front of the value.
        format!("{} {}", &token[..20], &token[20..]),
        format!("{}\t{}", &token[..20], &token[20..]),
        format!(" {token}"),
        // Percent-encoding of one character, and of all.
        token.replacen('-', "%2D", 1),
        token.replacen('_', "%5F", 1),
        format!("%{:02X}{}", token.as_bytes()[0], &token[1..]),
        // The quoted form RFC 6265 allows.
        format!("\"{token}\""),
        // Case changes decode to other bytes.
        token.to_ascii_uppercase(),
        token.to_ascii_lowercase(),
    ];
    // Non-canonical trailing bits: the last character carries 4 unused bits that must be 0.
    let last = token.as_bytes()[token.len() - 1];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.iter().position(|&c| c == last).unwrap();
    assert_eq!(index & 0b1111, 0);
    let lenient = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    for bits in 1..16 {
        let mut variant = token.clone().into_bytes();
        *variant.last_mut().unwrap() = alphabet[index | bits];
        let variant = String::from_utf8(variant).unwrap();
        // A lax decoder reads the same bytes: accepting it would be a second form of one token.
        assert_eq!(lenient.decode(&variant).unwrap(), b64_decode(&token));
        cases.push(variant);
    }
    for case in cases {
        assert_ne!(case, token);
        let reason = expected_reason(&case);
        assert_rejected(&env, &case, reason).await;
    }
    // NUL cannot even be carried by an `http` header value; the codec refuses it too.
    assert!(HeaderValue::from_bytes(format!("{NAME}={token}\0").as_bytes()).is_err());
    let codec = Codec::new(&env.ring, COOKIE_PURPOSE);
    assert!(codec.open(NAME, &format!("{token}\0")).is_err());
    assert!(codec.open(NAME, &format!("\0{token}")).is_err());
    assert!(codec.open(NAME, &token).is_ok());

    // `; ` between pairs is header syntax, not part of the value.
    let response = env
        .send(Some(&format!("a=1;{NAME}={token} ;  b=2")), |s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    response.assert_ok();
    assert!(env.reasons().is_empty());
}

/// Case 16: non-ASCII bytes and invalid UTF-8 anywhere in the value, including a multibyte
/// character straddling the ciphertext/tag boundary.
#[tokio::test]
async fn non_ascii_and_invalid_utf8_are_rejected() {
    let env = Env::new();
    let token = issue(&env).await;
    let raw_len = b64_decode(&token).len();
    let tag_start = (raw_len - TAG_LEN) * 4 / 3;
    let inserts: [&[u8]; 5] = [
        b"\xc3\xa9",
        b"\xff",
        b"\xc3",
        b"\xe2\x82\xac",
        b"\xf0\x9f\x8d\xaa",
    ];
    for at in (0..=token.len()).chain([tag_start - 1, tag_start, tag_start + 1]) {
        for insert in inserts {
            let mut header = format!("{NAME}=").into_bytes();
            header.extend_from_slice(&token.as_bytes()[..at]);
            header.extend_from_slice(insert);
            header.extend_from_slice(&token.as_bytes()[at..]);
            let mut request = HeaderMap::new();
            request.insert(COOKIE, HeaderValue::from_bytes(&header).unwrap());
            assert_rejected_request(&env, &request, "malformed").await;
        }
    }
    // A multibyte character replacing the characters at the boundary.
    let replaced = format!("{}é{}", &token[..tag_start], &token[tag_start + 2..]);
    assert_rejected(&env, &replaced, "malformed").await;

    // Garbage in other cookies of the same header does not disturb the session.
    let mut header = b"x\xff=\xc3; ".to_vec();
    header.extend_from_slice(format!("{NAME}={token}").as_bytes());
    header.extend_from_slice(b"; \xe9t\xe9=\xff\xfe");
    let mut request = HeaderMap::new();
    request.insert(COOKIE, HeaderValue::from_bytes(&header).unwrap());
    let response = env
        .send_headers(&env.config, &request, |s| {
            assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("gopher"));
        })
        .await;
    response.assert_ok();
    assert!(env.reasons().is_empty());
}
