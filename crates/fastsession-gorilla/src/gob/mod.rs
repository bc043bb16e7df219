//! Go's gob format, as far as gorilla/sessions values go: every type gob can send except
//! recursive ones, read with the type it was sent with and written back in that type.
//!
//! A gob stream is a sequence of messages, each `uint(length) · bytes`. A message starts with
//! a type id: a negative one defines type `-id` (a `wireType`), a positive one is followed by
//! a value of that type. Interface values carry their concrete type's registered name, any
//! type definitions it needs, its type id and a byte count of the value. Everything here is
//! bounded: lengths are checked against the input before anything is allocated, nesting and
//! the size of types are limited, and every malformed input is an [`Error`] of kind
//! [`ErrorKind::Deserialize`], never a panic.
//!
//! Values ([`GoValue`]) carry no types of their own: a value is read and written with a
//! [`GoType`], and a value inside an interface ([`GoValue::Named`]) carries its type and the
//! name Go registered it under. The wire does not say an `int8` from an `int`; the registered
//! name does, and where it spells a built-in type (`"int8"`, `"[]float32"`,
//! `"map[string]int16"`) the type read carries the width, so that writing a number that does
//! not fit it fails here instead of in Go.

use crate::error::{Error, ErrorKind};

mod decoder;
mod encoder;
mod names;
mod types;
mod wire;

pub use decoder::decode;
pub use encoder::encode;
pub(crate) use names::builtin_type;
pub use types::{EncodedType, GoType, GoValue, StructType};
pub(crate) use types::{fits_float, fits_int, fits_uint};

/// Deepest nesting of values (and of types) accepted.
const MAX_DEPTH: usize = 32;
/// Most type definitions one stream may make.
const MAX_TYPES: usize = 256;
/// Most nodes all the types of one stream may add up to (types nest, so a few definitions
/// could otherwise describe a huge tree).
const MAX_TYPE_NODES: usize = 4096;

/// The error for malformed input: of kind [`ErrorKind::Deserialize`].
fn bad() -> Error {
    Error::new(ErrorKind::Deserialize)
}

#[cfg(test)]
mod tests;
