//! Sessions in this process's memory.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::ready;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::BoxFuture;
use super::server::{Backend, IdHasher, ServerStore, StorageKey, StorageKeyHash, Update};
use crate::error::Result;
use crate::session::{Expiry, Record};
use crate::time::UnixTime;

/// The default bound on the number of sessions a [`MemoryStore`] holds.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;
/// Expired records a write deletes on its way, so that memory is reclaimed without a timer.
const REAP_PER_WRITE: usize = 8;

/// A server-side store in this process's memory: fast, bounded, lost on restart and not shared
/// between processes.
///
/// # Bounds and eviction
///
/// It holds at most [`max_sessions`](MemoryBackend::max_sessions) sessions. Every write first
/// deletes a few expired records (its built-in reaper; [`ServerStore::reap`] deletes more on
/// demand). A new session that finds the store full evicts the session that would expire
/// soonest, which logs a `warn` event: size the bound so that this does not happen in normal
/// operation.
///
/// # Examples
///
/// ```
/// use fastsession_core::store::MemoryStore;
///
/// let store = MemoryStore::with_max_sessions(10_000)?;
/// assert_eq!(store.backend().len(), 0);
/// # Ok::<(), fastsession_core::Error>(())
/// ```
pub type MemoryStore = ServerStore<MemoryBackend>;

impl ServerStore<MemoryBackend> {
    /// A memory store bounded at [`DEFAULT_MAX_SESSIONS`], with a random id-hashing key.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`](crate::ErrorKind::Random) if the OS random number generator
    /// fails.
    pub fn new() -> Result<Self> {
        MemoryStore::with_max_sessions(DEFAULT_MAX_SESSIONS)
    }

    /// A memory store holding at most `max_sessions` sessions (at least one).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_max_sessions(max_sessions: usize) -> Result<Self> {
        Ok(ServerStore::with_backend(
            MemoryBackend::new(max_sessions),
            IdHasher::random()?,
        ))
    }
}

/// The records of a [`MemoryStore`].
pub struct MemoryBackend {
    max_sessions: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: HashMap<StorageKey, Slot, StorageKeyHash>,
    /// Every record by its expiry time, for reaping and eviction.
    by_expiry: BTreeSet<(UnixTime, StorageKey)>,
    users: HashMap<String, HashSet<StorageKey, StorageKeyHash>>,
}

struct Slot {
    record: Record,
    expires: UnixTime,
}

impl MemoryBackend {
    /// An empty backend holding at most `max_sessions` records (at least one).
    #[must_use]
    pub fn new(max_sessions: usize) -> Self {
        MemoryBackend {
            max_sessions: max_sessions.max(1),
            state: Mutex::default(),
        }
    }

    /// The bound on the number of sessions.
    #[must_use]
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// How many records are held, expired ones not yet reaped included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// `true` if no record is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().records.is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("len", &self.len())
            .field("max_sessions", &self.max_sessions)
            .finish()
    }
}

impl State {
    fn insert(&mut self, key: StorageKey, record: Record, expires: UnixTime) {
        if let Some(old) = self.records.insert(key, Slot { record, expires }) {
            self.by_expiry.remove(&(old.expires, key));
        }
        self.by_expiry.insert((expires, key));
    }

    fn remove(&mut self, key: &StorageKey) -> Option<Record> {
        let slot = self.records.remove(key)?;
        self.by_expiry.remove(&(slot.expires, *key));
        Some(slot.record)
    }

    fn reap(&mut self, now: UnixTime, limit: usize) -> usize {
        let due: Vec<StorageKey> = self
            .by_expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now)
            .take(limit)
            .map(|(_, key)| *key)
            .collect();
        for key in &due {
            if let Some(record) = self.remove(key) {
                self.unlink(&record, key);
            }
        }
        due.len()
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

