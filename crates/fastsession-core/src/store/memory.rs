//! Sessions in this process's memory.

use std::collections::{BTreeSet, HashMap, HashSet};

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::StoreFuture;
use super::budget::AnonymousBudget;
use super::{Backend, ServerStore, StorageKey, Update, UserIndex};
use crate::codec::IdHasher;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{self, Event};
use crate::session::{Expiry, Record};
use crate::time::UnixTime;

/// The default bound on the number of sessions with a user id (and revocation markers) a
/// [`MemoryStore`] holds.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// Expired records a write deletes on its way, so that memory is reclaimed without a timer.
const REAP_PER_WRITE: usize = 8;

/// A server-side store in this process's memory: fast, bounded, lost on restart and not shared
/// between processes.
///
/// # Bounds
///
/// Sessions without a user id live in their [`AnonymousBudget`] (by default as many as
/// [`max_sessions`](MemoryBackend::max_sessions), 64 MiB of data): a new one that finds it
/// full evicts the anonymous session closest to its deadline: the least recently active one,
/// unless another's absolute lifetime ends sooner. Sessions with a user id and
/// revocation markers are never evicted: at most `max_sessions` of them are held, and a save
/// that would need one more fails with [`ErrorKind::StoreFull`] (an anonymous flood can
/// therefore never log anybody out, nor make a logout forgotten). Every write first deletes a
/// few expired records (its built-in reaper; [`ServerStore::reap`] deletes more on demand).
/// Evictions and refusals are counted in [`events`] and logged at most once per interval.
///
/// # Examples
///
/// ```
/// use fastsession::MemoryStore;
///
/// let store = MemoryStore::with_max_sessions(10_000)?;
/// assert_eq!(store.backend().len(), 0);
/// # Ok::<(), fastsession::Error>(())
/// ```
pub type MemoryStore = ServerStore<MemoryBackend>;

impl ServerStore<MemoryBackend> {
    /// Returns a memory store bounded at [`DEFAULT_MAX_SESSIONS`], with a random id-hashing key.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`] if the OS random number generator fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    ///
    /// // One process, sessions lost at restart: tests, prototypes, a single server.
    /// let store = MemoryStore::new()?;
    /// assert!(store.backend().is_empty());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn new() -> Result<Self> {
        MemoryStore::with_max_sessions(DEFAULT_MAX_SESSIONS)
    }

    /// Returns a memory store holding at most `max_sessions` sessions with a user id and as many
    /// anonymous ones (each bound at least one).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    ///
    /// let store = MemoryStore::with_max_sessions(10_000)?;
    /// assert_eq!(store.backend().max_sessions(), 10_000);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_max_sessions(max_sessions: usize) -> Result<Self> {
        Ok(ServerStore::with_backend(
            MemoryBackend::new(max_sessions),
            IdHasher::random()?,
        ))
    }

    /// Returns this store with `budget` for its anonymous sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{AnonymousBudget, MemoryStore};
    ///
    /// // At most 1 000 sessions without a user id, 1 MiB of their data; a flood of
    /// // anonymous requests evicts the least recently used of them, never a logged-in user.
    /// let store = MemoryStore::new()?.with_anonymous_budget(AnonymousBudget::new(1_000, 1 << 20));
    /// assert_eq!(store.backend().anonymous_budget().max_sessions(), 1_000);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_anonymous_budget(self, budget: AnonymousBudget) -> Self {
        self.map_backend(|backend| backend.with_anonymous_budget(budget))
    }
}

/// The records of a [`MemoryStore`].
pub struct MemoryBackend {
    max_sessions: usize,
    budget: AnonymousBudget,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<StorageKey, Slot, StorageKeyHash>,
    /// The records with a user id and the markers, by expiry time, for reaping.
    protected: BTreeSet<(UnixTime, StorageKey)>,
    /// The anonymous records by expiry time: the reaping and the eviction order. An
    /// anonymous record's deadline is its last activity plus the anonymous idle timeout
    /// unless its absolute lifetime ends sooner, so this is least recently active first,
    /// but for sessions about to end anyway; one set per record keeps each write to the
    /// set operations it had before there was a budget.
    anonymous: BTreeSet<(UnixTime, StorageKey)>,
    /// The data bytes of the anonymous records.
    anonymous_bytes: usize,
    users: HashMap<String, HashSet<StorageKey, StorageKeyHash>>,
}

