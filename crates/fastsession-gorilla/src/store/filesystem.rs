//! gorilla/sessions' `FilesystemStore`: the session in a signed file, its id in a signed
//! cookie.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fastsession_core::http::SessionConfig;
use fastsession_core::session::SessionId;
use fastsession_core::store::{
    CookieContent, LoadRequest, Loaded, RejectReason, SaveKind, SaveRequest, Saved, Store,
    StoreFuture,
};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error as CoreError, ErrorKind as CoreErrorKind};

use super::files::{
    blocking, gorilla_id, gorilla_id_bytes, is_gorilla_id, put_file, read_small_file,
    remove_session_file, reseal_file,
};
use super::{CoreResult, GoSide, Read, ended, expired_meanwhile, loaded, origin_of, reject_reason};
use crate::codec::{SecureCookie, encode_multi, open_multi};
use crate::error::Error;
use crate::gob::{self, GoType, GoValue};
use crate::options::GoOptions;
use crate::session::{GorillaFormat, GorillaOrigin, unix_time};

/// Reads and writes gorilla/sessions' `FilesystemStore` sessions, so that a Rust service and a
/// Go service share them (phase 1 of the migration guide), and [`MigratingStore::from_files`]
/// moves them to a native store (phase 2).
///
/// [`MigratingStore::from_files`]: super::MigratingStore::from_files
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
    go: GoSide,
    /// Orders a save's "is the file still there" check and its rename against removals, in
    /// this process (Go's lock is per process too).
    files: Arc<Mutex<()>>,
}

impl GorillaFilesystem {
    /// Returns a store of sessions in `dir` (Go's `path` argument; as in Go, `""` is the system's
    /// temporary directory), cookies and files read with any of `codecs` and written with the
    /// first; its [`session_config`](Self::session_config) gives the cookie of [`GoOptions::new`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoCodecs`](crate::ErrorKind::NoCodecs) if `codecs` is empty.
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
        Ok(GorillaFilesystem::in_dir(dir.into(), GoSide::new(codecs)?))
    }

    /// Returns the store of a Go service's `sessions.NewFilesystemStore(dir, key_pairs...)`
    /// configured with `options` (the key pairs as in [`GorillaCookieStore::from_go`]);
    /// [`session_config`](Self::session_config) then gives the rest.
    ///
    /// [`GorillaCookieStore::from_go`]: super::GorillaCookieStore::from_go
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
        let go = GoSide::from_go(key_pairs, options)?;
        Ok(GorillaFilesystem::in_dir(dir.into(), go))
    }

    /// Sessions of `go` in `dir` (`""`: the system's temporary directory, as in Go).
    fn in_dir(mut dir: PathBuf, go: GoSide) -> Self {
        if dir.as_os_str().is_empty() {
            dir = std::env::temp_dir();
        }
        GorillaFilesystem {
            dir,
            go,
            files: Arc::new(Mutex::new(())),
        }
    }

    /// Returns the [`SessionConfig`] of this store for the Go session `cookie_name`: the same
    /// cookie, expiry and "remember me" as [`GorillaCookieStore::session_config`]. Go checks
    /// the maximum age on the cookie and on the file, and so does this store.
    ///
    /// [`GorillaCookieStore::session_config`]: super::GorillaCookieStore::session_config
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
        self.go
            .session_config(cookie_name, |go| GorillaFilesystem { go, ..self.clone() })
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
        self.go.format = format;
        self
    }

    /// Returns the directory the session files are in.
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

    /// The codecs, for the migrating store that reads these sessions.
    pub(super) fn codecs(&self) -> &[SecureCookie] {
        &self.go.codecs
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("session_{id}"))
    }

    /// The session a cookie names, read from its file (stale if an older key pair opened the
    /// cookie or the file).
    pub(super) async fn read(
        &self,
        request: &LoadRequest<'_>,
    ) -> CoreResult<Result<Read, RejectReason>> {
        let name = request.cookie_name();
        let now = request.now();
        let (id, cookie_stale) =
            match open_multi(&self.go.codecs, name, request.cookie_value(), now)
                .and_then(|opened| Ok((gob::decode(&opened.payload)?, opened.codec_index > 0)))
            {
                Ok(((GoType::String, GoValue::String(id)), stale)) if is_gorilla_id(&id) => {
                    (id, stale)
                }
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
        let mut read = match open_multi(&self.go.codecs, name, content, now).and_then(|opened| {
            let timestamp = unix_time(opened.timestamp);
            let (record, origin) = self.go.format.read(&opened.payload, timestamp, origin)?;
            let stale = cookie_stale || opened.codec_index > 0;
            Ok(Read {
                record,
                origin,
                stale,
            })
        }) {
            Ok(read) => read,
            Err(e) => return Ok(Err(reject_reason(&e))),
        };
        // Later saves of this request find the id here once the memo is gone.
        read.record
            .set_id(gorilla_id_bytes(&id).map(SessionId::from_bytes));
        Ok(request
            .expiry()
            .without_anonymous_idle_timeout()
            .check(&read.record, now)
            .map(|()| read))
    }

    async fn save_file(&self, request: SaveRequest<'_>) -> CoreResult<Saved> {
        let current = loaded_id(&request);
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
        // request (its file forgotten with the memo), goes on under a new id.
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
        let values = self.go.values_gob(request)?;
        let content = self.go.seal(name, &values, now, |size, limit| {
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
        let (codecs, name) = (Arc::clone(&self.go.codecs), name.to_owned());
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
        self.go.seal(name, &id_gob, now, |size, limit| {
            CoreErrorKind::CookieTooLarge { size, limit }
        })
    }

    /// Deletes a session file; `false` if it was gone already.
    pub(super) async fn remove(&self, path: PathBuf) -> CoreResult<bool> {
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
        StoreFuture::io(async move { Ok(loaded(self.read(&request).await?)) })
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

/// The gorilla id of the session `request` saves as it was loaded: its file's, or the id a
/// save of this request gave it.
fn loaded_id(request: &SaveRequest<'_>) -> Option<String> {
    let from_file = origin_of(request)
        .and_then(GorillaOrigin::file)
        .and_then(Path::file_name)
        .and_then(|name| name.to_str()?.strip_prefix("session_"));
    match from_file {
        Some(id) => Some(id.to_owned()),
        None => request.record().id().map(|id| gorilla_id(id.as_bytes())),
    }
}
