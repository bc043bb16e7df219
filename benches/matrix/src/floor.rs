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
//! [`CookieFloor`], with its [`CookieFloorLayer`], is the same for actix-web and the cookie
//! store: the middleware puts the request's session in its extensions, the handler opens the
//! `id` cookie at first use (fastsession's codec: XChaCha20-Poly1305 under a key derived for
//! the purpose, the cookie's name bound), and the middleware seals the session again after
//! the handler if it changed, or once a quarter of its idle time has passed. The cookie
//! carries the creation and last activity times and the values (JSON); the idle timeout,
//! absolute lifetime and clock skew are checked at each open; the `Set-Cookie` line's length
//! is checked; the headers are the memory floor's.
//!
//! Left out, where fastsession does more: revocation markers and the index of users'
//! sessions (written only at login and logout), events, several named sessions from
//! several stores, stores behind a trait, errors as values, the cookie store's record
//! header (user, "remember me", own deadline, flashes: empty here, so a few bytes), and the
//! paths the matrix does not take (regeneration, logout, flashes taken).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

mod cookie;
mod memory;

pub use cookie::{
    CookieFloor, CookieFloorFuture, CookieFloorLayer, CookieFloorService, CookieFloorSession,
};
pub use memory::{FloorFuture, FloorLayer, FloorService, FloorSession, MemoryFloor};

/// Ten minutes without a request end a session, as the matrix sets for every library.
const IDLE_SECS: u64 = 600;
/// Thirty days from creation end any session (fastsession's default absolute lifetime).
const ABSOLUTE_SECS: u64 = 30 * 24 * 3600;
/// An unchanged session is written again once a quarter of its idle time has passed, so
/// that its deadline slides (fastsession's default).
const REFRESH_SECS: u64 = IDLE_SECS / 4;
/// How far ahead of this server's clock a session's times may be (fastsession's default).
const CLOCK_SKEW_SECS: u64 = 60;
/// The longest `Set-Cookie` line browsers keep.
const MAX_COOKIE_LINE: usize = 4096;
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

/// Whether a session created and last active at these times may be served at `now`: not
/// from the future, within its absolute lifetime, and active within the idle timeout.
fn is_live(created: u64, last_active: u64, now: u64) -> bool {
    let latest = now + CLOCK_SKEW_SECS;
    created <= last_active
        && last_active <= latest
        && now < created.saturating_add(ABSOLUTE_SECS)
        && now < last_active.saturating_add(IDLE_SECS)
}

/// The value of the cookie `name` in one `Cookie` header's bytes.
fn cookie_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii_start();
        pair.strip_prefix(name)?.strip_prefix(b"=")
    })
}
