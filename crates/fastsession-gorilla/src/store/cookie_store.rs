//! gorilla/sessions' `CookieStore`: the whole session in a signed (and maybe encrypted) cookie.

use std::sync::Arc;

use fastsession_core::ErrorKind as CoreErrorKind;
use fastsession_core::http::SessionConfig;
use fastsession_core::store::{
    CookieContent, LoadRequest, Loaded, RejectReason, RevocationList, SaveKind, SaveRequest, Saved,
    Store, StoreFuture, revoke_replaced,
};
use fastsession_core::time::UnixTime;

use super::{
    CoreResult, GoSide, Read, ended, expired_meanwhile, loaded, longest_max_age, origin_of,
    reject_reason,
};
use crate::codec::{SecureCookie, open_multi};
use crate::error::Error;
use crate::options::GoOptions;
use crate::session::{GorillaFormat, GorillaOrigin, fingerprint, unix_time};

/// Reads and writes gorilla/sessions' `CookieStore` cookies, so that a Go service and a Rust
/// service can share sessions: a cookie either one writes, the other reads, values and flash
/// messages included (gob, as gorilla's default serializer; see [`GorillaFormat`] for how Go
/// values map to session values).
///
/// Use the Go service's cookie name (without a `__Host-` prefix: the name is signed) and its
/// key pairs, newest first; a cookie under an older pair is rewritten under the newest when
/// the session is next used.
///
/// What the Go format cannot hold:
///
/// * a creation time: the store keeps it in the meta entry ([`GorillaFormat::with_meta_key`]),
///   so the absolute lifetime counts from the first save by a Rust service (the idle timeout
///   and the codecs' maximum age apply to the cookie's own timestamp);
/// * a session id: a logout cannot end a copy of the cookie in the Go service. With a
///   [revocation list](Self::with_revocation), the Rust service refuses the exact cookie a
///   logout or a regeneration replaced, and the sessions of a user logged out everywhere;
/// * a way to merge concurrent writes: as with any cookie store, of two concurrent requests
///   that change the session, the browser keeps one response's cookie.
///
/// Build it with [`from_go`](Self::from_go) and use [`session_config`](Self::session_config):
/// a `SessionConfig` with the default [`Expiry`](fastsession_core::session::Expiry) (24 hours
/// idle, 60 seconds of clock skew) refuses cookies the Go service still accepts.
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::{GoOptions, GorillaCookieStore, GorillaFormat};
///
/// // Go: sessions.NewCookieStore(hashKey, blockKey)
/// let (hash_key, block_key): (&[u8], &[u8]) = (b"a 32-byte hash key shared with Go", b"a 16-byte AES ke");
/// let store = GorillaCookieStore::from_go(&[hash_key, block_key], &GoOptions::new())?
///     .with_format(GorillaFormat::new().with_user_key("user_id"));
/// let config = store.session_config("session-name")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GorillaCookieStore {
    go: GoSide,
    revocation: Option<Arc<dyn RevocationList>>,
}

