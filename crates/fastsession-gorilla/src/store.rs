//! Stores that read (and for cookies, write) gorilla/sessions' formats, and the store that
//! moves sessions from them to a native one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fastsession_core::http::SessionConfig;
use fastsession_core::session::{Expiry, Record, SessionId};
use fastsession_core::store::{
    CookieContent, LoadRequest, Loaded, RejectReason, RevocationList, SaveKind, SaveRequest, Saved,
    Store, StoreFuture,
};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error as CoreError, ErrorKind as CoreErrorKind};

use crate::codec::{SecureCookie, encode_multi, open_multi};
use crate::error::{Error, ErrorKind};
use crate::gob::{self, GoType, GoValue};
use crate::options::{GoOptions, expiry_of};
use crate::session::{GorillaFormat, GorillaOrigin, fingerprint, unix_time};

type CoreResult<T> = Result<T, CoreError>;

/// The most a gorilla `FilesystemStore` file may hold (Go's own limit is the codec's maximum
/// length, 4096 by default).
const MAX_FILE_LEN: u64 = 1 << 20;

/// The codecs of a gorilla store, newest key pair first, as Go's `CodecsFromPairs` builds
/// them; refuses an empty list.
fn codec_list(codecs: Vec<SecureCookie>) -> Result<Arc<[SecureCookie]>, Error> {
    if codecs.is_empty() {
        return Err(Error::new(ErrorKind::NoCodecs));
    }
    Ok(codecs.into())
}

/// Why a gorilla value was not accepted, in fastsession's terms.
fn reject_reason(error: &Error) -> RejectReason {
    match error.kind() {
        ErrorKind::MacInvalid => RejectReason::NotAuthentic,
        ErrorKind::TimestampExpired => RejectReason::IdleTimeout,
        ErrorKind::TimestampTooNew => RejectReason::FromTheFuture,
        ErrorKind::Deserialize => RejectReason::Corrupt,
        _ => RejectReason::Malformed,
    }
}

/// The longest maximum age among the codecs, `None` if one has none (its cookies never expire
/// by age).
fn longest_max_age(codecs: &[SecureCookie]) -> Option<Duration> {
    codecs
        .iter()
        .map(SecureCookie::max_age)
        .try_fold(0u64, |longest, age| (age != 0).then_some(longest.max(age)))
        .map(Duration::from_secs)
}

/// The [`SessionConfig`] of a store shared with a Go service configured with `options`: Go's
/// cookie ([`GoOptions::cookie_config`]) and an expiry that refuses nothing the codecs accept
/// (idle timeout: their longest maximum age; no absolute lifetime; any future timestamp).
fn go_session_config(
    store: impl Store,
    cookie_name: &str,
    options: &GoOptions,
    codecs: &[SecureCookie],
) -> CoreResult<SessionConfig> {
    let cookie = options.cookie_config(cookie_name)?;
    Ok(SessionConfig::new(store, cookie).with_expiry(go_expiry(codecs)))
}

/// The expiry that accepts what Go's codecs accept: idle up to their longest maximum age, no
/// absolute lifetime, any future timestamp.
fn go_expiry(codecs: &[SecureCookie]) -> Expiry {
    expiry_of(longest_max_age(codecs).map_or(0, |age| age.as_secs()))
}

/// `encode_multi` of a session's gob bytes or id for the cookie `name`, with fastsession's
/// errors: a value beyond the first codec's maximum length is `too_long(size, limit)`.
fn seal(
    codecs: &[SecureCookie],
    name: &str,
    payload: &[u8],
    now: UnixTime,
    too_long: fn(usize, usize) -> CoreErrorKind,
) -> CoreResult<String> {
    encode_multi(codecs, name, payload, now).map_err(|e| match e.kind() {
        ErrorKind::EncodeTooLong => {
            let limit = codecs[0].max_length();
            let size = codecs[0]
                .clone()
                .with_max_length(0)
                .encode_bytes(name, payload, now)
                .map_or(limit, |v| v.len());
            CoreError::new(
                too_long(size, limit),
                format!("gorilla session `{name}` is longer than the codec's maximum length"),
            )
        }
        _ => CoreError::new(
            CoreErrorKind::Serialize,
            "gorilla codec refused the session",
        )
        .with_source(e),
    })
}

/// The gob bytes of the values `request` saves, as gorilla stores keep them (a clear, or a
/// change to their key, drops the values Rust could not see).
fn values_gob(format: &GorillaFormat, request: &SaveRequest<'_>) -> CoreResult<Vec<u8>> {
    format
        .write(request.record(), Some(request.changes()))
        .map_err(|e| {
            CoreError::new(
                CoreErrorKind::Serialize,
                "session cannot be written in gorilla's format",
            )
            .with_source(e)
        })
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
    codecs: Arc<[SecureCookie]>,
    format: GorillaFormat,
    revocation: Option<Arc<dyn RevocationList>>,
    options: GoOptions,
}

