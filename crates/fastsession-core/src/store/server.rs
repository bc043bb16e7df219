//! The shared half of every server-side store: ids, expiry and the save protocol.
//!
//! A server-side store is a [`ServerStore`] over a [`Backend`]. The backend only stores
//! records under [`StorageKey`]s and offers a few atomic operations; the `ServerStore` turns
//! them into the [`Store`] contract: it parses nothing (the registry hands it a parsed
//! [`SessionId`]), hashes every id before the backend sees it, never adopts an unknown id,
//! creates with create-if-absent and retries on collision, merges change sets, enforces expiry
//! at read time, and never brings back a session another request ended.

use std::fmt;

use super::budget::DEFAULT_MAX_SESSION_BYTES;
use super::{
    Backend, CookieContent, IdSource, LoadRequest, Loaded, Memo, OsIdSource, RejectReason,
    SaveKind, SaveRequest, Saved, StorageKey, Store, StoreFuture, Update,
};
use crate::codec::IdHasher;
use crate::error::{Error, ErrorKind, Result};
#[cfg(test)]
use crate::session::ChangeSet;
use crate::session::{Expiry, Record, SessionId};
use crate::time::UnixTime;

/// What a server store remembers of a session it loaded ([`Memo`]): where it found it, so the
/// save need not hash the id again, and when it was last active then, which may spare a
/// remote backend a read ([`Update::is_live_as_loaded`]).
struct LoadedKey {
    /// Of the hasher that computed `key`: another store's memo is not trusted.
    hasher_tag: u64,
    key: StorageKey,
    last_active: UnixTime,
}

impl LoadedKey {
    fn of<'a>(request: &SaveRequest<'a>) -> Option<&'a LoadedKey> {
        request.memo()?.get()
    }
}

/// How many fresh ids a create tries before giving up; each collision is a 2^-256 event
/// unless the id source is broken, so more than one retry means something is wrong.
const CREATE_ATTEMPTS: usize = 4;

/// A [`Store`] that keeps sessions on the server, in a [`Backend`], and only their id in the
/// cookie.
///
/// # Examples
///
/// ```
/// use fastsession::{CookieConfig, SessionConfig};
/// use fastsession::MemoryStore;
///
/// let store = MemoryStore::new()?;
/// let config = SessionConfig::new(store, CookieConfig::new("id")?);
/// # Ok::<(), fastsession::Error>(())
/// ```
pub struct ServerStore<B> {
    pub(super) backend: B,
    pub(super) hasher: IdHasher,
    ids: Box<dyn IdSource>,
    max_session_bytes: usize,
}

