//! Reaping: deleting expired and unusable files, and the directory scans that bring the
//! index of anonymous sessions up to date.

use std::fmt;
use std::os::fd::AsFd as _;
use std::sync::PoisonError;

use fastsession_core::Result;
use fastsession_core::store::StorageKey;
use fastsession_core::time::UnixTime;

use super::files::{Slot, TMP_SUFFIX};
use super::{Inner, io_error};
use crate::anonymous::Anonymous;
use crate::dir::{self, Found};
use crate::format::{self, HEADER_LEN};

/// Logs a problem with one file that a reaper pass or an eviction skipped.
fn skipped(error: &dyn fmt::Display) {
    tracing::warn!(target: "fastsession", %error, "filesystem store: reaper skipped a file");
}

impl Inner {
    /// Deletes up to `limit` expired or unusable session files (expired anonymous sessions
    /// first), leftover temporary files, and links to sessions that are gone; brings the
    /// index of anonymous sessions up to date and evicts what is over the budget. Problems
    /// with single files are logged and skipped, so one bad entry cannot stop reaping.
    pub(super) fn reap(&self, now: UnixTime, limit: usize, max: usize) -> Result<usize> {
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
    pub(super) fn scan(&self, reap: Option<UnixTime>, limit: usize, max: usize) -> Result<usize> {
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
}
