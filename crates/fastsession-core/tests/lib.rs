//! Integration tests of the public API.
//!
//! Grouped by topic; the numbers in doc comments are the security cases listed in SECURITY.md
//! ("Security cases by number"). Every test runs with a `tracing` capture
//! ([`support::Env`]) that fails the test if any record leaks a key or a cookie value.

// Helpers outside `#[test]` functions panic on purpose: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The conformance suite needs the `testing` feature (`--all-features` or `--features testing`).
#[cfg(feature = "testing")]
mod conformance;
mod expiry;
mod headers;
mod keys;
mod leaks;
mod limits;
mod registry;
mod revocation;
// The signed id tests count store calls with the `testing` feature's `SpyStore`.
#[cfg(feature = "testing")]
mod signed_id;
mod signed_store;
mod support;
mod tamper;
mod vectors;
