//! XChaCha20-Poly1305 with 192-bit nonces that cannot repeat.
//!
//! The construction is the standard one (draft-irtf-cfrg-xchacha §2.3): HChaCha20 turns the key
//! and the first 16 nonce bytes into a sub-key, and ChaCha20-Poly1305 (RFC 8439) runs under that
//! sub-key with the last 8 nonce bytes. HChaCha20 comes from RustCrypto's `chacha20`, the AEAD
//! from `ring`, whose assembly is 2-3× faster on short messages (see DESIGN.md); a unit test
//! checks the composition against RustCrypto's `XChaCha20Poly1305` on random inputs.
//!
//! Nonces: a sealer draws a 128-bit prefix from the OS CSPRNG and counts the last 64 bits up
//! from a random start. Two nonces collide only if two prefixes do (2^-128 per pair of
//! sealers), so the random-nonce limits of 96-bit AES-GCM do not apply; and because the prefix
//! stays fixed for 2^32 seals, its sub-key is computed once, not per cookie.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Result;

pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
const PREFIX_LEN: usize = 16;
/// Seals under one nonce prefix before a new one is drawn.
const SEALS_PER_PREFIX: u64 = 1 << 32;

/// One derived key: opens anything sealed under it, and seals if it is the active key.
pub(crate) struct XChaCha {
    key: Zeroizing<[u8; 32]>,
    /// The prefix this process seals under.
    sealer: RwLock<Option<Arc<Epoch>>>,
    /// Prefixes of other processes (or earlier runs) that recently opened a value, so that
    /// their sub-keys are not derived again for every cookie they sealed.
    known: RwLock<VecDeque<Arc<Epoch>>>,
}

/// A nonce prefix, its sub-key, and for the sealer's own prefix the counter.
struct Epoch {
    prefix: [u8; PREFIX_LEN],
    subkey: LessSafeKey,
    next: AtomicU64,
    last: u64,
}

/// How many foreign prefixes keep their sub-keys.
const KNOWN_PREFIXES: usize = 16;

impl XChaCha {
    pub(crate) fn new(key: Zeroizing<[u8; 32]>) -> Self {
        XChaCha {
            key,
            sealer: RwLock::new(None),
            known: RwLock::new(VecDeque::new()),
        }
    }

    fn subkey(&self, prefix: &[u8; PREFIX_LEN]) -> LessSafeKey {
        let mut sub = chacha20::hchacha::<chacha20::R20>((&*self.key).into(), prefix.into());
        // ChaCha20-Poly1305 takes any 32-byte key, so this cannot fail.
        let key = match UnboundKey::new(&CHACHA20_POLY1305, sub.as_slice()) {
            Ok(k) => LessSafeKey::new(k),
            Err(_) => unreachable!("32-byte ChaCha20-Poly1305 key"),
        };
        sub.as_mut_slice().zeroize();
        key
    }

    fn new_epoch(&self) -> Result<Epoch> {
        let mut seed = [0u8; PREFIX_LEN + 8];
        crate::random::fill(&mut seed)?;
        let (prefix, start) = seed.split_at(PREFIX_LEN);
        let prefix: [u8; PREFIX_LEN] = prefix.try_into().unwrap_or_default();
        // A random start hides how many cookies this process has sealed; the top bit is
        // cleared so that counting 2^32 further (plus one overshoot per thread) never wraps.
        let start = u64::from_be_bytes(start.try_into().unwrap_or_default()) >> 1;
        Ok(Epoch {
            subkey: self.subkey(&prefix),
            prefix,
            next: AtomicU64::new(start),
            last: start + SEALS_PER_PREFIX,
        })
    }

    /// The next unique nonce and the sub-key that goes with it.
    fn next_nonce(&self) -> Result<(Arc<Epoch>, [u8; NONCE_LEN])> {
        loop {
            if let Some(epoch) = read(&self.sealer).as_ref() {
                let n = epoch.next.fetch_add(1, Ordering::Relaxed);
                if n < epoch.last {
                    let mut nonce = [0u8; NONCE_LEN];
                    nonce[..PREFIX_LEN].copy_from_slice(&epoch.prefix);
                    nonce[PREFIX_LEN..].copy_from_slice(&n.to_be_bytes());
                    return Ok((Arc::clone(epoch), nonce));
                }
            }
            let mut slot = self.sealer.write().unwrap_or_else(PoisonError::into_inner);
            // Another thread may have renewed it while this one waited for the lock.
            if slot
                .as_ref()
                .is_none_or(|e| e.next.load(Ordering::Relaxed) >= e.last)
            {
                *slot = Some(Arc::new(self.new_epoch()?));
            }
        }
    }

    /// The sub-key for `prefix`, if it is this process's or a recently authenticated one.
    fn cached(&self, prefix: &[u8; PREFIX_LEN]) -> Option<Arc<Epoch>> {
        if let Some(own) = read(&self.sealer).as_ref().filter(|e| e.prefix == *prefix) {
            return Some(Arc::clone(own));
        }
        read(&self.known)
            .iter()
            .find(|e| e.prefix == *prefix)
            .cloned()
    }