impl GorillaCookieStore {
    /// A store reading cookies with any of `codecs` and writing them with the first; its
    /// [`session_config`](Self::session_config) gives the cookie of [`GoOptions::new`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoCodecs`] if `codecs` is empty.
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
            codecs: codec_list(codecs)?,
            format: GorillaFormat::new(),
            revocation: None,
            options: GoOptions::new(),
        })
    }

    /// The store of a Go service's `sessions.NewCookieStore(key_pairs...)` configured with
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
        let mut store = GorillaCookieStore::new(options.codecs(key_pairs)?)?;
        store.options = options.clone();
        Ok(store)
    }

    /// The [`SessionConfig`] of this store for the Go session `cookie_name` (Go's
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
        let persistent = self.options.max_age() > 0;
        let store = self
            .clone()
            .with_format(self.format.clone().with_persistent(persistent));
        go_session_config(store, cookie_name, &self.options, &self.codecs)
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
        self.format = format;
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
    pub fn with_revocation(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocation = Some(list);
        self
    }

    /// "Log out everywhere": every cookie of `user` (read through the
    /// [user key](GorillaFormat::with_user_key)) last saved before `now` stops opening in
    /// the Rust service. Without a revocation list this does nothing and returns `false`.
    ///
    /// # Errors
    ///
    /// The revocation list's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use fastsession::MemoryStore;
    /// use fastsession::time::UnixTime;
    /// use fastsession::gorilla::{GorillaCookieStore, SecureCookie};
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let codec = SecureCookie::new(b"a 32-byte hash key shared with Go", None)?;
    /// let store = GorillaCookieStore::new(vec![codec])?.with_revocation(Arc::new(MemoryStore::new()?));
    /// assert!(store.end_sessions_of("ada", UnixTime::now(), &Expiry::default()).await?);
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
        let lifetime = match longest_max_age(&self.codecs) {
            Some(age) => age.max(expiry.idle_timeout()),
            None => expiry.absolute_lifetime(),
        };
        let until = now
            .saturating_add(lifetime)
            .saturating_add(expiry.clock_skew());
        list.revoke_user(user, now, None, until).await?;
        Ok(true)
    }

    /// The session in the cookie, unless the codecs, the expiry or the format refuse it; the
    /// record's id is the cookie's fingerprint, for the revocation list.
    fn open(&self, request: &LoadRequest<'_>) -> Result<(Record, bool), RejectReason> {
        let name = request.cookie_name();
        let value = request.cookie_value();
        let opened =
            open_multi(&self.codecs, name, value, request.now()).map_err(|e| reject_reason(&e))?;
        let mut record = self
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
        Ok((record, opened.codec_index > 0))
    }

    /// [`open`](Self::open), then the revocation list.
    async fn read(
        &self,
        request: &LoadRequest<'_>,
    ) -> CoreResult<Result<(Record, bool), RejectReason>> {
        let (record, stale) = match self.open(request) {
            Ok(opened) => opened,
            Err(reason) => return Ok(Err(reason)),
        };
        if let Some(list) = &self.revocation
            && list
                .has_ended(record.id(), record.user_id(), record.last_active())
                .await?
        {
            return Ok(Err(RejectReason::Revoked));
        }
        Ok(Ok((record, stale)))
    }

    /// The cookie value of `request`'s record, written at its time.
    fn write(&self, request: &SaveRequest<'_>) -> CoreResult<String> {
        let payload = values_gob(&self.format, request)?;
        seal(
            &self.codecs,
            request.cookie_name(),
            &payload,
            request.now(),
            |size, limit| CoreErrorKind::CookieTooLarge { size, limit },
        )
    }

    /// Refuses the cookie `request`'s record was read from from now on, if there is a list.
    async fn revoke(&self, request: &SaveRequest<'_>) -> CoreResult<()> {
        if let Some(list) = &self.revocation
            && let Some(fingerprint) = request.record().id()
        {
            let user = request.record().user_id();
            list.revoke(fingerprint, user, replayable_until(&self.codecs, request))
                .await?;
        }
        Ok(())
    }

    async fn save_cookie(&self, request: SaveRequest<'_>) -> CoreResult<Saved> {
        if let Some(list) = &self.revocation
            && let Some(fingerprint) = request.record().id()
        {
            let record = request.record();
            match request.kind() {
                SaveKind::Destroy => self.revoke(&request).await?,
                // The old cookie must load nothing afterwards, and of two racing
                // regenerations only one may go on.
                SaveKind::Regenerate => {
                    let until = replayable_until(&self.codecs, &request);
                    if !list
                        .revoke_first(fingerprint, record.user_id(), until)
                        .await?
                    {
                        return Err(ended());
                    }
                }
                _ => {
                    let loaded = GorillaOrigin::of(record)
                        .and_then(GorillaOrigin::last_active)
                        .unwrap_or(record.last_active());
                    if list
                        .has_ended(Some(fingerprint), record.user_id(), loaded)
                        .await?
                    {
                        return Err(ended());
                    }
                }
            }
        }
        self.save_sealed(&request)
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

/// The error of a save whose session ended before it: by a logout, a regeneration, or its
/// deadline passing while the request ran.
fn ended() -> CoreError {
    CoreError::new(
        CoreErrorKind::SessionEnded,
        "gorilla session ended before this request saved it",
    )
}

/// Whether a session that was live when the request read it reached its deadline before the
/// save (a save must not extend it).
fn expired_meanwhile(request: &SaveRequest<'_>) -> bool {
    let Some(loaded) = GorillaOrigin::of(request.record()).and_then(GorillaOrigin::last_active)
    else {
        return false;
    };
    let deadline = request
        .expiry()
        .deadline_of(request.record().created(), loaded);
    // The session's own deadline as loaded (one this request set is its new one).
    let own = Some(request.record())
        .filter(|_| !request.changes().expires_at_changed())
        .and_then(Record::expires_at);
    request.now() >= own.map_or(deadline, |at| deadline.min(at))
}

impl Store for GorillaCookieStore {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        if self.revocation.is_none() {
            return StoreFuture::ready(Ok(match self.open(&request) {
                Ok((record, stale)) => Loaded::found(record).with_reseal(stale),
                Err(reason) => Loaded::rejected(reason),
            }));
        }
        StoreFuture::io(async move {
            Ok(match self.read(&request).await? {
                Ok((record, stale)) => Loaded::found(record).with_reseal(stale),
                Err(reason) => Loaded::rejected(reason),
            })
        })
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        if self.revocation.is_some() {
            return StoreFuture::io(self.save_cookie(request));
        }
        StoreFuture::ready(self.save_sealed(&request))
    }
}