impl<B: Backend> ServerStore<B> {
    /// Returns a store of sessions in `backend`, stored under ids hashed by `hasher`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Key;
    /// use fastsession::codec::IdHasher;
    /// use fastsession::store::{MemoryBackend, ServerStore};
    /// use fastsession::{CookieConfig, SessionConfig};
    ///
    /// // Any `Backend`: a store crate's own constructor does this for its backend.
    /// let key = Key::generate()?; // in production: a stable key from your secrets
    /// let store = ServerStore::with_backend(MemoryBackend::new(10_000), IdHasher::new(&key));
    /// let config = SessionConfig::new(store, CookieConfig::new("id")?);
    /// # let _ = config;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_backend(backend: B, hasher: IdHasher) -> Self {
        ServerStore {
            backend,
            hasher,
            ids: Box::new(OsIdSource),
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
        }
    }

    /// Bounds each session's data ([`Record::data_len`]) at `max` bytes (default
    /// [`DEFAULT_MAX_SESSION_BYTES`]): a save over it fails with
    /// [`ErrorKind::SessionTooLarge`] and changes nothing, so that no client can make a session
    /// grow without end (a flash message per request, say).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    ///
    /// let store = MemoryStore::new()?.with_max_session_bytes(16 * 1024);
    /// assert_eq!(store.max_session_bytes(), 16 * 1024);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_max_session_bytes(mut self, max: usize) -> Self {
        self.max_session_bytes = max;
        self
    }

    /// Returns the bound on each session's data, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::store::DEFAULT_MAX_SESSION_BYTES;
    ///
    /// assert_eq!(MemoryStore::new()?.max_session_bytes(), DEFAULT_MAX_SESSION_BYTES);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn max_session_bytes(&self) -> usize {
        self.max_session_bytes
    }

    /// This store with its backend changed by `f` (for a backend's own builder methods).
    pub(crate) fn map_backend(mut self, f: impl FnOnce(B) -> B) -> Self {
        self.backend = f(self.backend);
        self
    }

    /// Takes new ids from `ids` instead of the OS CSPRNG (for tests).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::testing::ScriptedIds;
    ///
    /// // A test that makes a new session draw an id already in use.
    /// let ids = ScriptedIds::new();
    /// let store = MemoryStore::new()?.with_id_source(ids.clone());
    /// assert_eq!(ids.drawn(), 0);
    /// # let _ = store;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_id_source(mut self, ids: impl IdSource) -> Self {
        self.ids = Box::new(ids);
        self
    }

    /// Returns the backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    ///
    /// // The backend's own methods, for a health page or a test.
    /// let store = MemoryStore::new()?;
    /// println!("{} sessions held", store.backend().len());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Returns the storage key of `id`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::session::SessionId;
    ///
    /// // The key a session is listed under by `sessions_of`: this request's own session, to tell
    /// // it apart on an account page.
    /// let store = MemoryStore::new()?;
    /// let current = SessionId::generate()?; // the id in this request's cookie
    /// let key = store.storage_key(&current);
    /// assert_eq!(key, store.storage_key(&current));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn storage_key(&self, id: &SessionId) -> StorageKey {
        StorageKey::of(&self.hasher, id)
    }

    /// The storage key of the record to save: the one this store remembered at the load, or
    /// computed now.
    fn key_of(&self, request: &SaveRequest<'_>) -> Option<StorageKey> {
        let id = request.record().id()?;
        Some(match LoadedKey::of(request) {
            Some(loaded) if loaded.hasher_tag == self.hasher.tag() => loaded.key,
            _ => StorageKey::of(&self.hasher, id),
        })
    }

    /// Deletes up to `limit` expired records; returns how many.
    ///
    /// # Errors
    ///
    /// The backend's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::time::UnixTime;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// // A maintenance task, now and then (or `spawn_reaper`): a backend without native expiry
    /// // keeps expired sessions until they are reaped, though none of them ever loads again.
    /// let store = MemoryStore::new()?;
    /// let reaped = store.reap(UnixTime::now(), 1_000).await?;
    /// assert_eq!(reaped, 0);
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn reap(&self, now: UnixTime, limit: usize) -> Result<usize> {
        self.backend.reap(now, limit).await
    }

    async fn load_id(&self, request: LoadRequest<'_>) -> Result<Loaded> {
        let Some(id) = request.session_id() else {
            return Ok(Loaded::rejected(RejectReason::Malformed));
        };
        let key = StorageKey::of(&self.hasher, id);
        let Some(mut record) = self.backend.read(&key).await? else {
            return Ok(Loaded::rejected(RejectReason::UnknownId));
        };
        if let Err(reason) = request.expiry().check(&record, request.now()) {
            // Expired but not yet reaped: never returned, and deleted now.
            self.backend.remove(&key).await?;
            return Ok(Loaded::rejected(reason));
        }
        let memo = LoadedKey {
            hasher_tag: self.hasher.tag(),
            key,
            last_active: record.last_active(),
        };
        record.set_id(Some(id.clone()));
        Ok(Loaded::found(record).with_memo(Memo::new(memo)))
    }

    async fn save_record(&self, request: SaveRequest<'_>) -> Result<Saved> {
        let record = request.record();
        let current = self.key_of(&request);
        let ended = || Error::new(ErrorKind::SessionEnded, "session ended by another request");
        let grows = matches!(
            request.kind(),
            SaveKind::Create | SaveKind::Update | SaveKind::Regenerate
        );
        if grows {
            let size = record.data_len();
            if size > self.max_session_bytes {
                crate::events::record(crate::events::Event::SessionTooLarge);
                return Err(Error::new(
                    ErrorKind::SessionTooLarge {
                        size,
                        limit: self.max_session_bytes,
                    },
                    "session not saved",
                ));
            }
        }
        match (request.kind(), current) {
            // Creation, regeneration and logout happen once per session and hold the most
            // state: boxed, so that the common save's future (which a store boxes once) stays
            // a third of the size (288 bytes, not 912).
            (SaveKind::Create, _) => Box::pin(self.create(record.clone(), request.expiry())).await,
            (SaveKind::Update, Some(key)) => {
                let update =
                    Update::new(request.changes(), record, request.now(), request.expiry())
                        .with_previously_active(LoadedKey::of(&request).map(|l| l.last_active));
                if !self.backend.update(&key, update).await? {
                    return Err(ended());
                }
                // A changed user is the request's: the merge took it from there.
                if let (Some(user), true) = (record.user_id(), request.changes().user_changed()) {
                    self.link_user(user, &key).await?;
                }
                Ok(id_cookie(record.id().cloned()))
            }
            (SaveKind::Touch, Some(key)) => {
                if self
                    .backend
                    .touch(&key, request.now(), request.expiry())
                    .await?
                {
                    Ok(id_cookie(record.id().cloned()))
                } else {
                    Err(ended())
                }
            }
            (SaveKind::Regenerate, Some(key)) => Box::pin(self.regenerate(&key, &request)).await,
            (SaveKind::Destroy, Some(key)) => {
                Box::pin(self.delete(&key)).await?;
                Ok(Saved::Remove)
            }
            (SaveKind::Destroy, None) => Ok(Saved::Remove),
            (kind, None) => Err(Error::new(
                ErrorKind::Internal,
                format!("{kind:?} save of a session that has no id"),
            )),
        }
    }

    /// Moves the session under `key` to a new id with the request's changes.
    ///
    /// The new record is written before the old one is removed, so a failed write leaves the
    /// session as it was. Removing the old one decides between racing regenerations (and a
    /// destroy): the one that removes it wins; the others delete the record they wrote and
    /// report the session ended, so one session never has two live ids.
    async fn regenerate(&self, key: &StorageKey, request: &SaveRequest<'_>) -> Result<Saved> {
        let ended = || Error::new(ErrorKind::SessionEnded, "session ended by another request");
        let (changes, now, expiry) = (request.changes(), request.now(), request.expiry());
        let stays_anonymous = request.record().user_id().is_none();
        // An anonymous session moving within a full budget must not be the one its own new
        // record evicts: marked active now, it is the last in line.
        if stays_anonymous && !self.backend.touch(key, now, expiry).await? {
            return Err(ended());
        }
        let read = self.backend.read(key).await?.ok_or_else(ended)?;
        if expiry.check(&read, now).is_err() {
            return Err(ended());
        }
        let merge = |mut stored: Record| {
            stored.apply(changes, request.record());
            stored.set_last_active(now);
            stored
        };
        let saved = self.create(merge(read.clone()), expiry).await?;
        let Saved::Cookie {
            id: Some(new_id), ..
        } = &saved
        else {
            return Err(Error::new(
                ErrorKind::Internal,
                "a created session has no id",
            ));
        };
        let new_key = StorageKey::of(&self.hasher, new_id);
        let Some(old) = self.backend.remove(key).await? else {
            self.delete(&new_key).await?;
            return Err(ended());
        };
        if let Some(user) = old.user_id() {
            self.unlink_user(user, key).await?;
        }
        if old != read {
            // Another request saved between the read and the remove: its changes are in `old`,
            // so the new record is written again from it. Nobody else knows the new id yet.
            self.delete(&new_key).await?;
            let mut again = merge(old);
            again.set_id(Some(new_id.clone()));
            if !self
                .backend
                .create(&new_key, &again, expiry.deadline(&again))
                .await?
            {
                return Err(Error::new(
                    ErrorKind::Store,
                    "the regenerated session's new record was taken",
                ));
            }
            if let Some(user) = again.user_id() {
                self.link_user(user, &new_key).await?;
            }
        }
        Ok(saved)
    }

    /// Deletes the record under `key` and its user link.
    async fn delete(&self, key: &StorageKey) -> Result<()> {
        if let Some(old) = self.backend.remove(key).await?
            && let Some(user) = old.user_id()
        {
            self.unlink_user(user, key).await?;
        }
        Ok(())
    }

    /// Stores `record` under a new id, never over an existing record.
    async fn create(&self, mut record: Record, expiry: &Expiry) -> Result<Saved> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = self.ids.generate()?;
            let key = StorageKey::of(&self.hasher, &id);
            record.set_id(Some(id));
            if self
                .backend
                .create(&key, &record, expiry.deadline(&record))
                .await?
            {
                if let Some(user) = record.user_id() {
                    self.link_user(user, &key).await?;
                }
                return Ok(id_cookie(record.id().cloned()));
            }
            tracing::warn!(target: "fastsession::security", "new session id collided with a stored one; drawing another");
            // Only a copied pool (a fork after serving) makes 256 random bits collide.
            crate::random::discard_pool();
        }
        Err(Error::new(
            ErrorKind::Random,
            "every new session id collided with a stored one",
        ))
    }
}

