//! Any bytes, as a gob stream or as a gorilla/securecookie value, are refused or decoded
//! without a panic; a forged value never opens.

#![no_main]

use fastsession_core::time::UnixTime;
use fastsession_gorilla::{SecureCookie, gob};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Gob: decodes or fails; bounded in depth and size whatever the input claims.
    let _ = gob::decode(data);

    // securecookie: random text is never a valid signature (the seeds are signed with
    // another key: they reach the signature check, not past it).
    let text = String::from_utf8_lossy(data);
    let codec = SecureCookie::new(b"a hash key none of the seeds was signed with", Some(b"fedcba9876543210"))
        .expect("valid keys");
    assert!(
        codec
            .decode_bytes("session", &text, UnixTime::from_secs(1_700_000_000))
            .is_err()
    );
});