/// Reads and writes gorilla/sessions' `FilesystemStore` sessions, so that a Rust service and a
/// Go service share them (phase 1 of the migration guide), and [`MigratingStore::from_files`]
/// moves them to a native store (phase 2).
///
/// The format is Go's: the cookie holds the session id, signed (`EncodeMulti(name, id)`, the id
/// gob-encoded as a string); the file `session_<id>` in the store's directory holds the signed
/// values (`EncodeMulti(name, values)`). A new session gets a new id as Go makes them: 32
/// random bytes in base32, the `=` padding trimmed. Every save rewrites the file and the
/// cookie, as Go's `Save` does; a logout ([`Session::destroy`]) deletes the file and clears the
/// cookie (Go: `session.Options.MaxAge = -1`); a regeneration writes the session under a new id
/// and deletes the old file.
///
/// Files are written to a temporary file in the same directory, mode 0600, then renamed over
/// the session file, so a reader, Go's included, sees the old content or the new, never a
/// part. Both services must run as the same user (the files are readable by their owner
/// only, in Go as here).
///
/// Concurrency is Go's: of two requests that save changes to one session at once, the last
/// write wins (changes are not merged). A refresh of a session a request only read (which Go
/// never makes) signs the file again as it is then, so it undoes no change saved meanwhile. In
/// one process, a save never brings back a session another request of this store logged out
/// or regenerated (it fails with [`SessionEnded`](CoreErrorKind::SessionEnded)); across
/// processes, as with Go's own lock, the check is not atomic with the write. Expired files are
/// not deleted, as in Go.
///
/// [`Session::destroy`]: fastsession_core::Session::destroy
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::{GoOptions, GorillaFilesystem};
///
/// // Go: sessions.NewFilesystemStore("/var/lib/app/sessions", hashKey)
/// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
/// let files = GorillaFilesystem::from_go("/var/lib/app/sessions", &[hash_key], &GoOptions::new())?;
/// let sessions = files.session_config("session-name")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GorillaFilesystem {
    dir: PathBuf,
    codecs: Arc<[SecureCookie]>,
    format: GorillaFormat,
    options: GoOptions,
    /// Orders a save's "is the file still there" check and its rename against removals, in
    /// this process (Go's lock is per process too).
    files: Arc<Mutex<()>>,
}

impl GorillaFilesystem {
    /// Sessions in `dir` (Go's `path` argument; as in Go, `""` is the system's temporary
    /// directory), cookies and files read with any of `codecs` and written with the first;
    /// its [`session_config`](Self::session_config) gives the cookie of [`GoOptions::new`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoCodecs`] if `codecs` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GorillaFilesystem, SecureCookie};
    ///
    /// let codec = SecureCookie::new(b"a 32-byte hash key shared with Go", None)?;
    /// // The directory the Go service's FilesystemStore writes to.
    /// let files = GorillaFilesystem::new("/var/lib/app/sessions", vec![codec])?;
    /// assert_eq!(files.dir(), std::path::Path::new("/var/lib/app/sessions"));
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    pub fn new(dir: impl Into<PathBuf>, codecs: Vec<SecureCookie>) -> Result<Self, Error> {
        let mut dir = dir.into();
        if dir.as_os_str().is_empty() {
            dir = std::env::temp_dir();
        }
        Ok(GorillaFilesystem {
            dir,
            codecs: codec_list(codecs)?,
            format: GorillaFormat::new(),
            options: GoOptions::new(),
            files: Arc::new(Mutex::new(())),
        })
    }

