//! The session files themselves: the shard locks, reading and checking a file, writing one
//! through its temporary file, removing one that is no session.

use std::os::fd::AsFd as _;

use fastsession_core::Result;
use fastsession_core::events::{self, Event};
use fastsession_core::session::Record;
use fastsession_core::store::StorageKey;

use super::{Inner, io_error};
use crate::dir::{self, Found};
use crate::format;

/// How a key's temporary file is named: `<storage key>.tmp`.
pub(super) const TMP_SUFFIX: &str = ".tmp";

/// What a key's path holds.
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per read and unpacked at once; a box would cost an allocation"
)]
pub(super) enum Slot {
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

impl Inner {
    pub(super) fn lock(&self, key: &StorageKey) -> Result<dir::ShardLock> {
        dir::lock(self.dirs.locks.as_fd(), key).map_err(io_error("lock a session"))
    }

    /// Reads and decodes the file of `key`, reporting anything unusable.
    pub(super) fn load(&self, key: &StorageKey, name: &str, max: usize) -> Result<Slot> {
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
    pub(super) fn discard_key(&self, key: &StorageKey, name: &str) -> bool {
        self.anonymous.forget(key);
        self.discard(name)
    }

    pub(super) fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = format!("{name}{TMP_SUFFIX}");
        dir::write(self.dirs.sessions.as_fd(), name, &tmp, bytes)
            .map_err(io_error("write a session file"))
    }
}
