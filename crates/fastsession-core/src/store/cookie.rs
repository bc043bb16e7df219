//! Sessions kept entirely in a sealed cookie.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use super::{
    CookieContent, LoadRequest, Loaded, Memo, RejectReason, RevocationList, SaveKind, SaveRequest,
    Saved, Store, StoreFuture,
};
use crate::Session;
use crate::codec::{Codec, KeyRing, Opened, Signer};
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Expiry, Record, SessionId};
use crate::time::UnixTime;

/// The purpose session cookies' keys are derived for.
const PURPOSE: &str = "session-cookie";
/// The purpose signed-only session cookies' keys are derived for.
const SIGNED_PURPOSE: &str = "signed-session-cookie";

/// Keeps the whole session in the cookie, sealed with XChaCha20-Poly1305 (or, made with
/// [`signed`](Self::signed), only signed).
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
/// use fastsession::{Key, KeyRing};
/// use fastsession::{CookieConfig, SessionConfig};
/// use fastsession::CookieStore;
///
/// let keys = KeyRing::new(Key::generate()?.with_id(2)).with_retired(Key::generate()?)?;
/// let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("session")?);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CookieStore {
    protection: Protection,
    revocation: Option<Arc<dyn RevocationList>>,
}

/// How the cookie is protected.
#[derive(Debug, Clone)]
enum Protection {
    /// Encrypted and authenticated: the client can neither read nor change it.
    Sealed(Codec),
    /// Authenticated only: the client can read it but not change it.
    Signed(Signer),
}

