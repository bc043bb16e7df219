//! [`FilesystemBackend`]: records as files, the [`Backend`] operations as locked
//! read-modify-write cycles.

mod budget;
mod files;
mod reap;
mod records;
mod users;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fastsession_core::session::{Expiry, Record};
use fastsession_core::store::{
    AnonymousBudget, Backend, StorageKey, StoreFuture, Update, UserIndex,
};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error, Result};

use crate::anonymous::{Anonymous, Index};
use crate::dir::Dirs;
use crate::format;

/// The default for [`FilesystemBackend::with_max_record_size`]: 1 MiB per session file.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 1 << 20;

/// The records of a [`FilesystemStore`](crate::FilesystemStore): one file per session in a
/// directory that several processes may share.
///
/// # Layout
///
/// ```text
/// <dir>/              0700, must belong to this process's user
///   sessions/<key>    0600, one per session, <key> = 64 hex digits of the keyed id hash
///   sessions/<key>.tmp      a write in progress (or a crash's leftover, removed later)
///   locks/00 … locks/ff     0600, lock files, one per 1/256 of the key space
///   locks/users-00 … users-ff   0600, lock files, one per 1/256 of the user directories
///   users/<sha256(user)>/<key>  empty files: the sessions tied to a user
/// ```
///
/// File names come from [`StorageKey::to_hex`], never from client input, so no path can be
/// injected; on top of that every file is opened with `O_NOFOLLOW` relative to directory
/// descriptors opened once, so a planted symlink is never followed. Files are created 0600 and
/// directories 0700 whatever the umask. A directory that another user owns or that others may
/// enter is refused at [`open`](Self::open).
///
/// # Durability
///
/// A write goes to `<key>.tmp`, is `fsync`ed, renamed over `<key>`, and the directory is
/// `fsync`ed before the save reports success. A crash at any point leaves the complete old or
/// the complete new version, never a partial file; a failed write (`ENOSPC`, `EDQUOT`, `EIO`,
/// `EACCES`, read-only file system) returns an [`ErrorKind::Store`](fastsession_core::ErrorKind::Store)
/// error with the [`io::Error`] as its source and leaves the previous version readable. A
/// deletion (logout, regeneration) is `fsync`ed too, so a power cut cannot bring an ended session
/// back. Each file carries a checksum: a torn, truncated, corrupted or foreign file reads as no
/// session (the request gets a fresh one). It is counted as
/// [`Event::UnreadableRecord`](fastsession_core::events::Event::UnreadableRecord) (logged at
/// `WARN` at most once per interval, since a client can send its cookie on every request) and
/// each occurrence is a `debug` event with target `fastsession::security`,
/// `reason = "corrupt"` or `"untrusted"`, the storage key and a `detail`, never the file's
/// content.
///
/// # Concurrency
///
/// Reads take no lock: a rename is atomic, so a reader sees one whole version. Every write
/// (create, update, touch, remove, reap) holds an exclusive `flock` on the lock file of the key's
/// shard for its whole read-modify-write cycle. `flock` excludes other threads and other
/// processes alike, so two processes sharing the directory keep the store contract: changes to
/// different keys of one session both persist, one whole value wins for the same key (but
/// increments of one key all count: [`Record::apply`](fastsession_core::session::Record::apply)
/// adds each request's to the value read under the lock), a touch
/// never overwrites data, and a session ended by one process is never brought back by another.
/// The 256 lock files are never deleted, which rules out the race where two processes lock two
/// generations of one lock file. Use a local file system: over NFS, `flock` is only as good as
/// the server's lock support.
///
/// # Async
///
/// Each operation runs on Tokio's blocking thread pool (`spawn_blocking`), never on the
/// executor's worker threads; outside a Tokio runtime it runs inline in the caller. Once
/// started, an operation completes even if its future is dropped, as a whole or not at all.
///
/// # Anonymous sessions
///
/// Anyone can create a session without a user id with one request, so these live in an
/// [`AnonymousBudget`] ([`with_anonymous_budget`](Self::with_anonymous_budget); by default
/// 100 000 sessions holding 64 MiB of data together): creating one when the budget is full
/// deletes the least recently active anonymous session, counted as
/// [`Event::AnonymousEvicted`](fastsession_core::events::Event::AnonymousEvicted). A record
/// with a user id (a logged-in session, or the revocation marker of one) is never counted nor
/// evicted; this store bounds those by the disk only. A session that gains a user id leaves
/// the budget, one that loses it joins it (and may evict another). Anonymous sessions also
/// expire sooner ([`Expiry::anonymous_idle_timeout`]), and the reaper deletes the expired ones
/// before anything else.
///
/// Whether a file counts is read from the record it holds: the file format is the same as
/// before the budget, so existing directories need no migration. Each process keeps an index
/// of the anonymous files, built at [`open`](Self::open) by reading every file (opening
/// takes time in proportion to the sessions stored), exact for the process's own writes, and
/// brought up to date by each reaper pass that lists the whole directory (reading whole only
/// the files it has not seen in their current version). A create evicts from that index, with
/// no directory listing: each victim is read again under its lock and spared if it gained a
/// user id or was used since, and one create evicts at most 16, so that its work stays
/// bounded; a reaper pass evicts whatever is left over budget. The index takes about 150
/// bytes per anonymous session and 10 to 20 per other file.
///
/// With one process the bounds hold exactly, except that a session much larger than the ones
/// 16 evictions free can leave the bytes over budget until the next creates or reaper pass.
/// With several processes sharing the directory, each one's index misses the anonymous
/// sessions the others created since its last complete reaper pass, so the directory can hold
/// the budget plus those: at worst about the budget times the number of processes. Each
/// process's next complete reaper pass (or the next creates after it) brings the directory
/// back within the budget. Run [`spawn_reaper`](crate::spawn_reaper) in every process, often
/// enough that few anonymous sessions are created between two passes.
///
/// # Reaping
///
/// Expired files are not returned (the server store checks expiry on every load) and are
/// deleted by [`ServerStore::reap`](fastsession_core::store::ServerStore::reap) or the
/// background [`spawn_reaper`](crate::spawn_reaper). A reaper pass deletes the expired
/// anonymous sessions its index knows first, then reads the 36-byte header of every file, so
/// its cost grows with the number of sessions; it also removes leftover temporary files,
/// corrupt files and links to sessions that are gone, and keeps the anonymous sessions within
/// their budget.
///
/// # Examples
///
/// ```
/// use fastsession::Key;
/// use fastsession::codec::IdHasher;
/// use fastsession::store::{AnonymousBudget, ServerStore};
/// use fastsession::fs::{FilesystemBackend, FilesystemStore};
///
/// let dir = tempfile::tempdir()?;
/// let backend = FilesystemBackend::open(dir.path().join("sessions"))?
///     .with_max_record_size(64 * 1024)
///     .with_anonymous_budget(AnonymousBudget::new(10_000, 16 << 20));
/// let store: FilesystemStore = ServerStore::with_backend(backend, IdHasher::new(&Key::generate()?));
/// assert_eq!(store.backend().max_record_size(), 64 * 1024);
/// assert_eq!(store.backend().anonymous_budget().max_sessions(), 10_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FilesystemBackend {
    inner: Arc<Inner>,
    max_record: usize,
}

