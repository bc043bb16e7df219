//! The operating system's random number generator.

use std::cell::RefCell;

use zeroize::Zeroize;

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

/// Bytes of OS randomness one thread keeps for session ids: 32 ids per system call.
const POOL_BYTES: usize = 1024;

/// A thread's OS random bytes not yet handed out. A system call costs about a microsecond
/// on a virtual machine, more than the rest of creating a session; one call per 32 ids makes
/// it negligible. Every byte still comes from the OS, and none is handed out twice: a byte
/// is zeroed as it leaves.
struct Pool {
    bytes: [u8; POOL_BYTES],
    /// Where the bytes not yet handed out start.
    next: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES })
    };
}

/// Fills `buf` (at most [`POOL_BYTES`] long) with OS random bytes from this thread's pool,
/// refilling it from the OS when it runs short.
pub(crate) fn fill_pooled(buf: &mut [u8]) -> Result<()> {
    debug_assert!(buf.len() <= POOL_BYTES);
    POOL.with_borrow_mut(|pool| {
        if POOL_BYTES - pool.next < buf.len() {
            fill(&mut pool.bytes)?;
            pool.next = 0;
        }
        let taken = &mut pool.bytes[pool.next..pool.next + buf.len()];
        buf.copy_from_slice(taken);
        taken.zeroize();
        pool.next += buf.len();
        Ok(())
    })
}

/// Drops what is left of this thread's pool: the next id comes from a fresh system call.
/// Called when a new id collided with a stored one, which 256 random bits never do unless
/// the pool was copied, as a `fork` after serving would copy it into both processes.
pub(crate) fn discard_pool() {
    POOL.with_borrow_mut(|pool| {
        pool.bytes.zeroize();
        pool.next = POOL_BYTES;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_bytes_never_repeat_across_refills_and_discards() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let mut id = [0u8; 32];
            fill_pooled(&mut id).unwrap();
            assert!(seen.insert(id), "id {i} handed out twice");
            if i % 50 == 49 {
                discard_pool();
            }
        }
    }

    #[test]
    fn a_handed_out_id_is_wiped_from_the_pool() {
        let mut id = [0u8; 32];
        fill_pooled(&mut id).unwrap();
        POOL.with_borrow(|pool| {
            assert!(pool.bytes[..pool.next].iter().all(|&b| b == 0));
            assert!(pool.bytes[pool.next..].iter().any(|&b| b != 0));
        });
    }
}