struct Slot {
    record: Record,
    expires: UnixTime,
    /// The record's data bytes if it is anonymous (counted in the budget), else `None`.
    anonymous_len: Option<usize>,
}

/// Which pool a record belongs to: sessions without a user id are anonymous.
fn anonymous_len(record: &Record) -> Option<usize> {
    record.user_id().is_none().then(|| record.data_len())
}

impl MemoryBackend {
    /// Returns an empty backend holding at most `max_sessions` records with a user id (revocation
    /// markers included) and as many anonymous ones (each bound at least one).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::codec::IdHasher;
    /// use fastsession::store::{MemoryBackend, ServerStore};
    ///
    /// // What `MemoryStore::with_max_sessions(1_000)` builds, spelled out.
    /// let store = ServerStore::with_backend(MemoryBackend::new(1_000), IdHasher::random()?);
    /// assert_eq!(store.backend().max_sessions(), 1_000);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(max_sessions: usize) -> Self {
        let max_sessions = max_sessions.max(1);
        MemoryBackend {
            max_sessions,
            budget: AnonymousBudget::new(max_sessions, AnonymousBudget::default().max_bytes()),
            state: Mutex::default(),
        }
    }

    /// Returns this backend with `budget` for its anonymous sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{AnonymousBudget, MemoryBackend};
    ///
    /// let backend = MemoryBackend::new(1_000).with_anonymous_budget(AnonymousBudget::new(500, 1 << 20));
    /// assert_eq!(backend.anonymous_budget().max_sessions(), 500);
    /// ```
    #[must_use]
    pub fn with_anonymous_budget(mut self, budget: AnonymousBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Returns the bound on the number of records with a user id, revocation markers included.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{AnonymousBudget, MemoryStore};
    ///
    /// assert_eq!(MemoryStore::with_max_sessions(50)?.backend().max_sessions(), 50);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Returns the budget of the anonymous sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{AnonymousBudget, MemoryStore};
    ///
    /// let budget = MemoryStore::with_max_sessions(50)?.backend().anonymous_budget();
    /// assert_eq!(budget.max_sessions(), 50);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn anonymous_budget(&self) -> AnonymousBudget {
        self.budget
    }

    /// Returns how many records are held, expired ones not yet reaped included.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{AnonymousBudget, MemoryStore};
    ///
    /// assert_eq!(MemoryStore::new()?.backend().len(), 0);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Returns `true` if no record is held.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{AnonymousBudget, MemoryStore};
    ///
    /// assert!(MemoryStore::new()?.backend().is_empty());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().records.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for `record` under `key` (not held now), or says why there is none.
    ///
    /// An anonymous record always gets in, evicting the others closest to their deadline (one
    /// alone over the byte budget evicts them all: a store's bound on one session keeps that
    /// far smaller). A record with a user id gets in only below the bound.
    fn make_room(&self, state: &mut State, key: &StorageKey, len: Option<usize>) -> Result<()> {
        match len {
            Some(len) => {
                while state.anonymous.len() >= self.budget.max_sessions()
                    || state.anonymous_bytes.saturating_add(len) > self.budget.max_bytes()
                {
                    let Some(&(_, victim)) = state.anonymous.iter().find(|(_, k)| k != key) else {
                        break;
                    };
                    if let Some(evicted) = state.remove(&victim) {
                        state.unlink(&evicted, &victim);
                    }
                    events::record(Event::AnonymousEvicted);
                }
                Ok(())
            }
            None if state.protected_len() >= self.max_sessions => Err(full()),
            None => Ok(()),
        }
    }
}

