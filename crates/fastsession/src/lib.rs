// The crate's README is its front page, here and on crates.io; its example is doctested.
#![doc = include_str!("../README.md")]
//!
//! See the [`guide`] for a tour.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("guide.md")]
pub mod guide {}

#[cfg(feature = "gorilla")]
#[cfg_attr(docsrs, doc(cfg(feature = "gorilla")))]
#[doc = include_str!("migration.md")]
pub mod migration {}

pub use fastsession_core::codec::{Key, KeyRing};
pub use fastsession_core::http::{
    CookieConfig, Flashes, NamedSession, SessionConfig, SessionSet, Sessions,
};
pub use fastsession_core::session::Expiry;
pub use fastsession_core::store::{CookieStore, MemoryStore, Store};

/// The filesystem store: a re-export of the `fastsession-fs` crate.
#[cfg(feature = "fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
pub use fastsession_fs as fs;

/// The Redis store: a re-export of the `fastsession-redis` crate.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use fastsession_redis as redis;

/// The PostgreSQL store: a re-export of the `fastsession-postgres` crate.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use fastsession_postgres as postgres;

/// The tower and axum adapter: a re-export of the `fastsession-tower` crate.
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use fastsession_tower as tower;

/// The actix-web adapter: a re-export of the `fastsession-actix` crate.
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use fastsession_actix as actix;

/// Go migration: gorilla/securecookie and gorilla/sessions formats (crate
/// `fastsession-gorilla`); see the [migration guide](migration).
#[cfg(feature = "gorilla")]
#[cfg_attr(docsrs, doc(cfg(feature = "gorilla")))]
pub use fastsession_gorilla as gorilla;

pub use fastsession_core::{
    Error, ErrorKind, Result, Session, SessionStatus, codec, events, http, session, store, time,
};
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use fastsession_core::{conformance_tests, testing};
