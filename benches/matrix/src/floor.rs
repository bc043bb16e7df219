//! The floors of the matrix ([`Library::Floor`](crate::Library::Floor)): sessions written by
//! hand with no session library, doing only what the contract every fastsession store keeps
//! asks for. What they cost is the least any library keeping that contract can cost on these
//! paths: [`MemoryFloor`] beside the memory store's cells, [`CookieFloor`] beside the cookie
//! store's.
//!
//! [`MemoryFloor`], with its [`FloorLayer`], is a session middleware for one store and one
//! session, shaped as any session library for tower must be: the layer puts the request's
//! session in its extensions, the handler loads it at first use, the layer saves it after the
//! handler, and the store's lock is not held across the handler. It keeps what fastsession's
//! memory store keeps on these paths: a 256-bit id from OS randomness (drawn 32 ids per
//! system call, as fastsession draws them); the strict one-form parse of the id; the store
//! indexes only a keyed hash of the id (keyed BLAKE3), never the id; a record with its
//! creation and last activity times, an optional deadline of its own, a user, values and
//! flashes; the idle timeout, the absolute lifetime and clock skew checked on every load, an
//! expired record never served; a save that writes only the values the request changed into
//! the stored record, under the store's lock, and never writes back a session that ended
//! meanwhile; a read-only request writing the session again once a quarter of its idle time
//! has passed; anonymous sessions bounded in count and bytes, least recently active evicted
//! first; creation never overwrites; the length of the `Set-Cookie` line checked; values
//! kept serialized (JSON) as a library keeping any type must; `Vary: Cookie` on every answer
//! whose handler used the session, and `Cache-Control: no-store` with the `Set-Cookie`.
//!
//! Left out, where fastsession does more: revocation markers and the index of users'
//! sessions (written only at login and logout), events, several named sessions from
//! several stores, stores behind a trait, errors as values, and the paths the matrix does
//! not take (regeneration, logout, flashes taken).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Path;

mod memory;

pub use memory::{FloorFuture, FloorLayer, FloorService, FloorSession, MemoryFloor};

/// Ten minutes without a request end a session, as the matrix sets for every library.
const IDLE_SECS: u64 = 600;
/// The cookie's attributes: fastsession's defaults without `Secure` (plain HTTP).
const ATTRIBUTES: &str = "; HttpOnly; SameSite=Lax; Path=/";

thread_local! {
    /// OS random bytes not yet handed out, as fastsession keeps them.
    static POOL: RefCell<([u8; 1024], usize)> = const { RefCell::new(([0; 1024], 1024)) };
}

fn random_id() -> Option<[u8; 32]> {
    POOL.with_borrow_mut(|(bytes, next)| {
        if *next + 32 > bytes.len() {
            getrandom::fill(bytes).ok()?;
            *next = 0;
        }
        let mut id = [0; 32];
        id.copy_from_slice(&bytes[*next..*next + 32]);
        bytes[*next..*next + 32].fill(0);
        *next += 32;
        Some(id)
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The value of the cookie `name` in one `Cookie` header's bytes.
#[must_use]
pub fn cookie_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii_start();
        pair.strip_prefix(name)?.strip_prefix(b"=")
    })
}

/// The floor of the cookie store's cells (`actix/floor/cookie`, beside actix-session's
/// cookie store): the session sealed into the `id` cookie by hand, with fastsession's codec
/// (XChaCha20-Poly1305 under a key derived for the purpose, the cookie's name bound) and
/// nothing else: the creation and last activity times and the values as a JSON object, the
/// idle deadline checked at each open, a new cookie after each write.
pub struct CookieFloor {
    codec: fastsession_core::codec::Codec,
}

/// What the cookie floor answers: the number, and the `Set-Cookie` line if the session changed.
#[derive(Debug)]
pub struct CookieAnswer {
    /// The body.
    pub n: u64,
    /// The new cookie, with fastsession's default attributes (less `Secure`).
    pub set_cookie: Option<String>,
}

impl std::fmt::Debug for CookieFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieFloor").finish_non_exhaustive()
    }
}