    /// The store of a Go service's `sessions.NewFilesystemStore(dir, key_pairs...)` configured
    /// with `options` (the key pairs as in [`GorillaCookieStore::from_go`]);
    /// [`session_config`](Self::session_config) then gives the rest.
    ///
    /// # Errors
    ///
    /// As [`GoOptions::codecs`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaFilesystem};
    ///
    /// // store := sessions.NewFilesystemStore("", hashKey, blockKey, oldHashKey)
    /// let (hash, block): (&[u8], &[u8]) = (b"a 32-byte hash key shared with Go", b"a 16-byte AES ke");
    /// let old_hash: &[u8] = b"the hash key before the rotation";
    /// let files = GorillaFilesystem::from_go("", &[hash, block, old_hash], &GoOptions::new())?;
    /// assert_eq!(files.dir(), std::env::temp_dir()); // Go's os.TempDir()
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    pub fn from_go(
        dir: impl Into<PathBuf>,
        key_pairs: &[&[u8]],
        options: &GoOptions,
    ) -> Result<Self, Error> {
        let mut files = GorillaFilesystem::new(dir, options.codecs(key_pairs)?)?;
        files.options = options.clone();
        Ok(files)
    }

    /// The [`SessionConfig`] of this store for the Go session `cookie_name`: the same
    /// cookie, expiry and "remember me" as [`GorillaCookieStore::session_config`]. Go checks
    /// the maximum age on the cookie and on the file, and so does this store.
    ///
    /// Go's `Save` deletes a session whose `Options.MaxAge` is 0 or below; with a store-wide
    /// `MaxAge` of 0 the Go service therefore keeps no session past its next save, while this
    /// store keeps it (in a browser-session cookie).
    ///
    /// # Errors
    ///
    /// As [`GoOptions::cookie_config`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaFilesystem};
    ///
    /// // store := sessions.NewFilesystemStore(dir, hashKey); store.MaxAge(0)
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let options = GoOptions::new().with_max_age(0);
    /// let files = GorillaFilesystem::from_go("/var/lib/app/sessions", &[hash_key], &options)?;
    /// let sessions = files.session_config("app")?;
    /// // A browser-session cookie, and no age limit.
    /// assert!(!sessions.cookie().is_persistent_by_default());
    /// assert_eq!(sessions.expiry().idle_timeout(), std::time::Duration::MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_config(&self, cookie_name: &str) -> CoreResult<SessionConfig> {
        let persistent = self.options.max_age() > 0;
        let store = self
            .clone()
            .with_format(self.format.clone().with_persistent(persistent));
        go_session_config(store, cookie_name, &self.options, &self.codecs)
    }

    /// Maps sessions with `format` (flash keys, user key).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaFilesystem, GorillaFormat};
    ///
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let files = GorillaFilesystem::from_go("/var/lib/app/sessions", &[hash_key], &GoOptions::new())?
    ///     .with_format(GorillaFormat::new().with_user_key("user_id"));
    /// # let _ = files;
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    #[must_use]
    pub fn with_format(mut self, format: GorillaFormat) -> Self {
        self.format = format;
        self
    }

    /// The directory the session files are in.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaFilesystem};
    ///
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let files = GorillaFilesystem::from_go("/var/lib/app/sessions", &[hash_key], &GoOptions::new())?;
    /// // Where to look when both services must share the files (same user, mode 0600).
    /// assert_eq!(files.dir(), std::path::Path::new("/var/lib/app/sessions"));
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("session_{id}"))
    }

    /// The session a cookie names, read from its file, and whether an older key pair opened
    /// the cookie or the file.
    async fn read(
        &self,
        request: &LoadRequest<'_>,
    ) -> CoreResult<Result<(Record, bool), RejectReason>> {
        let name = request.cookie_name();
        let now = request.now();
        let (id, cookie_stale) = match open_multi(&self.codecs, name, request.cookie_value(), now)
            .and_then(|opened| Ok((gob::decode(&opened.payload)?, opened.codec_index > 0)))
        {
            Ok(((GoType::String, GoValue::String(id)), stale)) if is_gorilla_id(&id) => (id, stale),
            Ok(_) => return Ok(Err(RejectReason::Malformed)),
            Err(e) => return Ok(Err(reject_reason(&e))),
        };
        let path = self.path_of(&id);
        let Some(content) = read_small_file(path.clone()).await? else {
            return Ok(Err(RejectReason::UnknownId));
        };
        let Ok(content) = std::str::from_utf8(&content) else {
            return Ok(Err(RejectReason::Corrupt));
        };
        let origin = GorillaOrigin::from_file(path);
        let (mut record, file_stale) =
            match open_multi(&self.codecs, name, content, now).and_then(|opened| {
                let record =
                    self.format
                        .read(&opened.payload, unix_time(opened.timestamp), origin)?;
                Ok((record, opened.codec_index > 0))
            }) {
                Ok(read) => read,
                Err(e) => return Ok(Err(reject_reason(&e))),
            };
        // Later saves of this request find the id here once the origin is gone.
        record.set_id(gorilla_id_bytes(&id).map(SessionId::from_bytes));
        Ok(request
            .expiry()
            .without_anonymous_idle_timeout()
            .check(&record, now)
            .map(|()| (record, cookie_stale || file_stale)))
    }

    async fn save_file(&self, request: SaveRequest<'_>) -> CoreResult<Saved> {
        let current = loaded_id(request.record());
        match request.kind() {
            SaveKind::Destroy => {
                if let Some(id) = current {
                    self.remove(self.path_of(&id)).await?;
                }
                return Ok(Saved::Remove);
            }
            SaveKind::Create => return self.write_new(&request).await,
            _ => {}
        }
        if expired_meanwhile(&request) {
            return Err(ended());
        }
        // A session with an id of Go's that is not 32 bytes, saved a second time in one
        // request (its file forgotten with the origin), goes on under a new id.
        let Some(id) = current else {
            return self.write_new(&request).await;
        };
        let written = match request.kind() {
            SaveKind::Regenerate => None,
            SaveKind::Touch => Some(self.touch(&request, &id).await?),
            _ => Some(self.write(&request, &id, true).await?),
        };
        if let Some(written) = written {
            return written.ok_or_else(ended);
        }
        let saved = self.write_new(&request).await?;
        // The removal decides: of two racing regenerations (or a regeneration and a logout),
        // the one that finds the old file goes on.
        if !self.remove(self.path_of(&id)).await? {
            if let Saved::Cookie { id: Some(new), .. } = &saved {
                self.remove(self.path_of(&gorilla_id(new.as_bytes())))
                    .await?;
            }
            return Err(ended());
        }
        Ok(saved)
    }

    /// Writes the session under a new id.
    async fn write_new(&self, request: &SaveRequest<'_>) -> CoreResult<Saved> {
        // 256 random bits: an id taken already is not worth a look.
        let id = SessionId::generate()?;
        let saved = self
            .write(request, &gorilla_id(id.as_bytes()), false)
            .await?;
        saved.ok_or_else(|| {
            CoreError::store(
                "gorilla filesystem: new session not written",
                io::Error::other("lost"),
            )
        })
    }

    /// Writes the session's file and cookie under `id`; with `existing`, only if its file is
    /// still there (`None` otherwise).
    async fn write(
        &self,
        request: &SaveRequest<'_>,
        id: &str,
        existing: bool,
    ) -> CoreResult<Option<Saved>> {
        let (name, now) = (request.cookie_name(), request.now());
        let values = values_gob(&self.format, request)?;
        let content = seal(&self.codecs, name, &values, now, |size, limit| {
            CoreErrorKind::SessionTooLarge { size, limit }
        })?;
        let value = self.id_cookie(name, id, now)?;
        let (path, lock) = (self.path_of(id), Arc::clone(&self.files));
        let written = blocking(move || put_file(&path, content.as_bytes(), existing, &lock))
            .await
            .map_err(|e| CoreError::store("gorilla filesystem: cannot write a session file", e))?;
        Ok(written.then(|| saved_as(value, id)))
    }

    /// Refreshes the session under `id`: the file as it is now, signed again at the request's
    /// time (and under the newest key pair), so that a refresh never undoes a change another
    /// request saved since this one loaded the session. `None` if the file is gone or no
    /// longer opens.
    async fn touch(&self, request: &SaveRequest<'_>, id: &str) -> CoreResult<Option<Saved>> {
        let (name, now) = (request.cookie_name(), request.now());
        let value = self.id_cookie(name, id, now)?;
        let (path, lock) = (self.path_of(id), Arc::clone(&self.files));
        let (codecs, name) = (Arc::clone(&self.codecs), name.to_owned());
        let reseal = move |content: &[u8]| {
            let opened =
                open_multi(&codecs, &name, std::str::from_utf8(content).ok()?, now).ok()?;
            encode_multi(&codecs, &name, &opened.payload, now).ok()
        };
        let written = blocking(move || reseal_file(&path, &lock, reseal))
            .await
            .map_err(|e| CoreError::store("gorilla filesystem: cannot write a session file", e))?;
        Ok(written.then(|| saved_as(value, id)))
    }

    /// The cookie naming the session `id`: the id gob-encoded as a string, signed.
    fn id_cookie(&self, name: &str, id: &str, now: UnixTime) -> CoreResult<String> {
        let id_gob =
            gob::encode(&GoType::String, &GoValue::String(id.to_owned())).map_err(|e| {
                CoreError::new(CoreErrorKind::Serialize, "gorilla session id").with_source(e)
            })?;
        seal(&self.codecs, name, &id_gob, now, |size, limit| {
            CoreErrorKind::CookieTooLarge { size, limit }
        })
    }

    /// Deletes a session file; `false` if it was gone already.
    async fn remove(&self, path: PathBuf) -> CoreResult<bool> {
        let lock = Arc::clone(&self.files);
        blocking(move || remove_session_file(&path, &lock))
            .await
            .map_err(|e| CoreError::store("gorilla filesystem: cannot remove a session file", e))
    }
}

