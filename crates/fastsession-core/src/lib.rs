//! The core of [fastsession](https://docs.rs/fastsession): the codec, the session model, the
//! [`Store`](store::Store) trait with the cookie store, and the `http`-crate integration.
//!
//! Most applications use the `fastsession` facade crate, which re-exports this one; store and
//! framework crates depend on this one directly. The layers, bottom up:
//!
//! | module | holds |
//! | --- | --- |
//! | [`codec`] | key ring, HKDF sub-keys, the sealed envelope (bytes in, text out) |
//! | [`time`] | whole-second timestamps and the injectable clock |
//! | [`session`] | [`Session`], [`Record`](session::Record), [`ChangeSet`](session::ChangeSet), [`Expiry`](session::Expiry), [`SessionId`](session::SessionId) |
//! | [`store`] | the [`Store`](store::Store) trait, the [`CookieStore`](store::CookieStore), the [`MemoryStore`](store::MemoryStore) and the [`ServerStore`](store::ServerStore) of server-side stores |
//! | [`http`] | [`CookieConfig`](http::CookieConfig), [`SessionConfig`](http::SessionConfig), the [`Sessions`](http::Sessions) registry |
//! | `testing` | (feature `testing`) the conformance suite every store runs |
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | `testing` | `fastsession_core::testing`: the public conformance suite for [`Store`](store::Store) implementations, and `conformance_tests!` |
//! | `tokio` | `store::spawn_reaper`: a Tokio task that reaps expired sessions of any server-side store |
//! | `axum` | [`Session`], [`NamedSession`](http::NamedSession), [`Flashes`](http::Flashes) and [`Sessions`](http::Sessions) as axum 0.8 extractors, [`Error`] as a response |
//! | `actix` | the same as actix-web 4 extractors, [`Error`] as a `ResponseError`, and `http::SessionExt` |
//!
//! # Example
//!
//! ```
//! use fastsession::{Key, KeyRing};
//! use fastsession::{CookieConfig, SessionConfig, Sessions};
//! use fastsession::CookieStore;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let keys = KeyRing::new(Key::generate()?);
//! let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("id")?);
//!
//! let request = http::Request::new(());
//! let sessions = Sessions::new(request.headers());
//! let session = sessions.get(&config).await?;
//! session.insert("name", "gopher")?;
//!
//! let mut response = http::Response::new(());
//! sessions.save_all(response.headers_mut()).await?;
//! assert!(response.headers().contains_key("set-cookie"));
//! assert_eq!(response.headers()["vary"], "Cookie");
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod codec;
mod error;
pub mod events;
pub mod http;
mod random;
pub mod session;
pub mod store;
#[cfg(test)]
mod test_logs;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;

pub use error::{Error, ErrorKind, Result};
pub use session::{Session, SessionStatus};
#[cfg(test)]
use test_logs::logs_of;
