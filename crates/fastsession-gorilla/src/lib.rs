//! Compatibility with Go's gorilla/securecookie, for migrating a Go service to fastsession
//! without logging its users out.
//!
//! [`SecureCookie`] reads and writes gorilla/securecookie's cookie values byte for byte:
//! HMAC-SHA256 over `name|timestamp|value`, optional AES-CTR (128, 192 or 256-bit keys) with
//! the IV in front, the maximum and minimum age, the maximum length, and key rotation with
//! [`encode_multi`] / [`decode_multi`] ([`encode_multi_json`] / [`decode_multi_json`] with
//! securecookie's `JSONEncoder`). [`go_json`] writes JSON exactly as Go's `encoding/json` does
//! for that serializer. The tests check every vector that `interop/gorilla` produced with the
//! real library (Debian's Go packages).
//!
//! [`gob::decode`] and [`gob::encode`] read and write Go's gob format (gorilla/sessions'
//! default serializer), every type but recursive ones, each value with the Go type it was sent
//! with, so that what Go wrote goes back in Go's types.
//!
//! The stores: [`GorillaCookieStore`] reads and writes gorilla/sessions' `CookieStore`
//! cookies, and [`GorillaFilesystem`] its `FilesystemStore` sessions, so that a Rust service
//! and a Go service share sessions; [`MigratingStore`] moves users from either to a native
//! store as they come back. [`GoOptions`] takes the Go service's settings as Go spells them:
//! `from_go` builds a store from them and `session_config` the cookie and the expiry under
//! which every cookie Go accepts opens, and no other. [`GorillaFormat`] says how Go values map
//! to session values (and keeps their Go types for the way back). The facade's
//! `fastsession::migration` module is the guide.
//!
//! # Examples
//!
//! A cookie a Go service wrote with `securecookie.New(hashKey, nil)` and the `JSONEncoder`:
//!
//! ```
//! use fastsession::time::UnixTime;
//! use fastsession::gorilla::SecureCookie;
//!
//! let codec = SecureCookie::new(b"0123456789abcdef0123456789abcdef", None)?;
//! let cookie = "MTcwMDAwMDAwMHxJbWhsYkd4dklIZHZjbXhrSWdvPXxi9nMIdEh-M6_Ts2l-pO310g25d294tTKOHK9yE5S3tQ==";
//! let now = UnixTime::from_secs(1_700_000_000);
//! assert_eq!(codec.decode_json("session", cookie, now)?, "hello world");
//! // And the same bytes back.
//! assert_eq!(codec.encode_json("session", &"hello world".into(), now)?, cookie);
//! # Ok::<(), fastsession::gorilla::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod convert;
mod error;
pub mod go_json;
pub mod gob;
mod options;
mod session;
mod store;

pub use codec::{SecureCookie, decode_multi, decode_multi_json, encode_multi, encode_multi_json};
pub use error::{Error, ErrorKind, Result};
pub use options::GoOptions;
pub use session::{DEFAULT_META_KEY, GorillaFormat, GorillaOrigin};
pub use store::{GorillaCookieStore, GorillaFilesystem, MigratingStore};

#[cfg(test)]
mod vectors;