impl Store for GorillaFilesystem {
    fn cookie_content(&self) -> CookieContent {
        // A signed gorilla id, not a fastsession id: the store opens it.
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        StoreFuture::io(async move {
            Ok(match self.read(&request).await? {
                Ok((record, stale)) => Loaded::found(record).with_reseal(stale),
                Err(reason) => Loaded::rejected(reason),
            })
        })
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        StoreFuture::io(self.save_file(request))
    }
}

/// What a save of the session `id` sets the cookie to.
fn saved_as(value: String, id: &str) -> Saved {
    Saved::Cookie {
        value,
        id: gorilla_id_bytes(id).map(SessionId::from_bytes),
    }
}

/// The gorilla id of the session `record` was loaded as: its file's, or the id a save of this
/// request gave it.
fn loaded_id(record: &Record) -> Option<String> {
    let from_file = GorillaOrigin::of(record)
        .and_then(GorillaOrigin::file)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str()?.strip_prefix("session_"));
    match from_file {
        Some(id) => Some(id.to_owned()),
        None => record.id().map(|id| gorilla_id(id.as_bytes())),
    }
}

/// A gorilla `FilesystemStore` id: unpadded base32 (52 characters for its 32 random bytes).
/// Anything else, a path separator or `..` above all, never reaches the file system.
fn is_gorilla_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Go's `strings.TrimRight(base32.StdEncoding.EncodeToString(bytes), "=")`: the id
/// `FilesystemStore.Save` gives a new session.
fn gorilla_id(bytes: &[u8; 32]) -> String {
    let mut id = String::with_capacity(52);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            id.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        id.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    id
}

