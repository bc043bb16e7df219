//! A near cache: recently read records kept in process, served only while the store's own
//! invalidations say nobody changed them.
//!
//! The store feeds it three things: the records it reads through a connection whose reads the
//! server tracks ([`NearCache::begin`] before the read, [`Fill::complete`] after), the
//! invalidations the server pushes ([`NearCache::invalidate`], [`NearCache::flush`]), and
//! whether that push channel is up at all ([`NearCache::set_tracking`]). A write of the
//! store's own invalidates its key when it completes, so that this process reads its own
//! writes.
//!
//! Why a read and an invalidation cannot cross: a read marks its key before it is sent; an
//! invalidation of the key removes its entry and records, under the same lock, that the key
//! changed after every mark of it then under way, and a read's record goes in only if its key
//! did not change since its mark. A read answered before a write reaches the server is
//! therefore either invalidated after it went in, or refused; the stale entry lives at most
//! as long as the invalidation takes to arrive, and never longer than the maximum age. A fill
//! that goes in counts as a change too, so that an older answer is never put over a newer one.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use quick_cache::Weighter;

use super::{StorageKey, Update};
use crate::error::{Error, ErrorKind, Result};
use crate::session::Record;

/// The default bound on entries.
pub const DEFAULT_NEAR_CACHE_ENTRIES: usize = 100_000;
/// The default bound on the bytes the entries' data take, in all.
pub const DEFAULT_NEAR_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// The default maximum age of an entry: what a lost invalidation can cost at most.
pub const DEFAULT_NEAR_CACHE_MAX_AGE: Duration = Duration::from_secs(1);

/// What an entry is counted as beyond its data: the record's fixed fields and the cache's own.
const ENTRY_OVERHEAD: usize = 256;

/// How large a near cache may grow and how long an entry may be served.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fastsession::store::NearCacheConfig;
///
/// let config = NearCacheConfig::new()
///     .with_max_entries(50_000)
///     .with_max_bytes(128 << 20)
///     .with_max_age(Duration::from_millis(500))?;
/// assert_eq!(config.max_entries(), 50_000);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearCacheConfig {
    max_entries: usize,
    max_bytes: usize,
    max_age: Duration,
}

impl Default for NearCacheConfig {
    fn default() -> Self {
        NearCacheConfig::new()
    }
}

impl NearCacheConfig {
    /// The defaults: [`DEFAULT_NEAR_CACHE_ENTRIES`] entries, [`DEFAULT_NEAR_CACHE_BYTES`]
    /// bytes, [`DEFAULT_NEAR_CACHE_MAX_AGE`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{DEFAULT_NEAR_CACHE_MAX_AGE, NearCacheConfig};
    ///
    /// assert_eq!(NearCacheConfig::new().max_age(), DEFAULT_NEAR_CACHE_MAX_AGE);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        NearCacheConfig {
            max_entries: DEFAULT_NEAR_CACHE_ENTRIES,
            max_bytes: DEFAULT_NEAR_CACHE_BYTES,
            max_age: DEFAULT_NEAR_CACHE_MAX_AGE,
        }
    }

    /// Bounds the number of entries (at least one).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::NearCacheConfig;
    ///
    /// assert_eq!(NearCacheConfig::new().with_max_entries(0).max_entries(), 1);
    /// ```
    #[must_use]
    pub fn with_max_entries(mut self, max: usize) -> Self {
        self.max_entries = max.max(1);
        self
    }

    /// Bounds the bytes the entries take, in all (at least one entry's worth).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::NearCacheConfig;
    ///
    /// assert_eq!(NearCacheConfig::new().with_max_bytes(1 << 20).max_bytes(), 1 << 20);
    /// ```
    #[must_use]
    pub fn with_max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max.max(ENTRY_OVERHEAD);
        self
    }

    /// Sets how long after its read an entry may still be served: the longest a session can
    /// stay stale if an invalidation is lost.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for zero or more than a minute: a cache whose entries
    /// may outlive a lost invalidation by minutes is not coherent in any useful sense.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::store::NearCacheConfig;
    ///
    /// assert!(NearCacheConfig::new().with_max_age(Duration::from_secs(3600)).is_err());
    /// ```
    pub fn with_max_age(mut self, max_age: Duration) -> Result<Self> {
        if max_age.is_zero() || max_age > Duration::from_secs(60) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "a near cache's maximum age must be above zero and at most a minute",
            ));
        }
        self.max_age = max_age;
        Ok(self)
    }

    /// Returns the bound on entries.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{DEFAULT_NEAR_CACHE_ENTRIES, NearCacheConfig};
    ///
    /// assert_eq!(NearCacheConfig::new().max_entries(), DEFAULT_NEAR_CACHE_ENTRIES);
    /// ```
    #[must_use]
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Returns the bound on bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{DEFAULT_NEAR_CACHE_BYTES, NearCacheConfig};
    ///
    /// assert_eq!(NearCacheConfig::new().max_bytes(), DEFAULT_NEAR_CACHE_BYTES);
    /// ```
    #[must_use]
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Returns the maximum age of an entry.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::store::NearCacheConfig;
    ///
    /// assert_eq!(NearCacheConfig::new().max_age(), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn max_age(&self) -> Duration {
        self.max_age
    }
}

