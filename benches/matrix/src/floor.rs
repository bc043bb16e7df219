//! The floors of the matrix ([`Library::Floor`](crate::Library::Floor)): sessions written by
//! hand with no session library, doing only what the contract every fastsession store keeps
//! asks for. What they cost is the least any library keeping that contract can cost on these
//! paths: [`MemoryFloor`] beside the memory store's cells, [`CookieFloor`] beside the cookie
//! store's.
//!
//! [`MemoryFloor`] keeps, as fastsession keeps it: a 256-bit id from OS randomness (drawn 32 ids per system
//! call, as fastsession draws them); the strict one-form parse of the id; the store indexes
//! only a keyed hash of the id (keyed BLAKE3), never the id; an idle deadline checked on
//! every load; the anonymous sessions bounded, least recently active evicted first (an index
//! by deadline, moved at most once a second per session); creation never overwrites; values
//! kept serialized (JSON) as a library keeping any type must; `Vary: Cookie` on every answer
//! that read the cookie, and `Cache-Control: no-store` with the `Set-Cookie`.
//!
//! Left out, where fastsession does more: users, revocation markers, the byte budget,
//! the absolute lifetime, flashes, the record's header, concurrent-write merging, events,
//! the size check of the cookie line, several named sessions and errors as values.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::Path;

/// Ten minutes without a request end a session, as the matrix sets for every library.
const IDLE_SECS: u64 = 600;
/// The anonymous sessions kept at most (fastsession's memory store's default).
const BUDGET: usize = 100_000;
/// The cookie's attributes: fastsession's defaults without `Secure` (plain HTTP).
const ATTRIBUTES: &str = "; HttpOnly; SameSite=Lax; Path=/";

/// A keyed hash of an id: what the store indexes.
type StorageKey = [u8; 32];

/// The sessions of one server, behind one lock as any store shared by threads.
pub struct MemoryFloor {
    key: [u8; 32],
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: std::collections::HashMap<StorageKey, Slot, BuildHasherDefault<FirstWord>>,
    /// Every session by deadline: the expiry and eviction order.
    order: BTreeSet<(u64, StorageKey)>,
}

struct Slot {
    /// The values, each serialized.
    values: BTreeMap<String, String>,
    expires: u64,
}

/// The keys are keyed-hash outputs, uniformly random already: their first word is their hash.
#[derive(Default)]
struct FirstWord(u64);

impl Hasher for FirstWord {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
}

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

fn text(n: u64) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(n.to_string())));
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Cookie"));
    response
}

impl std::fmt::Debug for MemoryFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFloor").finish_non_exhaustive()
    }
}