fn full() -> Error {
    events::record(Event::StoreFull);
    Error::new(
        ErrorKind::StoreFull,
        "memory store full of sessions with a user id and revocation markers",
    )
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("len", &self.len())
            .field("max_sessions", &self.max_sessions)
            .field("anonymous_budget", &self.budget)
            .finish()
    }
}

impl State {
    /// How many records are outside the anonymous budget.
    fn protected_len(&self) -> usize {
        self.protected.len()
    }

    fn insert(&mut self, key: StorageKey, record: Record, expires: UnixTime) {
        let len = anonymous_len(&record);
        self.insert_sized(key, record, expires, len);
    }

    /// [`insert`](Self::insert) of a record whose [`anonymous_len`] is known.
    fn insert_sized(
        &mut self,
        key: StorageKey,
        record: Record,
        expires: UnixTime,
        anonymous_len: Option<usize>,
    ) {
        self.remove(&key);
        match anonymous_len {
            Some(len) => {
                self.anonymous.insert((expires, key));
                self.anonymous_bytes += len;
            }
            None => {
                self.protected.insert((expires, key));
            }
        }
        self.records.insert(
            key,
            Slot {
                record,
                expires,
                anonymous_len,
            },
        );
    }

    fn remove(&mut self, key: &StorageKey) -> Option<Record> {
        let slot = self.records.remove(key)?;
        match slot.anonymous_len {
            Some(len) => {
                self.anonymous.remove(&(slot.expires, *key));
                self.anonymous_bytes -= len;
            }
            None => {
                self.protected.remove(&(slot.expires, *key));
            }
        }
        Some(slot.record)
    }

    /// Deletes up to `limit` records due at `now`, anonymous ones first.
    fn reap(&mut self, now: UnixTime, limit: usize) -> usize {
        let due = |set: &BTreeSet<(UnixTime, StorageKey)>| {
            // Most writes find nothing due: the first entry tells without an iterator.
            if set.first().is_none_or(|(expires, _)| *expires > now) {
                return Vec::new();
            }
            set.iter()
                .take_while(|(expires, _)| *expires <= now)
                .map(|(_, key)| *key)
                .take(limit)
                .collect::<Vec<_>>()
        };
        let mut keys = due(&self.anonymous);
        if keys.len() < limit {
            let more = due(&self.protected);
            keys.extend(more.into_iter().take(limit - keys.len()));
        }
        for key in &keys {
            if let Some(record) = self.remove(key) {
                self.unlink(&record, key);
            }
        }
        keys.len()
    }

    fn unlink(&mut self, record: &Record, key: &StorageKey) {
        if let Some(user) = record.user_id()
            && let Some(keys) = self.users.get_mut(user)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.users.remove(user);
            }
        }
    }
}

