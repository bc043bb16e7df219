//! End-to-end tests of the demo over real HTTP, and its browser test.

mod attacks;
mod browser;
mod docs;
mod e2e;
mod instances;
mod support;
mod tools;