/// The 32 bytes of an id [`gorilla_id`] writes, `None` for any other text.
fn gorilla_id_bytes(id: &str) -> Option<[u8; 32]> {
    if id.len() != 52 {
        return None;
    }
    let mut bytes = [0u8; 32];
    let (mut buffer, mut bits, mut at) = (0u32, 0u32, 0);
    for c in id.bytes() {
        let digit = BASE32.iter().position(|&d| d == c)?;
        buffer = (buffer << 5) | u32::try_from(digit).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *bytes.get_mut(at)? = u8::try_from((buffer >> bits) & 0xff).ok()?;
            at += 1;
            buffer &= (1 << bits) - 1;
        }
    }
    // The last character's 4 spare bits are zero in Go's ids.
    (buffer == 0 && at == 32).then_some(bytes)
}

/// The file's bytes, `None` if there is no such file, at most [`MAX_FILE_LEN`] of them (a
/// longer file is an error). Blocking I/O runs on Tokio's blocking pool when there is one.
async fn read_small_file(path: PathBuf) -> CoreResult<Option<Vec<u8>>> {
    blocking(move || read_bounded(&path))
        .await
        .map_err(|e| CoreError::store("gorilla filesystem: cannot read a session file", e))
}

/// [`read_small_file`], blocking.
fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut content = Vec::new();
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut content)?;
    if content.len() as u64 > MAX_FILE_LEN {
        return Err(io::Error::other("gorilla session file is too large"));
    }
    Ok(Some(content))
}

