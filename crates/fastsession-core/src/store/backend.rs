//! What a server-side store needs of its storage: the [`Backend`] trait and its arguments.

use std::fmt;

use super::{StorageKey, StoreFuture};
use crate::error::Result;
use crate::session::{ChangeSet, Expiry, Record, SessionId};
use crate::time::UnixTime;

/// Where new session ids come from. The default is the OS CSPRNG; tests inject one that
/// returns an id already in use, to check that a create never overwrites.
pub trait IdSource: fmt::Debug + Send + Sync + 'static {
    /// A new id.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`](crate::ErrorKind::Random) if no id can be made.
    fn generate(&self) -> Result<SessionId>;
}

/// Ids from the operating system's CSPRNG, 256 bits each.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsIdSource;

impl IdSource for OsIdSource {
    fn generate(&self) -> Result<SessionId> {
        SessionId::generate()
    }
}

/// A session as listed by [`ServerStore::sessions_of`](super::ServerStore::sessions_of): what an account page can show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's storage key (not its id, which only the client holds).
    pub key: StorageKey,
    /// When the session was created.
    pub created: UnixTime,
    /// When it was last saved or refreshed.
    pub last_active: UnixTime,
    /// Whether it is a "remember me" session.
    pub persistent: bool,
}

/// Storage of records by [`StorageKey`], with the atomic operations a [`ServerStore`](super::ServerStore) needs.
///
/// The `ServerStore` does the rest of the [`Store`](super::Store) contract (ids and their
/// hashing, expiry, regeneration, merging), so a backend only keeps records. Each method must
/// be atomic with respect to the others on the same key, also across processes when the
/// storage is shared. `expires` is when the record may be deleted; a backend with native
/// expiry (a Redis TTL) uses it, others keep it for [`reap`](Self::reap). A backend that can
/// list a user's sessions also implements [`UserIndex`] and returns it from
/// [`user_index`](Self::user_index).
///
/// A method known at once answers with [`StoreFuture::ready`]; one that waits on I/O, with
/// [`StoreFuture::io`]. The example `examples/writing_a_backend.rs` in the repository walks
/// through a whole backend, method by method, and runs the conformance suite against it.
///
/// # Examples
///
/// A backend over another one that counts reads (the rest is passed through):
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use fastsession::codec::IdHasher;
/// use fastsession::session::{Expiry, Record};
/// use fastsession::store::{Backend, MemoryBackend, ServerStore, StorageKey, StoreFuture, Update, UserIndex};
/// use fastsession::time::UnixTime;
///
/// #[derive(Debug)]
/// struct CountingReads<B> { inner: B, reads: AtomicU64 }
///
/// impl<B: Backend> Backend for CountingReads<B> {
///     fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
///         self.reads.fetch_add(1, Ordering::Relaxed);
///         self.inner.read(key)
///     }
///     fn create<'a>(&'a self, key: &'a StorageKey, record: &'a Record, expires: UnixTime) -> StoreFuture<'a, bool> {
///         self.inner.create(key, record, expires)
///     }
///     fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
///         self.inner.update(key, update)
///     }
///     fn touch<'a>(&'a self, key: &'a StorageKey, now: UnixTime, expiry: &'a Expiry) -> StoreFuture<'a, bool> {
///         self.inner.touch(key, now, expiry)
///     }
///     fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
///         self.inner.remove(key)
///     }
///     fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
///         self.inner.reap(now, limit)
///     }
///     // Without this, "log out everywhere" would fail with `ErrorKind::Unsupported`.
///     fn user_index(&self) -> Option<&dyn UserIndex> {
///         self.inner.user_index()
///     }
/// }
///
/// let backend = CountingReads { inner: MemoryBackend::new(10_000), reads: AtomicU64::new(0) };
/// let store = ServerStore::with_backend(backend, IdHasher::random()?);
/// # let _ = store;
/// # Ok::<(), fastsession::Error>(())
/// ```
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// The record under `key`, whether expired or not (the caller checks).
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>>;

    /// Stores `record` under `key` only if nothing is there: `Ok(false)` if something is.
    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> StoreFuture<'a, bool>;

    /// If a record under `key` is live at `now` (per `expiry`), applies `changes` (new values
    /// from `from`) onto it with [`Record::apply`], sets its last activity to `now`, and
    /// returns `true`; otherwise deletes any expired record and returns `false`.
    ///
    /// Nothing of the merged record is returned: a backend on another machine need not send
    /// it back.
    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool>;

    /// If a record under `key` is live at `now`, sets its last activity to `now` (never
    /// touching its data) and returns `true`.
    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool>;

    /// Removes the record under `key` and returns it; of two concurrent removes, one gets it.
    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>>;

    /// Deletes up to `limit` records whose `expires` is at or before `now`; returns how many.
    fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize>;

    /// The index of sessions by user this backend keeps, if it keeps one; `None` by default.
    ///
    /// Without one, sessions work as ever, but [`ServerStore::sessions_of`](super::ServerStore::sessions_of),
    /// [`end_session`](super::ServerStore::end_session) and
    /// [`end_sessions_of`](super::ServerStore::end_sessions_of) fail with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{Backend, MemoryBackend};
    ///
    /// // Every backend of the fastsession crates keeps one: "log out everywhere" works.
    /// assert!(MemoryBackend::new(10_000).user_index().is_some());
    /// ```
    fn user_index(&self) -> Option<&dyn UserIndex> {
        None
    }
}