/// What a near cache has done since it was made, and what it holds.
///
/// # Examples
///
/// ```
/// use fastsession::store::{NearCache, NearCacheConfig};
///
/// let stats = NearCache::new(NearCacheConfig::new()).stats();
/// assert_eq!((stats.hits(), stats.entries(), stats.is_tracking()), (0, 0, false));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NearCacheStats {
    hits: u64,
    misses: u64,
    invalidations: u64,
    flushes: u64,
    entries: usize,
    bytes: u64,
    tracking: bool,
}

impl NearCacheStats {
    /// Returns the loads served from the cache.
    ///
    /// # Examples
    ///
    /// ```
    /// # let stats = fastsession::store::NearCache::new(Default::default()).stats();
    /// let served_here = stats.hits();
    /// # assert_eq!(served_here, 0);
    /// ```
    #[must_use]
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Returns the loads that went to the store: not cached, too old, or tracking down.
    ///
    /// # Examples
    ///
    /// ```
    /// # let stats = fastsession::store::NearCache::new(Default::default()).stats();
    /// let ratio = stats.hits() as f64 / (stats.hits() + stats.misses()).max(1) as f64;
    /// # assert_eq!(ratio, 0.0);
    /// ```
    #[must_use]
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Returns the keys invalidated: by the store's push channel or by this process's writes.
    ///
    /// # Examples
    ///
    /// ```
    /// # let stats = fastsession::store::NearCache::new(Default::default()).stats();
    /// assert_eq!(stats.invalidations(), 0);
    /// ```
    #[must_use]
    pub fn invalidations(&self) -> u64 {
        self.invalidations
    }

    /// Returns the times the whole cache was dropped (a disconnect, a flush of the store, a
    /// doubt).
    ///
    /// # Examples
    ///
    /// ```
    /// # let stats = fastsession::store::NearCache::new(Default::default()).stats();
    /// assert_eq!(stats.flushes(), 0);
    /// ```
    #[must_use]
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// Returns the entries held now.
    ///
    /// # Examples
    ///
    /// ```
    /// # let stats = fastsession::store::NearCache::new(Default::default()).stats();
    /// assert_eq!(stats.entries(), 0);
    /// ```
    #[must_use]
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Returns the bytes the entries are counted as now.
    ///
    /// # Examples
    ///
    /// ```
    /// # let stats = fastsession::store::NearCache::new(Default::default()).stats();
    /// assert_eq!(stats.bytes(), 0);
    /// ```
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Returns whether the store's invalidations are being received, so that loads may be
    /// served from the cache.
    ///
    /// # Examples
    ///
    /// ```
    /// # let stats = fastsession::store::NearCache::new(Default::default()).stats();
    /// assert!(!stats.is_tracking());
    /// ```
    #[must_use]
    pub fn is_tracking(&self) -> bool {
        self.tracking
    }
}

