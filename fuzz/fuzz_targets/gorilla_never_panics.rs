//! Any bytes, as a gob stream or as a gorilla/securecookie value, are refused or decoded
//! without a panic; decoded gob is written and read back stably, as a value and as a gorilla
//! session; a forged value never opens.

#![no_main]

use fastsession_core::time::UnixTime;
use fastsession_gorilla::{GorillaFormat, SecureCookie, gob};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Gob: decodes or fails; bounded in depth and size whatever the input claims. What
    // decodes and can be written again (a forged stream may hold numbers beyond the width
    // its names claim) reads back with the same type, and then it is stable.
    if let Ok((ty, value)) = gob::decode(data)
        && let Ok(again) = gob::encode(&ty, &value)
    {
        let (read_ty, read) = gob::decode(&again).expect("re-encoded gob decodes");
        assert_eq!(read_ty, ty);
        // Bytes, not values: a NaN is not equal to itself.
        let third = gob::encode(&read_ty, &read).expect("what was written is writable");
        assert_eq!(third, again);
    }

    // As a gorilla session: a record or an error. A record is written back and reads back
    // with the same keys; from then on it is stable (the first write drops zero-valued struct
    // fields, which Go never sends but a forged stream may).
    let format = GorillaFormat::new()
        .with_flash_key("errors")
        .with_user_key("uid");
    let now = UnixTime::from_secs(1_700_000_000);
    if let Ok((record, origin)) = format.read_gob(data, now)
        && let Ok(written) = format.write_gob(&record, &origin)
    {
        let (read, origin) = format
            .read_gob(&written, now)
            .expect("a written session reads back");
        let keys = |r: &fastsession_core::session::Record| {
            r.values().map(|(k, _)| k.to_owned()).collect::<Vec<_>>()
        };
        assert_eq!(keys(&read), keys(&record));
        assert_eq!(read.user_id(), record.user_id());
        let again = format
            .write_gob(&read, &origin)
            .expect("what was written is writable");
        assert_eq!(
            format.read_gob(&again, now).expect("and reads back").0,
            read
        );
    }

    // securecookie: random text is never a valid signature (the seeds are signed with
    // another key: they reach the signature check, not past it).
    let text = String::from_utf8_lossy(data);
    let codec = SecureCookie::new(
        b"a hash key none of the seeds was signed with",
        Some(b"fedcba9876543210"),
    )
    .expect("valid keys");
    assert!(
        codec
            .decode_bytes("session", &text, UnixTime::from_secs(1_700_000_000))
            .is_err()
    );
});