/// Which sessions belong to which user: what [`ServerStore::sessions_of`](super::ServerStore::sessions_of),
/// [`end_session`](super::ServerStore::end_session) and
/// [`end_sessions_of`](super::ServerStore::end_sessions_of) need of a [`Backend`], which hands
/// it over with [`Backend::user_index`].
///
/// The `ServerStore` links a session when it is saved with a user and unlinks it when it is
/// removed. Links may go stale (a session that expired, a link whose unlink failed): readers
/// check the record, and [`sessions_of`](super::ServerStore::sessions_of) unlinks what it
/// finds gone.
///
/// # Examples
///
/// ```
/// use fastsession::store::{Backend, MemoryBackend, StorageKey};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let backend = MemoryBackend::new(10_000);
/// let index = backend.user_index().expect("the memory backend keeps a user index");
/// let key = StorageKey::from_bytes([7; 32]);
/// index.link_user("ada", &key).await?;
/// assert_eq!(index.user_keys("ada").await?, vec![key]);
/// index.unlink_user("ada", &key).await?;
/// assert!(index.user_keys("ada").await?.is_empty());
/// # Ok::<(), fastsession::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait UserIndex: Send + Sync {
    /// Notes that the session under `key` belongs to `user`; linking it twice is linking it
    /// once.
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()>;

    /// Removes a link made by [`link_user`](Self::link_user); removing a link that is not
    /// there is no error.
    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()>;

    /// The keys linked to `user`, stale ones included.
    fn user_keys<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StorageKey>>;
}

/// The arguments of [`Backend::update`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Update<'a> {
    changes: &'a ChangeSet,
    from: &'a Record,
    now: UnixTime,
    expiry: &'a Expiry,
    previously_active: Option<UnixTime>,
}

impl<'a> Update<'a> {
    /// Returns an update applying `changes` (with the new values in `from`) at `now`, to a record
    /// still live under `expiry`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::Update;
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(1_000);
    /// let (changes, from, expiry) = (ChangeSet::default(), Record::new(now), Expiry::default());
    /// let update = Update::new(&changes, &from, now, &expiry);
    /// assert_eq!(update.now(), now);
    /// ```
    #[must_use]
    pub fn new(
        changes: &'a ChangeSet,
        from: &'a Record,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> Self {
        Update {
            changes,
            from,
            now,
            expiry,
            previously_active: None,
        }
    }

    /// Says when the session was last active before this request, as the request loaded it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::Update;
    /// use fastsession::time::UnixTime;
    ///
    /// let (before, now) = (UnixTime::from_secs(970), UnixTime::from_secs(1_000));
    /// let (changes, from, expiry) = (ChangeSet::default(), Record::new(now), Expiry::default());
    /// let update = Update::new(&changes, &from, now, &expiry).with_previously_active(Some(before));
    /// assert_eq!(update.previously_active(), Some(before));
    /// ```
    #[must_use]
    pub fn with_previously_active(mut self, at: Option<UnixTime>) -> Self {
        self.previously_active = at;
        self
    }

    /// Returns what the request changed.
    #[must_use]
    pub fn changes(&self) -> &'a ChangeSet {
        self.changes
    }

    /// Returns the request's record, holding the new values.
    #[must_use]
    pub fn from(&self) -> &'a Record {
        self.from
    }

    /// Returns the current time.
    #[must_use]
    pub fn now(&self) -> UnixTime {
        self.now
    }

    /// Returns the expiry policy deciding whether the stored record is still live.
    #[must_use]
    pub fn expiry(&self) -> &'a Expiry {
        self.expiry
    }

    /// Returns when the session was last active before this request, as the request loaded it
    /// (`from().last_active()` is already `now`); `None` if unknown.
    #[must_use]
    pub fn previously_active(&self) -> Option<UnixTime> {
        self.previously_active
    }
}

