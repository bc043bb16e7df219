#![doc = include_str!("../../../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use fastsession_core::codec::{Key, KeyRing};
pub use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
pub use fastsession_core::session::Expiry;
pub use fastsession_core::store::{CookieStore, Store};
pub use fastsession_core::{Error, ErrorKind, Result, Session, codec, http, session, store, time};
