//! What the fuzz targets share: fixed keys, cookie-store and signed-id configurations, the
//! mutations applied to authentic values, and a `block_on` for the store futures (which are
//! ready at once).

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use arbitrary::Arbitrary;
use fastsession_core::codec::{Codec, Key, KeyRing, Signer};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::store::{CookieStore, MemoryStore};
use fastsession_core::time::{ManualClock, UnixTime};
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};

/// The cookie name of [`config`]: `"id"` with its default `__Host-` prefix.
pub const COOKIE_NAME: &str = "__Host-id";
/// The purpose of [`codec`].
pub const PURPOSE: &str = "fuzz";

/// A ring with an active key (id 2) and a retired one (id 1), so both key look-ups run.
pub fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| {
        let secret = |seed: u8| -> Vec<u8> { (0..32).map(|i| seed.wrapping_mul(31) ^ i).collect() };
        KeyRing::new(Key::from_secret(&secret(2)).expect("valid key").with_id(2))
            .with_retired(Key::from_secret(&secret(1)).expect("valid key"))
            .expect("distinct ids")
    })
}

/// A codec over [`ring`] for [`PURPOSE`].
pub fn codec() -> &'static Codec {
    static CODEC: OnceLock<Codec> = OnceLock::new();
    CODEC.get_or_init(|| Codec::new(ring(), PURPOSE))
}

/// A codec with the retired key only, to seal values that open as stale.
pub fn retired_codec() -> &'static Codec {
    static CODEC: OnceLock<Codec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let secret: Vec<u8> = (0..32).map(|i| 31u8 ^ i).collect();
        Codec::new(
            &KeyRing::new(Key::from_secret(&secret).expect("valid key")),
            PURPOSE,
        )
    })
}

/// Sessions in a [`CookieStore`] over [`ring`], in the cookie [`COOKIE_NAME`].
pub fn config() -> &'static SessionConfig {
    static CONFIG: OnceLock<SessionConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        SessionConfig::new(
            CookieStore::new(ring()),
            CookieConfig::new("id").expect("valid name"),
        )
    })
}

/// Sessions in a [`CookieStore::signed`] over [`ring`], in the cookie [`COOKIE_NAME`].
pub fn signed_store_config() -> &'static SessionConfig {
    static CONFIG: OnceLock<SessionConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        SessionConfig::new(
            CookieStore::signed(ring()),
            CookieConfig::new("id").expect("valid name"),
        )
    })
}

/// Sessions in a [`MemoryStore`] whose id cookie [`COOKIE_NAME`] is signed with [`ring`]. Its
/// clock stands still, so the session of [`signed_id_session`] never expires however long the
/// fuzzer runs.
pub fn signed_id_config() -> &'static SessionConfig {
    static CONFIG: OnceLock<SessionConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        SessionConfig::new(
            MemoryStore::new().expect("OS random numbers"),
            CookieConfig::new("id").expect("valid name"),
        )
        .with_clock(ManualClock::new(UnixTime::from_secs(1_700_000_000)))
        .with_signed_id(ring())
    })
}

/// A signer over [`ring`] for [`PURPOSE`].
pub fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| Signer::new(ring(), PURPOSE))
}

/// Polls a future that must be ready at once, as every cookie-store future is.
pub fn block_on<F: Future>(future: F) -> F::Output {
    match pin!(future)
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("cookie-store futures are ready at once"),
    }
}

/// Request headers whose `Cookie` header is `COOKIE_NAME=value`.
pub fn request_with_cookie(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let line = format!("{COOKIE_NAME}={value}");
    headers.insert(COOKIE, line.parse().expect("cookie values are header-safe"));
    headers
}

/// The value of the session cookie a response sets, if it sets one.
pub fn set_cookie_value(response: &HeaderMap) -> Option<String> {
    response.get_all(SET_COOKIE).iter().find_map(|line| {
        let line = line.to_str().ok()?;
        let pair = line.split(';').next()?;
        pair.strip_prefix(COOKIE_NAME)?
            .strip_prefix('=')
            .map(str::to_owned)
    })
}

/// The cookie value of a session holding a few values, sealed by the cookie store.
pub fn sealed_session() -> &'static str {
    static SEALED: OnceLock<String> = OnceLock::new();
    SEALED.get_or_init(|| new_session(config()))
}

/// The cookie value of a session holding a few values, signed by the signed cookie store.
pub fn signed_store_session() -> &'static str {
    static SIGNED: OnceLock<String> = OnceLock::new();
    SIGNED.get_or_init(|| new_session(signed_store_config()))
}

