//! The anonymous session files this process knows of, least recently active first: what
//! keeps them within their [`AnonymousBudget`] without listing the directory per request.
//!
//! The index is rebuilt by a scan when the store opens and brought up to date by every
//! complete reaper pass; in between, this process's own writes keep it exact. What other
//! processes do in between (sessions they create, log in, use or delete) is missing from it,
//! so the count is approximate; who is evicted is not, since an eviction reads its victim
//! again under the victim's lock.
//!
//! No lock file or I/O is ever taken while the index's mutex is held: callers decide under
//! it, then do the I/O, then report back. They report what a file holds only while they hold
//! its shard lock, so that within this process the reports on one file come in the order of
//! its versions and a scan never overwrites a newer report with an older one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use fastsession_core::session::Record;
use fastsession_core::store::{AnonymousBudget, StorageKey};
use fastsession_core::time::UnixTime;

/// What the budget counts of an anonymous session: when it was last active (the eviction
/// order) and its data bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anonymous {
    pub(crate) last_active: UnixTime,
    pub(crate) len: usize,
}

impl Anonymous {
    /// What the budget counts of `record`; `None` if it has a user id (a logged-in session or
    /// the revocation marker of one), which the budget never counts nor evicts.
    pub(crate) fn of(record: &Record) -> Option<Self> {
        record.user_id().is_none().then(|| Anonymous {
            last_active: record.last_active(),
            len: record.data_len(),
        })
    }
}

/// One anonymous session file in the index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// The file version it was learnt from ([`Header::version`](crate::format::Header));
    /// `None` while this process is still creating the file (counted, never evicted).
    version: Option<u64>,
    pub(crate) session: Anonymous,
    expires: UnixTime,
    /// The last scan that saw the file, or during which this process wrote it.
    scan: u64,
}

/// The index (see the module documentation).
#[derive(Debug)]
pub(crate) struct Index {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    budget: AnonymousBudget,
    entries: HashMap<StorageKey, Entry>,
    /// The entries by last activity, least recent first: the eviction order.
    order: BTreeSet<(UnixTime, StorageKey)>,
    /// The data bytes of the entries.
    bytes: usize,
    /// Versions of files a scan found not to count (a user id, or unreadable), so that the
    /// next scan need not read them whole again. Only scans add to it (a write of this process
    /// would add one per request, without bound if no reaper ever runs), and each complete
    /// scan replaces it by what it saw, so versions of deleted files do not pile up.
    settled: HashSet<u64>,
    /// What the scan in progress found settled.
    settled_next: HashSet<u64>,
    /// How many versions the last complete scan found settled: scans that never complete
    /// (each stopped by its limit) may add to `settled` only up to a few times that.
    settled_last: usize,
    /// The number of the latest scan.
    scan: u64,
}

impl State {
    fn insert(&mut self, key: StorageKey, entry: Entry) {
        self.remove(&key);
        self.order.insert((entry.session.last_active, key));
        self.bytes = self.bytes.saturating_add(entry.session.len);
        self.entries.insert(key, entry);
    }

    fn remove(&mut self, key: &StorageKey) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&(entry.session.last_active, *key));
        self.bytes = self.bytes.saturating_sub(entry.session.len);
        Some(entry)
    }

    fn over_budget(&self) -> bool {
        self.entries.len() > self.budget.max_sessions() || self.bytes > self.budget.max_bytes()
    }
}

