//! Benchmarks of fastsession, side by side with peers; see `benches/` and `BENCHMARKS.md`.
//!
//! This library holds what the bench files share: the 100-byte payload, and [`Sketch`], the
//! codec's format rebuilt with the cheaper choices `BENCHMARKS.md` suggests, so that the gain
//! of those suggestions is measured in the same run as the codec and its peer.

use std::sync::Mutex;

pub mod serving;

use base64::Engine as _;
use base64::engine::general_purpose::GeneralPurposeConfig;
use base64::engine::{DecodePaddingMode, Simd};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

/// The load benchmark's server modes (`benches/load`), in the order the driver runs them.
pub const LOAD_MODES: &[&str] = &[
    "hyper",
    "hyper-tower",
    "fastsession-untouched",
    "fastsession-cookie",
    "fastsession-memory",
    "tower-sessions-untouched",
    "tower-sessions",
    "actix",
    "actix-session",
    "floor-cookie",
];

/// The load benchmark's modes over a shared store, in the order the driver runs
/// them: the peers with their own Redis and PostgreSQL stores, fastsession's, and
/// `floor-redis`, the least a store with fastsession's Redis contract sends, without any
/// session library. All of them run the read-modify-write handler.
pub const DISTRIBUTED_MODES: &[&str] = &[
    "tower-sessions-redis",
    "actix-session-redis",
    "fastsession-redis",
    "floor-redis",
    "floor-plain-redis",
    "tower-sessions-postgres",
    "fastsession-postgres",
];

/// Every mode `load-server` knows.
pub fn all_load_modes() -> impl Iterator<Item = &'static str> {
    LOAD_MODES.iter().chain(DISTRIBUTED_MODES).copied()
}

/// The sets of modes `load-bench --suite` selects; `default` is [`LOAD_MODES`].
pub const LOAD_SUITES: &[(&str, &[&str])] = &[
    ("default", LOAD_MODES),
    (
        "redis",
        &[
            "tower-sessions-redis",
            "actix-session-redis",
            "fastsession-redis",
            "floor-redis",
        ],
    ),
    (
        "postgres",
        &["tower-sessions-postgres", "fastsession-postgres"],
    ),
    ("distributed", DISTRIBUTED_MODES),
];

/// Where the distributed modes find their servers unless told otherwise
/// (`FASTSESSION_BENCH_REDIS_URL`, `FASTSESSION_BENCH_POSTGRES_URL`).
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// See [`REDIS_URL`].
pub const POSTGRES_URL: &str = "postgres://127.0.0.1:5432/test";

/// The Redis database that `tower-sessions-redis` runs in: its store cannot prefix its keys
/// (the key is the bare session id), so it gets a database of its own, reserved for this
/// benchmark, which its clean-up empties.
pub const TOWER_SESSIONS_REDIS_DB: u8 = 13;

/// The size of `tower-sessions-redis`'s fred pool (`FASTSESSION_BENCH_FRED_POOL` changes it).
pub const FRED_POOL_SIZE: usize = 1;

/// 100 bytes of ASCII: the size of a small session (a user id, a CSRF token, a theme).
pub const PAYLOAD: &str = r#"{"v":{"csrf":"q83vASNFZ4mrze8BI0VniavN7w","theme":"dark","uid":4711,"user":"gopher"},"x":"01234567"}"#;

/// The purpose the cookie store derives its keys for.
pub const PURPOSE: &str = "session-cookie";

/// version (1) ‖ key id (4)
const HEADER_LEN: usize = 5;
/// header ‖ nonce (24)
const PREFIX_LEN: usize = HEADER_LEN + 24;
const TAG_LEN: usize = 16;

