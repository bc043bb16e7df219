//! What the fuzz targets share: fixed keys, a cookie-store configuration, and a `block_on`
//! for the store futures (which are ready at once).

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use fastsession_core::codec::{Codec, Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::store::CookieStore;
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
    SEALED.get_or_init(|| {
        block_on(async {
            let sessions = Sessions::new(&HeaderMap::new());
            let session = sessions.get(config()).await.expect("cookie store loads");
            session.insert("user", "gopher").expect("JSON");
            session.insert("uid", 4711).expect("JSON");
            session.add_flash("welcome").expect("JSON");
            let mut response = HeaderMap::new();
            sessions.save_all(&mut response).await.expect("fits");
            set_cookie_value(&response).expect("a new session sets its cookie")
        })
    })
}