impl GorillaCookieStore {
    /// Returns a store reading cookies with any of `codecs` and writing them with the first; its
    /// [`session_config`](Self::session_config) gives the cookie of [`GoOptions::new`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoCodecs`](crate::ErrorKind::NoCodecs) if `codecs` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GorillaCookieStore, SecureCookie};
    ///
    /// // Codecs built by hand, e.g. a Go service that calls securecookie.New itself and sets
    /// // each codec's MaxAge to a week.
    /// let codec = SecureCookie::new(b"a 32-byte hash key shared with Go", None)?.with_max_age(7 * 86_400);
    /// let store = GorillaCookieStore::new(vec![codec])?;
    /// let sessions = store.session_config("session-name")?;
    /// # let _ = sessions;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(codecs: Vec<SecureCookie>) -> Result<Self, Error> {
        Ok(GorillaCookieStore {
            go: GoSide::new(codecs)?,
            revocation: None,
        })
    }

    /// Returns the store of a Go service's `sessions.NewCookieStore(key_pairs...)` configured with
    /// `options`: the key pairs as Go takes them (hash key, block key, hash key, ..., newest
    /// first; no block key, or an empty one, for no encryption), each codec with the options'
    /// maximum and minimum age and maximum length. [`session_config`](Self::session_config)
    /// then gives the rest.
    ///
    /// In Go, a block key that is empty but not nil (`[]byte(os.Getenv("UNSET"))`) makes its
    /// codec fail every encode and decode; leave such a pair out here.
    ///
    /// # Errors
    ///
    /// As [`GoOptions::codecs`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaCookieStore};
    ///
    /// // store := sessions.NewCookieStore(hashKey, blockKey); store.MaxAge(86400)
    /// let (hash_key, block_key): (&[u8], &[u8]) = (b"a 32-byte hash key shared with Go", b"a 16-byte AES ke");
    /// let store = GorillaCookieStore::from_go(&[hash_key, block_key], &GoOptions::new().with_max_age(86_400))?;
    /// let sessions = store.session_config("session-name")?;
    /// assert_eq!(sessions.cookie().name(), "session-name");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_go(key_pairs: &[&[u8]], options: &GoOptions) -> Result<Self, Error> {
        Ok(GorillaCookieStore {
            go: GoSide::from_go(key_pairs, options)?,
            revocation: None,
        })
    }

    /// Returns the [`SessionConfig`] of this store for the Go session `cookie_name` (Go's
    /// `store.Get(r, cookie_name)`), so that every cookie the Go service accepts opens here
    /// and none it refuses:
    ///
    /// * the cookie: the Go service's name and attributes ([`GoOptions::cookie_config`]);
    /// * the expiry: the idle timeout is the codecs' longest maximum age (none if one has
    ///   none), with no absolute lifetime and any timestamp from the future accepted, as Go
    ///   does; each codec still refuses what Go's refuses (beyond its maximum age, younger
    ///   than its minimum age). A stricter [`Expiry`](fastsession_core::session::Expiry)
    ///   (`SessionConfig::with_expiry`) logs out users the Go service keeps;
    /// * sessions Go created are "remember me" exactly when `Options.MaxAge` is above 0, as
    ///   Go's cookies are (this overrides [`GorillaFormat::with_persistent`]).
    ///
    /// # Errors
    ///
    /// As [`GoOptions::cookie_config`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaCookieStore, GorillaFormat};
    /// use std::time::Duration;
    ///
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let store = GorillaCookieStore::from_go(&[hash_key], &GoOptions::new())?
    ///     .with_format(GorillaFormat::new().with_user_key("user_id"));
    /// let sessions = store.session_config("app")?;
    /// // gorilla's default MaxAge of 30 days, and the second Go still counts in.
    /// assert_eq!(sessions.expiry().idle_timeout(), Duration::from_secs(30 * 86_400 + 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_config(&self, cookie_name: &str) -> CoreResult<SessionConfig> {
        self.go
            .session_config(cookie_name, |go| GorillaCookieStore { go, ..self.clone() })
    }

    /// Maps sessions with `format` (flash keys, user key).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaCookieStore, GorillaFormat};
    ///
    /// // Go keeps the user's id under "user_id" and adds flashes under "errors" too.
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let store = GorillaCookieStore::from_go(&[hash_key], &GoOptions::new())?
    ///     .with_format(GorillaFormat::new().with_user_key("user_id").with_flash_key("errors"));
    /// # let _ = store;
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    #[must_use]
    pub fn with_format(mut self, format: GorillaFormat) -> Self {
        self.go.format = format;
        self
    }

    /// Records in `list` each cookie a logout or a regeneration replaced, and refuses them
    /// afterwards (one look-up per request that reads the session).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::gorilla::{GorillaCookieStore, SecureCookie};
    /// use std::sync::Arc;
    ///
    /// let codec = SecureCookie::new(b"a 32-byte hash key shared with Go", None)?;
    /// let store = GorillaCookieStore::new(vec![codec])?.with_revocation(Arc::new(MemoryStore::new()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_revocation(self, list: Arc<dyn RevocationList>) -> Self {
        GorillaCookieStore {
            revocation: Some(list),
            ..self
        }
    }

    /// "Log out everywhere", as [`CookieStore::end_sessions_of`] does for native cookies:
    /// every cookie of `user` (read through the [user key](GorillaFormat::with_user_key)) last
    /// saved before `now` stops opening in the Rust service. `expiry` is the sessions' (the
    /// [`session_config`](Self::session_config)'s): with the codecs' maximum age, it says how
    /// long such a cookie could still open, so how long the list keeps the marker. Without a
    /// revocation list this does nothing and returns `false`.
    ///
    /// [`CookieStore::end_sessions_of`]: fastsession_core::store::CookieStore::end_sessions_of
    ///
    /// # Errors
    ///
    /// As [`CookieStore::end_sessions_of`]: the list's.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::gorilla::{GoOptions, GorillaCookieStore, GorillaFormat};
    /// use fastsession::time::UnixTime;
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// // The Go service keeps the user's id under "user_id".
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let store = GorillaCookieStore::from_go(&[hash_key], &GoOptions::new())?
    ///     .with_format(GorillaFormat::new().with_user_key("user_id"))
    ///     .with_revocation(Arc::new(MemoryStore::new()?));
    /// let sessions = store.session_config("app")?;
    /// assert!(store.end_sessions_of("ada", UnixTime::now(), sessions.expiry()).await?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn end_sessions_of(
        &self,
        user: &str,
        now: UnixTime,
        expiry: &fastsession_core::session::Expiry,
    ) -> CoreResult<bool> {
        let Some(list) = &self.revocation else {
            return Ok(false);
        };
        let lifetime = match longest_max_age(&self.go.codecs) {
            Some(age) => age.max(expiry.idle_timeout()),
            None => expiry.absolute_lifetime(),
        };
        let until = now
            .saturating_add(lifetime)
            .saturating_add(expiry.clock_skew());
        list.revoke_user(user, now, None, until).await?;
        Ok(true)
    }

    /// The codecs, for the migrating store that reads these cookies.
    pub(super) fn codecs(&self) -> &[SecureCookie] {
        &self.go.codecs
    }

    /// The session in the cookie, unless the codecs, the expiry or the format refuse it; the
    /// record's id is the cookie's fingerprint, for the revocation list.
    fn open(&self, request: &LoadRequest<'_>) -> Result<Read, RejectReason> {
        let name = request.cookie_name();
        let value = request.cookie_value();
        let opened = open_multi(&self.go.codecs, name, value, request.now())
            .map_err(|e| reject_reason(&e))?;
        let (mut record, origin) = self
            .go
            .format
            .read(
                &opened.payload,
                unix_time(opened.timestamp),
                GorillaOrigin::default(),
            )
            .map_err(|e| reject_reason(&e))?;
        record.set_id(Some(fingerprint(name, value)));
        request
            .expiry()
            .without_anonymous_idle_timeout()
            .check(&record, request.now())?;
        Ok(Read {
            record,
            origin,
            stale: opened.codec_index > 0,
        })
    }

    /// [`open`](Self::open), then the revocation list.
    pub(super) async fn read(
        &self,
        request: &LoadRequest<'_>,
    ) -> CoreResult<Result<Read, RejectReason>> {
        let read = match self.open(request) {
            Ok(read) => read,
            Err(reason) => return Ok(Err(reason)),
        };
        let record = &read.record;
        if let Some(list) = &self.revocation
            && list
                .has_ended(record.id(), record.user_id(), record.last_active())
                .await?
        {
            return Ok(Err(RejectReason::Revoked));
        }
        Ok(Ok(read))
    }

    /// The cookie value of `request`'s record, written at its time.
    fn write(&self, request: &SaveRequest<'_>) -> CoreResult<String> {
        let payload = self.go.values_gob(request)?;
        self.go.seal(
            request.cookie_name(),
            &payload,
            request.now(),
            |size, limit| CoreErrorKind::CookieTooLarge { size, limit },
        )
    }

    /// Refuses the cookie `request`'s record was read from from now on, if there is a list.
    pub(super) async fn revoke(&self, request: &SaveRequest<'_>) -> CoreResult<()> {
        if let Some(list) = &self.revocation
            && let Some(fingerprint) = request.record().id()
        {
            let user = request.record().user_id();
            list.revoke(
                fingerprint,
                user,
                replayable_until(&self.go.codecs, request),
            )
            .await?;
        }
        Ok(())
    }

    /// Saves through the revocation list: the cookie read ended, or its user logged out
    /// everywhere, since the load: refused; the cookie a logout or a regeneration replaces
    /// recorded as ended, once the new one is written.
    async fn save_cookie(&self, request: SaveRequest<'_>) -> CoreResult<Saved> {
        let (Some(list), Some(fingerprint)) = (&self.revocation, request.record().id()) else {
            return self.save_sealed(&request);
        };
        let (record, kind) = (request.record(), request.kind());
        if !matches!(kind, SaveKind::Destroy | SaveKind::Regenerate) {
            let loaded = origin_of(&request)
                .and_then(GorillaOrigin::last_active)
                .unwrap_or(record.last_active());
            if list
                .has_ended(Some(fingerprint), record.user_id(), loaded)
                .await?
            {
                return Err(ended());
            }
        }
        let saved = self.save_sealed(&request)?;
        let until = replayable_until(&self.go.codecs, &request);
        revoke_replaced(&**list, kind, fingerprint, record.user_id(), until).await?;
        Ok(saved)
    }

    fn save_sealed(&self, request: &SaveRequest<'_>) -> CoreResult<Saved> {
        if request.kind() == SaveKind::Destroy {
            return Ok(Saved::Remove);
        }
        if expired_meanwhile(request) {
            return Err(ended());
        }
        let value = self.write(request)?;
        Ok(Saved::Cookie { value, id: None })
    }
}

impl Store for GorillaCookieStore {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        if self.revocation.is_none() {
            return StoreFuture::ready(Ok(loaded(self.open(&request))));
        }
        StoreFuture::io(async move { Ok(loaded(self.read(&request).await?)) })
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        if self.revocation.is_some() {
            return StoreFuture::io(self.save_cookie(request));
        }
        StoreFuture::ready(self.save_sealed(&request))
    }
}

/// How long a gorilla value signed at `record`'s last save may still be replayed: the longest
/// maximum age among the codecs (or the session's own deadline if one has none).
fn replayable_until(codecs: &[SecureCookie], request: &SaveRequest<'_>) -> UnixTime {
    let deadline = request
        .expiry()
        .without_anonymous_idle_timeout()
        .deadline(request.record());
    let until = match longest_max_age(codecs) {
        Some(age) => request
            .record()
            .last_active()
            .saturating_add(age)
            .max(deadline),
        None => deadline,
    };
    until.saturating_add(request.expiry().clock_skew())
}