/// Writes `content` to `path` through a new temporary file (mode 0600) in the same directory
/// and a rename, so that a reader sees the old file or the new one, never a part of one. With
/// `existing`, only while `path` exists (`Ok(false)` otherwise): a save must not bring back a
/// session that another request ended. `lock` orders that check and the rename against
/// [`remove_session_file`].
fn put_file(path: &Path, content: &[u8], existing: bool, lock: &Mutex<()>) -> io::Result<bool> {
    let temp = write_temp(path, content)?;
    let renamed = {
        let _order = lock.lock().unwrap_or_else(PoisonError::into_inner);
        match exists(path) {
            Ok(false) if existing => Ok(false),
            Ok(_) => std::fs::rename(&temp, path).map(|()| true),
            Err(e) => Err(e),
        }
    };
    if !matches!(renamed, Ok(true)) {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

/// Replaces the file at `path` with `reseal` of its current content, under `lock` so that no
/// other write of this process comes between the read and the rename; `Ok(false)` if there
/// is no file or `reseal` refuses its content.
fn reseal_file(
    path: &Path,
    lock: &Mutex<()>,
    reseal: impl FnOnce(&[u8]) -> Option<String>,
) -> io::Result<bool> {
    let _order = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(content) = read_bounded(path)?.and_then(|content| reseal(&content)) else {
        return Ok(false);
    };
    let temp = write_temp(path, content.as_bytes())?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    Ok(true)
}

/// A new file (mode 0600) beside `path` holding `content`, for a rename over `path`.
fn write_temp(path: &Path, content: &[u8]) -> io::Result<PathBuf> {
    use std::io::Write as _;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(io::Error::other)?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // A name no cookie can ask for: ids never hold '.'.
    let temp = path.with_file_name(format!(".{file_name}.{suffix}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    // No fsync: Go's `WriteFile` has none either, and a session is not worth one per save.
    if let Err(e) = file.write_all(content) {
        drop(file);
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(temp)
}

/// Deletes a session file; `false` if there was none.
fn remove_session_file(path: &Path, lock: &Mutex<()>) -> io::Result<bool> {
    let _order = lock.lock().unwrap_or_else(PoisonError::into_inner);
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Runs blocking file I/O on Tokio's blocking pool, or inline outside a Tokio runtime.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(job).await.map_err(io::Error::other)?,
        Err(_) => job(),
    }
}

#[derive(Clone, Debug)]
enum Source {
    Cookies(GorillaCookieStore),
    Files(GorillaFilesystem),
}

/// Moves users from a Go service's gorilla sessions to a native store as they come back,
/// without logging anyone out ("read gorilla, write native").
///
/// A request whose cookie the native store knows is served by it alone. Any other cookie is
/// read as a gorilla session (a [`GorillaCookieStore`] cookie, or a [`GorillaFilesystem`]
/// session); if it opens, the request gets its values and flash messages, and the save at the
/// end of the request writes it to the native store as a new session, under a new id, and
/// replaces the cookie with the native one. Then the gorilla original is made unusable: the
/// session file is deleted, or the cookie is put on the gorilla store's
/// [revocation list](GorillaCookieStore::with_revocation) if it has one (otherwise a copy of
/// the old cookie stays valid, as it would in Go, until the codec's maximum age). A logout of
/// a session still in the gorilla format ends it the same way.
///
/// The native cookie has the same name as the Go one, so run this once the Go service no
/// longer serves these users; while both run, share the sessions with a
/// [`GorillaCookieStore`] instead (see the migration guide).
///
/// Two concurrent first requests with the same gorilla cookie may each move it: both native
/// sessions hold the same data, the browser keeps one cookie, and the other session expires
/// unused.
///
/// # Examples
///
/// ```
/// use fastsession::{Key, KeyRing};
/// use fastsession::http::{CookieConfig, Prefix, SessionConfig};
/// use fastsession::CookieStore;
/// use fastsession::gorilla::{GorillaCookieStore, MigratingStore, SecureCookie};
///
/// let go = GorillaCookieStore::new(vec![SecureCookie::new(b"a 32-byte hash key shared with Go", None)?])?;
/// let native = CookieStore::new(&KeyRing::new(Key::generate()?));
/// let store = MigratingStore::from_cookies(native, go);
/// let config = SessionConfig::new(store, CookieConfig::builder("session-name").with_prefix(Prefix::None).build()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MigratingStore<S> {
    native: S,
    source: Source,
}

impl<S: Store> MigratingStore<S> {
    /// Moves sessions from gorilla `CookieStore` cookies to `native`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fastsession::gorilla::{GoOptions, GorillaCookieStore, MigratingStore};
    /// use fastsession::MemoryStore;
    ///
    /// // Go's cookies, with a revocation list so that a moved cookie cannot be replayed.
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let go = GorillaCookieStore::from_go(&[hash_key], &GoOptions::new())?
    ///     .with_revocation(Arc::new(MemoryStore::new()?));
    /// let store = MigratingStore::from_cookies(MemoryStore::new()?, go);
    /// # let _ = store;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn from_cookies(native: S, gorilla: GorillaCookieStore) -> Self {
        MigratingStore {
            native,
            source: Source::Cookies(gorilla),
        }
    }

    /// Moves sessions from gorilla `FilesystemStore` files to `native`, deleting each file
    /// once its session has moved.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaFilesystem, MigratingStore};
    /// use fastsession::http::{CookieConfig, Prefix, SessionConfig};
    /// use fastsession::MemoryStore;
    ///
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let go = GorillaFilesystem::from_go("/var/lib/app/sessions", &[hash_key], &GoOptions::new())?;
    /// let store = MigratingStore::from_files(MemoryStore::new()?, go);
    /// // The Go cookie's name, unprefixed: the browser sends the old cookie under it.
    /// let cookie = CookieConfig::builder("session-name").with_prefix(Prefix::None).build()?;
    /// let config = SessionConfig::new(store, cookie);
    /// # let _ = config;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn from_files(native: S, gorilla: GorillaFilesystem) -> Self {
        MigratingStore {
            native,
            source: Source::Files(gorilla),
        }
    }

    /// The native store.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{GoOptions, GorillaCookieStore, MigratingStore};
    /// use fastsession::MemoryStore;
    ///
    /// let hash_key: &[u8] = b"a 32-byte hash key shared with Go";
    /// let go = GorillaCookieStore::from_go(&[hash_key], &GoOptions::new())?;
    /// let store = MigratingStore::from_cookies(MemoryStore::new()?, go);
    /// // The sessions already native (moved from Go, or new), e.g. for a progress metric.
    /// assert_eq!(store.native().backend().len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn native(&self) -> &S {
        &self.native
    }

    async fn load_any(&self, request: LoadRequest<'_>) -> CoreResult<Loaded> {
        let value = request.cookie_value();
        if self.native.cookie_content() == CookieContent::SessionId {
            // A session id is never a gorilla cookie, nor the other way round.
            if let Some(id) = SessionId::parse(value) {
                let native = LoadRequest::new(
                    request.cookie_name(),
                    value,
                    Some(&id),
                    request.expiry(),
                    request.now(),
                );
                return self.native.load(native).await;
            }
        } else {
            let loaded = self.native.load(request).await?;
            if !not_native(&loaded) {
                return Ok(loaded);
            }
        }
        // A gorilla session opens on Go's terms (its codecs' maximum age, any future time),
        // not the native expiry: moving must not log out anyone Go would have kept.
        let codecs = match &self.source {
            Source::Cookies(store) => &store.codecs,
            Source::Files(files) => &files.codecs,
        };
        let go_expiry = go_expiry(codecs);
        let request = LoadRequest::new(
            request.cookie_name(),
            value,
            None,
            &go_expiry,
            request.now(),
        );
        let read = match &self.source {
            Source::Cookies(store) => store.read(&request).await?.map(|(record, _)| record),
            Source::Files(files) => files.read(&request).await?.map(|(record, _)| record),
        };
        Ok(match read {
            // Written to the native store at the end of this request, even if unchanged.
            Ok(record) => Loaded::found(record).with_reseal(true),
            Err(reason) => Loaded::rejected(reason),
        })
    }

    async fn save_any(&self, request: SaveRequest<'_>) -> CoreResult<Saved> {
        let Some(origin) = GorillaOrigin::of(request.record()) else {
            return self.native.save(request).await;
        };
        let saved = if request.kind() == SaveKind::Destroy {
            Saved::Remove
        } else {
            let mut record = request.record().clone();
            record.set_origin(None);
            record.set_id(None);
            let create = SaveRequest::new(
                request.cookie_name(),
                SaveKind::Create,
                &record,
                request.changes(),
                request.expiry(),
                request.now(),
            );
            self.native.save(create).await?
        };
        // The session lives on natively: failing to retire the gorilla original leaves it as
        // replayable as it was in Go, not worth failing the request for.
        let retired = match (&self.source, origin.file()) {
            (Source::Files(files), Some(file)) => files.remove(file.to_owned()).await.map(drop),
            (Source::Cookies(store), _) => store.revoke(&request).await,
            (Source::Files(_), None) => Ok(()),
        };
        if let Err(error) = retired {
            tracing::warn!(target: "fastsession", cookie = request.cookie_name(), %error, "migrated gorilla session not retired");
        }
        Ok(saved)
    }
}