/// A cached record, the store's version of it, and when the read that brought it began.
#[derive(Clone)]
struct Cached {
    record: Record,
    version: Option<u64>,
    read_at: Instant,
}

/// Weighs an entry by its data, and at least by its share of the entry bound, so that one
/// bound on weight keeps both bounds.
#[derive(Clone)]
struct ByBytes {
    floor: u64,
}

impl Weighter<StorageKey, Cached> for ByBytes {
    fn weight(&self, _key: &StorageKey, cached: &Cached) -> u64 {
        let bytes = (cached.record.data_len() + ENTRY_OVERHEAD) as u64;
        bytes.max(self.floor)
    }
}

/// The fills under way and whether the cache may be used, changed only under one lock.
struct Coherence {
    tracking: bool,
    /// Raised by every flush: a fill begun before one never goes in.
    generation: u64,
    /// Raised by every change of a key's entry (an invalidation, a fill that went in).
    changes: u64,
    /// The keys with fills under way.
    pending: HashMap<StorageKey, Pending>,
}

/// The fills under way of one key.
struct Pending {
    fills: usize,
    /// `changes` at the key's last change since the first of them began.
    changed_at: u64,
}

impl Coherence {
    /// Records a change of `key`: every fill of it under way is refused.
    fn changed(&mut self, key: &StorageKey) {
        self.changes += 1;
        if let Some(pending) = self.pending.get_mut(key) {
            pending.changed_at = self.changes;
        }
    }
}

struct Shared {
    entries: quick_cache::sync::Cache<StorageKey, Cached, ByBytes>,
    coherence: Mutex<Coherence>,
    max_age: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

/// A near cache of records, kept coherent by the invalidations of the store that holds them.
///
/// For store authors: an application turns it on through its store's configuration (for
/// Redis, `RedisConfig::with_near_cache`; for PostgreSQL, `PostgresConfig::with_near_cache`).
/// Cloning gives another handle to the same cache.
///
/// # Examples
///
/// ```
/// use fastsession::session::Record;
/// use fastsession::store::{NearCache, NearCacheConfig, StorageKey};
/// use fastsession::time::UnixTime;
///
/// let cache = NearCache::new(NearCacheConfig::new());
/// let key = StorageKey::from_bytes([7; 32]);
/// // Nothing is served until the store's invalidations arrive.
/// assert!(cache.begin(key).is_none());
/// cache.set_tracking(true);
/// let fill = cache.begin(key).expect("tracking");
/// let record = Record::new(UnixTime::now()); // what the tracked read returned
/// assert!(fill.complete(&record, None));
/// assert!(cache.get(&key).is_some());
/// // Another client changed it: the store's push says so.
/// cache.invalidate(&key);
/// assert!(cache.get(&key).is_none());
/// ```
#[derive(Clone)]
pub struct NearCache {
    shared: Arc<Shared>,
}

impl NearCache {
    /// Returns an empty cache with the bounds of `config`, not yet tracking.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{NearCache, NearCacheConfig};
    ///
    /// let cache = NearCache::new(NearCacheConfig::new().with_max_entries(100));
    /// assert_eq!(cache.stats().entries(), 0);
    /// ```
    #[must_use]
    pub fn new(config: NearCacheConfig) -> Self {
        let floor = (config.max_bytes / config.max_entries).max(1) as u64;
        let entries = quick_cache::sync::Cache::with_weighter(
            config.max_entries,
            config.max_bytes as u64,
            ByBytes { floor },
        );
        NearCache {
            shared: Arc::new(Shared {
                entries,
                coherence: Mutex::new(Coherence {
                    tracking: false,
                    generation: 0,
                    changes: 0,
                    pending: HashMap::new(),
                }),
                max_age: config.max_age,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
            }),
        }
    }

