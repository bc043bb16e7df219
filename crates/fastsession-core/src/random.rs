//! The operating system's random number generator.

use crate::error::{Error, ErrorKind, Result};

/// Fills `buf` from the OS CSPRNG, or fails: never a silently weak value.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorKind::Random,
            "the operating system's random number generator failed",
        )
        .with_source(std::io::Error::other(e.to_string()))
    })
}
