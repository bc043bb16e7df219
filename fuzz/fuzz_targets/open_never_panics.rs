//! Any bytes, as a sealed or signed value, a record, a session id or a `Cookie` header (for a
//! cookie store, a signed cookie store and a signed id), are refused without a panic; and
//! whatever parses is canonical.

#![no_main]

use fastsession_core::http::Sessions;
use fastsession_core::session::{Record, SessionId};
use fastsession_fuzz::{
    COOKIE_NAME, block_on, codec, config, retired_codec, signed_id_config, signed_store_config,
    signer,
};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // The codec: random text never opens, under any of the names or codecs.
    for name in ["id", COOKIE_NAME, ""] {
        assert!(codec().open(name, &text).is_err());
        assert!(retired_codec().open(name, &text).is_err());
        assert!(signer().verify(name, &text).is_err());
    }

    // The record parser: anything it accepts survives its own encoding.
    if let Ok(record) = Record::from_bytes(data) {
        let again = Record::from_bytes(&record.to_bytes()).expect("re-encoded record parses");
        assert_eq!(again, record);
    }

    // Session ids: only the canonical text parses, and it is its own text form.
    if let Some(id) = SessionId::parse(&text) {
        assert_eq!(id.as_str(), text);
    }

    // The registry: the bytes as a whole `Cookie` header, and as the session cookie's value.
    let mut prefixed = format!("{COOKIE_NAME}=").into_bytes();
    prefixed.extend_from_slice(data);
    for header in [data, &prefixed[..]] {
        let Ok(value) = HeaderValue::from_bytes(header) else {
            continue;
        };
        for config in [config(), signed_store_config(), signed_id_config()] {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, value.clone());
            let sessions = Sessions::new(&headers);
            let session = block_on(sessions.get(config)).expect("these stores never fail to load");
            assert!(session.is_new(), "a forged cookie yields a fresh session");
            assert!(session.is_empty());
            let mut response = HeaderMap::new();
            block_on(sessions.save_all(&mut response)).expect("an untouched session saves nothing");
            assert!(!response.contains_key("set-cookie"), "and sets no cookie");
        }
    }
});