    fn coherence(&self) -> MutexGuard<'_, Coherence> {
        self.shared
            .coherence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the cached record of `key`, if it is held and younger than the maximum age;
    /// counts a hit or a miss.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{NearCache, NearCacheConfig, StorageKey};
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// assert!(cache.get(&StorageKey::from_bytes([1; 32])).is_none());
    /// assert_eq!(cache.stats().misses(), 1);
    /// ```
    #[must_use]
    pub fn get(&self, key: &StorageKey) -> Option<Record> {
        let shared = &*self.shared;
        let found = shared
            .entries
            .get(key)
            .filter(|cached| cached.read_at.elapsed() < shared.max_age);
        let counter = if found.is_some() {
            &shared.hits
        } else {
            &shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found.map(|cached| cached.record)
    }

    /// Marks a tracked read or write of `key` as begun: call it before sending it. `None` while
    /// tracking is down (go on without it, and cache nothing).
    ///
    /// The [`Fill`] holds the entry cached at that moment, if any ([`Fill::base`]): a write
    /// that can show nobody else wrote since (the version it makes is the base's plus one) may
    /// cache the merged record instead of dropping it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{NearCache, NearCacheConfig, StorageKey};
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// cache.set_tracking(true);
    /// let key = StorageKey::from_bytes([2; 32]);
    /// let fill = cache.begin(key).expect("tracking");
    /// // The read found no session: nothing to cache, and the mark goes with the fill.
    /// drop(fill);
    /// assert_eq!(cache.stats().entries(), 0);
    /// ```
    #[must_use]
    pub fn begin(&self, key: StorageKey) -> Option<Fill> {
        let read_at = Instant::now();
        let mut coherence = self.coherence();
        if !coherence.tracking {
            return None;
        }
        let began = coherence.changes;
        coherence
            .pending
            .entry(key)
            .or_insert(Pending {
                fills: 0,
                changed_at: 0,
            })
            .fills += 1;
        // Under the lock: no invalidation can come between the base and the mark.
        let base = self
            .shared
            .entries
            .peek(&key)
            .filter(|cached| cached.read_at.elapsed() < self.shared.max_age);
        Some(Fill {
            cache: self.clone(),
            key,
            began,
            generation: coherence.generation,
            read_at,
            base,
        })
    }

    /// Drops the entry of `key` and refuses the reads of it under way: another client changed
    /// it, or this process wrote it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{NearCache, NearCacheConfig, StorageKey};
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// cache.invalidate(&StorageKey::from_bytes([3; 32]));
    /// assert_eq!(cache.stats().invalidations(), 1);
    /// ```
    pub fn invalidate(&self, key: &StorageKey) {
        let mut coherence = self.coherence();
        coherence.changed(key);
        let held = self.shared.entries.remove(key).is_some();
        drop(coherence);
        self.shared.invalidations.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(target: "fastsession", held, "near cache: entry invalidated");
    }

    /// Settles the cache after a write of `key` (successful or not), begun with `fill`: the
    /// fill's [base](Fill::base) merged with `update` (the merge the store ran) goes in only
    /// if `version`, the one the write made, is the base's plus one, the proof that nobody
    /// else wrote between; otherwise the key is invalidated (a write that failed may have
    /// landed; one refused may have been overtaken by an older answer).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::{Expiry, Record};
    /// use fastsession::store::{NearCache, NearCacheConfig, StorageKey, Update};
    /// use fastsession::time::UnixTime;
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// cache.set_tracking(true);
    /// let key = StorageKey::from_bytes([6; 32]);
    /// let now = UnixTime::now();
    /// assert!(cache.begin(key).expect("tracking").complete(&Record::new(now), Some(7)));
    /// let session = Session::new_detached();
    /// session.insert("n", 1)?;
    /// let mut from = Record::new(now);
    /// from.insert_value("n".to_owned(), serde_json::value::to_raw_value(&1)?);
    /// let (changes, expiry) = (session.changes(), Expiry::default());
    /// let update = Update::new(&changes, &from, now, &expiry);
    /// // Another server wrote version 8 first: this write made 9, so the key is dropped.
    /// let write = cache.begin(key);
    /// cache.written(&key, write, &update, Some(9));
    /// assert!(cache.get(&key).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn written(
        &self,
        key: &StorageKey,
        fill: Option<Fill>,
        update: &Update<'_>,
        version: Option<u64>,
    ) {
        let merged = fill.zip(version).and_then(|(fill, version)| {
            let record = fill
                .base()
                .filter(|(_, base)| base.is_some_and(|base| base + 1 == version))
                .and_then(|(base, _)| update.apply_to(base.clone()))?;
            Some((fill, record, version))
        });
        let cached =
            merged.is_some_and(|(fill, record, version)| fill.complete(&record, Some(version)));
        if !cached {
            self.invalidate(key);
        }
    }

