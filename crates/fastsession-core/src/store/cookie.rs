//! Sessions kept entirely in a sealed cookie.

use std::future::ready;

use super::{
    BoxFuture, CookieContent, LoadRequest, Loaded, RejectReason, SaveKind, SaveRequest, Saved,
    Store,
};
use crate::codec::{Codec, Failure, KeyRing};
use crate::error::Result;
use crate::session::Record;

/// The purpose session cookies' keys are derived for.
const PURPOSE: &str = "session-cookie";

/// Keeps the whole session in the cookie, sealed with XChaCha20-Poly1305.
///
/// Nothing is stored on the server. The creation and last-activity times are sealed inside, so
/// the idle timeout and absolute lifetime hold even against a client that keeps an old cookie.
///
/// What a cookie store cannot do, by its nature:
///
/// * **Revoke a copied cookie.** Logging out clears the browser's cookie, but a copy made
///   before still opens until it expires (removing its key from the ring ends *every* session
///   it sealed).
/// * **Merge concurrent writes.** The browser keeps whichever cookie arrives last, so of two
///   concurrent requests that change the session, one request's changes are lost.
/// * **Hold much.** About 2.9 KB of JSON fits under the 4096-byte cookie limit; a save over it
///   fails with [`ErrorKind::CookieTooLarge`](crate::ErrorKind::CookieTooLarge).
///
/// # Examples
///
/// ```
/// use fastsession_core::codec::{Key, KeyRing};
/// use fastsession_core::http::{CookieConfig, SessionConfig};
/// use fastsession_core::store::CookieStore;
///
/// let keys = KeyRing::new(Key::generate(2)?).with_retired(Key::generate(1)?)?;
/// let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("session")?);
/// # Ok::<(), fastsession_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CookieStore {
    codec: Codec,
}

impl CookieStore {
    /// A cookie store sealing with the active key of `keys`.
    #[must_use]
    pub fn new(keys: &KeyRing) -> Self {
        CookieStore {
            codec: Codec::new(keys, PURPOSE),
        }
    }

    fn open(&self, request: &LoadRequest<'_>) -> Loaded {
        let opened = match self
            .codec
            .open(request.cookie_name(), request.cookie_value())
        {
            Ok(opened) => opened,
            Err(e) => {
                return Loaded::rejected(match e.failure() {
                    Failure::Malformed => RejectReason::Malformed,
                    Failure::UnknownVersion => RejectReason::UnknownVersion,
                    Failure::UnknownKey => RejectReason::UnknownKey,
                    Failure::NotAuthentic => RejectReason::NotAuthentic,
                });
            }
        };
        let record = match Record::from_bytes(opened.plaintext()) {
            Ok(record) => record,
            Err(_) => return Loaded::rejected(RejectReason::Corrupt),
        };
        match request.expiry().check(&record, request.now()) {
            Ok(()) => Loaded::found(record).with_reseal(opened.is_stale()),
            Err(reason) => Loaded::rejected(reason),
        }
    }

    fn seal(&self, request: &SaveRequest<'_>) -> Result<Saved> {
        if request.kind() == SaveKind::Destroy {
            return Ok(Saved::Remove);
        }
        let value = self
            .codec
            .seal_with(request.cookie_name(), |buf| request.record().write_to(buf))?;
        Ok(Saved::Cookie { value, id: None })
    }
}

impl Store for CookieStore {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> BoxFuture<'a, Result<Loaded>> {
        Box::pin(ready(Ok(self.open(&request))))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> BoxFuture<'a, Result<Saved>> {
        Box::pin(ready(self.seal(&request)))
    }
}
