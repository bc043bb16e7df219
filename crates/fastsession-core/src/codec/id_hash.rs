//! Keyed hashing of session ids (and other names a store keeps), so that storage never holds
//! what a client could present as a cookie.

use std::fmt;

use zeroize::Zeroizing;

use super::Key;
use crate::error::Result;

/// BLAKE3 in keyed mode under a key derived for hashing ids: what a server-side store turns
/// every session id into before its backend sees it.
///
/// Keep the key stable: changing it makes every stored session unreachable (cookie-key
/// rotation does not touch it).
///
/// # Examples
///
/// ```
/// use fastsession::Key;
/// use fastsession::codec::IdHasher;
///
/// let hasher = IdHasher::new(&Key::generate()?);
/// let digest = hasher.hash(b"session", b"an id's 32 bytes");
/// assert_eq!(digest, hasher.hash(b"session", b"an id's 32 bytes"));
/// // Another domain, another digest: keys of different kinds never collide.
/// assert_ne!(digest, hasher.hash(b"user", b"an id's 32 bytes"));
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone)]
pub struct IdHasher {
    key: Zeroizing<[u8; 32]>,
    /// Tells this hasher's digests from another's (equal for equal keys), so that a digest a
    /// store remembered is used only by a store that would compute the same.
    tag: u64,
}

impl IdHasher {
    /// Returns a hasher whose BLAKE3 key HKDF derives from `key` for the purpose
    /// `"session-id-hash"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Key;
    /// use fastsession::codec::IdHasher;
    ///
    /// // Sessions that outlive the process (files, a database) need the same key at every
    /// // start: load it from your secrets, as the cookie keys (`openssl rand -base64 32`).
    /// # let secret = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
    /// let key = Key::from_base64(secret)?;
    /// assert_eq!(IdHasher::new(&key).hash(b"session", b"id"), IdHasher::new(&key).hash(b"session", b"id"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(key: &Key) -> Self {
        let derived = key.derive("session-id-hash");
        let mut hasher = IdHasher {
            key: derived,
            tag: 0,
        };
        let tag = hasher.hash(b"hasher-tag", &[]);
        hasher.tag = u64::from_be_bytes(tag[..8].try_into().unwrap_or_default());
        hasher
    }

    /// Returns a hasher with a random key, for stores that do not outlive the process.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`](crate::ErrorKind::Random) if the OS random number generator
    /// fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::codec::IdHasher;
    /// use fastsession::store::{MemoryBackend, ServerStore};
    ///
    /// // Memory does not outlive the process, so neither need its hashing key.
    /// let store = ServerStore::with_backend(MemoryBackend::new(1_000), IdHasher::random()?);
    /// # let _ = store;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn random() -> Result<Self> {
        Ok(IdHasher::new(&Key::generate()?.with_id(0)))
    }

    /// Hashes `data` in the domain `domain`: digests of different domains never collide, so a
    /// store can key sessions, per-user indexes and markers with one hasher.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::codec::IdHasher;
    ///
    /// // A per-user index beside the sessions, keyed so that it can never collide with a
    /// // session's key.
    /// let hasher = IdHasher::random()?;
    /// let index = hasher.hash(b"user-index", "ada".as_bytes());
    /// assert_ne!(index, hasher.hash(b"user-index", "bob".as_bytes()));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn hash(&self, domain: &[u8], data: &[u8]) -> [u8; 32] {
        // Domains are constants without a zero byte, so `domain || 0 || data` is unambiguous.
        // An id's input fits one 64-byte block: hashed from the stack in one call, which costs
        // half what the incremental hasher's setup and state do.
        let len = domain.len() + 1 + data.len();
        let mut input = [0u8; 64];
        if len <= input.len() {
            input[..domain.len()].copy_from_slice(domain);
            input[domain.len() + 1..len].copy_from_slice(data);
            return *blake3::keyed_hash(&self.key, &input[..len]).as_bytes();
        }
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(domain);
        hasher.update(&[0]);
        hasher.update(data);
        *hasher.finalize().as_bytes()
    }

    /// Equal for hashers with equal keys, different (but for a 2^-64 chance) otherwise.
    pub(crate) fn tag(&self) -> u64 {
        self.tag
    }
}

impl fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdHasher { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed apart from this crate (Python's `hmac` for HKDF-SHA256, the `blake3`
    /// package): stored keys must not change between releases, or every session is lost.
    #[test]
    fn digests_match_known_answers() {
        let hasher = IdHasher::new(&Key::from_secret(&(0..32).collect::<Vec<u8>>()).unwrap());
        let hex =
            |digest: [u8; 32]| -> String { digest.iter().map(|b| format!("{b:02x}")).collect() };
        assert_eq!(
            hex(hasher.hash(b"session", &[5; 32])),
            "3ec6706176fffd17c669976523b8a4aaa4163831e1110007d7a4a6bcef725bed"
        );
        assert_eq!(
            hex(hasher.hash(b"user-index", b"ada")),
            "760914dc93fbee1fafc7cd0b77bac3520c5d7fe341ec152e19ef301a313bbdfd"
        );
        // Past one block: the incremental path.
        assert_eq!(
            hex(hasher.hash(b"user-index", &[7; 100])),
            "2db5e4b7431720bda5419607f588957aafed65768f56ae3809059e693ad05a14"
        );
    }

    #[test]
    fn equal_keys_give_equal_tags_and_others_differ() {
        let secret = Key::from_secret(&(0..32).collect::<Vec<u8>>())
            .unwrap()
            .with_id(3);
        assert_eq!(IdHasher::new(&secret).tag(), IdHasher::new(&secret).tag());
        assert_ne!(
            IdHasher::random().unwrap().tag(),
            IdHasher::new(&secret).tag()
        );
    }
}
