//! The directory, reached only through file descriptors, and the few file operations the
//! backend needs.
//!
//! Every operation is relative to a directory descriptor opened once with `O_NOFOLLOW`
//! (`openat`, `renameat`, `unlinkat`), so replacing the directory path with a symlink after
//! [`Dirs::open`] changes nothing, and every file is opened with `O_NOFOLLOW`, so a symlink
//! planted at a session path is never followed.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use fastsession_core::store::StorageKey;
use fastsession_core::{Error, ErrorKind, Result};
use rustix::fs::{AtFlags, CWD, Dir, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use rustix::process::Uid;

/// Owner read/write (and search for directories) only. The umask can only take bits away, so
/// whatever it is, nothing is created more open than these.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
/// Subdirectory holding one file per session.
const SESSIONS: &str = "sessions";
/// Subdirectory holding the lock files: 256 for keys (`00` … `ff`), 256 for user directories
/// (`users-00` … `users-ff`).
const LOCKS: &str = "locks";
/// Subdirectory holding `<sha256(user)>/<storage key>` link files.
const USERS: &str = "users";

/// The store's directories, each an open descriptor.
#[derive(Debug)]
pub(crate) struct Dirs {
    pub(crate) sessions: OwnedFd,
    pub(crate) locks: OwnedFd,
    pub(crate) users: OwnedFd,
    /// Our effective user: files owned by anyone else are not trusted.
    pub(crate) owner: Uid,
}

impl Dirs {
    /// Opens (creating if needed) the store directory `path` and its subdirectories.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let owner = rustix::process::geteuid();
        let created = create_dir(path);
        let root = match open_dir(CWD, path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let e = created.err().unwrap_or(e);
                return Err(Error::store(
                    "filesystem store: cannot create the session directory",
                    e,
                ));
            }
            Err(e) => return Err(open_error(e, "the session directory")),
        };
        check_dir(&root, owner, "the session directory")?;
        let mut made = false;
        let mut sub = |name: &'static str| -> Result<OwnedFd> {
            match rustix::fs::mkdirat(&root, name, Mode::from_raw_mode(DIR_MODE)) {
                Ok(()) => made = true,
                Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(Error::store(
                        "filesystem store: cannot create a subdirectory",
                        io::Error::from(e),
                    ));
                }
            }
            let fd = open_dir(&root, name).map_err(|e| open_error(e, name))?;
            check_dir(&fd, owner, name)?;
            Ok(fd)
        };
        let dirs = Dirs {
            sessions: sub(SESSIONS)?,
            locks: sub(LOCKS)?,
            users: sub(USERS)?,
            owner,
        };
        if made {
            sync_dir(&root).map_err(|e| Error::store("filesystem store: cannot sync", e))?;
        }
        Ok(dirs)
    }
}

/// `mkdir -p` with mode 0700 for every directory it creates.
fn create_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

fn open_dir<Fd: AsFd>(at: Fd, name: impl rustix::path::Arg) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(at, name, flags, Mode::empty())?)
}

/// A failure to open a directory: a symlink or a non-directory is a configuration error, not an
/// I/O failure.
fn open_error(e: io::Error, what: &str) -> Error {
    match Errno::from_io_error(&e) {
        Some(Errno::LOOP | Errno::NOTDIR) => Error::new(
            ErrorKind::InvalidConfig,
            format!("filesystem store: {what} is a symlink or not a directory; refusing to use it"),
        )
        .with_source(e),
        _ => Error::store(format!("filesystem store: cannot open {what}"), e),
    }
}

/// Refuses a directory someone else owns or that grants group or others any access.
///
/// Nothing is ever chmod-ed: the directory may be the administrator's, and quietly changing
/// its mode (think of `/tmp` given by mistake to a process running as root) would be worse
/// than refusing.
fn check_dir(fd: &OwnedFd, owner: Uid, what: &str) -> Result<()> {
    let stat = rustix::fs::fstat(fd).map_err(|e| {
        Error::store(
            "filesystem store: cannot stat a directory",
            io::Error::from(e),
        )
    })?;
    if stat.st_uid != owner.as_raw() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "filesystem store: {what} is owned by uid {}, not by this process (uid {})",
                stat.st_uid,
                owner.as_raw()
            ),
        ));
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "filesystem store: {what} has mode {mode:o}; other users could reach the \
                 sessions (run `chmod 700` on it)"
            ),
        ));
    }
    Ok(())
}

