//! Integration tests of the tower layer and the axum extractors.

#[cfg(feature = "axum")]
mod axum_extractors;
mod layer;
mod support;