/// Whether a sealing native store's answer means "not one of mine" (so the gorilla source may
/// know the cookie), rather than a session of its own that ended.
fn not_native(loaded: &Loaded) -> bool {
    matches!(
        loaded.reject_reason(),
        Some(
            RejectReason::Malformed
                | RejectReason::UnknownVersion
                | RejectReason::UnknownKey
                | RejectReason::NotAuthentic
        )
    )
}

impl<S: Store> Store for MigratingStore<S> {
    fn cookie_content(&self) -> CookieContent {
        // Gorilla cookies are not session ids: the store parses ids itself.
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        StoreFuture::io(self.load_any(request))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        StoreFuture::io(self.save_any(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_go_s_base32_and_read_back() {
        // Go's FilesystemStore id for the random bytes 0, 1, ..., 31 (the vectors' counter).
        let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        let id = gorilla_id(&bytes);
        assert_eq!(id, "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPQ");
        assert!(is_gorilla_id(&id));
        assert_eq!(gorilla_id_bytes(&id), Some(bytes));
        assert_eq!(gorilla_id_bytes(&gorilla_id(&[0xff; 32])), Some([0xff; 32]));
        // Spare bits set, another length, or not base32: not one of Go's 32-byte ids.
        for other in [
            "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPR",
            "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYP",
            "aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypq",
            "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DY1Q",
        ] {
            assert_eq!(gorilla_id_bytes(other), None, "{other}");
        }
    }

    #[test]
    fn a_file_is_replaced_whole_and_only_while_it_exists_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (path, lock) = (dir.path().join("session_A"), Mutex::new(()));
        let put = |content: &[u8], existing| put_file(&path, content, existing, &lock);
        assert!(!put(b"late", true).unwrap());
        assert!(!path.exists(), "an ended session is not brought back");
        assert!(put(b"first", false).unwrap());
        assert!(put(b"second", true).unwrap());
        assert_eq!(std::fs::read(&path).ok().as_deref(), Some(&b"second"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["session_A"], "no temporary file left behind");
        assert!(remove_session_file(&path, &lock).unwrap());
        assert!(!remove_session_file(&path, &lock).unwrap());
    }
}