/// The signed id cookie of a session holding a few values in [`signed_id_config`]'s store.
pub fn signed_id_session() -> &'static str {
    static SIGNED: OnceLock<String> = OnceLock::new();
    SIGNED.get_or_init(|| new_session(signed_id_config()))
}

/// Creates a session holding `user = "gopher"`, a number and a flash; returns its cookie.
fn new_session(config: &SessionConfig) -> String {
    block_on(async {
        let sessions = Sessions::new(&HeaderMap::new());
        let session = sessions.get(config).await.expect("the store loads at once");
        session.insert("user", "gopher").expect("JSON");
        session.insert("uid", 4711).expect("JSON");
        session.add_flash("welcome").expect("JSON");
        let mut response = HeaderMap::new();
        sessions.save_all(&mut response).await.expect("fits");
        set_cookie_value(&response).expect("a new session sets its cookie")
    })
}

/// One change to a value's text or bytes.
#[derive(Arbitrary, Debug)]
pub enum Mutation {
    FlipBit {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: u8,
    },
    Truncate {
        len: usize,
    },
    Append {
        bytes: Vec<u8>,
    },
    Swap {
        a: usize,
        b: usize,
    },
    /// Copy a slice over another place (moves nonce, tag or header bytes around).
    CopyWithin {
        from: usize,
        len: u8,
        to: usize,
    },
}

impl Mutation {
    /// Applies this change to `v`, wrapping positions into its length.
    pub fn apply(&self, v: &mut Vec<u8>) {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *self {
            Mutation::FlipBit { at: i, bit } if !v.is_empty() => {
                let i = at(i, v.len());
                v[i] ^= 1 << (bit % 8);
            }
            Mutation::Set { at: i, byte } if !v.is_empty() => {
                let i = at(i, v.len());
                v[i] = byte;
            }
            Mutation::Insert { at: i, ref bytes } => {
                let i = at(i, v.len() + 1);
                v.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove { at: i, len } if !v.is_empty() => {
                let i = at(i, v.len());
                let end = (i + usize::from(len) + 1).min(v.len());
                v.drain(i..end);
            }
            Mutation::Truncate { len } => v.truncate(at(len, v.len() + 1)),
            Mutation::Append { ref bytes } => v.extend_from_slice(bytes),
            Mutation::Swap { a, b } if !v.is_empty() => {
                let (a, b) = (at(a, v.len()), at(b, v.len()));
                v.swap(a, b);
            }
            Mutation::CopyWithin { from, len, to } if !v.is_empty() => {
                let from = at(from, v.len());
                let end = (from + usize::from(len) + 1).min(v.len());
                let to = at(to, v.len() - (end - from) + 1);
                v.copy_within(from..end, to);
            }
            _ => {}
        }
    }
}

/// `original` after `mutations`, applied to its text, or with `raw` to its base64url-decoded
/// bytes (then encoded again canonically).
pub fn mutate(original: &str, raw: bool, mutations: &[Mutation]) -> Vec<u8> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if raw {
        let mut bytes = URL_SAFE_NO_PAD.decode(original).expect("canonical");
        for m in mutations {
            m.apply(&mut bytes);
        }
        URL_SAFE_NO_PAD.encode(&bytes).into_bytes()
    } else {
        let mut text = original.as_bytes().to_vec();
        for m in mutations {
            m.apply(&mut text);
        }
        text
    }
}

/// Sends `mutated` as the value of a cookie called `name` to `config` and asserts that the
/// session opens exactly when the `Cookie` header carries `original` as the session cookie
/// once (by the cookie-pair rules of RFC 6265), and then holds what [`new_session`] put in.
pub fn assert_only_the_original_opens(
    config: &SessionConfig,
    original: &str,
    name: &str,
    mutated: &[u8],
) {
    let mut line = format!("{name}=").into_bytes();
    line.extend_from_slice(mutated);
    let Ok(value) = http::HeaderValue::from_bytes(&line) else {
        return;
    };
    let ours: Vec<&[u8]> = line
        .split(|&b| b == b';')
        .filter_map(|pair| {
            pair.trim_ascii()
                .strip_prefix(COOKIE_NAME.as_bytes())?
                .strip_prefix(b"=")
        })
        .collect();
    let unchanged = ours == [original.as_bytes()];
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, value);
    let sessions = Sessions::new(&headers);
    let session = block_on(sessions.get(config)).expect("the store never fails to load");
    assert_eq!(!session.is_new(), unchanged, "only the original opens");
    if unchanged {
        let user = session.get::<String>("user").expect("JSON");
        assert_eq!(user.as_deref(), Some("gopher"));
    } else {
        assert!(session.is_empty());
    }
}
