//! Master keys, the key ring, and per-purpose key derivation.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// The shortest master secret accepted, in bytes (256 bits).
pub const MIN_SECRET_LEN: usize = 32;

/// Length of every derived key, in bytes.
pub(crate) const DERIVED_KEY_LEN: usize = 32;

// Domain separation for HKDF: a change here changes every derived key, so every existing
// cookie would stop opening. The known-answer vectors pin it.
const HKDF_SALT: &[u8] = b"fastsession key derivation v1";
const HKDF_INFO_PREFIX: &[u8] = b"fastsession/v1/";

/// A master secret with the id that names it inside every sealed value.
///
/// Sub-keys for each purpose (session cookies, revocation lists, ID hashing, ...) are derived
/// from it with HKDF-SHA256, so one secret per key id is all an operator manages. The secret
/// is zeroized on drop and never shown by `Debug`.
///
/// # Examples
///
/// ```
/// use fastsession::Key;
///
/// let key = Key::from_secret(b"use 32 random bytes, not a text!")?;
/// assert_eq!(key.id(), 1);
/// assert_eq!(format!("{key:?}"), "Key { id: 1, .. }");
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone)]
pub struct Key {
    id: u32,
    secret: Zeroizing<Vec<u8>>,
}

impl Key {
    /// Returns a key from a master secret of at least 32 bytes, with id 1 (see
    /// [`with_id`](Self::with_id)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidKey`] if the secret is shorter than [`MIN_SECRET_LEN`] or is one
    /// byte repeated (an all-zero buffer, for example).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    ///
    /// // 32 bytes or more from your secret store; the id says which key sealed a value.
    /// let secret = b"a secret of 32 bytes or more, from the secret store";
    /// let key = Key::from_secret(secret)?;
    /// assert_eq!(key.id(), 1);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "master secret is shorter than 32 bytes (256 bits)",
            ));
        }
        if secret.iter().all(|&b| b == secret[0]) {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "master secret is one byte repeated",
            ));
        }
        Ok(Key {
            id: 1,
            secret: Zeroizing::new(secret.to_vec()),
        })
    }

    /// Returns a key with id 1 from a base64 text (standard or URL-safe alphabet, padded or not)
    /// that decodes to at least 32 bytes; surrounding whitespace is ignored.
    ///
    /// This is the form to keep a secret in an environment variable; `openssl rand -base64 32`
    /// makes one.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidKey`] if the text is not base64 or the secret is refused by
    /// [`Key::from_secret`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Key;
    ///
    /// let key = Key::from_base64("q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=")?.with_id(7);
    /// assert_eq!(key.id(), 7);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn from_base64(text: &str) -> Result<Self> {
        use base64::Engine as _;
        use base64::engine::DecodePaddingMode;
        use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
        const LENIENT: GeneralPurposeConfig =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
        const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE.decode(text))
                .map_err(|_| {
                    Error::new(ErrorKind::InvalidKey, "master secret is not valid base64")
                })?,
        );
        Key::from_secret(&bytes)
    }

    /// Returns a new key with id 1 and 32 bytes from the operating system's random number
    /// generator.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`] if the random number generator fails; a weak key is never
    /// returned in its place.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Key;
    ///
    /// let key = Key::generate()?;
    /// assert_eq!(key.id(), 1);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        let mut secret = Zeroizing::new(vec![0u8; MIN_SECRET_LEN]);
        crate::random::fill(&mut secret)?;
        Key::from_secret(&secret)
    }

    /// Returns this key with id `id`: the number written into every value it seals, so that a key
    /// ring knows which key opens a value without trying each. Every key of a ring needs its own;
    /// give a new key the next number when you rotate.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    ///
    /// let old = Key::generate()?; // id 1
    /// let new = Key::generate()?.with_id(2);
    /// let ring = KeyRing::new(new).with_retired(old)?;
    /// assert_eq!(ring.active_id(), 2);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_id(mut self, id: u32) -> Self {
        self.id = id;
        self
    }

    /// Returns the id written into every value sealed with this key.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    ///
    /// assert_eq!(Key::generate()?.with_id(7).id(), 7);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Derives the 32-byte sub-key for `purpose`.
    pub(crate) fn derive(&self, purpose: &str) -> Zeroizing<[u8; DERIVED_KEY_LEN]> {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), &self.secret);
        let mut out = Zeroizing::new([0u8; DERIVED_KEY_LEN]);
        let info: [&[u8]; 2] = [HKDF_INFO_PREFIX, purpose.as_bytes()];
        // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so expand cannot fail.
        if hk.expand_multi_info(&info, out.as_mut()).is_err() {
            unreachable!("HKDF output length is constant and valid");
        }
        out
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The keys a codec may use: one active key that seals, any number of retired keys that still
/// open what they sealed.
///
/// A sealed value names its key by id, so opening never tries keys in turn. A value sealed
/// with a retired key opens, and the session is re-sealed with the active key when the
/// response is written. Removing a key from the ring ends every session it sealed.
///
/// # Examples
///
/// ```
/// use fastsession::{Key, KeyRing};
///
/// let old = Key::generate()?;
/// let new = Key::generate()?.with_id(2);
/// let ring = KeyRing::new(new).with_retired(old)?;
/// assert_eq!(ring.active_id(), 2);
/// assert_eq!(ring.ids().collect::<Vec<_>>(), [2, 1]);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyRing {
    // The active key is always first.
    keys: Vec<Key>,
}

