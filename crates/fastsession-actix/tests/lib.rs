//! Integration tests of fastsession-actix, in one binary: the middleware's save rules and
//! headers, and the extractors, driven through `actix_web::test` against cookie and memory
//! stores.

#[macro_use]
mod support;

mod extractors;
mod middleware;

/// Handles cross threads (spawned tasks, `web::block`); this only has to compile.
#[test]
fn handles_are_send() {
    fn send<T: Send + Sync>() {}
    send::<fastsession::Session>();
    send::<fastsession::NamedSession<support::Prefs>>();
    send::<fastsession::Flashes>();
    send::<fastsession::Sessions>();
    send::<fastsession::Error>();
    send::<fastsession::Session>();
}