    /// The live record under `key`, removing it if expired.
    fn live(&mut self, key: &StorageKey, now: UnixTime, expiry: &Expiry) -> Option<&mut Slot> {
        let expired = expiry.check(&self.records.get(key)?.record, now).is_err();
        if expired {
            self.remove(key);
            return None;
        }
        self.records.get_mut(key)
    }
}

impl Backend for MemoryBackend {
    fn is_immediate(&self) -> bool {
        true
    }

    fn read<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>> {
        let record = self.lock().records.get(key).map(|slot| slot.record.clone());
        Box::pin(ready(Ok(record)))
    }

    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        let mut state = self.lock();
        let created = if state.records.contains_key(key) {
            false
        } else {
            state.reap(record.last_active(), REAP_PER_WRITE);
            while state.records.len() >= self.max_sessions {
                let Some(&(_, victim)) = state.by_expiry.iter().next() else {
                    break;
                };
                if let Some(evicted) = state.remove(&victim) {
                    state.unlink(&evicted, &victim);
                }
                tracing::warn!(target: "fastsession", max_sessions = self.max_sessions, "memory store full: evicted the session closest to expiry");
            }
            state.insert(*key, record.clone(), expires);
            true
        };
        Box::pin(ready(Ok(created)))
    }

    fn update<'a>(
        &'a self,
        key: &'a StorageKey,
        update: Update<'a>,
    ) -> BoxFuture<'a, Result<bool>> {
        let mut state = self.lock();
        state.reap(update.now, REAP_PER_WRITE);
        // Merged in place: taken out, changed, put back under its new deadline (an expired
        // record stays out).
        let merged = state.remove(key).and_then(|stored| update.apply_to(stored));
        let live = merged.is_some();
        if let Some(record) = merged {
            let deadline = update.expiry.deadline(&record);
            state.insert(*key, record, deadline);
        }
        Box::pin(ready(Ok(live)))
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> BoxFuture<'a, Result<bool>> {
        let mut state = self.lock();
        let deadline = state.live(key, now, expiry).map(|slot| {
            slot.record.last_active = slot.record.last_active.max(now);
            expiry.deadline(&slot.record)
        });
        if let Some(deadline) = deadline {
            let record = state.remove(key).map(|r| (r, deadline));
            if let Some((record, deadline)) = record {
                state.insert(*key, record, deadline);
            }
        }
        Box::pin(ready(Ok(deadline.is_some())))
    }

    fn take<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>> {
        let mut state = self.lock();
        let record = state.remove(key);
        if let Some(record) = &record {
            state.unlink(record, key);
        }
        Box::pin(ready(Ok(record)))
    }

    fn reap(&self, now: UnixTime, limit: usize) -> BoxFuture<'_, Result<usize>> {
        Box::pin(ready(Ok(self.lock().reap(now, limit))))
    }

    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> BoxFuture<'a, Result<()>> {
        self.lock()
            .users
            .entry(user.to_owned())
            .or_default()
            .insert(*key);
        Box::pin(ready(Ok(())))
    }

    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> BoxFuture<'a, Result<()>> {
        let mut state = self.lock();
        if let Some(keys) = state.users.get_mut(user) {
            keys.remove(key);
            if keys.is_empty() {
                state.users.remove(user);
            }
        }
        Box::pin(ready(Ok(())))
    }

    fn user_keys<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Vec<StorageKey>>> {
        let keys = self
            .lock()
            .users
            .get(user)
            .map(|k| k.iter().copied().collect())
            .unwrap_or_default();
        Box::pin(ready(Ok(keys)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{CookieConfig, SessionConfig, Sessions};
    use crate::time::{Clock, ManualClock};
    use http::HeaderMap;
    use std::time::Duration;

    fn config(store: &std::sync::Arc<MemoryStore>, clock: &ManualClock) -> SessionConfig {
        SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").unwrap())
            .with_clock(clock.clone())
            .with_expiry(Expiry::new(Duration::from_secs(100), Duration::from_secs(1000)).unwrap())
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
                    Expiry::new(Duration::from_secs(3600), Duration::from_secs(7200)).unwrap(),
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