impl KeyRing {
    /// Returns a ring whose only key, `active`, seals and opens.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    ///
    /// let ring = KeyRing::new(Key::generate()?);
    /// assert_eq!(ring.active_id(), 1);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(active: Key) -> Self {
        KeyRing { keys: vec![active] }
    }

    /// Returns this ring with `retired` added: it opens values it sealed but seals nothing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidKey`] if the ring already has a key with the same id.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    ///
    /// // Rotation: key 2 seals from now on; values sealed with key 1 still open.
    /// let old = Key::generate()?;
    /// let ring = KeyRing::new(Key::generate()?.with_id(2)).with_retired(old)?;
    /// assert_eq!(ring.ids().collect::<Vec<_>>(), [2, 1]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_retired(mut self, retired: Key) -> Result<Self> {
        if self.keys.iter().any(|k| k.id == retired.id) {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "two keys in the ring share one id",
            ));
        }
        self.keys.push(retired);
        Ok(self)
    }

    /// Returns the id of the key that seals.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    ///
    /// let ring = KeyRing::new(Key::generate()?.with_id(3));
    /// assert_eq!(ring.active_id(), 3);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn active_id(&self) -> u32 {
        self.keys[0].id
    }

    /// Returns the ids of all keys, active first.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    ///
    /// let ring = KeyRing::new(Key::generate()?.with_id(2)).with_retired(Key::generate()?)?;
    /// assert_eq!(ring.ids().collect::<Vec<_>>(), [2, 1]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    pub(crate) fn keys(&self) -> &[Key] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Vec<u8> {
        (0u8..32).collect()
    }

    #[test]
    fn refuses_short_empty_and_constant_secrets() {
        for bad in [
            &[][..],
            &[1u8; 16][..],
            &[0u8; 32][..],
            &[0xff; 64][..],
            &secret()[..31],
        ] {
            let err = Key::from_secret(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidKey);
        }
        assert!(Key::from_secret(&secret()).is_ok());
    }

    #[test]
    fn debug_does_not_leak_the_secret() {
        let key = Key::from_secret(&secret()).unwrap().with_id(9);
        let ring = KeyRing::new(key.clone());
        for text in [format!("{key:?}"), format!("{ring:?}"), format!("{key:#?}")] {
            assert!(!text.contains("secret"), "{text}");
            assert!(!text.contains("[0, 1, 2"), "{text}");
        }
    }

    #[test]
    fn derivation_is_per_purpose_and_per_secret() {
        let a = Key::from_secret(&secret()).unwrap();
        let mut other = secret();
        other[0] ^= 1;
        let b = Key::from_secret(&other).unwrap();
        assert_ne!(*a.derive("session"), *a.derive("revocation"));
        assert_ne!(*a.derive("session"), *b.derive("session"));
        assert_eq!(*a.derive("session"), *a.derive("session"));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let ring = KeyRing::new(Key::from_secret(&secret()).unwrap());
        assert!(
            ring.with_retired(Key::from_secret(&secret()).unwrap())
                .is_err()
        );
    }

    #[test]
    fn base64_secrets_in_both_alphabets() {
        let std = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
        let url = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k";
        assert!(Key::from_base64(std).is_ok());
        assert!(Key::from_base64(&format!(" {url}\n")).is_ok());
        assert!(Key::from_base64("not base64!").is_err());
        assert!(Key::from_base64("c2hvcnQ=").is_err());
    }
}
