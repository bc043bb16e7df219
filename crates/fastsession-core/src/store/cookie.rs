//! Sessions kept entirely in a sealed cookie.

use std::borrow::Cow;
use std::future::ready;
use std::sync::Arc;
use std::time::Duration;

use super::{
    BoxFuture, CookieContent, LoadRequest, Loaded, RejectReason, RevocationList, SaveKind,
    SaveRequest, Saved, Store,
};
use crate::Session;
use crate::codec::{Codec, Failure, KeyRing};
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Expiry, Record, SessionId};
use crate::time::UnixTime;

/// The purpose session cookies' keys are derived for.
const PURPOSE: &str = "session-cookie";

/// Keeps the whole session in the cookie, sealed with XChaCha20-Poly1305.
///
/// Nothing is stored on the server. The creation and last-activity times are sealed inside, so
/// the idle timeout and absolute lifetime hold even against a client that keeps an old cookie.
///
/// What a cookie store cannot do, by its nature:
///
/// * **Revoke a copied cookie**, on its own. Logging out clears the browser's cookie, but a
///   copy made before still opens until it expires, unless the store keeps a
///   [revocation list](Self::with_revocation) in a server-side store (removing a key from the
///   ring ends *every* session it sealed).
/// * **Merge concurrent writes.** The browser keeps whichever cookie arrives last, so of two
///   concurrent requests that change the session, one request's changes are lost. This
///   includes [`Session::increment`](crate::Session::increment): here it is a plain set of
///   the value the request computed, so concurrent increments can be lost (server-side stores
///   add them up).
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
    revocation: Option<Arc<dyn RevocationList>>,
}

impl CookieStore {
    /// A cookie store sealing with the active key of `keys`.
    #[must_use]
    pub fn new(keys: &KeyRing) -> Self {
        CookieStore {
            codec: Codec::new(keys, PURPOSE),
            revocation: None,
        }
    }