fn id_cookie(id: Option<SessionId>) -> Saved {
    match id {
        Some(id) => Saved::Cookie {
            value: id.as_str().to_owned(),
            id: Some(id),
        },
        None => Saved::Remove,
    }
}

impl<B: Backend> Store for ServerStore<B> {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::SessionId
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        StoreFuture::io(self.load_id(request))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        StoreFuture::io(self.save_record(request))
    }
}

impl<B: fmt::Debug> fmt::Debug for ServerStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerStore")
            .field("backend", &self.backend)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::time::Duration;

    /// The storage key computed at the load is reused by the save of that session through a
    /// store with the same hasher key, and by nothing else.
    #[tokio::test]
    async fn a_loaded_session_remembers_its_storage_key_for_its_own_hasher() {
        let store = MemoryStore::new().unwrap();
        let expiry = Expiry::default()
            .with_idle_timeout(Duration::from_secs(60))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(600))
            .unwrap();
        let now = UnixTime::now();
        let (changes, record) = (ChangeSet::default(), Record::new(now));
        let create = SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);
        let Ok(Saved::Cookie {
            value,
            id: Some(id),
        }) = store.save(create).await
        else {
            panic!("created");
        };
        let request = LoadRequest::new("id", &value, Some(&id), &expiry, now);
        let parts = store.load(request).await.unwrap();
        let (loaded, memo) = (parts.outcome.unwrap(), parts.memo);
        let key = store.storage_key(&id);
        let update = |memo| {
            SaveRequest::new("id", SaveKind::Update, &loaded, &changes, &expiry, now)
                .with_memo(memo)
        };
        assert_eq!(store.key_of(&update(memo.as_ref())), Some(key));
        let remembered = LoadedKey::of(&update(memo.as_ref())).expect("a memo of this store");
        assert_eq!(
            (remembered.key, remembered.last_active),
            (key, loaded.last_active())
        );

        // Another hasher's memo is ignored, a forged one included.
        let other = IdHasher::random().unwrap();
        assert_ne!(other.tag(), store.hasher.tag());
        let forged = Memo::new(LoadedKey {
            hasher_tag: other.tag(),
            key: StorageKey::of(&other, &id),
            last_active: now,
        });
        assert_eq!(store.key_of(&update(Some(&forged))), Some(key));
        // Without a memo, the key is computed.
        assert_eq!(store.key_of(&update(None)), Some(key));
        let foreign = Memo::new("not this store's");
        assert_eq!(store.key_of(&update(Some(&foreign))), Some(key));
    }
}
