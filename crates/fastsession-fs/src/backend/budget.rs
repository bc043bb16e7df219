//! The anonymous budget: evicting the least recently active anonymous sessions while it is
//! exceeded, each checked again under its lock.

use std::os::fd::AsFd as _;

use fastsession_core::Result;
use fastsession_core::events::{self, Event};
use fastsession_core::store::StorageKey;

use super::files::Slot;
use super::{Inner, io_error};
use crate::anonymous::{Anonymous, Entry};
use crate::dir;

/// The most anonymous sessions one write evicts, so that the work of a request stays bounded
/// whatever it finds; a complete reaper pass evicts the rest.
pub(super) const EVICTIONS_PER_WRITE: usize = 16;

impl Inner {
    /// Evicts least recently active anonymous sessions (never `except`) while the budget is
    /// exceeded, at most `attempts` of them. Failing to evict one is logged, not an error of
    /// the request: the session it makes room for is not at fault.
    pub(super) fn make_room(&self, except: Option<&StorageKey>, attempts: usize, max: usize) {
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
}