    /// Makes logouts final: each session gets a random id inside its sealed cookie; destroying
    /// or regenerating a session records its id in `list`, and a cookie whose id is listed
    /// (a copy taken before the logout) no longer opens. Costs one look-up in `list` per
    /// request that reads the session.
    ///
    /// Any server-side store is a [`RevocationList`]; it holds one small marker per ended
    /// session until that session's cookie would have expired anyway.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::codec::{Key, KeyRing};
    /// use fastsession_core::store::{CookieStore, MemoryStore};
    /// use std::sync::Arc;
    ///
    /// let ended = Arc::new(MemoryStore::new()?);
    /// let store = CookieStore::new(&KeyRing::new(Key::generate(1)?)).with_revocation(ended);
    /// # Ok::<(), fastsession_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_revocation(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocation = Some(list);
        self
    }

    /// "Log out everywhere" for cookie sessions: every cookie of `user` (see
    /// [`Session::set_user_id`](crate::Session::set_user_id)) sealed up to now stops opening,
    /// as does every cookie a request that loaded one of them before this call saves after
    /// it. `keep` is the session of the current request if it should stay logged in (its
    /// cookie keeps opening, and so does what it saves later). Without a revocation list this
    /// does nothing and returns `false`.
    ///
    /// # Errors
    ///
    /// The revocation list's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession_core::codec::{Key, KeyRing};
    /// use fastsession_core::session::{Expiry, Session};
    /// use fastsession_core::store::{CookieStore, MemoryStore};
    /// use fastsession_core::time::UnixTime;
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = CookieStore::new(&KeyRing::new(Key::generate(1)?))
    ///     .with_revocation(Arc::new(MemoryStore::new()?));
    /// let current = Session::new_detached();
    /// let ended = store
    ///     .end_sessions_of("alice", Some(&current), UnixTime::now(), &Expiry::default())
    ///     .await?;
    /// assert!(ended);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn end_sessions_of(
        &self,
        user: &str,
        keep: Option<&Session>,
        now: UnixTime,
        expiry: &Expiry,
    ) -> Result<bool> {
        let Some(list) = &self.revocation else {
            return Ok(false);
        };
        let until = now
            .saturating_add(expiry.absolute_lifetime())
            .saturating_add(expiry.clock_skew());
        let keep = keep.and_then(|session| session.lock().record.id().cloned());
        list.revoke_user(user, now, keep.as_ref(), until).await?;
        Ok(true)
    }

    /// The authentic, unexpired record, and whether a retired key sealed it.
    fn open(&self, request: &LoadRequest<'_>) -> std::result::Result<(Record, bool), RejectReason> {
        let opened = self
            .codec
            .open(request.cookie_name(), request.cookie_value())
            .map_err(|e| match e.failure() {
                Failure::Malformed => RejectReason::Malformed,
                Failure::UnknownVersion => RejectReason::UnknownVersion,
                Failure::UnknownKey => RejectReason::UnknownKey,
                Failure::NotAuthentic => RejectReason::NotAuthentic,
            })?;
        let record = Record::from_bytes(opened.plaintext()).map_err(|_| RejectReason::Corrupt)?;
        // Nothing is held on the server: the anonymous idle timeout is not for cookies.
        let expiry = request.expiry().without_anonymous_idle_timeout();
        expiry.check(&record, request.now())?;
        Ok((record, opened.is_stale()))
    }

    async fn load_cookie(&self, request: LoadRequest<'_>) -> Result<Loaded> {
        let (record, reseal) = match self.open(&request) {
            Ok(opened) => opened,
            Err(reason) => return Ok(Loaded::rejected(reason)),
        };
        if let Some(list) = &self.revocation {
            // A cookie sealed before the list was on carries no id to revoke, so no logout
            // could end it: refused, like a revoked one.
            let ended = record.id().is_none()
                || list
                    .has_ended(record.id(), record.user_id(), record.last_active())
                    .await?;
            if ended {
                return Ok(Loaded::rejected(RejectReason::Revoked));
            }
        }
        Ok(Loaded::found(record).with_reseal(reseal))
    }

    /// Saves through the revocation list: ids recorded as ended, "log out everywhere" checked
    /// again at the save, and nothing revoked before the new cookie is known to fit.
    async fn save_cookie(&self, request: SaveRequest<'_>) -> Result<Saved> {
        let Some(list) = &self.revocation else {
            return self.seal(&request, request.record());
        };
        let (record, kind, now) = (request.record(), request.kind(), request.now());
        let ended = || Error::new(ErrorKind::SessionEnded, "session ended by a logout");
        let old_id = record.id();
        let until = request
            .expiry()
            .without_anonymous_idle_timeout()
            .deadline(record)
            .saturating_add(request.expiry().clock_skew());
        if kind == SaveKind::Destroy {
            if let Some(id) = old_id {
                list.revoke(id, record.user_id(), until).await?;
            }
            return Ok(Saved::Remove);
        }
        // Copied only if it must differ from the request's record (a new id, a later date).
        let mut sealed = Cow::Borrowed(record);
        if let Some(user) = record.user_id()
            && let Some(revocation) = list.user_revocation(user, old_id).await?
        {
            // A session loaded before a "log out everywhere" and saved after it stays ended,
            // unless it logged in in this very request.
            let logged_in_now = kind == SaveKind::Create || request.changes().user_changed();
            let loaded_active = request.previously_active().unwrap_or(record.last_active());
            if !logged_in_now && revocation.ends(loaded_active) {
                return Err(ended());
            }
            // Sealed in the second of that call, after it: dated a second later, so that the
            // whole-second comparison does not end it.
            if revocation.at >= now {
                let later = revocation.at.saturating_add(Duration::from_secs(1));
                sealed.to_mut().set_last_active(later);
            }
        }
        if old_id.is_none() || matches!(kind, SaveKind::Create | SaveKind::Regenerate) {
            sealed.to_mut().set_id(Some(SessionId::generate()?));
        }
        let saved = self.seal(&request, &sealed)?;
        if kind == SaveKind::Regenerate
            && let Some(id) = old_id
            && !list.revoke_first(id, record.user_id(), until).await?
        {
            // Another request regenerated or ended it first: one session, one successor.
            return Err(ended());
        }
        Ok(saved)
    }

    /// Seals `record` for the cookie, refusing a value over the request's bound before any
    /// side effect.
    fn seal(&self, request: &SaveRequest<'_>, record: &Record) -> Result<Saved> {
        let value = self
            .codec
            .seal_with(request.cookie_name(), |buf| record.write_to(buf))?;
        if let Some(max) = request.max_cookie_value_len()
            && value.len() > max
        {
            return Err(Error::new(
                ErrorKind::CookieTooLarge {
                    size: value.len() + request.cookie_name().len(),
                    limit: max + request.cookie_name().len(),
                },
                format!("session cookie `{}` not set", request.cookie_name()),
            ));
        }
        Ok(Saved::Cookie {
            value,
            id: record.id().cloned(),
        })
    }
}

impl Store for CookieStore {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> BoxFuture<'a, Result<Loaded>> {
        match self.load_now(request) {
            Some(loaded) => Box::pin(ready(loaded)),
            None => Box::pin(self.load_cookie(request)),
        }
    }

    fn load_now(&self, request: LoadRequest<'_>) -> Option<Result<Loaded>> {
        // A revocation list is a store of its own, possibly with I/O.
        if self.revocation.is_some() {
            return None;
        }
        Some(Ok(match self.open(&request) {
            Ok((record, reseal)) => Loaded::found(record).with_reseal(reseal),
            Err(reason) => Loaded::rejected(reason),
        }))
    }

    fn save_now(&self, request: SaveRequest<'_>) -> Option<Result<Saved>> {
        if self.revocation.is_some() {
            return None;
        }
        if request.kind() == SaveKind::Destroy {
            return Some(Ok(Saved::Remove));
        }
        Some(self.seal(&request, request.record()))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> BoxFuture<'a, Result<Saved>> {
        match self.save_now(request) {
            Some(saved) => Box::pin(ready(saved)),
            None => Box::pin(self.save_cookie(request)),
        }
    }
}
