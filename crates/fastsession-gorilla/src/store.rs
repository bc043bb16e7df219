//! Stores that read (and for cookies, write) gorilla/sessions' formats, and the store that
//! moves sessions from them to a native one.

use std::future::ready;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fastsession_core::session::{Record, SessionId};
use fastsession_core::store::{
    BoxFuture, CookieContent, LoadRequest, Loaded, RejectReason, RevocationList, SaveKind,
    SaveRequest, Saved, Store,
};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error as CoreError, ErrorKind as CoreErrorKind};

use crate::codec::{SecureCookie, encode_multi, open_multi};
use crate::error::{Error, ErrorKind};
use crate::gob::{self, GoType, GoValue};
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
/// # Examples
///
/// ```
/// use fastsession_core::http::{CookieConfig, Prefix, SessionConfig};
/// use fastsession_gorilla::{GorillaCookieStore, GorillaFormat, SecureCookie};
///
/// // Go: sessions.NewCookieStore(hashKey, blockKey)
/// let codec = SecureCookie::new(b"a 32-byte hash key shared with Go", Some(b"a 16-byte AES key"[..16].as_ref()))?;
/// let store = GorillaCookieStore::new(vec![codec])?.with_format(GorillaFormat::new().with_user_key("user_id"));
/// let config = SessionConfig::new(store, CookieConfig::builder("session-name").with_prefix(Prefix::None).build()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GorillaCookieStore {
    codecs: Arc<[SecureCookie]>,
    format: GorillaFormat,
    revocation: Option<Arc<dyn RevocationList>>,
}

impl GorillaCookieStore {
    /// A store reading cookies with any of `codecs` and writing them with the first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoCodecs`] if `codecs` is empty.
    pub fn new(codecs: Vec<SecureCookie>) -> Result<Self, Error> {
        Ok(GorillaCookieStore {
            codecs: codec_list(codecs)?,
            format: GorillaFormat::new(),
            revocation: None,
        })
    }

    /// Maps sessions with `format` (flash keys, user key).
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
    /// use fastsession_core::store::MemoryStore;
    /// use fastsession_gorilla::{GorillaCookieStore, SecureCookie};
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
    /// use fastsession_core::session::Expiry;
    /// use fastsession_core::store::MemoryStore;
    /// use fastsession_core::time::UnixTime;
    /// use fastsession_gorilla::{GorillaCookieStore, SecureCookie};
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

    /// The cookie value of `request`'s record, written at `now`.
    fn write(&self, request: &SaveRequest<'_>) -> CoreResult<String> {
        let (name, now) = (request.cookie_name(), request.now());
        let cleared = request.changes().values_cleared();
        let payload = self.format.write(request.record(), cleared).map_err(|e| {
            CoreError::new(
                CoreErrorKind::Serialize,
                "session cannot be written in gorilla's format",
            )
            .with_source(e)
        })?;
        encode_multi(&self.codecs, name, &payload, now).map_err(|e| match e.kind() {
            ErrorKind::EncodeTooLong => {
                let limit = self.codecs[0].max_length();
                let size = self.codecs[0]
                    .clone()
                    .with_max_length(0)
                    .encode_bytes(name, &payload, now)
                    .map_or(limit, |v| v.len());
                CoreError::new(
                    CoreErrorKind::CookieTooLarge { size, limit },
                    format!("gorilla session cookie `{name}` not set"),
                )
            }
            _ => CoreError::new(
                CoreErrorKind::Serialize,
                "gorilla codec refused the session",
            )
            .with_source(e),
        })
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
        self.save_now_inner(&request)
    }

    fn save_now_inner(&self, request: &SaveRequest<'_>) -> CoreResult<Saved> {
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
    request.now() >= deadline
}

impl Store for GorillaCookieStore {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::Sealed
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> BoxFuture<'a, CoreResult<Loaded>> {
        Box::pin(async move {
            Ok(match self.read(&request).await? {
                Ok((record, stale)) => Loaded::found(record).with_reseal(stale),
                Err(reason) => Loaded::rejected(reason),
            })
        })
    }

    fn load_now(&self, request: LoadRequest<'_>) -> Option<CoreResult<Loaded>> {
        if self.revocation.is_some() {
            return None;
        }
        Some(Ok(match self.open(&request) {
            Ok((record, stale)) => Loaded::found(record).with_reseal(stale),
            Err(reason) => Loaded::rejected(reason),
        }))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> BoxFuture<'a, CoreResult<Saved>> {
        match self.save_now(request) {
            Some(saved) => Box::pin(ready(saved)),
            None => Box::pin(self.save_cookie(request)),
        }
    }

    fn save_now(&self, request: SaveRequest<'_>) -> Option<CoreResult<Saved>> {
        if self.revocation.is_some() {
            return None;
        }
        Some(self.save_now_inner(&request))
    }
}

/// Reads gorilla/sessions' `FilesystemStore` sessions: the cookie holds the signed session id,
/// the file `session_<id>` in the store's directory the signed values. Only for moving them to
/// a native store with [`MigratingStore::from_files`]; nothing here writes that format (its
/// unlocked, non-atomic writes lose updates; see SECURITY.md).
///
/// # Examples
///
/// ```
/// use fastsession_gorilla::{GorillaFilesystem, SecureCookie};
///
/// // Go: sessions.NewFilesystemStore("/var/lib/app/sessions", hashKey)
/// let codec = SecureCookie::new(b"a 32-byte hash key shared with Go", None)?;
/// let files = GorillaFilesystem::new("/var/lib/app/sessions", vec![codec])?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GorillaFilesystem {
    dir: PathBuf,
    codecs: Arc<[SecureCookie]>,
    format: GorillaFormat,
}