type Values = BTreeMap<String, Box<serde_json::value::RawValue>>;

impl CookieFloor {
    /// Returns a floor sealing under a random key.
    ///
    /// # Errors
    ///
    /// If the OS random number generator fails.
    pub fn new() -> Result<CookieFloor, fastsession_core::Error> {
        let ring = fastsession_core::codec::KeyRing::new(fastsession_core::codec::Key::generate()?);
        Ok(CookieFloor {
            codec: fastsession_core::codec::Codec::new(&ring, "session"),
        })
    }

    /// Opens the sealed `id` value if it is authentic and not idle too long: created, values.
    fn open(&self, sealed: &[u8], now: u64) -> Option<(u64, Values)> {
        let opened = self
            .codec
            .open("id", std::str::from_utf8(sealed).ok()?)
            .ok()?;
        let plaintext = opened.plaintext();
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(
                plaintext.get(at..at + 8)?.try_into().ok()?,
            ))
        };
        let (created, last_active) = (word(0)?, word(8)?);
        if last_active + IDLE_SECS <= now {
            return None;
        }
        Some((created, serde_json::from_slice(plaintext.get(16..)?).ok()?))
    }

    fn seal(&self, created: u64, now: u64, values: &Values) -> Option<String> {
        let mut plaintext = Vec::with_capacity(64);
        plaintext.extend_from_slice(&created.to_le_bytes());
        plaintext.extend_from_slice(&now.to_le_bytes());
        serde_json::to_writer(&mut plaintext, values).ok()?;
        let sealed = self.codec.seal("id", &plaintext).ok()?;
        let mut line = String::with_capacity(3 + sealed.len() + ATTRIBUTES.len());
        line.push_str("id=");
        line.push_str(&sealed);
        line.push_str(ATTRIBUTES);
        Some(line)
    }

    /// Answers `path` for a request whose `id` cookie is `sealed`; `None` if sealing failed.
    #[must_use]
    pub fn answer(&self, path: Path, sealed: Option<&[u8]>) -> Option<CookieAnswer> {
        let now = now();
        let opened = match path {
            Path::Untouched => {
                return Some(CookieAnswer {
                    n: 1,
                    set_cookie: None,
                });
            }
            Path::New => None,
            Path::Hot | Path::Read => sealed.and_then(|sealed| self.open(sealed, now)),
        };
        let (created, mut values) = opened.unwrap_or_else(|| (now, Values::new()));
        let n = values
            .get("n")
            .and_then(|json| serde_json::from_str::<u64>(json.get()).ok())
            .unwrap_or(0);
        if path == Path::Read {
            return Some(CookieAnswer {
                n,
                set_cookie: None,
            });
        }
        let n = n + 1;
        values.insert(
            "n".to_owned(),
            serde_json::value::RawValue::from_string(n.to_string()).ok()?,
        );
        Some(CookieAnswer {
            n,
            set_cookie: Some(self.seal(created, now, &values)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_session_counts_and_a_tampered_one_starts_again() {
        let floor = CookieFloor::new().unwrap();
        let created = floor.answer(Path::New, None).unwrap();
        assert_eq!(created.n, 1);
        let line = created.set_cookie.unwrap();
        assert!(line.ends_with(ATTRIBUTES));
        let header = format!("_ga=1; {}", line.split(';').next().unwrap());
        let sealed = cookie_value(header.as_bytes(), b"id").unwrap();
        let hot = floor.answer(Path::Hot, Some(sealed)).unwrap();
        assert_eq!(hot.n, 2);
        let line = hot.set_cookie.unwrap();
        let sealed = line.split(';').next().unwrap().strip_prefix("id=").unwrap();
        let read = floor.answer(Path::Read, Some(sealed.as_bytes())).unwrap();
        assert_eq!((read.n, read.set_cookie), (2, None));
        let mut tampered = sealed.as_bytes().to_vec();
        tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(floor.answer(Path::Read, Some(&tampered)).unwrap().n, 0);
        assert_eq!(floor.answer(Path::Hot, Some(&tampered)).unwrap().n, 1);
    }
}