struct Inner {
    path: PathBuf,
    dirs: Dirs,
    /// The anonymous sessions this process knows of.
    anonymous: Index,
    /// Held by a scan of the directory for its whole length: one scan at a time keeps the
    /// index's bookkeeping of what a scan saw simple.
    scanning: Mutex<()>,
}

impl FilesystemBackend {
    /// Opens the store directory `dir`, creating it (mode 0700, missing parents too) and its
    /// subdirectories if needed. This blocks; call it at startup.
    ///
    /// An existing directory must belong to this process's user and have mode 0700 (or
    /// stricter): it is never chmod-ed. Give the store a directory of its own, not a shared
    /// one such as a fresh temporary directory (often 0755) or `/tmp`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fastsession_core::ErrorKind::InvalidConfig) if `dir` is a
    /// symlink or not a directory, belongs to another user, or grants any access to group or
    /// others; [`ErrorKind::Store`](fastsession_core::ErrorKind::Store) if it cannot be created
    /// or opened.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::ErrorKind;
    /// use fastsession::fs::FilesystemBackend;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let backend = FilesystemBackend::open(dir.path().join("sessions"))?;
    /// assert_eq!(backend.path(), dir.path().join("sessions"));
    ///
    /// std::os::unix::fs::symlink(dir.path().join("sessions"), dir.path().join("link"))?;
    /// let err = FilesystemBackend::open(dir.path().join("link")).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().to_path_buf();
        let dirs = Dirs::open(&path)?;
        let inner = Inner {
            path,
            dirs,
            anonymous: Index::new(AnonymousBudget::default()),
            scanning: Mutex::new(()),
        };
        // The anonymous sessions already there count against the budget from the first
        // request on: other processes, or this one before a restart, made them.
        inner.scan(None, usize::MAX, DEFAULT_MAX_RECORD_SIZE)?;
        Ok(FilesystemBackend {
            inner: Arc::new(inner),
            max_record: DEFAULT_MAX_RECORD_SIZE,
        })
    }

    /// Keeps the sessions without a user id within `budget` (default
    /// [`AnonymousBudget::default`]): creating one when the budget is full deletes the least
    /// recently active anonymous session. Sessions with a user id, and the revocation markers
    /// of such sessions, are outside the budget and never deleted to make room. See [Anonymous
    /// sessions](Self#anonymous-sessions) for how close the bound is when several processes
    /// share the directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::AnonymousBudget;
    /// use fastsession::fs::FilesystemBackend;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let budget = AnonymousBudget::new(10_000, 16 << 20);
    /// let backend = FilesystemBackend::open(dir.path().join("s"))?.with_anonymous_budget(budget);
    /// assert_eq!(backend.anonymous_budget(), budget);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_anonymous_budget(self, budget: AnonymousBudget) -> Self {
        self.inner.anonymous.set_budget(budget);
        self
    }

    /// Returns the budget of the anonymous sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::AnonymousBudget;
    /// use fastsession::fs::FilesystemBackend;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let backend = FilesystemBackend::open(dir.path().join("s"))?;
    /// assert_eq!(backend.anonymous_budget(), AnonymousBudget::default());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn anonymous_budget(&self) -> AnonymousBudget {
        self.inner.anonymous.budget()
    }

    /// Refuses to write session files larger than `bytes` (header included) and treats larger
    /// files as corrupt; the default is [`DEFAULT_MAX_RECORD_SIZE`]. It bounds the memory a
    /// load can take.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::fs::FilesystemBackend;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let backend = FilesystemBackend::open(dir.path().join("s"))?.with_max_record_size(16 * 1024);
    /// assert_eq!(backend.max_record_size(), 16 * 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_max_record_size(mut self, bytes: usize) -> Self {
        self.max_record = bytes;
        self
    }

    /// Returns the size limit of a session file.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::fs::{DEFAULT_MAX_RECORD_SIZE, FilesystemBackend};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let backend = FilesystemBackend::open(dir.path().join("s"))?;
    /// assert_eq!(backend.max_record_size(), DEFAULT_MAX_RECORD_SIZE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_record_size(&self) -> usize {
        self.max_record
    }

    /// Returns the directory given to [`open`](Self::open).
    ///
    /// Operations use the directory opened then, even if this path is later replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::fs::FilesystemBackend;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let backend = FilesystemBackend::open(dir.path().join("s"))?;
    /// assert_eq!(backend.path(), dir.path().join("s"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `job` off the async executor: on Tokio's blocking pool, or inline outside Tokio.
    ///
    /// The caller's `tracing` dispatcher and span go along, so events land where the
    /// application (or a test) collects them.
    fn run<T, F>(&self, job: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        StoreFuture::io(async move {
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            let span = tracing::Span::current();
            let job = move || {
                tracing::dispatcher::with_default(&dispatch, || span.in_scope(|| job(&inner)))
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle
                    .spawn_blocking(job)
                    .await
                    .map_err(|e| Error::store("filesystem store: I/O task failed", e))?,
                Err(_) => job(),
            }
        })
    }
}