    /// Encrypts `buf[offset..]` in place under a fresh nonce, writes the nonce to
    /// `buf[offset - NONCE_LEN..offset]` and appends the tag.
    pub(crate) fn seal_in_place(&self, aad: &[u8], buf: &mut Vec<u8>, offset: usize) -> Result<()> {
        let (epoch, nonce) = self.next_nonce()?;
        buf[offset - NONCE_LEN..offset].copy_from_slice(&nonce);
        let tag = seal_with(&epoch.subkey, &nonce, aad, &mut buf[offset..]);
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts `data = ciphertext ‖ tag` in place; on success the plaintext is
    /// `data[..data.len() - TAG_LEN]`. Fails without saying why.
    pub(crate) fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
    ) -> bool {
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&nonce[..PREFIX_LEN]);
        if let Some(epoch) = self.cached(&prefix) {
            return open_with(&epoch.subkey, nonce, aad, data);
        }
        let epoch = Epoch {
            subkey: self.subkey(&prefix),
            prefix,
            next: AtomicU64::new(0),
            last: 0,
        };
        let authentic = open_with(&epoch.subkey, nonce, aad, data);
        // Only authentic prefixes are remembered, so forged cookies cannot evict real ones.
        if authentic {
            let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
            if !known.iter().any(|e| e.prefix == prefix) {
                known.push_front(Arc::new(epoch));
                known.truncate(KNOWN_PREFIXES);
            }
        }
        authentic
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
impl XChaCha {
    /// [`seal_in_place`](Self::seal_in_place) under a caller-chosen nonce, so that tests can pin
    /// exact output bytes. Test builds only: a nonce must never repeat under one key.
    pub(crate) fn seal_in_place_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
        offset: usize,
    ) {
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&nonce[..PREFIX_LEN]);
        buf[offset - NONCE_LEN..offset].copy_from_slice(nonce);
        let tag = seal_with(&self.subkey(&prefix), nonce, aad, &mut buf[offset..]);
        buf.extend_from_slice(tag.as_ref());
    }
}

fn inner_nonce(nonce: &[u8; NONCE_LEN]) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&nonce[PREFIX_LEN..]);
    Nonce::assume_unique_for_key(n)
}

fn seal_with(key: &LessSafeKey, nonce: &[u8; NONCE_LEN], aad: &[u8], data: &mut [u8]) -> Tag {
    // ring refuses only inputs longer than ChaCha20's 256 GiB block-counter range.
    match key.seal_in_place_separate_tag(inner_nonce(nonce), Aad::from(aad), data) {
        Ok(tag) => tag,
        Err(_) => unreachable!("sealed values are bounded far below 256 GiB"),
    }
}

fn open_with(key: &LessSafeKey, nonce: &[u8; NONCE_LEN], aad: &[u8], data: &mut [u8]) -> bool {
    key.open_in_place(inner_nonce(nonce), Aad::from(aad), data)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use proptest::prelude::*;

    fn reference_seal(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
        cipher.encrypt(nonce.into(), Payload { msg, aad }).unwrap()
    }

    fn seal_at(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let x = XChaCha::new(Zeroizing::new(*key));
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&nonce[..PREFIX_LEN]);
        let mut buf = msg.to_vec();
        let tag = seal_with(&x.subkey(&prefix), nonce, aad, &mut buf);
        buf.extend_from_slice(tag.as_ref());
        buf
    }

    /// draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    #[test]
    fn draft_known_answer() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let key: [u8; 32] = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
            .try_into()
            .unwrap();
        let nonce: [u8; 24] = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
            .try_into()
            .unwrap();
        let out = seal_at(&key, &nonce, &aad, msg);
        let expected_ct = hex(
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e",
        );
        let expected_tag = hex("c0875924c1c7987947deafd8780acf49");
        assert_eq!(&out[..msg.len()], &expected_ct[..]);
        assert_eq!(&out[msg.len()..], &expected_tag[..]);
    }

    proptest! {
        #[test]
        fn matches_rustcrypto(key: [u8; 32], nonce: [u8; 24], aad: Vec<u8>, msg: Vec<u8>) {
            prop_assert_eq!(seal_at(&key, &nonce, &aad, &msg), reference_seal(&key, &nonce, &aad, &msg));
        }
    }

    #[test]
    fn nonces_never_repeat_and_open_round_trips() {
        let x = XChaCha::new(Zeroizing::new([9u8; 32]));
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            let msg = i.to_be_bytes();
            let mut buf = vec![0u8; NONCE_LEN];
            buf.extend_from_slice(&msg);
            x.seal_in_place(b"aad", &mut buf, NONCE_LEN).unwrap();
            let nonce: [u8; NONCE_LEN] = buf[..NONCE_LEN].try_into().unwrap();
            assert!(seen.insert(nonce));
            assert!(x.open_in_place(&nonce, b"aad", &mut buf[NONCE_LEN..]));
            assert_eq!(&buf[NONCE_LEN..NONCE_LEN + 4], &msg);
            assert!(!x.open_in_place(&nonce, b"other aad", &mut buf[NONCE_LEN..]));
        }
    }

    #[test]
    fn another_sealers_prefix_opens_through_a_fresh_subkey() {
        let a = XChaCha::new(Zeroizing::new([3u8; 32]));
        let b = XChaCha::new(Zeroizing::new([3u8; 32]));
        let mut buf = vec![0u8; NONCE_LEN];
        buf.extend_from_slice(b"hello");
        a.seal_in_place(b"", &mut buf, NONCE_LEN).unwrap();
        let nonce: [u8; NONCE_LEN] = buf[..NONCE_LEN].try_into().unwrap();
        assert!(b.open_in_place(&nonce, b"", &mut buf[NONCE_LEN..]));
    }
}
