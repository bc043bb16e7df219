//! The block key: AES-128, -192 or -256 in CTR mode, as securecookie encrypts.

use aes::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroizing;

use super::IV_LEN;
use crate::error::{Error, ErrorKind, Result};

#[derive(Clone)]
pub(super) enum BlockKey {
    Aes128(Zeroizing<[u8; 16]>),
    Aes192(Zeroizing<[u8; 24]>),
    Aes256(Zeroizing<[u8; 32]>),
}

impl BlockKey {
    pub(super) fn new(key: &[u8]) -> Result<Self> {
        let invalid = |_| Error::new(ErrorKind::InvalidBlockKey);
        Ok(match key.len() {
            16 => BlockKey::Aes128(Zeroizing::new(key.try_into().map_err(invalid)?)),
            24 => BlockKey::Aes192(Zeroizing::new(key.try_into().map_err(invalid)?)),
            32 => BlockKey::Aes256(Zeroizing::new(key.try_into().map_err(invalid)?)),
            _ => return Err(Error::new(ErrorKind::InvalidBlockKey)),
        })
    }

    /// CTR mode as Go's `cipher.NewCTR`: the IV is the whole initial counter block,
    /// incremented big-endian over all 16 bytes. The same call encrypts and decrypts.
    pub(super) fn apply(&self, iv: &[u8; IV_LEN], data: &mut [u8]) {
        match self {
            BlockKey::Aes128(k) => {
                ctr::Ctr128BE::<aes::Aes128>::new((&**k).into(), iv.into()).apply_keystream(data);
            }
            BlockKey::Aes192(k) => {
                ctr::Ctr128BE::<aes::Aes192>::new((&**k).into(), iv.into()).apply_keystream(data);
            }
            BlockKey::Aes256(k) => {
                ctr::Ctr128BE::<aes::Aes256>::new((&**k).into(), iv.into()).apply_keystream(data);
            }
        }
    }
}
