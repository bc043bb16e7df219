//! Shared helpers: configs, and reading cookies off responses.

use std::sync::Arc;

use fastsession::codec::{Key, KeyRing};
use fastsession::http::{CookieConfig, SessionConfig};
use fastsession::store::{CookieStore, MemoryStore, Store};
use fastsession::testing::SpyStore;
use http::HeaderMap;

pub(crate) fn cookie(name: &str) -> CookieConfig {
    CookieConfig::builder(name)
        .with_insecure_development_mode()
        .build()
        .expect("valid cookie config")
}

pub(crate) fn spied(store: impl Store, name: &str) -> (Arc<SpyStore>, SessionConfig) {
    let spy = Arc::new(SpyStore::new(Arc::new(store)));
    let config = SessionConfig::with_shared_store(spy.clone(), cookie(name));
    (spy, config)
}

pub(crate) fn memory(name: &str) -> (Arc<SpyStore>, SessionConfig) {
    spied(MemoryStore::new().expect("memory store"), name)
}

pub(crate) fn cookie_store(name: &str) -> (Arc<SpyStore>, SessionConfig) {
    let keys = KeyRing::new(Key::generate().expect("random key"));
    spied(CookieStore::new(&keys), name)
}

/// `name=value` of each `Set-Cookie`, in order.
pub(crate) fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let line = v.to_str().expect("ASCII Set-Cookie");
            line.split(';').next().unwrap_or_default().to_owned()
        })
        .collect()
}

/// A `Cookie` header holding every cookie the response set.
pub(crate) fn cookie_header(headers: &HeaderMap) -> String {
    set_cookies(headers).join("; ")
}