impl fmt::Debug for FilesystemBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (anonymous, anonymous_bytes) = self.inner.anonymous.usage();
        f.debug_struct("FilesystemBackend")
            .field("path", &self.inner.path)
            .field("max_record_size", &self.max_record)
            .field("anonymous_budget", &self.inner.anonymous.budget())
            .field("anonymous", &anonymous)
            .field("anonymous_bytes", &anonymous_bytes)
            .finish()
    }
}

/// An I/O error as the crate's error, with what was being done.
fn io_error(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::store(format!("filesystem store: cannot {what}"), e)
}

/// A record to create, prepared off the blocking pool.
struct New {
    bytes: Vec<u8>,
    user: Option<String>,
    /// What the anonymous budget counts of it; `None` if it has a user id.
    anonymous: Option<Anonymous>,
    expires: UnixTime,
}

impl Backend for FilesystemBackend {
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let (key, max) = (*key, self.max_record);
        self.run(move |inner| inner.read(&key, max))
    }

    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> StoreFuture<'a, bool> {
        let (key, max) = (*key, self.max_record);
        // Encoding is CPU work and needs no lock: done here, the blocking job gets bytes.
        let new = format::encode(&key, record, expires, max)
            .map_err(io_error("write a session this large"))
            .map(|bytes| New {
                bytes,
                user: record.user_id().map(str::to_owned),
                anonymous: Anonymous::of(record),
                expires,
            });
        self.run(move |inner| inner.create(&key, &new?, max))
    }

    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        let (key, max) = (*key, self.max_record);
        let (changes, from, now, expiry, previously_active) = (
            update.changes().clone(),
            update.from().clone(),
            update.now(),
            *update.expiry(),
            update.previously_active(),
        );
        self.run(move |inner| {
            let update = Update::new(&changes, &from, now, &expiry)
                .with_previously_active(previously_active);
            inner
                .update(&key, update, max)
                .map(|merged| merged.is_some())
        })
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool> {
        let (key, max, expiry) = (*key, self.max_record, *expiry);
        self.run(move |inner| inner.touch(&key, now, &expiry, max))
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let (key, max) = (*key, self.max_record);
        self.run(move |inner| inner.remove(&key, max))
    }

    fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
        let max = self.max_record;
        self.run(move |inner| inner.reap(now, limit, max))
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

impl UserIndex for FilesystemBackend {
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        let (user, key) = (user.to_owned(), *key);
        self.run(move |inner| inner.link(&user, &key))
    }

    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        let (user, key) = (user.to_owned(), *key);
        self.run(move |inner| inner.unlink(&user, &key))
    }

    fn user_keys<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StorageKey>> {
        let user = user.to_owned();
        self.run(move |inner| inner.user_keys(&user))
    }
}