    /// Drops every entry and refuses every read under way: the store was flushed, or its
    /// invalidations may have been missed.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{NearCache, NearCacheConfig};
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// cache.flush();
    /// assert_eq!(cache.stats().flushes(), 1);
    /// ```
    pub fn flush(&self) {
        let mut coherence = self.coherence();
        Self::flush_locked(&self.shared, &mut coherence);
    }

    fn flush_locked(shared: &Shared, coherence: &mut Coherence) {
        coherence.generation += 1;
        coherence.pending.clear();
        let entries = shared.entries.len();
        shared.entries.clear();
        let flushes = shared.flushes.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(target: "fastsession", entries, flushes, "near cache: every entry dropped");
    }

    /// Says whether the store's invalidations are being received. Going down drops
    /// everything; going up again starts empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{NearCache, NearCacheConfig};
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// cache.set_tracking(true);
    /// assert!(cache.stats().is_tracking());
    /// cache.set_tracking(false); // the push channel was lost
    /// assert_eq!(cache.stats().flushes(), 1);
    /// ```
    pub fn set_tracking(&self, tracking: bool) {
        let mut coherence = self.coherence();
        if coherence.tracking && !tracking {
            Self::flush_locked(&self.shared, &mut coherence);
        }
        coherence.tracking = tracking;
    }

    /// Returns what the cache has done and holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{NearCache, NearCacheConfig};
    ///
    /// let stats = NearCache::new(NearCacheConfig::new()).stats();
    /// assert_eq!(stats.misses(), 0);
    /// ```
    #[must_use]
    pub fn stats(&self) -> NearCacheStats {
        let shared = &*self.shared;
        let tracking = self.coherence().tracking;
        NearCacheStats {
            hits: shared.hits.load(Ordering::Relaxed),
            misses: shared.misses.load(Ordering::Relaxed),
            invalidations: shared.invalidations.load(Ordering::Relaxed),
            flushes: shared.flushes.load(Ordering::Relaxed),
            entries: shared.entries.len(),
            bytes: shared.entries.weight(),
            tracking,
        }
    }
}

impl fmt::Debug for NearCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearCache")
            .field("stats", &self.stats())
            .field("max_age", &self.shared.max_age)
            .finish()
    }
}

/// A tracked read or write under way, from [`NearCache::begin`]: its record goes into the
/// cache by [`complete`](Self::complete) unless the key was invalidated or the cache flushed
/// since, or another fill of the key went in first. Dropped, it withdraws its mark.
#[must_use = "a record is cached only by `complete`"]
pub struct Fill {
    cache: NearCache,
    key: StorageKey,
    /// `changes` when it began.
    began: u64,
    generation: u64,
    read_at: Instant,
    base: Option<Cached>,
}

impl Fill {
    /// Returns the record cached when this began and the store's version of it, if any: what a
    /// write merges into, when the version it makes shows that nobody else wrote between.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::{NearCache, NearCacheConfig, StorageKey};
    /// use fastsession::time::UnixTime;
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// cache.set_tracking(true);
    /// let key = StorageKey::from_bytes([5; 32]);
    /// let record = Record::new(UnixTime::now());
    /// assert!(cache.begin(key).expect("tracking").complete(&record, Some(7)));
    /// // A write begins: the store answers version 8, so nobody came between.
    /// let write = cache.begin(key).expect("tracking");
    /// let (base, version) = write.base().expect("cached");
    /// assert_eq!(version, Some(7));
    /// let merged = base.clone(); // the base with the write's changes applied
    /// if !write.complete(&merged, Some(8)) {
    ///     cache.invalidate(&key); // refused: what is cached may be older than the write
    /// }
    /// ```
    #[must_use]
    pub fn base(&self) -> Option<(&Record, Option<u64>)> {
        self.base
            .as_ref()
            .map(|cached| (&cached.record, cached.version))
    }