/// What is at a path, read without following a symlink.
#[derive(Debug)]
pub(crate) enum Found {
    /// Nothing.
    Missing,
    /// A regular file of ours, with its first bytes (all of them up to the limit).
    File(Vec<u8>),
    /// Something that is not a file this store wrote; the reason, for the event.
    Untrusted(&'static str),
}

/// Reads the file `name` in `dir`, at most `limit + 1` bytes of it (so that the caller can
/// tell a file longer than `limit`).
pub(crate) fn read(dir: BorrowedFd<'_>, name: &str, owner: Uid, limit: usize) -> io::Result<Found> {
    // O_NONBLOCK: a FIFO planted at the path would otherwise block the open forever.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Found::Missing),
        Err(Errno::LOOP) => return Ok(Found::Untrusted("symlink")),
        Err(e) => return Err(e.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Ok(Found::Untrusted("not a regular file"));
    }
    if stat.st_uid != owner.as_raw() {
        return Ok(Found::Untrusted("owned by another user"));
    }
    let size = usize::try_from(stat.st_size).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(size.min(limit).saturating_add(1));
    File::from(fd)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(Found::File(bytes))
}

/// `true` if anything (file, symlink, directory…) is at `name`.
pub(crate) fn exists(dir: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Replaces `name` with `bytes` so that a crash at any point leaves either the old or the new
/// content under `name`, and the new content is on disk when this returns.
///
/// The caller holds the key's lock, so `tmp` (a name per key) has no other writer: anything
/// found there is a leftover of a crash, or a planted symlink, and is removed first (unlink
/// removes a symlink itself, never its target).
pub(crate) fn write(dir: BorrowedFd<'_>, name: &str, tmp: &str, bytes: &[u8]) -> io::Result<()> {
    remove(dir, tmp)?;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, tmp, flags, Mode::from_raw_mode(FILE_MODE))?;
    let written = (|| {
        let mut file = File::from(fd);
        file.write_all(bytes)?;
        // Data (and size) on disk before the rename makes it visible…
        file.sync_data()?;
        rustix::fs::renameat(dir, tmp, dir, name)?;
        // …and the rename itself on disk before the caller reports success.
        sync_dir(dir)
    })();
    if written.is_err() {
        // Best effort: the old file is untouched either way, and a leftover is removed by the
        // next write of this key or by the reaper.
        let _ = remove(dir, tmp);
    }
    written
}

/// Removes `name` (a file or symlink, never a symlink's target); `false` if nothing was there.
pub(crate) fn remove(dir: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes the empty directory `name`; `false` if it is missing or not empty.
pub(crate) fn remove_empty_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes creations, renames and removals in `dir` durable.
pub(crate) fn sync_dir<Fd: AsFd>(dir: Fd) -> io::Result<()> {
    Ok(rustix::fs::fsync(dir)?)
}

/// Opens (creating if needed) the subdirectory `name` of `dir`; `true` if it was created.
pub(crate) fn sub_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<(OwnedFd, bool)> {
    let created = match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(DIR_MODE)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(e.into()),
    };
    Ok((open_dir(dir, name)?, created))
}

/// Opens the existing subdirectory `name` of `dir`, `None` if there is none.
pub(crate) fn existing_sub_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<OwnedFd>> {
    match open_dir(dir, name) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the empty file `name` in `dir`; `false` if something was already there.
pub(crate) fn touch_new(dir: BorrowedFd<'_>, name: &str) -> io::Result<bool> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(FILE_MODE)) {
        Ok(_) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The names in `dir`, one at a time (`.` and `..` and non-UTF-8 names skipped).
pub(crate) fn entries(dir: BorrowedFd<'_>) -> io::Result<Entries> {
    Ok(Entries(Dir::read_from(dir)?))
}

/// An iterator over a directory's names.
pub(crate) struct Entries(Dir);

impl Iterator for Entries {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.0.read()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e.into())),
            };
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name != "." && name != ".." {
                return Some(Ok(name.to_owned()));
            }
        }
    }
}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entries { .. }")
    }
}

/// An exclusive lock on one of 256 shards of the key space, held until dropped; it excludes
/// other threads and other processes alike (`flock` locks belong to the open file, and each
/// acquisition opens the file anew).
#[derive(Debug)]
pub(crate) struct ShardLock {
    /// Closing the descriptor releases the lock.
    _fd: OwnedFd,
}

/// Takes the lock of `key`'s shard, waiting as long as it takes.
pub(crate) fn lock(locks: BorrowedFd<'_>, key: &StorageKey) -> io::Result<ShardLock> {
    lock_file(locks, &format!("{:02x}", key.as_bytes()[0]))
}

/// Takes the lock of the shard of users whose directory is `user_dir` (a hex name): held
/// while a link is made in that directory and while the reaper removes it as empty, so that
/// a directory is never removed between its creation and its first link.
pub(crate) fn lock_user_dir(locks: BorrowedFd<'_>, user_dir: &str) -> io::Result<ShardLock> {
    let shard = user_dir.get(..2).unwrap_or(user_dir);
    lock_file(locks, &format!("users-{shard}"))
}

fn lock_file(locks: BorrowedFd<'_>, name: &str) -> io::Result<ShardLock> {
    // Read-only is enough for flock, and keeps locking working on a read-only mount where
    // reads must go on.
    let flags = OFlags::RDONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(locks, name, flags, Mode::from_raw_mode(FILE_MODE))?;
    loop {
        match rustix::fs::flock(&fd, FlockOperation::LockExclusive) {
            Ok(()) => return Ok(ShardLock { _fd: fd }),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