impl Backend for MemoryBackend {
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let record = self.lock().records.get(key).map(|slot| slot.record.clone());
        StoreFuture::ready(Ok(record))
    }

    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> StoreFuture<'a, bool> {
        let mut state = self.lock();
        let created = if state.records.contains_key(key) {
            Ok(false)
        } else {
            state.reap(record.last_active(), REAP_PER_WRITE);
            let len = anonymous_len(record);
            self.make_room(&mut state, key, len).map(|()| {
                state.insert_sized(*key, record.clone(), expires, len);
                true
            })
        };
        StoreFuture::ready(created)
    }

    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        let mut state = self.lock();
        state.reap(update.now(), REAP_PER_WRITE);
        // A login without a new id moves an anonymous session out of the budget: refused,
        // with nothing changed, when there is no room.
        let gains_user = update.changes().user_changed() && update.from().user_id().is_some();
        if gains_user
            && state
                .records
                .get(key)
                .is_some_and(|s| s.anonymous_len.is_some())
            && state.protected_len() >= self.max_sessions
        {
            return StoreFuture::ready(Err(full()));
        }
        // Merged in place. Most updates keep the record's deadline and counted bytes: then
        // the indexes stay as they are.
        if let Some(slot) = state.records.get_mut(key) {
            let stored = std::mem::replace(&mut slot.record, Record::new(UnixTime::EPOCH));
            match update.apply_to(stored) {
                Some(record)
                    if anonymous_len(&record) == slot.anonymous_len
                        && update.expiry().deadline(&record) == slot.expires =>
                {
                    slot.record = record;
                    return StoreFuture::ready(Ok(true));
                }
                Some(record) => slot.record = record,
                // Expired: the placeholder goes with the slot below.
                None => {
                    state.remove(key);
                    return StoreFuture::ready(Ok(false));
                }
            }
        }
        // Otherwise taken out, and put back under its new deadline and size.
        let merged = state.remove(key);
        let live = merged.is_some();
        if let Some(record) = merged {
            // Cannot fail: the record is anonymous, or had a place outside the budget, or
            // one was checked for above.
            let len = anonymous_len(&record);
            let _ = self.make_room(&mut state, key, len);
            let deadline = update.expiry().deadline(&record);
            state.insert_sized(*key, record, deadline, len);
        }
        StoreFuture::ready(Ok(live))
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool> {
        let mut state = self.lock();
        let live = match state.records.get(key) {
            Some(slot) => expiry.check(&slot.record, now).is_ok(),
            None => false,
        };
        let record = state.remove(key);
        if let (Some(mut record), true) = (record, live) {
            record.set_last_active(record.last_active().max(now));
            let deadline = expiry.deadline(&record);
            state.insert(*key, record, deadline);
        }
        StoreFuture::ready(Ok(live))
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let mut state = self.lock();
        let record = state.remove(key);
        if let Some(record) = &record {
            state.unlink(record, key);
        }
        StoreFuture::ready(Ok(record))
    }

    fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
        StoreFuture::ready(Ok(self.lock().reap(now, limit)))
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

impl UserIndex for MemoryBackend {
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        self.lock()
            .users
            .entry(user.to_owned())
            .or_default()
            .insert(*key);
        StoreFuture::ready(Ok(()))
    }

    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        let mut state = self.lock();
        if let Some(keys) = state.users.get_mut(user) {
            keys.remove(key);
            if keys.is_empty() {
                state.users.remove(user);
            }
        }
        StoreFuture::ready(Ok(()))
    }

    fn user_keys<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StorageKey>> {
        let keys = self
            .lock()
            .users
            .get(user)
            .map(|k| k.iter().copied().collect())
            .unwrap_or_default();
        StoreFuture::ready(Ok(keys))
    }
}

/// A [`BuildHasher`](std::hash::BuildHasher) for maps keyed by [`StorageKey`]: the key's own
/// first 8 bytes are the hash, with none of SipHash's work (see [`StorageKey`]'s `Hash`).
type StorageKeyHash = std::hash::BuildHasherDefault<StorageKeyHasher>;

/// The [`Hasher`](std::hash::Hasher) of [`StorageKeyHash`]: keeps the last `u64` written.
/// Only for keys whose `Hash` writes one uniform `u64`, as [`StorageKey`]'s does.
#[derive(Debug, Default, Clone, Copy)]
struct StorageKeyHasher(u64);

