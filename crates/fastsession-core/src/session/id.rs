//! Session identifiers: 256 random bits, one canonical text form.

use std::fmt;

use arrayvec::ArrayString;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::error::Result;

pub(crate) const ID_BYTES: usize = 32;
/// Length of a session id's text form: 32 bytes in unpadded base64url.
pub const ID_TEXT_LEN: usize = 43;

/// A session identifier: 32 bytes from the OS CSPRNG.
///
/// Parsing accepts exactly one form, 43 characters of unpadded base64url with zero trailing
/// bits, so a path, SQL or Redis-key injection cannot even be expressed as a `SessionId`.
/// `Debug` never shows the id; [`as_str`](Self::as_str) is for writing the cookie.
///
/// # Examples
///
/// ```
/// use fastsession::session::SessionId;
///
/// let id = SessionId::generate()?;
/// assert_eq!(id.as_str().len(), 43);
/// assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
/// assert_eq!(format!("{id:?}"), "SessionId(..)");
/// for bad in ["", "../../etc/passwd", "%2e%2e%2f", "CON", &"A".repeat(44)] {
///     assert!(SessionId::parse(bad).is_none());
/// }
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Eq)]
pub struct SessionId {
    bytes: [u8; ID_BYTES],
    text: ArrayString<ID_TEXT_LEN>,
}

impl SessionId {
    /// Returns a new id from the operating system's random number generator (read 32 ids at a
    /// time per thread: one system call per 32 sessions).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`](crate::ErrorKind::Random) if the generator fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::SessionId;
    ///
    /// // Stores that keep sessions server-side give each new session one of these.
    /// let id = SessionId::generate()?;
    /// assert_ne!(id, SessionId::generate()?);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; ID_BYTES];
        crate::random::fill_pooled(&mut bytes)?;
        Ok(SessionId::from_bytes(bytes))
    }

    /// Returns the id whose bytes are `bytes` (for stores and tests that inject ids).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::SessionId;
    ///
    /// // A fixed id, for a test that needs to know it in advance.
    /// let id = SessionId::from_bytes([7; 32]);
    /// assert_eq!(id.as_bytes(), &[7; 32]);
    /// ```
    #[must_use]
    pub fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
        let mut text = [0u8; ID_TEXT_LEN];
        // 32 bytes always encode to exactly 43 characters.
        let written = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut text)
            .unwrap_or_default();
        debug_assert_eq!(written, ID_TEXT_LEN);
        // Base64url output is ASCII and exactly the capacity.
        let text = std::str::from_utf8(&text)
            .ok()
            .and_then(|text| ArrayString::from(text).ok())
            .unwrap_or_default();
        SessionId { bytes, text }
    }

    /// Parses the text form; anything else is `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::SessionId;
    ///
    /// let id = SessionId::generate()?;
    /// assert_eq!(SessionId::parse(id.as_str()), Some(id));
    /// // Only the canonical 43-character form: a path or a padded variant is no id.
    /// assert!(SessionId::parse("../sessions/admin").is_none());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ID_TEXT_LEN {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES + 2];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            // The decoder refuses nonzero trailing bits, so `text` is the one encoding of
            // these bytes: kept as it is instead of encoding them again.
            Ok(ID_BYTES) => Some(SessionId {
                bytes: bytes[..ID_BYTES].try_into().ok()?,
                text: ArrayString::from(text).ok()?,
            }),
            _ => None,
        }
    }

    /// Returns the text form, as written in the cookie.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::SessionId;
    ///
    /// let id = SessionId::from_bytes([0; 32]);
    /// assert_eq!(id.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    /// Returns the raw 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::SessionId;
    ///
    /// let id = SessionId::generate()?;
    /// // The text form is these bytes in unpadded base64url.
    /// assert_eq!(SessionId::from_bytes(*id.as_bytes()), id);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.bytes
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        // In constant time, a word at a time: the differences of the four words folded
        // together without a branch, then one constant-time test of the result (`subtle`
        // over the 32 bytes one by one costs ten times as much).
        let words = |bytes: &[u8; ID_BYTES]| -> [u64; 4] {
            std::array::from_fn(|i| {
                let mut word = [0u8; 8];
                word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
                u64::from_ne_bytes(word)
            })
        };
        let (a, b) = (words(&self.bytes), words(&other.bytes));
        let difference = (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]);
        difference.ct_eq(&0).into()
    }
}

impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canonical_form_parses() {
        let id = SessionId::from_bytes([0xff; ID_BYTES]);
        let text = id.as_str().to_owned();
        assert_eq!(SessionId::parse(&text), Some(id));
        // The last character carries 4 trailing bits that must be zero.
        let mut noncanonical = text.clone().into_bytes();
        *noncanonical.last_mut().unwrap() = b'_';
        assert!(SessionId::parse(std::str::from_utf8(&noncanonical).unwrap()).is_none());
        for bad in [
            String::new(),
            "a".into(),
            text[..42].to_owned(),
            format!("{text}="),
            text.replace('_', "/"),
            "A".repeat(1000),
            "\0".repeat(43),
            "/etc/passwd/////////////////////////////////".into(),
            "C:\\x".into(),
            "é".repeat(21) + "a",
        ] {
            assert!(SessionId::parse(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_parsed_id_keeps_the_text_its_bytes_encode_to() {
        for fill in [0u8, 1, 0x7f, 0x80, 0xfe, 0xff] {
            for last in 0..=u8::MAX {
                let mut bytes = [fill; ID_BYTES];
                bytes[ID_BYTES - 1] = last;
                let id = SessionId::from_bytes(bytes);
                let parsed = SessionId::parse(id.as_str()).unwrap();
                assert_eq!(parsed.as_bytes(), &bytes);
                assert_eq!(parsed.as_str(), id.as_str());
            }
        }
    }

    #[test]
    fn ids_differing_in_any_one_bit_are_unequal() {
        let id = SessionId::from_bytes([0x5a; ID_BYTES]);
        assert_eq!(id, SessionId::from_bytes([0x5a; ID_BYTES]));
        for bit in 0..ID_BYTES * 8 {
            let mut bytes = [0x5a; ID_BYTES];
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(id, SessionId::from_bytes(bytes), "bit {bit}");
        }
    }

    #[test]
    fn generated_ids_differ() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
    }
}