/// base64url without padding through the runtime-detected SIMD engine that `base64` 0.23
/// ships (AVX2 on x86-64, NEON on aarch64, scalar otherwise), accepting only the canonical
/// form: no padding and zero trailing bits, like the codec's `URL_SAFE_NO_PAD`.
#[must_use]
pub fn url_safe_simd() -> Simd {
    Simd::url_safe(
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// The associated data of format 1 written on the stack:
/// `"fastsession\0" ‖ header ‖ purpose ‖ 0 ‖ name`.
///
/// # Panics
///
/// If it does not fit in `buf` (a real version would fall back to a `Vec` for long names).
pub fn aad_on_stack<'a>(buf: &'a mut [u8; 128], header: &[u8], name: &str) -> &'a [u8] {
    let parts: [&[u8]; 5] = [
        b"fastsession\0",
        header,
        PURPOSE.as_bytes(),
        b"\0",
        name.as_bytes(),
    ];
    let mut at = 0;
    for part in parts {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    &buf[..at]
}

fn inner_nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// The codec's format 1 (same layout, associated data, AEAD and nonce scheme, with the
/// HChaCha20 sub-key of one nonce prefix computed once as the codec does), built with:
///
/// * base64url through [`url_safe_simd`] instead of the scalar `general_purpose` engine;
/// * the associated data on the stack ([`aad_on_stack`]) instead of a `Vec`;
/// * buffers of exact size: two allocations per seal (buffer, text) instead of three, one per
///   open instead of two.
///
/// It is a measuring device, not a codec: one fixed key and key id, no key ring.
#[derive(Debug)]
pub struct Sketch {
    key: LessSafeKey,
    prefix: [u8; 16],
    counter: Mutex<u64>,
    b64: Simd,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::new()
    }
}

impl Sketch {
    /// A sketch with a fixed key and nonce prefix.
    ///
    /// # Panics
    ///
    /// Never: the key has the length ChaCha20-Poly1305 takes.
    #[must_use]
    pub fn new() -> Self {
        let key: Vec<u8> = (1..=32).collect();
        Sketch {
            key: LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).expect("32 bytes")),
            prefix: [7; 16],
            counter: Mutex::new(0),
            b64: url_safe_simd(),
        }
    }

    /// Seals `plaintext` for the cookie `name`.
    ///
    /// # Panics
    ///
    /// Never for cookie-sized input.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> String {
        let n = {
            let mut counter = self.counter.lock().expect("not poisoned");
            *counter += 1;
            *counter
        };
        let mut buf = Vec::with_capacity(PREFIX_LEN + plaintext.len() + TAG_LEN);
        buf.push(1);
        buf.extend_from_slice(&1u32.to_be_bytes());
        buf.extend_from_slice(&self.prefix);
        buf.extend_from_slice(&n.to_be_bytes());
        buf.extend_from_slice(plaintext);
        let mut aad = [0u8; 128];
        let aad = aad_on_stack(&mut aad, &buf[..HEADER_LEN], name);
        let tag = self
            .key
            .seal_in_place_separate_tag(inner_nonce(n), Aad::from(aad), &mut buf[PREFIX_LEN..])
            .expect("cookie-sized input");
        buf.extend_from_slice(tag.as_ref());
        self.b64.encode(&buf)
    }

    /// Opens a value sealed for `name`; like the codec's `Opened`, returns the whole buffer,
    /// whose plaintext starts at byte 29.
    #[must_use]
    pub fn open(&self, name: &str, sealed: &str) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(sealed.len() / 4 * 3 + 3);
        self.b64.decode_vec(sealed, &mut buf).ok()?;
        if buf.len() < PREFIX_LEN + TAG_LEN
            || buf[0] != 1
            || buf[1..HEADER_LEN] != 1u32.to_be_bytes()
        {
            return None;
        }
        if buf[HEADER_LEN..HEADER_LEN + 16] != self.prefix {
            return None; // the codec would derive this prefix's sub-key here
        }
        let mut aad = [0u8; 128];
        let aad = aad_on_stack(&mut aad, &buf[..HEADER_LEN], name);
        let n = u64::from_be_bytes(buf[HEADER_LEN + 16..PREFIX_LEN].try_into().ok()?);
        let len = self
            .key
            .open_in_place(inner_nonce(n), Aad::from(aad), &mut buf[PREFIX_LEN..])
            .ok()?
            .len();
        buf.truncate(PREFIX_LEN + len);
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_round_trips_and_binds_the_name() {
        let sketch = Sketch::new();
        let sealed = sketch.seal("__Host-id", PAYLOAD.as_bytes());
        assert_eq!(sealed.len(), 194);
        let opened = sketch.open("__Host-id", &sealed).expect("opens");
        assert_eq!(&opened[PREFIX_LEN..], PAYLOAD.as_bytes());
        assert!(sketch.open("id", &sealed).is_none());
    }
}
