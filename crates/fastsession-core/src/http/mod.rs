//! The `http`-crate integration: read `Cookie` headers, write `Set-Cookie`, `Vary` and
//! `Cache-Control`, and keep the per-request registry of named sessions.
//!
//! Everything here works on [`http::HeaderMap`] and [`http::request::Parts`], so any server
//! built on the `http` crate (hyper, axum, tower services, ...) can use it directly.

#[cfg(feature = "actix")]
mod actix;
#[cfg(feature = "axum")]
mod axum;
mod config;
mod cookie_builder;
mod cookie_config;
mod cookies;
mod request;
mod response;
mod save;
mod sessions;
mod set;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use actix::SessionExt;
pub use config::{MAX_SET_COOKIE_LEN, SessionConfig};
pub use cookie_builder::CookieConfigBuilder;
pub use cookie_config::{CookieConfig, MAX_COOKIE_AGE, Prefix, SameSite};
pub use request::{Flashes, NamedSession};
pub use response::{Finished, Handled, ResponseHeaders};
pub use sessions::Sessions;
pub use set::{SessionSet, StoreErrorPolicy};