impl std::hash::Hasher for StorageKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached by StorageKey; fold anything else in rather than ignore it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::http::{CookieConfig, SessionConfig, Sessions};
    use crate::time::{Clock, ManualClock};
    use http::HeaderMap;
    use std::time::Duration;

    // Was the doctest of `StorageKeyHash`, which is private since the type left the API.
    #[test]
    fn maps_keyed_by_storage_key_find_what_they_hold() {
        let mut records: HashMap<StorageKey, &str, StorageKeyHash> = HashMap::default();
        records.insert(StorageKey::from_bytes([7; 32]), "record");
        assert_eq!(records[&StorageKey::from_bytes([7; 32])], "record");
    }

    fn config(store: &std::sync::Arc<MemoryStore>, clock: &ManualClock) -> SessionConfig {
        SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").unwrap())
            .with_clock(clock.clone())
            .with_expiry(
                Expiry::default()
                    .with_idle_timeout(Duration::from_secs(100))
                    .unwrap()
                    .with_absolute_lifetime(Duration::from_secs(1000))
                    .unwrap(),
            )
    }

    async fn request(
        config: &SessionConfig,
        cookie: Option<&str>,
        f: impl FnOnce(&crate::Session),
    ) -> (HeaderMap, bool) {
        let mut headers = HeaderMap::new();
        if let Some(c) = cookie {
            headers.insert("cookie", format!("__Host-id={c}").parse().unwrap());
        }
        let sessions = Sessions::new(&headers);
        let session = sessions.get(config).await.unwrap();
        let is_new = session.is_new();
        f(&session);
        let mut out = HeaderMap::new();
        sessions.save_all(&mut out).await.unwrap();
        (out, is_new)
    }

    fn cookie(headers: &HeaderMap) -> String {
        let line = headers["set-cookie"].to_str().unwrap();
        line.split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned()
    }

    /// Anonymous sessions stay within the byte budget as well as the count, the least
    /// recently active going first; a logged-in session never counts against it.
    #[tokio::test]
    async fn anonymous_bytes_stay_within_budget() {
        let clock = ManualClock::new(UnixTime::from_secs(1_000_000));
        let store = std::sync::Arc::new(
            MemoryStore::with_max_sessions(10)
                .unwrap()
                .with_anonymous_budget(AnonymousBudget::new(1_000, 1_000)),
        );
        let config = config(&store, &clock);
        let (h, _) = request(&config, None, |s| {
            s.set_user_id("alice");
            s.insert("big", "y".repeat(900)).unwrap();
        })
        .await;
        let alice = cookie(&h);
        let mut anonymous = Vec::new();
        for _ in 0..10 {
            clock.advance(Duration::from_secs(1));
            let (h, _) = request(&config, None, |s| s.insert("v", "x".repeat(300)).unwrap()).await;
            anonymous.push(cookie(&h));
            assert!(store.backend().lock().anonymous_bytes <= 1_000);
        }
        // 3 of ~305 bytes fit: the newest three.
        assert_eq!(store.backend().len(), 4);
        assert!(
            request(&config, Some(&anonymous[6]), |_| {}).await.1,
            "evicted"
        );
        assert!(!request(&config, Some(&anonymous[9]), |_| {}).await.1);
        assert!(
            !request(&config, Some(&alice), |_| {}).await.1,
            "logged in, kept"
        );
    }

    /// Regenerating the least recently active anonymous session of a full budget moves it;
    /// its own new record does not evict it.
    #[tokio::test]
    async fn regenerating_in_a_full_budget_keeps_the_session() {
        let clock = ManualClock::new(UnixTime::from_secs(1_000_000));
        let store = std::sync::Arc::new(
            MemoryStore::new()
                .unwrap()
                .with_anonymous_budget(AnonymousBudget::new(2, 1 << 20)),
        );
        let config = config(&store, &clock);
        let (h, _) = request(&config, None, |s| s.insert("a", 1).unwrap()).await;
        let oldest = cookie(&h);
        clock.advance(Duration::from_secs(1));
        let (h, _) = request(&config, None, |s| s.insert("b", 2).unwrap()).await;
        let other = cookie(&h);
        clock.advance(Duration::from_secs(1));
        let (h, is_new) = request(&config, Some(&oldest), crate::Session::regenerate).await;
        assert!(!is_new);
        request(&config, Some(&cookie(&h)), |s| {
            assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
        })
        .await;
        assert!(
            request(&config, Some(&other), |_| {}).await.1,
            "the other one went"
        );
    }

    /// With no room outside the budget, a login is refused rather than an older login evicted.
    #[tokio::test]
    async fn a_full_store_refuses_a_login_and_keeps_the_others() {
        let clock = ManualClock::new(UnixTime::from_secs(1_000_000));
        let store = std::sync::Arc::new(MemoryStore::with_max_sessions(2).unwrap());
        let config = config(&store, &clock);
        let mut logged_in = Vec::new();
        for user in ["a", "b"] {
            let (h, _) = request(&config, None, |s| s.set_user_id(user)).await;
            logged_in.push(cookie(&h));
        }
        let mut headers = HeaderMap::new();
        let sessions = Sessions::new(&headers);
        sessions.get(&config).await.unwrap().set_user_id("c");
        let error = sessions.save_all(&mut headers).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StoreFull);
        // A login by update (no new id) is refused too, with the session left as it was.
        let (h, _) = request(&config, None, |s| s.insert("cart", 1).unwrap()).await;
        let anonymous = cookie(&h);
        let mut headers = HeaderMap::new();
        headers.insert("cookie", format!("__Host-id={anonymous}").parse().unwrap());
        let sessions = Sessions::new(&headers);
        sessions.get(&config).await.unwrap().set_user_id("d");
        let mut out = HeaderMap::new();
        let error = sessions.save_all(&mut out).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StoreFull);
        request(&config, Some(&anonymous), |s| {
            assert_eq!(s.get::<i32>("cart").unwrap(), Some(1));
            assert_eq!(s.user_id(), None);
        })
        .await;
        for cookie in &logged_in {
            assert!(!request(&config, Some(cookie), |_| {}).await.1);
        }
    }

    #[tokio::test]
    async fn round_trip_regenerate_destroy_and_bounds() {
        let clock = ManualClock::new(UnixTime::from_secs(1_000_000));
        let store = std::sync::Arc::new(MemoryStore::with_max_sessions(2).unwrap());
        let config = config(&store, &clock);
        let (h, _) = request(&config, None, |s| s.insert("a", 1).unwrap()).await;
        let id = cookie(&h);
        let (h, is_new) = request(&config, Some(&id), |s| {
            assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
            s.regenerate();
        })
        .await;
        assert!(!is_new);
        let new_id = cookie(&h);
        assert_ne!(id, new_id);
        assert!(
            request(&config, Some(&id), |_| {}).await.1,
            "old id is dead at once"
        );
        let (h, _) = request(&config, Some(&new_id), |s| {
            assert_eq!(s.get::<i32>("a").unwrap(), Some(1));
            s.destroy();
        })
        .await;
        assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
        assert!(request(&config, Some(&new_id), |_| {}).await.1);

        assert!(store.backend().is_empty());

        // Bounded: a third session evicts the one closest to expiry.
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(cookie(
                &request(&config, None, |s| s.insert("x", 1).unwrap())
                    .await
                    .0,
            ));
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(store.backend().len(), 2);
        assert!(
            request(&config, Some(&ids[0]), |_| {}).await.1,
            "the oldest was evicted"
        );
        assert!(!request(&config, Some(&ids[2]), |_| {}).await.1);

        // Expired records are reaped in bounded batches.
        clock.advance(Duration::from_secs(100));
        assert_eq!(store.reap(clock.now(), 1).await.unwrap(), 1);
        assert_eq!(store.reap(clock.now(), 10).await.unwrap(), 1);
        assert!(store.backend().is_empty());
    }
}

