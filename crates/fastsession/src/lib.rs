#![doc = include_str!("../../../README.md")]
//!
//! # Features
//!
//! The facade has no optional features yet; server-side stores and framework adapters will
//! each come behind one (`fs`, `redis`, `postgres`, `tower`, `axum`, `actix`).
//!
//! See the [`guide`] for a tour.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[doc = include_str!("guide.md")]
pub mod guide {}

pub use fastsession_core::codec::{Key, KeyRing};
pub use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
pub use fastsession_core::session::Expiry;
pub use fastsession_core::store::{CookieStore, Store};
pub use fastsession_core::{Error, ErrorKind, Result, Session, codec, http, session, store, time};