impl MemoryFloor {
    /// Returns an empty store whose id-hashing key is random.
    ///
    /// # Errors
    ///
    /// If the OS random number generator fails.
    pub fn new() -> Result<MemoryFloor, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(MemoryFloor {
            key,
            state: Mutex::new(State::default()),
        })
    }

    fn storage_key(&self, id: &[u8; 32]) -> StorageKey {
        *blake3::keyed_hash(&self.key, id).as_bytes()
    }

    /// The stored session the request's `id` cookie names, if it parses.
    fn presented(&self, headers: &HeaderMap) -> Option<StorageKey> {
        let text = headers
            .get_all(COOKIE)
            .iter()
            .find_map(|value| cookie_value(value.as_bytes(), b"id"))?;
        if text.len() != 43 {
            return None;
        }
        let mut id = [0u8; 34];
        // The engine refuses nonzero trailing bits: one text per id.
        match URL_SAFE_NO_PAD.decode_slice(text, &mut id) {
            Ok(32) => Some(self.storage_key(id[..32].try_into().ok()?)),
            _ => None,
        }
    }

    /// Answers `path` for a request with `headers`, as the matrix's handlers do.
    pub fn answer(&self, path: Path, headers: &HeaderMap) -> Response<Full<Bytes>> {
        match path {
            Path::Untouched => Response::new(Full::new(Bytes::from_static(b"1"))),
            Path::New => self.create(1),
            Path::Hot | Path::Read => {
                let now = now();
                let Some(key) = self.presented(headers) else {
                    return self.fresh(path);
                };
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let State { records, order } = &mut *state;
                let Some(slot) = records.get_mut(&key).filter(|slot| slot.expires > now) else {
                    drop(state);
                    return self.fresh(path);
                };
                let n = slot
                    .values
                    .get("n")
                    .and_then(|json| serde_json::from_str::<u64>(json).ok())
                    .unwrap_or(0);
                if path == Path::Read {
                    return text(n);
                }
                let n = n + 1;
                let Ok(json) = serde_json::to_string(&n) else {
                    return status(StatusCode::INTERNAL_SERVER_ERROR);
                };
                slot.values.insert("n".to_owned(), json);
                let expires = now + IDLE_SECS;
                if expires != slot.expires {
                    order.remove(&(slot.expires, key));
                    order.insert((expires, key));
                    slot.expires = expires;
                }
                text(n)
            }
        }
    }

    /// A request whose cookie names no live session: `/hot` starts one, `/read` reads 0.
    fn fresh(&self, path: Path) -> Response<Full<Bytes>> {
        if path == Path::Hot {
            self.create(1)
        } else {
            text(0)
        }
    }

    fn create(&self, n: u64) -> Response<Full<Bytes>> {
        let (Some(id), Ok(json)) = (random_id(), serde_json::to_string(&n)) else {
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let key = self.storage_key(&id);
        let expires = now() + IDLE_SECS;
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let State { records, order } = &mut *state;
            match records.entry(key) {
                Entry::Occupied(_) => return status(StatusCode::INTERNAL_SERVER_ERROR),
                Entry::Vacant(vacant) => {
                    vacant.insert(Slot {
                        values: BTreeMap::from([("n".to_owned(), json)]),
                        expires,
                    });
                }
            }
            order.insert((expires, key));
            if records.len() > BUDGET
                && let Some((_, oldest)) = order.pop_first()
            {
                records.remove(&oldest);
            }
        }
        let mut line = String::with_capacity(3 + 43 + ATTRIBUTES.len());
        line.push_str("id=");
        URL_SAFE_NO_PAD.encode_string(id, &mut line);
        line.push_str(ATTRIBUTES);
        let Ok(line) = HeaderValue::from_maybe_shared(Bytes::from(line)) else {
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let mut response = text(n);
        let headers = response.headers_mut();
        headers.insert(SET_COOKIE, line);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
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

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie_of(response: &Response<Full<Bytes>>) -> HeaderMap {
        let line = response.headers()[SET_COOKIE].to_str().unwrap();
        let pair = line.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("_ga=1; {pair}")).unwrap(),
        );
        headers
    }

    /// A `Full` body is ready at once: its one frame, read without a runtime.
    fn body(response: &Response<Full<Bytes>>) -> String {
        use http_body::Body as _;
        let mut body = response.body().clone();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::Pin::new(&mut body).poll_frame(&mut cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
            }
            _ => String::new(),
        }
    }

    #[test]
    fn a_session_counts_and_is_stored_under_a_keyed_hash() {
        let floor = MemoryFloor::new().unwrap();
        let created = floor.answer(Path::New, &HeaderMap::new());
        assert_eq!(body(&created), "1");
        assert_eq!(created.headers()[CACHE_CONTROL], "no-store");
        let cookie = cookie_of(&created);
        assert_eq!(body(&floor.answer(Path::Hot, &cookie)), "2");
        let hot = floor.answer(Path::Hot, &cookie);
        assert_eq!(body(&hot), "3");
        assert!(hot.headers().get(SET_COOKIE).is_none());
        assert_eq!(hot.headers()[VARY], "Cookie");
        assert_eq!(body(&floor.answer(Path::Read, &cookie)), "3");
        let state = floor.state.lock().unwrap();
        let id = cookie[COOKIE].to_str().unwrap().rsplit('=').next().unwrap();
        let raw = URL_SAFE_NO_PAD.decode(id).unwrap();
        assert!(!state.records.keys().any(|k| k[..] == raw[..]));
        assert_eq!(state.records.len(), 1);
        assert_eq!(state.order.len(), 1);
    }

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

    #[test]
    fn an_unknown_or_noncanonical_id_reads_nothing() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let floor = MemoryFloor::new().unwrap();
        let cookie = cookie_of(&floor.answer(Path::New, &HeaderMap::new()));
        let id = cookie[COOKIE].to_str().unwrap().rsplit('=').next().unwrap();
        // The last of 43 characters carries two trailing bits, zero in the one true form:
        // the same bytes with one of them set.
        let last = ALPHABET
            .iter()
            .position(|&c| c == id.as_bytes()[42])
            .unwrap();
        let noncanonical = format!("{}{}", &id[..42], char::from(ALPHABET[last | 1]));
        let unknown = URL_SAFE_NO_PAD.encode([7u8; 32]);
        for (bad, expected) in [(id.to_owned(), "1"), (noncanonical, "0"), (unknown, "0")] {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, HeaderValue::from_str(&format!("id={bad}")).unwrap());
            assert_eq!(body(&floor.answer(Path::Read, &headers)), expected, "{bad}");
        }
    }
}
