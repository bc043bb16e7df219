//! The record operations under the key's lock: read, create, update, touch and remove, each
//! a read-modify-write of the session file that keeps the anonymous index told.

use std::os::fd::AsFd as _;

use fastsession_core::Result;
use fastsession_core::session::{Expiry, Record};
use fastsession_core::store::{StorageKey, Update};
use fastsession_core::time::UnixTime;

use super::budget::EVICTIONS_PER_WRITE;
use super::files::Slot;
use super::{Inner, New, io_error};
use crate::anonymous::Anonymous;
use crate::dir;
use crate::format;

impl Inner {
    pub(super) fn read(&self, key: &StorageKey, max: usize) -> Result<Option<Record>> {
        Ok(match self.load(key, &key.to_hex(), max)? {
            Slot::Record(_, record) => Some(record),
            Slot::Missing | Slot::Junk => None,
        })
    }

    /// Creates the file of `key` unless something is there. `anonymous` is what the budget
    /// counts of the record, if it has no user id; room is made for it first.
    pub(super) fn create(&self, key: &StorageKey, new: &New, max: usize) -> Result<bool> {
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

    pub(super) fn update(
        &self,
        key: &StorageKey,
        update: Update<'_>,
        max: usize,
    ) -> Result<Option<Record>> {
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

    pub(super) fn touch(
        &self,
        key: &StorageKey,
        now: UnixTime,
        expiry: &Expiry,
        max: usize,
    ) -> Result<bool> {
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

    pub(super) fn remove(&self, key: &StorageKey, max: usize) -> Result<Option<Record>> {
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
}
