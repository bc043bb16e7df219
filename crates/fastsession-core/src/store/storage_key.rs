//! The key a record is stored under.

use std::fmt;

use crate::codec::IdHasher;
use crate::session::SessionId;

/// The key a record is stored under: keyed BLAKE3 hash of the session id under a secret key.
///
/// Stores keep this, never the raw id, so a dump of the store or a timing leak of its index
/// yields nothing a client could present as a cookie. Its text form is 64 lowercase hex
/// digits, safe as a file name on every file system and as part of a Redis key or SQL value.
///
/// # Examples
///
/// ```
/// use fastsession::Key;
/// use fastsession::session::SessionId;
/// use fastsession::store::MemoryStore;
///
/// let store = MemoryStore::new()?;
/// let key = store.storage_key(&SessionId::generate()?);
/// assert_eq!(key.to_hex().len(), 64);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StorageKey([u8; 32]);

impl std::hash::Hash for StorageKey {
    /// Hashes the first 8 bytes only: the key is a keyed hash's output under a secret key, so they
    /// are already uniform and no client can aim for collisions.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

impl StorageKey {
    /// The key of the session `id`.
    pub(crate) fn of(hasher: &IdHasher, id: &SessionId) -> Self {
        StorageKey(hasher.hash(b"session", id.as_bytes()))
    }

    /// Returns the key whose bytes are `bytes` (for backends reading their own index back).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::StorageKey;
    ///
    /// // A backend reading its user index back from a binary column.
    /// let column: Vec<u8> = vec![0xab; 32];
    /// let bytes: [u8; 32] = column.as_slice().try_into().expect("32 bytes");
    /// let key = StorageKey::from_bytes(bytes);
    /// assert_eq!(key.as_bytes(), &[0xab; 32]);
    /// ```
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StorageKey(bytes)
    }

    /// Parses [`to_hex`](Self::to_hex) output; anything else is `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::StorageKey;
    ///
    /// // A file store lists its directory: each file is named by a key's hex digits.
    /// let key = StorageKey::from_bytes([0x5a; 32]);
    /// assert_eq!(StorageKey::from_hex(&key.to_hex()), Some(key));
    /// // Anything else in the directory is not a session.
    /// assert_eq!(StorageKey::from_hex("notes.txt"), None);
    /// assert_eq!(StorageKey::from_hex(&key.to_hex().to_uppercase()), None);
    /// ```
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(StorageKey(out))
    }

    /// Returns the raw 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::SessionId;
    /// use fastsession::store::MemoryStore;
    ///
    /// // What a database store binds as the row's `bytea` key.
    /// let key = MemoryStore::new()?.storage_key(&SessionId::generate()?);
    /// let param: &[u8] = key.as_bytes();
    /// assert_eq!(param.len(), 32);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the 64 lowercase hex digits.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::StorageKey;
    ///
    /// // A file or key name that is safe anywhere: 64 lowercase hex digits.
    /// let name = StorageKey::from_bytes([0x01; 32]).to_hex();
    /// assert_eq!(name.len(), 64);
    /// assert!(name.starts_with("0101"));
    /// ```
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.hex_digits().as_str().to_owned()
    }

    /// The 64 hex digits, on the stack: a key name is built around them without a buffer of
    /// their own (every Redis and file key name is).
    fn hex_digits(&self) -> HexDigits {
        let mut digits = [0; 64];
        for (pair, b) in digits.chunks_exact_mut(2).zip(self.0) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
        }
        HexDigits(digits)
    }
}

/// 64 ASCII hex digits.
struct HexDigits([u8; 64]);

impl HexDigits {
    fn as_str(&self) -> &str {
        // One ASCII check of 64 bytes, no formatter.
        match std::str::from_utf8(&self.0) {
            Ok(hex) => hex,
            Err(_) => unreachable!("hex digits are ASCII"),
        }
    }
}

/// The two hex digits of every byte, so that a key is written a byte, not a digit, at a time.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [DIGITS[b >> 4], DIGITS[b & 0xf]];
        b += 1;
    }
    pairs
};

/// The 64 lowercase hex digits of [`to_hex`](StorageKey::to_hex), written in one piece, so that
/// a backend can build a key name around them with `write!` in one buffer.
///
/// # Examples
///
/// ```
/// use std::fmt::Write;
/// use fastsession::store::StorageKey;
///
/// let key = StorageKey::from_bytes([0xab; 32]);
/// let mut name = String::from("s:");
/// write!(name, "{key}")?;
/// assert_eq!(name, format!("s:{}", key.to_hex()));
/// # Ok::<(), std::fmt::Error>(())
/// ```
impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex_digits().as_str())
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A storage key is not a bearer secret; a short prefix helps correlate logs.
        write!(f, "StorageKey({}..)", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Key;

    #[test]
    fn storage_keys_round_trip_through_hex() {
        let hasher =
            IdHasher::new(&Key::from_secret(&[(0..32).collect::<Vec<u8>>()].concat()).unwrap());
        let key = StorageKey::of(&hasher, &SessionId::from_bytes([5; 32]));
        assert_eq!(StorageKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(StorageKey::from_hex(&key.to_hex().to_uppercase()), None);
        assert_eq!(StorageKey::from_hex("../etc"), None);
        // Every digit pair, against the formatter's.
        for high in [0x00, 0x5a, 0xa5, 0xf0] {
            let bytes: [u8; 32] = std::array::from_fn(|i| high ^ u8::try_from(i).unwrap());
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let key = StorageKey::from_bytes(bytes);
            assert_eq!(key.to_hex(), expected);
            assert_eq!(key.to_string(), expected);
        }
        assert_ne!(
            key.as_bytes(),
            SessionId::from_bytes([5; 32]).as_bytes(),
            "hashed, not raw"
        );
    }
}
