//! Reading the session cookies of a request: finding a cookie in the `Cookie` headers,
//! parsing a session id from its value, and reporting a rejected one.

use http::HeaderValue;

use super::SessionConfig;
use crate::session::SessionId;
use crate::store::RejectReason;

/// What the request's `Cookie` headers hold for one name.
pub(super) enum CookieLookup<'a> {
    None,
    One(&'a [u8]),
    Several,
}

/// The most duplicated values of one cookie a logout tries to end.
const MAX_PRESENTED: usize = 4;

/// The session id a cookie value names for `config`: a bare id, or with
/// [`SessionConfig::with_signed_id`] a signed one (then also whether a retired key signed it).
pub(super) fn parse_id(
    config: &SessionConfig,
    value: &str,
) -> std::result::Result<(SessionId, bool), RejectReason> {
    let Some(signer) = config.id_signer() else {
        return SessionId::parse(value)
            .map(|id| (id, false))
            .ok_or(RejectReason::Malformed);
    };
    // One length, one canonical text: anything else is refused before any decoding.
    if value.len() != super::config::SIGNED_ID_LEN {
        return Err(RejectReason::Malformed);
    }
    let verified = signer
        .verify(config.cookie().name(), value)
        .map_err(RejectReason::of_open_error)?;
    // The length check leaves 32 bytes; were it otherwise, an authentic value of ours that is
    // not an id.
    let bytes = verified
        .plaintext()
        .try_into()
        .map_err(|_| RejectReason::Corrupt)?;
    Ok((SessionId::from_bytes(bytes), verified.is_stale()))
}

pub(super) fn reject(name: &str, reason: RejectReason) {
    // Every rejection at `debug`; at `warn`/`info` only the summary of `events`, since a
    // client can cause one per request.
    tracing::debug!(
        target: "fastsession::security",
        cookie = name,
        reason = reason.as_str(),
        "session cookie rejected; starting a fresh session"
    );
    crate::events::record(crate::events::Event::Rejected(reason));
}

/// Finds the cookie called `name` in the `Cookie` headers, without allocating.
///
/// More than one cookie of that name (`id=A; id=B`, or one for `/` and one for `/sub`, or
/// one tossed in from a parent domain) is reported as [`CookieLookup::Several`]: which one the
/// browser meant cannot be known, so none is trusted.
pub(super) fn find_cookie<'a>(headers: &'a [HeaderValue], name: &str) -> CookieLookup<'a> {
    let mut found = CookieLookup::None;
    for header in headers {
        let bytes = header.as_bytes();
        let mut start = 0;
        // memchr finds the separators with SIMD; a sealed cookie is a long run without one.
        let ends = memchr::memchr_iter(b';', bytes).chain(std::iter::once(bytes.len()));
        for end in ends {
            let pair = bytes[start..end].trim_ascii();
            start = end + 1;
            let Some(rest) = pair.strip_prefix(name.as_bytes()) else {
                continue;
            };
            let Some(value) = rest.strip_prefix(b"=") else {
                continue;
            };
            found = match found {
                CookieLookup::None => CookieLookup::One(value),
                _ => return CookieLookup::Several,
            };
        }
    }
    found
}

