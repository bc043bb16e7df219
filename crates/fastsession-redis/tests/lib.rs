//! Integration tests of the Redis store, in one binary, against the Redis on 127.0.0.1:6379
//! and against redis-server processes the fault tests start themselves.
//!
//! The numbers in doc comments are the security cases listed in SECURITY.md ("Security cases
//! by number").

// Helpers outside `#[test]` functions panic on purpose: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod budget;
mod cluster;
mod conformance;
mod faults;
mod foreign;
mod layout;
mod near_cache;
mod support;
#[cfg(feature = "tls-rustls")]
mod tls;