/// Many tasks against one store, compared with a sequential model of what must result.
#[cfg(test)]
mod stress {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;
    use std::time::Duration;

    use http::HeaderMap;

    use super::MemoryStore;
    use crate::http::{CookieConfig, SessionConfig, Sessions};
    use crate::session::Expiry;

    const TASKS: usize = 8;
    const OPS: usize = if cfg!(debug_assertions) { 150 } else { 1500 };

    /// One request: load `id` (or none), run `f`, save; returns the id afterwards.
    async fn request(
        config: &SessionConfig,
        id: Option<&str>,
        f: impl FnOnce(&crate::Session),
    ) -> Option<String> {
        let mut headers = HeaderMap::new();
        if let Some(id) = id {
            headers.insert("cookie", format!("__Host-id={id}").parse().unwrap());
        }
        let sessions = Sessions::new(&headers);
        let session = sessions.get(config).await.unwrap();
        f(&session);
        let mut out = HeaderMap::new();
        sessions.save_all(&mut out).await.unwrap();
        match out
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned())
        {
            Some(line) if line.contains("Max-Age=0") => None,
            Some(line) => Some(
                line.split(';')
                    .next()
                    .unwrap()
                    .split_once('=')
                    .unwrap()
                    .1
                    .to_owned(),
            ),
            None => id.map(str::to_owned),
        }
    }

    /// A tiny deterministic generator, so a failure can be replayed from its seed.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tasks_match_the_sequential_model() {
        let store = Arc::new(MemoryStore::with_max_sessions(1_000_000).unwrap());
        let config =
            SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").unwrap())
                .with_expiry(
                    Expiry::default()
                        .with_idle_timeout(Duration::from_secs(3600))
                        .unwrap()
                        .with_absolute_lifetime(Duration::from_secs(7200))
                        .unwrap(),
                );
        let shared = request(&config, None, |s| s.insert("created", true).unwrap())
            .await
            .unwrap();

        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (config, shared) = (config.clone(), shared.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = Lcg(t as u64 + 1);
                // This task's sessions and what they must hold, keyed by a stable slot number.
                let mut model: HashMap<usize, (String, BTreeMap<String, u64>)> = HashMap::new();
                for op in 0..OPS as u64 {
                    let slot = usize::try_from(rng.next(6)).unwrap();
                    match (rng.next(5), model.remove(&slot)) {
                        (_, None) => {
                            let id = request(&config, None, |s| s.insert("op", op).unwrap())
                                .await
                                .unwrap();
                            model.insert(slot, (id, BTreeMap::from([("op".to_owned(), op)])));
                        }
                        (0, Some((id, _))) => {
                            assert!(
                                request(&config, Some(&id), crate::Session::destroy)
                                    .await
                                    .is_none()
                            );
                        }
                        (1, Some((id, values))) => {
                            let new = request(&config, Some(&id), crate::Session::regenerate)
                                .await
                                .unwrap();
                            assert_ne!(new, id);
                            model.insert(slot, (new, values));
                        }
                        (2, Some((id, mut values))) => {
                            let key = format!("k{}", rng.next(3));
                            if values.remove(&key).is_some() {
                                request(&config, Some(&id), |s| assert!(s.remove(&key))).await;
                            }
                            model.insert(slot, (id, values));
                        }
                        (_, Some((id, mut values))) => {
                            let key = format!("k{}", rng.next(3));
                            request(&config, Some(&id), |s| s.insert(key.as_str(), op).unwrap())
                                .await;
                            values.insert(key, op);
                            model.insert(slot, (id, values));
                        }
                    }
                    // Every task also writes its own key of the one shared session.
                    request(&config, Some(&shared), |s| {
                        s.insert(format!("t{t}"), op).unwrap()
                    })
                    .await;
                }
                model
            }));
        }
        let mut live = 0;
        for task in tasks {
            for (_, (id, values)) in task.await.unwrap() {
                live += 1;
                request(&config, Some(&id), |s| {
                    assert!(!s.is_new(), "a live session of the model is missing");
                    for (key, value) in &values {
                        assert_eq!(s.get::<u64>(key).unwrap(), Some(*value), "{key}");
                    }
                    assert_eq!(s.len(), values.len());
                })
                .await;
            }
        }
        request(&config, Some(&shared), |s| {
            for t in 0..TASKS {
                assert_eq!(
                    s.get::<u64>(&format!("t{t}")).unwrap(),
                    Some(OPS as u64 - 1),
                    "t{t}"
                );
            }
        })
        .await;
        assert_eq!(
            store.backend().len(),
            live + 1,
            "ended sessions leave no record"
        );
    }
}