impl Index {
    pub(crate) fn new(budget: AnonymousBudget) -> Self {
        Index {
            state: Mutex::new(State {
                budget,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a panic elsewhere does not spoil it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn budget(&self) -> AnonymousBudget {
        self.lock().budget
    }

    pub(crate) fn set_budget(&self, budget: AnonymousBudget) {
        self.lock().budget = budget;
    }

    /// How many anonymous sessions and data bytes the index holds.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let state = self.lock();
        (state.entries.len(), state.bytes)
    }

    /// Counts a session this process is about to create, so that concurrent creates in this
    /// process see each other; `false` (nothing counted) if the key is already indexed, as
    /// then the create will find the key taken.
    pub(crate) fn reserve(&self, key: &StorageKey, session: Anonymous, expires: UnixTime) -> bool {
        let mut state = self.lock();
        if state.entries.contains_key(key) {
            return false;
        }
        let scan = state.scan;
        state.insert(
            *key,
            Entry {
                version: None,
                session,
                expires,
                scan,
            },
        );
        true
    }

    /// Withdraws a [`reserve`](Self::reserve) whose create did not happen.
    pub(crate) fn cancel(&self, key: &StorageKey) {
        let mut state = self.lock();
        if state.entries.get(key).is_some_and(|e| e.version.is_none()) {
            state.remove(key);
        }
    }

    /// Records what the file of `key` now holds, as this process just wrote or read it under
    /// the key's lock: version `version`, `session` if anonymous (`None` if it has a user id),
    /// deletable after `expires`.
    pub(crate) fn note(
        &self,
        key: &StorageKey,
        version: u64,
        session: Option<Anonymous>,
        expires: UnixTime,
    ) {
        let mut state = self.lock();
        match session {
            Some(session) => {
                let scan = state.scan;
                state.insert(
                    *key,
                    Entry {
                        version: Some(version),
                        session,
                        expires,
                        scan,
                    },
                );
            }
            None => {
                state.remove(key);
            }
        }
    }

    /// Records that the scan found the file of `key`, read whole under its lock at
    /// `version`, not to count: it has a user id, or is no session at all.
    pub(crate) fn settle(&self, key: &StorageKey, version: u64) {
        let mut state = self.lock();
        state.remove(key);
        state.settled.insert(version);
        state.settled_next.insert(version);
    }

    /// Drops the entry of a file that is gone.
    pub(crate) fn forget(&self, key: &StorageKey) {
        self.lock().remove(key);
    }

    /// If the anonymous sessions are over budget, takes the least recently active one out of
    /// the index (never `except`, never one still being created) for the caller to evict.
    pub(crate) fn victim(&self, except: Option<&StorageKey>) -> Option<(StorageKey, Entry)> {
        let mut state = self.lock();
        if !state.over_budget() {
            return None;
        }
        let key = state.order.iter().map(|(_, key)| *key).find(|key| {
            Some(key) != except && state.entries.get(key).is_some_and(|e| e.version.is_some())
        })?;
        let entry = state.remove(&key)?;
        Some((key, entry))
    }

    /// Up to `limit` anonymous sessions whose files may be deleted at `now`, least recently
    /// active first.
    pub(crate) fn due(&self, now: UnixTime, limit: usize) -> Vec<StorageKey> {
        let state = self.lock();
        state
            .order
            .iter()
            .filter(|(_, key)| {
                state
                    .entries
                    .get(key)
                    .is_some_and(|e| e.version.is_some() && e.expires <= now)
            })
            .map(|(_, key)| *key)
            .take(limit)
            .collect()
    }

    /// Starts a scan (callers run one at a time); returns its number.
    pub(crate) fn begin_scan(&self) -> u64 {
        let mut state = self.lock();
        state.scan += 1;
        state.settled_next.clear();
        // Scans that stop at their limit never replace the set: past a bound, it starts over
        // (the cost is reading those files whole once more).
        if state.settled.len() > state.settled_last.saturating_mul(3).max(1024) {
            state.settled.clear();
        }
        state.scan
    }

    /// The scan `scan` saw the file of `key` at `version`. `false` if the index knows that
    /// version; `true` if the caller must read the file (under its lock) and
    /// [`note`](Self::note) what it holds.
    pub(crate) fn seen(&self, key: &StorageKey, version: u64, scan: u64) -> bool {
        let mut state = self.lock();
        if let Some(entry) = state.entries.get_mut(key)
            && entry.version == Some(version)
        {
            entry.scan = entry.scan.max(scan);
            return false;
        }
        if state.settled.contains(&version) {
            state.settled_next.insert(version);
            return false;
        }
        true
    }

    /// Ends the scan `scan`, which listed every file: entries it did not see and this process
    /// did not write meanwhile are of files deleted by another process.
    pub(crate) fn end_scan(&self, scan: u64) {
        let mut state = self.lock();
        let gone: Vec<StorageKey> = state
            .entries
            .iter()
            .filter(|(_, e)| e.version.is_some() && e.scan < scan)
            .map(|(key, _)| *key)
            .collect();
        for key in &gone {
            state.remove(key);
        }
        state.settled = std::mem::take(&mut state.settled_next);
        state.settled_last = state.settled.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> StorageKey {
        StorageKey::from_bytes([b; 32])
    }

    fn anon(at: u64, len: usize) -> Option<Anonymous> {
        Some(Anonymous {
            last_active: UnixTime::from_secs(at),
            len,
        })
    }

    #[test]
    fn victims_are_the_least_recently_active_while_over_budget() {
        let index = Index::new(AnonymousBudget::new(2, 100));
        let never = UnixTime::from_secs(1000);
        index.note(&key(1), 1, anon(30, 10), never);
        index.note(&key(2), 2, anon(10, 10), never);
        assert!(index.victim(None).is_none(), "within budget");
        index.note(&key(3), 3, anon(20, 10), never);
        assert_eq!(index.victim(None).map(|(k, _)| k), Some(key(2)));
        assert!(index.victim(None).is_none());
        // Bytes count too; the session being written is spared.
        index.note(&key(1), 4, anon(30, 95), never);
        assert_eq!(index.victim(Some(&key(3))).map(|(k, _)| k), Some(key(1)));
        assert_eq!(index.usage(), (1, 10));
    }

    #[test]
    fn a_session_gaining_a_user_leaves_the_count_and_losing_it_joins() {
        let index = Index::new(AnonymousBudget::new(1, 100));
        let never = UnixTime::from_secs(1000);
        index.note(&key(1), 1, anon(10, 10), never);
        index.note(&key(2), 2, anon(20, 10), never);
        index.note(&key(1), 3, None, never);
        assert!(index.victim(None).is_none());
        index.settle(&key(2), 5);
        assert!(index.victim(None).is_none());
        index.note(&key(2), 6, anon(20, 10), never);
        index.note(&key(1), 4, anon(30, 10), never);
        assert_eq!(index.victim(None).map(|(k, _)| k), Some(key(2)));
    }

    #[test]
    fn reservations_count_but_are_never_victims() {
        let index = Index::new(AnonymousBudget::new(1, 100));
        let never = UnixTime::from_secs(1000);
        assert!(index.reserve(&key(1), anon(10, 1).unwrap(), never));
        assert!(!index.reserve(&key(1), anon(10, 1).unwrap(), never));
        assert!(index.reserve(&key(2), anon(20, 1).unwrap(), never));
        assert!(index.victim(None).is_none(), "both still being written");
        index.cancel(&key(2));
        assert_eq!(index.usage(), (1, 1));
    }

    #[test]
    fn a_complete_scan_drops_files_it_did_not_see_and_keeps_writes_made_during_it() {
        let index = Index::new(AnonymousBudget::default());
        let never = UnixTime::from_secs(1000);
        index.note(&key(1), 1, anon(10, 1), never);
        index.note(&key(2), 2, anon(10, 1), never);
        let scan = index.begin_scan();
        index.settle(&key(3), 3);
        index.end_scan(scan);
        index.note(&key(1), 1, anon(10, 1), never);
        index.note(&key(2), 2, anon(10, 1), never);
        let scan = index.begin_scan();
        assert!(!index.seen(&key(1), 1, scan), "known version");
        assert!(!index.seen(&key(3), 3, scan), "known settled version");
        assert!(index.seen(&key(4), 4, scan), "unknown: read it");
        index.note(&key(4), 4, anon(10, 1), never);
        index.note(&key(5), 5, anon(10, 1), never);
        index.end_scan(scan);
        assert_eq!(index.usage(), (3, 3), "1, 4 and 5; 2 is gone");
        let scan = index.begin_scan();
        assert!(!index.seen(&key(3), 3, scan), "still settled");
    }

    #[test]
    fn due_lists_expired_sessions_only() {
        let index = Index::new(AnonymousBudget::default());
        index.note(&key(1), 1, anon(10, 1), UnixTime::from_secs(50));
        index.note(&key(2), 2, anon(20, 1), UnixTime::from_secs(60));
        assert_eq!(index.due(UnixTime::from_secs(55), 10), [key(1)]);
        assert_eq!(index.due(UnixTime::from_secs(60), 1), [key(1)]);
    }
}