impl Update<'_> {
    /// Applies this update to `stored` if it is live; `None` if it expired.
    ///
    /// Backends that hold records in memory or read them into memory call this under their
    /// lock or transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::{Expiry, Record};
    /// use fastsession::store::Update;
    /// use fastsession::time::UnixTime;
    ///
    /// // A backend's `update`, for records it holds in memory (under its lock).
    /// fn update(slot: &mut Option<Record>, update: Update<'_>) -> bool {
    ///     match slot.take().and_then(|stored| update.apply_to(stored)) {
    ///         Some(merged) => { *slot = Some(merged); true }
    ///         None => false, // gone or expired: the save fails with SessionEnded
    ///     }
    /// }
    ///
    /// let now = UnixTime::from_secs(1_000);
    /// let session = Session::new_detached();
    /// session.set_persistent(true);
    /// let (changes, expiry) = (session.changes(), Expiry::default());
    /// let mut from = Record::new(now);
    /// from.set_persistent(true);
    /// let mut slot = Some(Record::new(now));
    /// assert!(update(&mut slot, Update::new(&changes, &from, now, &expiry)));
    /// assert!(slot.is_some_and(|r| r.is_persistent()));
    /// ```
    #[must_use]
    pub fn apply_to(&self, mut stored: Record) -> Option<Record> {
        self.expiry.check(&stored, self.now).ok()?;
        stored.apply(self.changes, self.from);
        stored.set_last_active(self.now);
        Some(stored)
    }

    /// Returns `true` if the session is certainly live now, judged from what the request loaded:
    /// its creation time and [`previously_active`](Self::previously_active). The stored record
    /// can only be as live or more (a concurrent request may have been active since), so a
    /// backend may skip reading it back for liveness, provided it still makes sure the record
    /// exists. `false` when unknown or not live: the backend must check the stored record.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::Update;
    /// use fastsession::time::UnixTime;
    ///
    /// let (loaded_at, now) = (UnixTime::from_secs(1_000), UnixTime::from_secs(1_030));
    /// let (changes, expiry) = (ChangeSet::default(), Expiry::default());
    /// let from = Record::new(loaded_at);
    /// let update = Update::new(&changes, &from, now, &expiry).with_previously_active(Some(loaded_at));
    /// // Active 30 seconds ago: live now, whatever the store holds. A remote backend may then
    /// // merge without reading the record's timestamps back first.
    /// assert!(update.is_live_as_loaded());
    /// assert!(!update.with_previously_active(None).is_live_as_loaded());
    /// ```
    #[must_use]
    pub fn is_live_as_loaded(&self) -> bool {
        // A deadline the request set is not the one the store holds: that one is unknown here.
        if self.changes.expires_at_changed() {
            return false;
        }
        // The shortest idle timeout (the anonymous one), whatever the record: a record live
        // under it is live under any.
        self.previously_active.is_some_and(|active| {
            let mut deadline = active
                .saturating_add(self.expiry.shortest_idle_timeout())
                .min(
                    self.from
                        .created()
                        .saturating_add(self.expiry.absolute_lifetime()),
                );
            if let Some(at) = self.from.expires_at() {
                deadline = deadline.min(at);
            }
            active <= self.now && self.now < deadline
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_as_loaded_agrees_with_the_expiry_check() {
        use std::time::Duration;

        let expiry = Expiry::default()
            .with_idle_timeout(Duration::from_secs(30))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(100))
            .unwrap();
        let changes = ChangeSet::default();
        let from = Record::new(UnixTime::from_secs(1_000));
        let update = |active: Option<u64>, now: u64| {
            Update::new(&changes, &from, UnixTime::from_secs(now), &expiry)
                .with_previously_active(active.map(UnixTime::from_secs))
        };
        for active in 1_000..1_100 {
            for now in active..1_140 {
                let mut loaded = from.clone();
                loaded.set_last_active(UnixTime::from_secs(active));
                let live = expiry.check(&loaded, UnixTime::from_secs(now)).is_ok();
                assert_eq!(update(Some(active), now).is_live_as_loaded(), live);
            }
        }
        assert!(!update(None, 1_001).is_live_as_loaded(), "unknown: check");
        assert!(
            !update(Some(1_010), 1_005).is_live_as_loaded(),
            "active after now: check"
        );
    }

    #[test]
    fn liveness_as_loaded_honours_the_records_own_deadline() {
        use std::time::Duration;

        let expiry = Expiry::default()
            .with_idle_timeout(Duration::from_secs(30))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(100))
            .unwrap();
        let mut from = Record::new(UnixTime::from_secs(1_000));
        from.set_expires_at(Some(UnixTime::from_secs(1_010)));
        let unchanged = ChangeSet::default();
        let update = |changes, now| {
            Update::new(changes, &from, UnixTime::from_secs(now), &expiry)
                .with_previously_active(Some(UnixTime::from_secs(1_000)))
        };
        assert!(update(&unchanged, 1_009).is_live_as_loaded());
        assert!(!update(&unchanged, 1_010).is_live_as_loaded());
        // Changed by the request: the stored deadline is unknown, so the store must check.
        let changed = ChangeSet {
            expires_at_changed: true,
            ..ChangeSet::default()
        };
        assert!(!update(&changed, 1_001).is_live_as_loaded());
    }
}
