#![doc = include_str!("../../../README.md")]
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | `fs` | `fastsession::fs`: the filesystem store (crate `fastsession-fs`), Unix only |
//! | `testing` | `fastsession::testing`: the conformance suite for [`Store`] implementations |
//!
//! The cookie store and the memory store need no feature. Redis, PostgreSQL and the framework
//! adapters will each come behind one (`redis`, `postgres`, `tower`, `axum`, `actix`).
//!
//! See the [`guide`] for a tour.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc = include_str!("guide.md")]
pub mod guide {}

pub use fastsession_core::codec::{Key, KeyRing};
pub use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
pub use fastsession_core::session::Expiry;
pub use fastsession_core::store::{CookieStore, MemoryStore, Store};

/// The filesystem store: a re-export of the `fastsession-fs` crate.
#[cfg(feature = "fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
pub use fastsession_fs as fs;

pub use fastsession_core::{Error, ErrorKind, Result, Session, codec, http, session, store, time};
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use fastsession_core::{conformance_tests, testing};
