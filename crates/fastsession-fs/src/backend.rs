//! [`FilesystemBackend`]: records as files, the [`Backend`] operations as locked
//! read-modify-write cycles.

use std::fmt;
use std::io;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use fastsession_core::events::{self, Event};
use fastsession_core::session::{Expiry, Record};
use fastsession_core::store::{
    AnonymousBudget, Backend, StorageKey, StoreFuture, Update, UserIndex,
};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error, Result};
use sha2::{Digest as _, Sha256};

use crate::anonymous::{Anonymous, Entry, Index};
use crate::dir::{self, Dirs, Found};
use crate::format::{self, HEADER_LEN};

/// The default for [`FilesystemBackend::with_max_record_size`]: 1 MiB per session file.
pub const DEFAULT_MAX_RECORD_SIZE: usize = 1 << 20;
/// How a key's temporary file is named: `<storage key>.tmp`.
const TMP_SUFFIX: &str = ".tmp";
/// Tries at linking a session to a user when the reaper keeps removing the user's emptied
/// directory in between (each try that loses that race is one reaper pass).
const LINK_ATTEMPTS: usize = 8;
/// The most anonymous sessions one write evicts, so that the work of a request stays bounded
/// whatever it finds; a complete reaper pass evicts the rest.
const EVICTIONS_PER_WRITE: usize = 16;

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

    /// The budget of the anonymous sessions.
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

    /// The size limit of a session file.
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

    /// The directory given to [`open`](Self::open).
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

/// What a key's path holds.
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per read and unpacked at once; a box would cost an allocation"
)]
enum Slot {
    Missing,
    /// Something that is not a valid session file; already reported.
    Junk,
    Record(format::Header, Record),
}

/// Reports a file that is not a session; the request gets a fresh session. Never the content.
///
/// Counted, and summarised at most once per interval: a client can send the cookie of such a
/// file on every request. The event of each occurrence is at `DEBUG`.
fn ignored(key: &StorageKey, reason: &'static str, detail: &'static str) {
    events::record(Event::UnreadableRecord);
    tracing::debug!(
        target: "fastsession::security",
        reason,
        detail,
        key = ?key,
        "filesystem store: session file ignored; the request gets a fresh session"
    );
}

/// Logs a problem with one file that a reaper pass or an eviction skipped.
fn skipped(error: &dyn fmt::Display) {
    tracing::warn!(target: "fastsession", %error, "filesystem store: reaper skipped a file");
}

/// A record to create, prepared off the blocking pool.
struct New {
    bytes: Vec<u8>,
    user: Option<String>,
    /// What the anonymous budget counts of it; `None` if it has a user id.
    anonymous: Option<Anonymous>,
    expires: UnixTime,
}

fn user_dir_name(user: &str) -> String {
    let digest = Sha256::digest(user.as_bytes());
    StorageKey::from_bytes(digest.into()).to_hex()
}

impl Inner {
    fn lock(&self, key: &StorageKey) -> Result<dir::ShardLock> {
        dir::lock(self.dirs.locks.as_fd(), key).map_err(io_error("lock a session"))
    }

    /// Reads and decodes the file of `key`, reporting anything unusable.
    fn load(&self, key: &StorageKey, name: &str, max: usize) -> Result<Slot> {
        let found = dir::read(self.dirs.sessions.as_fd(), name, self.dirs.owner, max)
            .map_err(io_error("read a session file"))?;
        Ok(match found {
            Found::Missing => Slot::Missing,
            Found::Untrusted(detail) => {
                ignored(key, "untrusted", detail);
                Slot::Junk
            }
            Found::File(bytes) if bytes.len() > max => {
                ignored(key, "corrupt", format::Corrupt::Oversized.as_str());
                Slot::Junk
            }
            Found::File(bytes) => match format::decode(key, &bytes) {
                Ok((header, record)) => Slot::Record(header, record),
                Err(why) => {
                    ignored(key, "corrupt", why.as_str());
                    Slot::Junk
                }
            },
        })
    }

    /// Removes a file that no longer counts (expired, corrupt), under the key's lock. Failing
    /// is not an error of the request: the file is never returned as a session, and the
    /// reaper tries again.
    fn discard(&self, name: &str) -> bool {
        match dir::remove(self.dirs.sessions.as_fd(), name) {
            Ok(removed) => removed,
            Err(error) => {
                tracing::warn!(target: "fastsession", %error, "filesystem store: cannot remove an unusable session file");
                false
            }
        }
    }

