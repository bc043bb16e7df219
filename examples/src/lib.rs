//! Examples of fastsession, each a short program to copy from. They live in this crate's
//! directory (`examples/*.rs`), not here; run one from the workspace root with
//! `cargo run --example axum_login`, and their tests with `cargo test -p fastsession-examples`.
//!
//! | example | shows |
//! | --- | --- |
//! | `axum_login` | log in and out on axum: regenerate, "remember me", flash messages, a CSRF token |
//! | `actix_login` | the same app on actix-web |
//! | `shared_redis` | two app instances sharing sessions through Redis |
//! | `writing_a_backend` | a store of your own: a `Backend` over a `Mutex<BTreeMap>`, method by method, checked by the conformance suite |
//! | `testing_handlers` | testing handlers: directly, through the router, with a manual clock, on actix-web |