/// Every value of the cookie called `name` in the `Cookie` headers, at most
/// [`MAX_PRESENTED`] of them, each at most the longest sealed value.
pub(super) fn all_cookies(headers: &[HeaderValue], name: &str) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    for header in headers {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let Some(value) = pair
                .trim_ascii()
                .strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
            else {
                continue;
            };
            if let Ok(value) = std::str::from_utf8(value)
                && value.len() <= crate::codec::MAX_SEALED_LEN
                && out.len() < MAX_PRESENTED
                && !out.iter().any(|v| v.as_ref() == value)
            {
                out.push(value.into());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> Vec<HeaderValue> {
        values
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect()
    }

    #[test]
    fn cookie_lookup() {
        let h = headers(&["a=1; id=xyz;b=2", "c=3"]);
        assert!(matches!(find_cookie(&h, "id"), CookieLookup::One(b"xyz")));
        assert!(matches!(find_cookie(&h, "i"), CookieLookup::None));
        assert!(matches!(find_cookie(&h, "c"), CookieLookup::One(b"3")));
        let dup = headers(&["id=A; id=B"]);
        assert!(matches!(find_cookie(&dup, "id"), CookieLookup::Several));
        let split = headers(&["id=A", "x=1; id=B"]);
        assert!(matches!(find_cookie(&split, "id"), CookieLookup::Several));
        assert!(matches!(
            find_cookie(&headers(&["id="]), "id"),
            CookieLookup::One(b"")
        ));
    }

    mod signed_ids {
        use super::*;
        use crate::codec::{Key, KeyRing};
        use crate::http::CookieConfig;
        use crate::store::{CookieStore, MemoryStore};
        use proptest::prelude::*;
        use std::sync::LazyLock;

        fn keys(id: u32) -> KeyRing {
            let secret: Vec<u8> = (0..32u8).map(|i| i ^ 0x5c).collect();
            KeyRing::new(Key::from_secret(&secret).unwrap().with_id(id))
        }

        fn memory() -> SessionConfig {
            SessionConfig::new(
                MemoryStore::new().unwrap(),
                CookieConfig::new("id").unwrap(),
            )
        }

        static SIGNED: LazyLock<SessionConfig> =
            LazyLock::new(|| memory().with_signed_id(&keys(1)));
        static PLAIN: LazyLock<SessionConfig> = LazyLock::new(memory);

        #[test]
        fn the_option_applies_to_stores_of_ids_only() {
            assert!(SIGNED.id_signer().is_some());
            assert_eq!(SIGNED.signed_id_overhead(), 28);
            assert!(PLAIN.id_signer().is_none());
            assert_eq!(PLAIN.signed_id_overhead(), 0);
            let cookie =
                SessionConfig::new(CookieStore::new(&keys(1)), CookieConfig::new("c").unwrap())
                    .with_signed_id(&keys(1));
            assert!(cookie.id_signer().is_none());
            assert_eq!(cookie.signed_id_overhead(), 0);
            let shown = format!("{:?}", *SIGNED);
            assert!(
                shown.contains(
                    r#"id_signer: Some(Signer { purpose: "signed-session-id", key_ids: [1], .. })"#
                ),
                "{shown}"
            );
        }

        #[test]
        fn a_retired_key_verifies_and_asks_for_a_new_signature() {
            let old = memory().with_signed_id(&keys(1));
            let secret: Vec<u8> = (0..32u8).map(|i| i ^ 0x5c).collect();
            let ring = keys(2)
                .with_retired(Key::from_secret(&secret).unwrap())
                .unwrap();
            let rotated = memory().with_signed_id(&ring);
            let id = SessionId::generate().unwrap();
            let signed = old.id_signer().unwrap().sign("__Host-id", id.as_bytes());
            assert_eq!(parse_id(&rotated, &signed), Ok((id.clone(), true)));
            assert_eq!(parse_id(&old, &signed), Ok((id, false)));
            assert_eq!(
                parse_id(&memory().with_signed_id(&keys(2)), &signed),
                Err(RejectReason::UnknownKey)
            );
        }

        proptest! {
            /// With the option, exactly the signed ids parse, to their id; bare ids and any
            /// other text are refused. Without it, signed ids are refused.
            #[test]
            fn only_signed_ids_parse(bytes in any::<[u8; 32]>(), text in "\\PC{0,100}") {
                let id = SessionId::from_bytes(bytes);
                let signed = SIGNED.id_signer().unwrap().sign("__Host-id", &bytes);
                prop_assert_eq!(signed.len(), crate::http::config::SIGNED_ID_LEN);
                prop_assert_eq!(parse_id(&SIGNED, &signed), Ok((id.clone(), false)));
                prop_assert_eq!(parse_id(&SIGNED, id.as_str()), Err(RejectReason::Malformed));
                prop_assert_eq!(parse_id(&PLAIN, &signed), Err(RejectReason::Malformed));
                prop_assert_eq!(parse_id(&PLAIN, id.as_str()), Ok((id, false)));
                let other = SIGNED.id_signer().unwrap().sign("__Host-other", &bytes);
                prop_assert_eq!(parse_id(&SIGNED, &other), Err(RejectReason::NotAuthentic));
                prop_assert!(parse_id(&SIGNED, &text).is_err());
            }
        }
    }
}