    /// [`discard`](Self::discard), and out of the index: whether or not the file could be
    /// removed, it is no session and never counts.
    fn discard_key(&self, key: &StorageKey, name: &str) -> bool {
        self.anonymous.forget(key);
        self.discard(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = format!("{name}{TMP_SUFFIX}");
        dir::write(self.dirs.sessions.as_fd(), name, &tmp, bytes)
            .map_err(io_error("write a session file"))
    }

    fn read(&self, key: &StorageKey, max: usize) -> Result<Option<Record>> {
        Ok(match self.load(key, &key.to_hex(), max)? {
            Slot::Record(_, record) => Some(record),
            Slot::Missing | Slot::Junk => None,
        })
    }

    /// Creates the file of `key` unless something is there. `anonymous` is what the budget
    /// counts of the record, if it has no user id; room is made for it first.
    fn create(&self, key: &StorageKey, new: &New, max: usize) -> Result<bool> {
        // Counted before the evictions, so that concurrent creates in this process each
        // make room for their own session rather than all taking the same free place.
        let reserved = new
            .anonymous
            .is_some_and(|session| self.anonymous.reserve(key, session, new.expires));
        if reserved {
            // Before taking this key's lock: an eviction takes the victim's, and holding two
            // shard locks at once could deadlock with another process doing the same.
            self.make_room(Some(key), EVICTIONS_PER_WRITE, max);
        }
        let created = self.create_locked(key, new);
        if reserved && !matches!(created, Ok(true)) {
            self.anonymous.cancel(key);
        }
        created
    }

    fn create_locked(&self, key: &StorageKey, new: &New) -> Result<bool> {
        let name = key.to_hex();
        let _lock = self.lock(key)?;
        // Anything at the path, even junk, makes the key taken: a create never overwrites.
        if dir::exists(self.dirs.sessions.as_fd(), &name)
            .map_err(io_error("look up a session file"))?
        {
            return Ok(false);
        }
        // Link first: a crash in between leaves a stale link (harmless, readers check the
        // record), never a session that "log out everywhere" cannot find.
        if let Some(user) = &new.user {
            self.link(user, key)?;
        }
        self.write(&name, &new.bytes)?;
        self.anonymous.note(
            key,
            format::version_of(&new.bytes),
            new.anonymous,
            new.expires,
        );
        Ok(true)
    }

    fn update(&self, key: &StorageKey, update: Update<'_>, max: usize) -> Result<Option<Record>> {
        let merged = self.update_locked(key, update, max)?;
        // An anonymous session that grew, or lost its user, may have put the budget over:
        // the others make room, never this one (the request just saved it).
        if merged.as_ref().is_some_and(|r| r.user_id().is_none()) {
            self.make_room(Some(key), EVICTIONS_PER_WRITE, max);
        }
        Ok(merged)
    }

    fn update_locked(
        &self,
        key: &StorageKey,
        update: Update<'_>,
        max: usize,
    ) -> Result<Option<Record>> {
        let name = key.to_hex();
        let _lock = self.lock(key)?;
        let stored = match self.load(key, &name, max)? {
            Slot::Record(_, record) => record,
            Slot::Missing => return Ok(None),
            Slot::Junk => {
                self.discard_key(key, &name);
                return Ok(None);
            }
        };
        let old_user = stored.user_id().map(str::to_owned);
        let Some(merged) = update.apply_to(stored) else {
            self.discard_key(key, &name);
            return Ok(None);
        };
        // The deadline of the merged record's class: a session that gained a user keeps the
        // longer idle timeout, one that lost it the anonymous one.
        let expires = update.expiry().deadline(&merged);
        let bytes = format::encode(key, &merged, expires, max)
            .map_err(io_error("write a session this large"))?;
        if let Some(user) = merged.user_id()
            && old_user.as_deref() != Some(user)
        {
            self.link(user, key)?;
        }
        self.write(&name, &bytes)?;
        self.anonymous.note(
            key,
            format::version_of(&bytes),
            Anonymous::of(&merged),
            expires,
        );
        Ok(Some(merged))
    }

    fn touch(&self, key: &StorageKey, now: UnixTime, expiry: &Expiry, max: usize) -> Result<bool> {
        let name = key.to_hex();
        let _lock = self.lock(key)?;
        let mut record = match self.load(key, &name, max)? {
            Slot::Record(_, record) => record,
            Slot::Missing => return Ok(false),
            Slot::Junk => {
                self.discard_key(key, &name);
                return Ok(false);
            }
        };
        if expiry.check(&record, now).is_err() {
            self.discard_key(key, &name);
            return Ok(false);
        }
        // The record just read under the lock, with only its activity time changed: a touch
        // cannot overwrite data another request saved.
        record.set_last_active(record.last_active().max(now));
        let expires = expiry.deadline(&record);
        let bytes = format::encode(key, &record, expires, max)
            .map_err(io_error("write a session this large"))?;
        self.write(&name, &bytes)?;
        // Now the most recently active: last in the eviction order.
        self.anonymous.note(
            key,
            format::version_of(&bytes),
            Anonymous::of(&record),
            expires,
        );
        Ok(true)
    }

    fn remove(&self, key: &StorageKey, max: usize) -> Result<Option<Record>> {
        let name = key.to_hex();
        let _lock = self.lock(key)?;
        let slot = self.load(key, &name, max)?;
        if matches!(slot, Slot::Missing) {
            self.anonymous.forget(key);
            return Ok(None);
        }
        let sessions = self.dirs.sessions.as_fd();
        dir::remove(sessions, &name).map_err(io_error("delete a session file"))?;
        self.anonymous.forget(key);
        // Durable before the caller reports the session ended: a power cut must not bring
        // back a logged-out session.
        dir::sync_dir(sessions).map_err(io_error("sync the session directory"))?;
        let Slot::Record(_, record) = slot else {
            return Ok(None);
        };
        if let Some(user) = record.user_id() {
            self.unlink(user, key)?;
        }
        Ok(Some(record))
    }

    /// Evicts least recently active anonymous sessions (never `except`) while the budget is
    /// exceeded, at most `attempts` of them. Failing to evict one is logged, not an error of
    /// the request: the session it makes room for is not at fault.
    fn make_room(&self, except: Option<&StorageKey>, attempts: usize, max: usize) {
        for _ in 0..attempts {
            let Some((victim, entry)) = self.anonymous.victim(except) else {
                return;
            };
            if let Err(error) = self.evict(&victim, &entry, max) {
                // Left out of the index until the next complete scan finds it again, so that
                // one file that cannot be removed does not stop every later eviction.
                tracing::warn!(target: "fastsession", %error, "filesystem store: cannot evict an anonymous session");
            }
        }
    }

    /// Deletes the file of `key`, taken from the index as the least recently active
    /// anonymous session, if it still is one: it is checked again under its lock, since
    /// another process may have logged it in or used it since the index learnt of it.
    fn evict(&self, key: &StorageKey, entry: &Entry, max: usize) -> Result<()> {
        let name = key.to_hex();
        let _lock = self.lock(key)?;
        match self.load(key, &name, max)? {
            Slot::Missing => self.anonymous.forget(key),
            Slot::Junk => {
                self.discard_key(key, &name);
            }
            Slot::Record(header, record) => match Anonymous::of(&record) {
                Some(now) if now.last_active <= entry.session.last_active => {
                    dir::remove(self.dirs.sessions.as_fd(), &name)
                        .map_err(io_error("evict an anonymous session file"))?;
                    self.anonymous.forget(key);
                    events::record(Event::AnonymousEvicted);
                    tracing::debug!(
                        target: "fastsession::security",
                        key = ?key,
                        "filesystem store: anonymous sessions over their budget; evicted the least recently active"
                    );
                }
                // Logged in, or active again, since the index learnt of it: not a victim.
                // The index learns what it is now.
                session => {
                    self.anonymous
                        .note(key, header.version, session, header.expires);
                }
            },
        }
        Ok(())
    }

    fn link(&self, user: &str, key: &StorageKey) -> Result<()> {
        let users = self.dirs.users.as_fd();
        let dir_name = user_dir_name(user);
        let name = key.to_hex();
        for _ in 0..LINK_ATTEMPTS {
            let (dir, created) =
                dir::sub_dir(users, &dir_name).map_err(io_error("create a user directory"))?;
            if created {
                dir::sync_dir(users).map_err(io_error("sync the user directory"))?;
            }
            match dir::touch_new(dir.as_fd(), &name) {
                // Durable: "log out everywhere" must find every session after a crash too.
                Ok(true) => return dir::sync_dir(&dir).map_err(io_error("sync a user directory")),
                Ok(false) => return Ok(()),
                // The reaper removed the (then empty) directory after we opened it: again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("link a session to its user")(e)),
            }
        }
        Err(io_error("link a session to its user")(io::Error::other(
            "user directory kept disappearing",
        )))
    }

    fn unlink(&self, user: &str, key: &StorageKey) -> Result<()> {
        let Some(dir) = dir::existing_sub_dir(self.dirs.users.as_fd(), &user_dir_name(user))
            .map_err(io_error("open a user directory"))?
        else {
            return Ok(());
        };
        // No sync: a link that comes back after a crash is stale, and readers check records.
        dir::remove(dir.as_fd(), &key.to_hex())
            .map_err(io_error("unlink a session from its user"))?;
        Ok(())
    }

    fn user_keys(&self, user: &str) -> Result<Vec<StorageKey>> {
        let Some(dir) = dir::existing_sub_dir(self.dirs.users.as_fd(), &user_dir_name(user))
            .map_err(io_error("open a user directory"))?
        else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        for name in dir::entries(dir.as_fd()).map_err(io_error("list a user directory"))? {
            let name = name.map_err(io_error("list a user directory"))?;
            keys.extend(StorageKey::from_hex(&name));
        }
        keys.sort_unstable();
        Ok(keys)
    }

    /// Deletes up to `limit` expired or unusable session files (expired anonymous sessions
    /// first), leftover temporary files, and links to sessions that are gone; brings the
    /// index of anonymous sessions up to date and evicts what is over the budget. Problems
    /// with single files are logged and skipped, so one bad entry cannot stop reaping.
    fn reap(&self, now: UnixTime, limit: usize, max: usize) -> Result<usize> {
        let _scanning = self.scanning.lock().unwrap_or_else(PoisonError::into_inner);
        let mut deleted = 0;
        // The index knows the expired anonymous sessions without a scan; each one deleted
        // frees room in the budget, so they go before anything the scan finds.
        for key in self.anonymous.due(now, limit) {
            match self.reap_one(&key, now, max) {
                Ok(reaped) => deleted += usize::from(reaped),
                Err(e) => skipped(&e),
            }
        }
        deleted += self.scan(Some(now), limit.saturating_sub(deleted), max)?;
        self.sweep_links(limit)?;
        Ok(deleted)
    }

    /// Lists every session file. Each one the index has not seen in its current version is
    /// read whole and learnt. With `reap = Some(now)`, also deletes up to `limit` files due at
    /// `now` and leftover temporary files; a scan that saw every file (one that reached no
    /// limit) then drops from the index what other processes deleted, and evicts what is
    /// over the budget. Returns how many session files it deleted.
    fn scan(&self, reap: Option<UnixTime>, limit: usize, max: usize) -> Result<usize> {
        let sessions = self.dirs.sessions.as_fd();
        let scan = self.anonymous.begin_scan();
        let (mut deleted, mut temps) = (0, 0);
        let mut complete = true;
        for name in dir::entries(sessions).map_err(io_error("list the session directory"))? {
            if reap.is_some() && deleted >= limit {
                complete = false;
                break;
            }
            let name = name.map_err(io_error("list the session directory"))?;
            if let Some(key) = name.strip_suffix(TMP_SUFFIX).and_then(StorageKey::from_hex) {
                // Writers hold the key's lock from creating the temporary file to renaming it,
                // so one seen under the lock is a crash's leftover.
                if reap.is_some() && temps < limit {
                    let _lock = self.lock(&key)?;
                    match dir::remove(sessions, &name) {
                        Ok(removed) => temps += usize::from(removed),
                        Err(e) => skipped(&e),
                    }
                }
                continue;
            }
            let Some(key) = StorageKey::from_hex(&name) else {
                continue;
            };
            // A cheap look at the header without the lock, to skip the live majority.
            let header = match dir::read(sessions, &name, self.dirs.owner, HEADER_LEN) {
                Ok(Found::File(head)) => format::decode_header(&head).ok(),
                Ok(Found::Untrusted(_)) => None,
                Ok(Found::Missing) => continue,
                Err(e) => {
                    skipped(&e);
                    continue;
                }
            };
            match (reap, header) {
                (Some(now), header) if header.is_none_or(|h| h.expires <= now) => {
                    match self.reap_one(&key, now, max) {
                        Ok(reaped) => deleted += usize::from(reaped),
                        Err(e) => skipped(&e),
                    }
                }
                (_, Some(header)) => self.refresh(&key, &name, &header, scan, max),
                // Not a session file: a request or the reaper deletes it when it meets it.
                (_, None) => {}
            }
        }
        if deleted > 0
            && let Err(e) = dir::sync_dir(sessions)
        {
            skipped(&e);
        }
        if complete {
            self.anonymous.end_scan(scan);
            // Up to date now: what other processes' sessions put over the budget goes too.
            if reap.is_some() {
                self.make_room(None, limit, max);
            }
        }
        Ok(deleted)
    }

    /// Deletes the file of `key` if it is unusable or due at `now`, checked under its lock
    /// (another process may have refreshed it since the caller looked); `true` if it did.
    fn reap_one(&self, key: &StorageKey, now: UnixTime, max: usize) -> Result<bool> {
        let name = key.to_hex();
        let _lock = self.lock(key)?;
        Ok(match self.load(key, &name, max)? {
            Slot::Missing => {
                self.anonymous.forget(key);
                false
            }
            Slot::Junk => self.discard_key(key, &name),
            Slot::Record(header, record) if header.expires <= now => {
                let reaped = self.discard_key(key, &name);
                if reaped
                    && let Some(user) = record.user_id()
                    && let Err(e) = self.unlink(user, key)
                {
                    skipped(&e);
                }
                reaped
            }
            Slot::Record(header, record) => {
                self.anonymous
                    .note(key, header.version, Anonymous::of(&record), header.expires);
                false
            }
        })
    }

    /// Tells the index that the scan `scan` saw the file `name` with `header`; if the index
    /// does not know that version, reads the file whole, under its lock so that what the
    /// index learns cannot be older than what a write of this process told it.
    fn refresh(
        &self,
        key: &StorageKey,
        name: &str,
        header: &format::Header,
        scan: u64,
        max: usize,
    ) {
        if !self.anonymous.seen(key, header.version, scan) {
            return;
        }
        let learn = || -> Result<()> {
            let _lock = self.lock(key)?;
            let found = dir::read(self.dirs.sessions.as_fd(), name, self.dirs.owner, max)
                .map_err(io_error("read a session file"))?;
            match found {
                Found::Missing => self.anonymous.forget(key),
                Found::File(bytes) if bytes.len() <= max => match format::decode(key, &bytes) {
                    Ok((read, record)) if record.user_id().is_some() => {
                        self.anonymous.settle(key, read.version);
                    }
                    Ok((read, record)) => {
                        self.anonymous.note(
                            key,
                            read.version,
                            Anonymous::of(&record),
                            read.expires,
                        );
                    }
                    // Not a session: it never counts (a request meeting it reports it).
                    Err(_) => self.anonymous.settle(key, header.version),
                },
                Found::File(_) | Found::Untrusted(_) => {
                    self.anonymous.settle(key, header.version);
                }
            }
            Ok(())
        };
        if let Err(e) = learn() {
            skipped(&e);
        }
    }

    /// Removes up to `limit` links to sessions that no longer exist, and emptied user
    /// directories.
    fn sweep_links(&self, limit: usize) -> Result<()> {
        let users = self.dirs.users.as_fd();
        let sessions = self.dirs.sessions.as_fd();
        let mut removed = 0;
        for user in dir::entries(users).map_err(io_error("list the user directory"))? {
            if removed >= limit {
                break;
            }
            let user = user.map_err(io_error("list the user directory"))?;
            let Some(dir) =
                dir::existing_sub_dir(users, &user).map_err(io_error("open a user directory"))?
            else {
                continue;
            };
            let mut kept = false;
            for link in dir::entries(dir.as_fd()).map_err(io_error("list a user directory"))? {
                let link = link.map_err(io_error("list a user directory"))?;
                let Some(key) = StorageKey::from_hex(&link) else {
                    kept = true;
                    continue;
                };
                let live =
                    || dir::exists(sessions, &link).map_err(io_error("look up a session file"));
                if removed >= limit || live()? {
                    kept = true;
                    continue;
                }
                // Under the key's lock, since a create links before it writes the session.
                let _lock = self.lock(&key)?;
                if live()? {
                    kept = true;
                    continue;
                }
                dir::remove(dir.as_fd(), &link).map_err(io_error("remove a stale user link"))?;
                removed += 1;
            }
            if !kept {
                // Fails harmlessly if a link was added meanwhile; `link` retries if it loses.
                dir::remove_empty_dir(users, &user).map_err(io_error("remove a user directory"))?;
            }
        }
        Ok(())
    }
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
