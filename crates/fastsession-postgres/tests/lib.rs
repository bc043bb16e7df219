//! Integration tests of the PostgreSQL store, in one binary, against the server on
//! 127.0.0.1:5432 (database `test`, user `postgres`). Each store lives in a schema of its own,
//! `fs_test_<random>`, dropped when the test ends, so parallel runs never meet.
//!
//! The numbers in doc comments are the security cases listed in SECURITY.md ("Security cases
//! by number").

// Helpers outside `#[test]` functions panic on purpose: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod budget;
mod conformance;
mod faults;
mod input;
mod near_cache;
mod postgres;
mod proxy;
mod support;