    /// Caches `record`, what the tracked read returned or what a write made, with the store's
    /// `version` of it if it keeps one, if nothing changed the key since this began (an
    /// invalidation, a flush, another fill of it that went in first); returns whether it did.
    /// Fills of one key under way together do not refuse each other until one goes in: the
    /// first answer back is cached, and the older ones are not put over it.
    ///
    /// A write that was not cached must [`invalidate`](NearCache::invalidate) its key: the
    /// entry there, and a read of the key still under way, may be older than the write.
    /// [`NearCache::written`] does both for a store's writes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::store::{NearCache, NearCacheConfig, StorageKey};
    /// use fastsession::time::UnixTime;
    ///
    /// let cache = NearCache::new(NearCacheConfig::new());
    /// cache.set_tracking(true);
    /// let key = StorageKey::from_bytes([4; 32]);
    /// let fill = cache.begin(key).expect("tracking");
    /// cache.invalidate(&key); // a write landed while the read was under way
    /// assert!(!fill.complete(&Record::new(UnixTime::now()), None));
    /// assert!(cache.get(&key).is_none());
    /// ```
    #[must_use = "a write that was not cached must invalidate its key"]
    pub fn complete(self, record: &Record, version: Option<u64>) -> bool {
        let cache = &self.cache;
        let mut coherence = cache.coherence();
        let current = coherence.tracking
            && coherence.generation == self.generation
            && coherence
                .pending
                .get(&self.key)
                .is_some_and(|pending| pending.changed_at <= self.began);
        if current {
            coherence.changed(&self.key);
            let cached = Cached {
                record: record.clone(),
                version,
                read_at: self.read_at,
            };
            cache.shared.entries.insert(self.key, cached);
        }
        current
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        let mut coherence = self.cache.coherence();
        // A flush since took every fill's count along.
        if coherence.generation != self.generation {
            return;
        }
        if let Some(pending) = coherence.pending.get_mut(&self.key) {
            pending.fills -= 1;
            if pending.fills == 0 {
                coherence.pending.remove(&self.key);
            }
        }
    }
}

