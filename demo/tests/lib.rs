//! End-to-end tests of the demo over real HTTP, and its browser test.

mod browser;
mod e2e;
mod instances;
mod support;