impl GorillaFilesystem {
    /// Sessions in `dir` (Go's `path` argument; Go uses the system temp directory for `""`),
    /// cookies and files read with any of `codecs`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoCodecs`] if `codecs` is empty.
    pub fn new(dir: impl Into<PathBuf>, codecs: Vec<SecureCookie>) -> Result<Self, Error> {
        Ok(GorillaFilesystem {
            dir: dir.into(),
            codecs: codec_list(codecs)?,
            format: GorillaFormat::new(),
        })
    }

    /// Maps sessions with `format` (flash keys, user key).
    #[must_use]
    pub fn with_format(mut self, format: GorillaFormat) -> Self {
        self.format = format;
        self
    }

    /// The directory the session files are in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The session a cookie names, read from its file.
    async fn read(&self, request: &LoadRequest<'_>) -> CoreResult<Result<Record, RejectReason>> {
        let name = request.cookie_name();
        let now = request.now();
        let id = match open_multi(&self.codecs, name, request.cookie_value(), now)
            .and_then(|opened| gob::decode(&opened.payload))
        {
            Ok((GoType::String, GoValue::String(id))) if is_gorilla_id(&id) => id,
            Ok(_) => return Ok(Err(RejectReason::Malformed)),
            Err(e) => return Ok(Err(reject_reason(&e))),
        };
        let path = self.dir.join(format!("session_{id}"));
        let Some(content) = read_small_file(path.clone()).await? else {
            return Ok(Err(RejectReason::UnknownId));
        };
        let Ok(content) = std::str::from_utf8(&content) else {
            return Ok(Err(RejectReason::Corrupt));
        };
        let origin = GorillaOrigin::from_file(path);
        let record = match open_multi(&self.codecs, name, content, now).and_then(|opened| {
            self.format
                .read(&opened.payload, unix_time(opened.timestamp), origin)
        }) {
            Ok(record) => record,
            Err(e) => return Ok(Err(reject_reason(&e))),
        };
        Ok(request
            .expiry()
            .without_anonymous_idle_timeout()
            .check(&record, now)
            .map(|()| record))
    }
}

/// A gorilla `FilesystemStore` id: unpadded base32 (52 characters for its 32 random bytes).
/// Anything else, a path separator or `..` above all, never reaches the file system.
fn is_gorilla_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
}

/// The file's bytes, `None` if there is no such file, at most [`MAX_FILE_LEN`] of them (a
/// longer file is an error). Blocking I/O runs on Tokio's blocking pool when there is one.
async fn read_small_file(path: PathBuf) -> CoreResult<Option<Vec<u8>>> {
    let job = move || -> std::io::Result<Option<Vec<u8>>> {
        use std::io::Read as _;
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut content = Vec::new();
        file.take(MAX_FILE_LEN + 1).read_to_end(&mut content)?;
        if content.len() as u64 > MAX_FILE_LEN {
            return Err(std::io::Error::other("gorilla session file is too large"));
        }
        Ok(Some(content))
    };
    blocking(job)
        .await
        .map_err(|e| CoreError::store("gorilla filesystem: cannot read a session file", e))
}

/// Removes a migrated session's file; one already gone is as good.
async fn remove_file(path: PathBuf) -> std::io::Result<()> {
    blocking(move || match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await
}

/// Runs blocking file I/O on Tokio's blocking pool, or inline outside a Tokio runtime.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(job)
            .await
            .map_err(std::io::Error::other)?,
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
/// use fastsession_core::codec::{Key, KeyRing};
/// use fastsession_core::http::{CookieConfig, Prefix, SessionConfig};
/// use fastsession_core::store::CookieStore;
/// use fastsession_gorilla::{GorillaCookieStore, MigratingStore, SecureCookie};
///
/// let go = GorillaCookieStore::new(vec![SecureCookie::new(b"a 32-byte hash key shared with Go", None)?])?;
/// let native = CookieStore::new(&KeyRing::new(Key::generate(1)?));
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
    #[must_use]
    pub fn from_cookies(native: S, gorilla: GorillaCookieStore) -> Self {
        MigratingStore {
            native,
            source: Source::Cookies(gorilla),
        }
    }

    /// Moves sessions from gorilla `FilesystemStore` files to `native`, deleting each file
    /// once its session has moved.
    #[must_use]
    pub fn from_files(native: S, gorilla: GorillaFilesystem) -> Self {
        MigratingStore {
            native,
            source: Source::Files(gorilla),
        }
    }

    /// The native store.
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
                return match self.native.load_now(native) {
                    Some(loaded) => loaded,
                    None => self.native.load(native).await,
                };
            }
        } else {
            let loaded = match self.native.load_now(request) {
                Some(loaded) => loaded?,
                None => self.native.load(request).await?,
            };
            if !not_native(&loaded) {
                return Ok(loaded);
            }
        }
        let read = match &self.source {
            Source::Cookies(store) => store.read(&request).await?.map(|(record, _)| record),
            Source::Files(files) => files.read(&request).await?,
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
            (Source::Files(_), Some(file)) => remove_file(file.to_owned()).await.map_err(|e| {
                CoreError::store("gorilla filesystem: cannot remove a session file", e)
            }),
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

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> BoxFuture<'a, CoreResult<Loaded>> {
        Box::pin(self.load_any(request))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> BoxFuture<'a, CoreResult<Saved>> {
        Box::pin(self.save_any(request))
    }

    fn save_now(&self, request: SaveRequest<'_>) -> Option<CoreResult<Saved>> {
        if GorillaOrigin::of(request.record()).is_some() {
            return None;
        }
        self.native.save_now(request)
    }
}
