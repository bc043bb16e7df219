//! The store that moves sessions from gorilla's formats to a native store.

use fastsession_core::session::SessionId;
use fastsession_core::store::{
    CookieContent, LoadRequest, Loaded, RejectReason, SaveKind, SaveRequest, Saved, Store,
    StoreFuture,
};

use super::{
    CoreResult, GorillaCookieStore, GorillaFilesystem, Read, go_expiry, loaded, origin_of,
};

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

    /// Returns the native store.
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
            Source::Cookies(store) => store.codecs(),
            Source::Files(files) => files.codecs(),
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
            Source::Cookies(store) => store.read(&request).await?,
            Source::Files(files) => files.read(&request).await?,
        };
        // Written to the native store at the end of this request, even if unchanged.
        Ok(loaded(read.map(|read| Read {
            stale: true,
            ..read
        })))
    }

    async fn save_any(&self, request: SaveRequest<'_>) -> CoreResult<Saved> {
        let Some(origin) = origin_of(&request) else {
            return self.native.save(request).await;
        };
        let saved = if request.kind() == SaveKind::Destroy {
            Saved::Remove
        } else {
            let mut record = request.record().clone();
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