impl CookieStore {
    /// Returns a cookie store sealing with the active key of `keys`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    /// use fastsession::CookieStore;
    ///
    /// let store = CookieStore::new(&KeyRing::new(Key::generate()?));
    /// assert!(!store.is_signed());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(keys: &KeyRing) -> Self {
        CookieStore {
            protection: Protection::Sealed(Codec::new(keys, PURPOSE)),
            revocation: None,
        }
    }

    /// Returns a cookie store that **signs** the session with the active key of `keys` instead of
    /// encrypting it: the client can read the cookie but cannot change it.
    ///
    /// **Everything in the session is readable by the client**: every value, flash message,
    /// the user id ([`Session::set_user_id`](crate::Session::set_user_id)) and the times.
    /// Browser extensions, anyone at the keyboard, and (without `HttpOnly`) every script on
    /// the page can read it. Use it only for what the user may see anyway (a theme, a
    /// language), never for secrets, tokens or personal data; [`new`](Self::new) is the right
    /// choice otherwise. Page scripts can read the cookie only if its `HttpOnly` attribute is
    /// turned off ([`CookieConfigBuilder::with_http_only`](crate::http::CookieConfigBuilder::with_http_only)).
    ///
    /// Everything else is as with [`new`](Self::new): the creation and last-activity times
    /// are signed with the data, so the idle timeout and absolute lifetime hold; retired keys
    /// still verify and the session is signed again with the active key; the cookie is
    /// bound to its name; the size limit is the same; revocation works the same. Its format
    /// (version byte 2, its own key purpose) is never accepted by a sealing store, nor a
    /// sealed cookie by this one: switching between the two ends the sessions.
    ///
    /// The value is the unpadded base64url text of `2 ‖ key id (4 bytes) ‖ record ‖ tag (16
    /// bytes)`, where the record is `flags (1) ‖ created (8) ‖ last active (8) ‖ [session id
    /// (32), if flags & 2] ‖ JSON` (empty when the session holds nothing). In a page script:
    ///
    /// ```js
    /// const raw = Uint8Array.from(atob(value.replace(/-/g, "+").replace(/_/g, "/")), c => c.charCodeAt(0));
    /// const start = 5 + 17 + (raw[5] & 2 ? 32 : 0);
    /// const json = new TextDecoder().decode(raw.subarray(start, raw.length - 16));
    /// const session = json ? JSON.parse(json) : {}; // {"v": {key: value}, "f": {...}, "u": user}
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    /// use fastsession::{CookieConfig, SessionConfig};
    /// use fastsession::CookieStore;
    ///
    /// let keys = KeyRing::new(Key::generate()?);
    /// let store = CookieStore::signed(&keys);
    /// assert!(store.is_signed());
    /// // Readable by page scripts: HttpOnly off, and nothing secret in this session.
    /// let cookie = CookieConfig::builder("prefs").with_http_only(false).build()?;
    /// let prefs = SessionConfig::new(store, cookie);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn signed(keys: &KeyRing) -> Self {
        CookieStore {
            protection: Protection::Signed(Signer::new(keys, SIGNED_PURPOSE)),
            revocation: None,
        }
    }

    /// Returns `true` for a store made with [`signed`](Self::signed): its cookies are readable by
    /// the client.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{Key, KeyRing};
    /// use fastsession::CookieStore;
    ///
    /// let keys = KeyRing::new(Key::generate()?);
    /// assert!(CookieStore::signed(&keys).is_signed());
    /// assert!(!CookieStore::new(&keys).is_signed());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_signed(&self) -> bool {
        matches!(self.protection, Protection::Signed(_))
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
    /// use fastsession::{Key, KeyRing};
    /// use fastsession::{CookieStore, MemoryStore};
    /// use std::sync::Arc;
    ///
    /// let ended = Arc::new(MemoryStore::new()?);
    /// let store = CookieStore::new(&KeyRing::new(Key::generate()?)).with_revocation(ended);
    /// # Ok::<(), fastsession::Error>(())
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
    /// use fastsession::{Key, KeyRing};
    /// use fastsession::{Expiry, Session};
    /// use fastsession::{CookieStore, MemoryStore};
    /// use fastsession::time::UnixTime;
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = CookieStore::new(&KeyRing::new(Key::generate()?))
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
        let (name, value) = (request.cookie_name(), request.cookie_value());
        let opened: Opened = match &self.protection {
            Protection::Sealed(codec) => codec.open(name, value),
            Protection::Signed(signer) => signer.verify(name, value),
        }
        .map_err(RejectReason::of_open_error)?;
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
        let active = LoadedActive(record.last_active());
        Ok(Loaded::found(record)
            .with_reseal(reseal)
            .with_memo(Memo::new(active)))
    }

    /// Saves through the revocation list: ids recorded as ended, "log out everywhere" checked
    /// again at the save, and nothing revoked before the new cookie is known to fit.
    async fn save_cookie(&self, request: SaveRequest<'_>) -> Result<Saved> {
        let Some(list) = &self.revocation else {
            return self.seal(&request, request.record());
        };
        let (record, kind) = (request.record(), request.kind());
        let saved = match kind {
            SaveKind::Destroy => Saved::Remove,
            _ => self.seal_unless_logged_out(&request, &**list).await?,
        };
        if let Some(id) = record.id() {
            let until = request
                .expiry()
                .without_anonymous_idle_timeout()
                .deadline(record)
                .saturating_add(request.expiry().clock_skew());
            revoke_replaced(&**list, kind, id, record.user_id(), until).await?;
        }
        Ok(saved)
    }

    /// [`seal`](Self::seal), with a new id where the session needs one, unless the session's
    /// user logged out everywhere since it was loaded.
    async fn seal_unless_logged_out(
        &self,
        request: &SaveRequest<'_>,
        list: &dyn RevocationList,
    ) -> Result<Saved> {
        let (record, kind, now) = (request.record(), request.kind(), request.now());
        let old_id = record.id();
        // Copied only if it must differ from the request's record (a new id, a later date).
        let mut sealed = Cow::Borrowed(record);
        if let Some(user) = record.user_id()
            && let Some(revocation) = list.user_revocation(user, old_id).await?
        {
            // A session loaded before a "log out everywhere" and saved after it stays ended,
            // unless it logged in in this very request.
            let logged_in_now = kind == SaveKind::Create || request.changes().user_changed();
            let loaded_active = request
                .memo()
                .and_then(Memo::get::<LoadedActive>)
                .map_or(record.last_active(), |loaded| loaded.0);
            if !logged_in_now && revocation.ends(loaded_active) {
                return Err(Error::new(
                    ErrorKind::SessionEnded,
                    "session ended by a logout",
                ));
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
        self.seal(request, &sealed)
    }

    /// Seals `record` for the cookie, refusing a value over the request's bound before any
    /// side effect.
    fn seal(&self, request: &SaveRequest<'_>, record: &Record) -> Result<Saved> {
        let (name, write) = (request.cookie_name(), |buf: &mut Vec<u8>| {
            record.write_to(buf)
        });
        let value = match &self.protection {
            Protection::Sealed(codec) => codec.seal_with(name, write)?,
            Protection::Signed(signer) => signer.sign_with(name, write),
        };
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

/// Ends, in `list`, the session `id` that a save replaces, as a store whose cookies a logout
/// cannot take back does once the new cookie is known to fit: a logout
/// ([`SaveKind::Destroy`]) records `id` as ended until `until` (when its cookie expires
/// anyway); a regeneration does too, and fails if another request ended `id` first (of two
/// racing regenerations, one goes on). Other saves end nothing.
///
/// # Errors
///
/// [`ErrorKind::SessionEnded`] for a regeneration of a session another request ended; the
/// list's error.
///
/// # Examples
///
/// ```
/// use fastsession::session::SessionId;
/// use fastsession::store::{RevocationList, SaveKind, revoke_replaced};
/// use fastsession::time::UnixTime;
/// use fastsession::{ErrorKind, MemoryStore};
/// use std::time::Duration;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let list = MemoryStore::new()?;
/// let id = SessionId::generate()?;
/// let until = UnixTime::now().saturating_add(Duration::from_secs(3_600));
/// // The first regeneration of a session goes on; one racing it does not.
/// revoke_replaced(&list, SaveKind::Regenerate, &id, None, until).await?;
/// let second = revoke_replaced(&list, SaveKind::Regenerate, &id, None, until).await;
/// assert_eq!(second.unwrap_err().kind(), ErrorKind::SessionEnded);
/// assert!(list.is_revoked(&id).await?);
/// # Ok::<(), fastsession::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn revoke_replaced(
    list: &dyn RevocationList,
    kind: SaveKind,
    id: &SessionId,
    user: Option<&str>,
    until: UnixTime,
) -> Result<()> {
    match kind {
        SaveKind::Destroy => list.revoke(id, user, until).await,
        SaveKind::Regenerate if !list.revoke_first(id, user, until).await? => Err(Error::new(
            ErrorKind::SessionEnded,
            "session ended by another request",
        )),
        _ => Ok(()),
    }
}

/// When a session checked against a revocation list was last active as it loaded: a "log
/// out everywhere" after that time ends it, however recent the request's own activity.
struct LoadedActive(UnixTime);

impl Store for CookieStore {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        // A revocation list is a store of its own, possibly with I/O.
        if self.revocation.is_some() {
            return StoreFuture::io(self.load_cookie(request));
        }
        StoreFuture::ready(Ok(match self.open(&request) {
            Ok((record, reseal)) => Loaded::found(record).with_reseal(reseal),
            Err(reason) => Loaded::rejected(reason),
        }))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        if self.revocation.is_some() {
            return StoreFuture::io(self.save_cookie(request));
        }
        if request.kind() == SaveKind::Destroy {
            return StoreFuture::ready(Ok(Saved::Remove));
        }
        StoreFuture::ready(self.seal(&request, request.record()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Key;

    /// The sealed envelope carries the session's own deadline, and opening enforces it.
    #[test]
    fn a_sealed_deadline_is_kept_and_enforced() {
        let store = CookieStore::new(&KeyRing::new(Key::generate().unwrap()));
        let expiry = Expiry::default();
        let now = UnixTime::from_secs(1_700_000_000);
        let mut record = Record::new(now);
        record.set_expires_at(Some(now.saturating_add(Duration::from_secs(60))));
        let changes = crate::session::ChangeSet::default();
        let request = SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);
        let Ok(Saved::Cookie { value, .. }) = store.save(request).now() else {
            panic!("sealed");
        };
        let open = |secs: u64| {
            let at = now.saturating_add(Duration::from_secs(secs));
            let request = LoadRequest::new("id", &value, None, &expiry, at);
            store.load(request).now().unwrap()
        };
        assert_eq!(open(59).record(), Some(&record));
        assert_eq!(
            open(60).reject_reason(),
            Some(RejectReason::AbsoluteTimeout)
        );
    }

    fn keys() -> KeyRing {
        let secret: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(7)).collect();
        KeyRing::new(Key::from_secret(&secret).unwrap())
    }

    fn round_trip(saving: &CookieStore, loading: &CookieStore) -> Loaded {
        let (now, expiry) = (UnixTime::from_secs(1_000), Expiry::default());
        let mut record = Record::new(now);
        // Long enough that either format's minimum length is met.
        record.set_user_id(Some("gopher@example.com".into()));
        let changes = Default::default();
        let request = SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);
        let Ok(Saved::Cookie { value, .. }) = saving.save(request).now() else {
            panic!("a cookie store saves at once");
        };
        loading
            .load(LoadRequest::new("id", &value, None, &expiry, now))
            .now()
            .unwrap()
    }

    #[test]
    fn each_kind_opens_only_its_own_cookies() {
        let (sealed, signed) = (CookieStore::new(&keys()), CookieStore::signed(&keys()));
        assert!(round_trip(&sealed, &sealed).record().is_some());
        assert!(round_trip(&signed, &signed).record().is_some());
        for (from, to) in [(&sealed, &signed), (&signed, &sealed)] {
            let loaded = round_trip(from, to);
            assert_eq!(loaded.reject_reason(), Some(RejectReason::UnknownVersion));
        }
        assert!(signed.is_signed() && !sealed.is_signed());
        assert_eq!(signed.cookie_content(), CookieContent::Sealed);
    }
}
