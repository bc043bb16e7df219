//! Integration tests of fastsession-gorilla against the real Go library (Go and Debian's
//! gorilla packages: `bash .ci/go-deps`; without them the tests that run Go skip, see `tools`).

// Test helpers outside #[test] functions panic on purpose, like the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod filesystem;
mod go_options;
mod go_random;
mod go_round_trip;
mod stores;
mod support;
mod tools;
mod vectors;

// What the shared `vectors` module expects in scope.
use fastsession_gorilla::SecureCookie;
