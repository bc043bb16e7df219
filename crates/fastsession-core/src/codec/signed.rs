//! Signed values: readable by anyone, changed by no one without the key.
//!
//! A signed value is the unpadded base64url text of
//!
//! ```text
//! version (1 byte, = 2) ‖ key id (4 bytes, big-endian) ‖ payload ‖ tag (16 bytes)
//! ```
//!
//! where the tag is the first 16 bytes of HMAC-SHA256, under the sub-key HKDF-SHA256 derives
//! from the named key for the signer's purpose, over
//!
//! ```text
//! "fastsession" ‖ 0x00 ‖ version ‖ key id ‖ purpose ‖ 0x00 ‖ len(name) (8 bytes, big-endian) ‖ name ‖ payload
//! ```
//!
//! The version byte (2) differs from the sealed format's (1), so neither format is ever taken
//! for the other, and the purposes in use differ too. Verifying checks, in order: the text
//! length (at most [`MAX_SEALED_LEN`]), the one canonical base64url form, the version byte, the
//! key id (one look-up), then the tag, compared in constant time.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use ring::hmac;
use subtle::ConstantTimeEq as _;

use super::{AAD_LABEL, BASE64, Failure, KeyRing, MAX_SEALED_LEN, OpenError, Opened};

/// The version byte of signed values, distinct from the sealed format's
/// [`FORMAT_VERSION`](super::FORMAT_VERSION).
///
/// # Examples
///
/// ```
/// use base64::Engine as _;
/// use fastsession::codec::{FORMAT_VERSION, Key, KeyRing, SIGNED_FORMAT_VERSION, Signer};
///
/// let signed = Signer::new(&KeyRing::new(Key::generate()?), "p").sign("n", b"x");
/// let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signed).unwrap();
/// assert_eq!(raw[0], SIGNED_FORMAT_VERSION);
/// assert_ne!(SIGNED_FORMAT_VERSION, FORMAT_VERSION);
/// # Ok::<(), fastsession::Error>(())
/// ```
pub const SIGNED_FORMAT_VERSION: u8 = 2;

/// Bytes of the tag: HMAC-SHA256 truncated to 128 bits, the strength of the sealed format's
/// Poly1305 tag.
pub(crate) const SIGNATURE_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 4;
/// Bytes a signed value adds to its payload before base64: version, key id and tag.
///
/// # Examples
///
/// ```
/// use fastsession::codec::{Key, KeyRing, SIGNED_OVERHEAD, Signer};
///
/// // A 32-byte session id signed: 53 bytes, 71 characters of base64url.
/// let signed = Signer::new(&KeyRing::new(Key::generate()?), "p").sign("n", &[0; 32]);
/// assert_eq!(SIGNED_OVERHEAD, 21);
/// assert_eq!(signed.len(), (4 * (32 + SIGNED_OVERHEAD)).div_ceil(3));
/// # Ok::<(), fastsession::Error>(())
/// ```
pub const SIGNED_OVERHEAD: usize = HEADER_LEN + SIGNATURE_LEN;

/// Signs and verifies values for one purpose with the keys of a [`KeyRing`].
///
/// Where a [`Codec`](super::Codec) hides a value, a signer only makes it tamper-evident: the
/// payload travels in the clear (base64url), so anyone holding the value can read it. Use it
/// for what the client may see. Signing is deterministic: the same payload, name and key give
/// the same text.
///
/// Cloning is cheap.
///
/// # Examples
///
/// ```
/// use fastsession::codec::{Key, KeyRing, Signer};
///
/// let signer = Signer::new(&KeyRing::new(Key::generate()?), "theme");
/// let signed = signer.sign("prefs", b"dark");
/// assert_eq!(signer.verify("prefs", &signed).expect("authentic").plaintext(), b"dark");
/// assert!(signer.verify("other-name", &signed).is_err());
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone)]
pub struct Signer {
    inner: Arc<SignerInner>,
}

struct SignerInner {
    purpose: Box<str>,
    // Active key first.
    keys: Vec<(u32, hmac::Key)>,
}