impl fmt::Debug for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fill")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::UnixTime;

    fn key(n: u8) -> StorageKey {
        StorageKey::from_bytes([n; 32])
    }

    fn tracking() -> NearCache {
        let cache = NearCache::new(NearCacheConfig::new());
        cache.set_tracking(true);
        cache
    }

    fn record(n: u64) -> Record {
        let mut record = Record::new(UnixTime::from_secs(1_000));
        record.set_last_active(UnixTime::from_secs(1_000 + n));
        record
    }

    #[test]
    fn a_completed_read_is_served_until_invalidated() {
        let cache = tracking();
        assert!(cache.begin(key(1)).unwrap().complete(&record(5), None));
        assert_eq!(cache.get(&key(1)), Some(record(5)));
        cache.invalidate(&key(1));
        assert_eq!(cache.get(&key(1)), None);
        let stats = cache.stats();
        assert_eq!(
            (stats.hits(), stats.misses(), stats.invalidations()),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_read_that_an_invalidation_overtook_is_not_cached() {
        let cache = tracking();
        let fill = cache.begin(key(1)).unwrap();
        cache.invalidate(&key(1));
        assert!(!fill.complete(&record(1), None));
        assert_eq!(cache.get(&key(1)), None);
    }

    #[test]
    fn a_read_begun_before_a_flush_or_a_lost_channel_is_not_cached() {
        let cache = tracking();
        let fill = cache.begin(key(1)).unwrap();
        cache.flush();
        assert!(!fill.complete(&record(1), None));

        let fill = cache.begin(key(2)).unwrap();
        cache.set_tracking(false);
        cache.set_tracking(true);
        assert!(!fill.complete(&record(2), None));
        assert_eq!(cache.stats().entries(), 0);
    }

    #[test]
    fn nothing_is_cached_or_begun_while_tracking_is_down() {
        let cache = NearCache::new(NearCacheConfig::new());
        assert!(cache.begin(key(1)).is_none());
        let cache = tracking();
        assert!(cache.begin(key(1)).unwrap().complete(&record(1), None));
        cache.set_tracking(false);
        assert_eq!(cache.get(&key(1)), None);
        assert!(cache.begin(key(1)).is_none());
    }

    #[test]
    fn of_reads_of_one_key_under_way_together_the_first_back_goes_in() {
        let cache = tracking();
        let first = cache.begin(key(1)).unwrap();
        let second = cache.begin(key(1)).unwrap();
        assert!(second.complete(&record(2), None));
        // Begun before that one went in: it may be older, and is not put over it.
        assert!(!first.complete(&record(1), None));
        assert_eq!(cache.get(&key(1)), Some(record(2)));
        // Begun after: it goes in.
        let third = cache.begin(key(1)).unwrap();
        assert!(third.complete(&record(3), None));
        assert_eq!(cache.get(&key(1)), Some(record(3)));
        assert!(cache.coherence().pending.is_empty());
    }

    #[test]
    fn a_write_sees_the_entry_cached_when_it_began() {
        let cache = tracking();
        assert!(cache.begin(key(1)).unwrap().base().is_none());
        assert!(cache.begin(key(1)).unwrap().complete(&record(1), Some(10)));
        let write = cache.begin(key(1)).unwrap();
        assert_eq!(write.base(), Some((&record(1), Some(10))));
        assert!(write.complete(&record(2), Some(11)));
        assert_eq!(cache.get(&key(1)), Some(record(2)));
        // Invalidated meanwhile: the write's record stays out.
        let write = cache.begin(key(1)).unwrap();
        cache.invalidate(&key(1));
        assert!(!write.complete(&record(3), Some(12)));
        assert_eq!(cache.get(&key(1)), None);
    }

    #[test]
    fn a_dropped_read_leaves_no_mark() {
        let cache = tracking();
        drop(cache.begin(key(1)).unwrap());
        let fill = cache.begin(key(1)).unwrap();
        cache.flush();
        let after = cache.begin(key(1)).unwrap();
        // The fill from before the flush leaves the count of the one after alone.
        drop(fill);
        assert_eq!(cache.coherence().pending[&key(1)].fills, 1);
        drop(after);
        assert!(cache.coherence().pending.is_empty());
    }

    #[test]
    fn an_entry_past_its_maximum_age_is_not_served() {
        let config = NearCacheConfig::new()
            .with_max_age(Duration::from_millis(20))
            .unwrap();
        let cache = NearCache::new(config);
        cache.set_tracking(true);
        assert!(cache.begin(key(1)).unwrap().complete(&record(1), None));
        assert!(cache.get(&key(1)).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get(&key(1)), None);
    }

    #[test]
    fn the_bounds_hold_on_entries_and_bytes() {
        // 200 small records read into a cache of `config`.
        let filled = |config: NearCacheConfig| {
            let cache = NearCache::new(config);
            cache.set_tracking(true);
            for n in 0..200u8 {
                let fill = cache.begin(key(n)).unwrap();
                assert!(fill.complete(&record(u64::from(n)), None));
            }
            cache.stats()
        };
        let stats = filled(
            NearCacheConfig::new()
                .with_max_entries(50)
                .with_max_bytes(1 << 30),
        );
        assert!(stats.entries() <= 50, "{stats:?}");
        let bytes = 20 * ENTRY_OVERHEAD;
        let stats = filled(
            NearCacheConfig::new()
                .with_max_entries(1_000)
                .with_max_bytes(bytes),
        );
        assert!(
            stats.entries() <= 20 && stats.bytes() <= bytes as u64,
            "{stats:?}"
        );
    }
}