impl Signer {
    /// Returns a signer for `purpose`, deriving one HMAC key per key of `ring`.
    ///
    /// Different purposes get unrelated keys, so a value signed for one never verifies for
    /// another, nor for a [`Codec`](super::Codec) of any purpose.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::codec::{Key, KeyRing, Signer};
    ///
    /// let keys = KeyRing::new(Key::generate()?);
    /// let signed = Signer::new(&keys, "a").sign("n", b"x");
    /// assert!(Signer::new(&keys, "b").verify("n", &signed).is_err());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(ring: &KeyRing, purpose: &str) -> Self {
        let keys = ring
            .keys()
            .iter()
            .map(|k| {
                let derived = k.derive(purpose);
                (
                    k.id(),
                    hmac::Key::new(hmac::HMAC_SHA256, derived.as_slice()),
                )
            })
            .collect();
        Signer {
            inner: Arc::new(SignerInner {
                purpose: purpose.into(),
                keys,
            }),
        }
    }

    /// Returns the purpose this signer's keys are derived for.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::codec::{Key, KeyRing, Signer};
    ///
    /// let signer = Signer::new(&KeyRing::new(Key::generate()?), "theme");
    /// assert_eq!(signer.purpose(), "theme");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn purpose(&self) -> &str {
        &self.inner.purpose
    }

    /// Signs `payload` for the cookie called `name` with the active key.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::codec::{Key, KeyRing, Signer};
    ///
    /// let signer = Signer::new(&KeyRing::new(Key::generate()?), "theme");
    /// // Deterministic: no nonce, so the same input signs to the same text.
    /// assert_eq!(signer.sign("prefs", b"dark"), signer.sign("prefs", b"dark"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn sign(&self, name: &str, payload: &[u8]) -> String {
        self.sign_with(name, |buf| buf.extend_from_slice(payload))
    }

    /// Like [`sign`](Self::sign), with the payload written by `write` straight into the
    /// buffer that is signed.
    pub(crate) fn sign_with(&self, name: &str, write: impl FnOnce(&mut Vec<u8>)) -> String {
        let (id, key) = &self.inner.keys[0];
        let mut buf = Vec::with_capacity(128);
        buf.push(SIGNED_FORMAT_VERSION);
        buf.extend_from_slice(&id.to_be_bytes());
        write(&mut buf);
        let tag = self.tag(key, name, &buf);
        buf.extend_from_slice(&tag.as_ref()[..SIGNATURE_LEN]);
        BASE64.encode(&buf)
    }

    /// Verifies a value signed for the cookie called `name` by any key of the ring, and
    /// returns its payload.
    ///
    /// # Errors
    ///
    /// [`OpenError`] if the text is too long or too short, not canonical base64url, of another
    /// format, signed by a key not in the ring, or not authentic for `name` and this purpose.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::codec::{Key, KeyRing, Signer};
    ///
    /// let old_key = Key::generate()?;
    /// let signed = Signer::new(&KeyRing::new(old_key.clone()), "theme").sign("prefs", b"dark");
    ///
    /// // After a rotation the retired key still verifies; the value should be signed again.
    /// let ring = KeyRing::new(Key::generate()?.with_id(2)).with_retired(old_key)?;
    /// let verified = Signer::new(&ring, "theme").verify("prefs", &signed).expect("authentic");
    /// assert_eq!((verified.plaintext(), verified.key_id(), verified.is_stale()), (&b"dark"[..], 1, true));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn verify(&self, name: &str, signed: &str) -> Result<Opened, OpenError> {
        if signed.len() > MAX_SEALED_LEN {
            return Err(OpenError(Failure::Malformed));
        }
        let mut buf = Vec::with_capacity(signed.len() / 4 * 3 + 3);
        BASE64
            .decode_vec(signed, &mut buf)
            .map_err(|_| OpenError(Failure::Malformed))?;
        if buf.len() < SIGNED_OVERHEAD {
            return Err(OpenError(Failure::Malformed));
        }
        if buf[0] != SIGNED_FORMAT_VERSION {
            return Err(OpenError(Failure::UnknownVersion));
        }
        let id = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
        let Some(position) = self.inner.keys.iter().position(|(k, _)| *k == id) else {
            return Err(OpenError(Failure::UnknownKey));
        };
        let end = buf.len() - SIGNATURE_LEN;
        let tag = self.tag(&self.inner.keys[position].1, name, &buf[..end]);
        let authentic: bool = tag.as_ref()[..SIGNATURE_LEN].ct_eq(&buf[end..]).into();
        if !authentic {
            return Err(OpenError(Failure::NotAuthentic));
        }
        Ok(Opened {
            buf,
            start: HEADER_LEN,
            end,
            key_id: id,
            stale: position != 0,
        })
    }

    /// The full HMAC over the context and `signed` (version, key id and payload).
    fn tag(&self, key: &hmac::Key, name: &str, signed: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(AAD_LABEL);
        ctx.update(&signed[..HEADER_LEN]);
        ctx.update(self.inner.purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(&u64::try_from(name.len()).unwrap_or(u64::MAX).to_be_bytes());
        ctx.update(name.as_bytes());
        ctx.update(&signed[HEADER_LEN..]);
        ctx.sign()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u32> = self.inner.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("Signer")
            .field("purpose", &self.inner.purpose)
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, Key};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    fn secret(seed: u8) -> Vec<u8> {
        (0..32).map(|i| seed.wrapping_add(i)).collect()
    }

    fn ring(id: u32, seed: u8) -> KeyRing {
        KeyRing::new(Key::from_secret(&secret(seed)).unwrap().with_id(id))
    }

    /// HMAC-SHA256 written out from RFC 2104 with `sha2`, independent of `ring`.
    fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let pad = |byte: u8| -> Vec<u8> {
            let mut block = vec![byte; 64];
            block.iter_mut().zip(key).for_each(|(b, k)| *b ^= k);
            block
        };
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(message)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }

    #[test]
    fn layout_and_length() {
        let signer = Signer::new(&ring(0x0102_0304, 1), "p");
        let signed = signer.sign("id", b"abc");
        let raw = URL_SAFE_NO_PAD.decode(&signed).unwrap();
        assert_eq!(raw.len(), SIGNED_OVERHEAD + 3);
        assert_eq!(&raw[..8], &[2, 1, 2, 3, 4, b'a', b'b', b'c']);
        // A 32-byte payload (a session id) is 71 characters.
        assert_eq!(signer.sign("id", &[0; 32]).len(), 71);
    }

    /// Pins the exact bytes of the signed format: HKDF salt and info, the MAC input, the
    /// layout and the truncation. Built again from the module docs with RustCrypto's HKDF and
    /// an HMAC written out by hand. A change here would end every signed cookie in the field.
    #[test]
    fn known_answer() {
        let secret: Vec<u8> = (0u8..32).collect();
        let key = Key::from_secret(&secret).unwrap().with_id(0x0102_0304);
        let signer = Signer::new(&KeyRing::new(key), "signed-session-id");
        let payload: Vec<u8> = (0xa0u8..0xc0).collect();
        let signed = signer.sign("__Host-id", &payload);
        assert_eq!(
            signed,
            "AgECAwSgoaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2-v3rYaVhx_9zNyyab1_Uu34A"
        );

        let mut sub_key = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(b"fastsession key derivation v1"), &secret)
            .expand(b"fastsession/v1/signed-session-id", &mut sub_key)
            .unwrap();
        let header = [2u8, 1, 2, 3, 4];
        let message = [
            &b"fastsession\0"[..],
            &header,
            b"signed-session-id\0",
            &9u64.to_be_bytes(),
            b"__Host-id",
            &payload,
        ]
        .concat();
        let tag = hmac_sha256(&sub_key, &message);
        let expected = [&header[..], &payload, &tag[..16]].concat();
        assert_eq!(URL_SAFE_NO_PAD.decode(&signed).unwrap(), expected);
        assert_eq!(
            signer.verify("__Host-id", &signed).unwrap().plaintext(),
            payload
        );
    }

    #[test]
    fn each_failure_is_classified() {
        let signer = Signer::new(&ring(1, 1), "p");
        let signed = signer.sign("id", b"abc");
        let mut raw = URL_SAFE_NO_PAD.decode(&signed).unwrap();
        let reason = |text: &str| signer.verify("id", text).unwrap_err().failure();
        assert_eq!(reason(&"A".repeat(MAX_SEALED_LEN + 1)), Failure::Malformed);
        assert_eq!(reason(&signed[..10]), Failure::Malformed);
        assert_eq!(reason(&format!("{signed}=")), Failure::Malformed);
        assert_eq!(reason(""), Failure::Malformed);
        raw[0] = 1;
        assert_eq!(
            reason(&URL_SAFE_NO_PAD.encode(&raw)),
            Failure::UnknownVersion
        );
        raw[0] = 2;
        raw[4] = 9;
        assert_eq!(reason(&URL_SAFE_NO_PAD.encode(&raw)), Failure::UnknownKey);
        raw[4] = 1;
        for at in [5, raw.len() - 1] {
            let mut changed = raw.clone();
            changed[at] ^= 1;
            assert_eq!(
                reason(&URL_SAFE_NO_PAD.encode(&changed)),
                Failure::NotAuthentic
            );
        }
        // Moved to another name or purpose.
        assert!(signer.verify("ID", &signed).is_err());
        assert!(Signer::new(&ring(1, 1), "q").verify("id", &signed).is_err());
    }

    /// A sealed value never verifies and a signed one never opens, whatever the purposes.
    #[test]
    fn signed_and_sealed_never_cross() {
        let keys = ring(1, 1);
        let signer = Signer::new(&keys, "session-cookie");
        let codec = Codec::new(&keys, "session-cookie");
        // Long enough for either format's minimum length.
        let payload = [b'x'; 64];
        let sealed = codec.seal("id", &payload).unwrap();
        let signed = signer.sign("id", &payload);
        assert_eq!(
            signer.verify("id", &sealed).unwrap_err().failure(),
            Failure::UnknownVersion
        );
        assert_eq!(
            codec.open("id", &signed).unwrap_err().failure(),
            Failure::UnknownVersion
        );
        // Even with the version byte changed to the other format's, the tag does not verify.
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        raw[0] = SIGNED_FORMAT_VERSION;
        assert!(signer.verify("id", &URL_SAFE_NO_PAD.encode(&raw)).is_err());
    }

    #[test]
    fn rotation_old_keys_verify_the_active_key_signs() {
        let old = Signer::new(&ring(1, 1), "p");
        let signed = old.sign("id", b"x");
        let both = ring(2, 50)
            .with_retired(Key::from_secret(&secret(1)).unwrap())
            .unwrap();
        let rotated = Signer::new(&both, "p");
        let verified = rotated.verify("id", &signed).unwrap();
        assert!(verified.is_stale());
        assert_eq!(verified.key_id(), 1);
        let fresh = rotated.sign("id", b"x");
        assert_eq!(URL_SAFE_NO_PAD.decode(&fresh).unwrap()[1..5], [0, 0, 0, 2]);
        assert!(!rotated.verify("id", &fresh).unwrap().is_stale());
        // Once the old key is removed, its values no longer verify.
        assert_eq!(
            Signer::new(&ring(2, 50), "p")
                .verify("id", &signed)
                .unwrap_err()
                .failure(),
            Failure::UnknownKey
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let signer = Signer::new(&ring(3, 1), "p");
        assert_eq!(
            format!("{signer:?}"),
            r#"Signer { purpose: "p", key_ids: [3], .. }"#
        );
        let verified = signer.verify("id", &signer.sign("id", b"s3cr3t")).unwrap();
        assert_eq!(
            format!("{verified:?}"),
            "Opened { key_id: 3, stale: false, len: 6, .. }"
        );
    }

    proptest! {
        /// Whatever the payload and name, a value verifies to its payload, and any change to
        /// its text (or its name) makes it fail, unless the change gives back the same text.
        #[test]
        fn round_trip_and_any_change_is_refused(
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            name in "[!-~]{0,20}",
            at in any::<usize>(),
            replacement in proptest::char::range('-', 'z'),
        ) {
            let signer = Signer::new(&ring(1, 1), "p");
            let signed = signer.sign(&name, &payload);
            let verified = signer.verify(&name, &signed).unwrap();
            prop_assert_eq!(verified.plaintext(), &payload[..]);
            let at = at % signed.len();
            let mut changed: Vec<char> = signed.chars().collect();
            changed[at] = replacement;
            let changed: String = changed.into_iter().collect();
            prop_assert_eq!(signer.verify(&name, &changed).is_ok(), changed == signed);
            let other_name = format!("{name}x");
            prop_assert!(signer.verify(&other_name, &signed).is_err());
        }

        /// Random text never verifies, and never panics.
        #[test]
        fn random_text_never_verifies(text in "\\PC{0,200}") {
            prop_assert!(Signer::new(&ring(1, 1), "p").verify("id", &text).is_err());
        }
    }
}
