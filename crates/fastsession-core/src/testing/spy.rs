//! A [`Store`] wrapper that counts what the registry asks of the store under test.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::http::{CookieConfig, SessionConfig};
use crate::store::{
    CookieContent, LoadRequest, Loaded, SaveKind, SaveRequest, Saved, Store, StoreFuture,
};

/// Wraps a store and records every call made to it: how many loads, which saves, and the cookie
/// values the saves handed out.
///
/// The conformance checks put it between the registry and the store under test, to prove that a
/// hostile cookie never reaches the store and that an untouched session costs no store I/O.
/// `Debug` shows counts only, never cookie values. It can also fail on demand
/// ([`fail_loads`](Self::fail_loads), [`fail_saves`](Self::fail_saves)), as a store whose
/// server is down would, to test how adapters answer store failures.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use fastsession::{CookieConfig, SessionConfig, Sessions};
/// use fastsession::{MemoryStore, Store};
/// use fastsession::testing::SpyStore;
/// use http::HeaderMap;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let spy = Arc::new(SpyStore::new(Arc::new(MemoryStore::new()?)));
/// let config = SessionConfig::with_shared_store(spy.clone(), CookieConfig::new("id")?);
///
/// let mut request = HeaderMap::new();
/// request.insert("cookie", "__Host-id=../../etc/passwd".parse()?);
/// let sessions = Sessions::new(&request);
/// assert!(sessions.get(&config).await?.is_new());
/// sessions.save_all(&mut HeaderMap::new()).await?;
/// assert_eq!((spy.loads(), spy.saves()), (0, 0), "the store never saw it");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpyStore {
    inner: Arc<dyn Store>,
    loads: AtomicUsize,
    fail_loads: AtomicBool,
    fail_saves: AtomicBool,
    log: Mutex<Log>,
}

/// The cause of an injected failure.
#[derive(Debug)]
struct InjectedFailure;

impl fmt::Display for InjectedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failure injected by SpyStore")
    }
}

impl std::error::Error for InjectedFailure {}

fn development_cookie(name: &str) -> CookieConfig {
    CookieConfig::builder(name)
        .with_insecure_development_mode()
        .build()
        .expect("a test's cookie name is valid")
}

fn injected() -> Error {
    Error::store("store unavailable (injected)", InjectedFailure)
}

#[derive(Default)]
struct Log {
    saves: Vec<SaveKind>,
    /// Cookie values of successful saves, in the order they completed.
    issued: Vec<String>,
}

impl SpyStore {
    /// Returns a spy in front of `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>) -> Self {
        SpyStore {
            inner,
            loads: AtomicUsize::new(0),
            fail_loads: AtomicBool::new(false),
            fail_saves: AtomicBool::new(false),
            log: Mutex::default(),
        }
    }

    /// Returns a spy in front of `store`, and a config of `cookie` over the spy: what a framework
    /// adapter's tests mount, to count what the requests ask of the store.
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore};
    /// use fastsession::testing::SpyStore;
    ///
    /// let (spy, config) = SpyStore::in_config(MemoryStore::new()?, CookieConfig::new("id")?);
    /// assert_eq!((spy.loads(), config.cookie().name()), (0, "__Host-id"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn in_config(store: impl Store, cookie: CookieConfig) -> (Arc<SpyStore>, SessionConfig) {
        let spy = Arc::new(SpyStore::new(Arc::new(store)));
        let config = SessionConfig::with_shared_store(spy.clone(), cookie);
        (spy, config)
    }

    /// Returns a spy over a fresh [`MemoryStore`](crate::store::MemoryStore), in a config of a
    /// development cookie named `cookie_name` (no `Secure`, so that a plain-HTTP test client
    /// sends it back): what an adapter's tests mount.
    ///
    /// # Panics
    ///
    /// If the OS random number generator fails, or `cookie_name` is not a valid cookie name.
    ///
    /// ```
    /// use fastsession::testing::SpyStore;
    ///
    /// let (spy, config) = SpyStore::memory("id");
    /// assert_eq!((spy.loads(), config.cookie().name()), (0, "id"));
    /// ```
    #[must_use]
    pub fn memory(cookie_name: &str) -> (Arc<SpyStore>, SessionConfig) {
        let store = crate::store::MemoryStore::new().expect("a memory store needs only the OS RNG");
        SpyStore::in_config(store, development_cookie(cookie_name))
    }

    /// [`memory`](Self::memory) with a [`CookieStore`](crate::store::CookieStore) under a new
    /// random key instead.
    ///
    /// # Panics
    ///
    /// As [`memory`](Self::memory).
    ///
    /// ```
    /// use fastsession::testing::SpyStore;
    ///
    /// let (spy, config) = SpyStore::cookie_store("prefs");
    /// assert_eq!((spy.loads(), config.cookie().name()), (0, "prefs"));
    /// ```
    #[must_use]
    pub fn cookie_store(cookie_name: &str) -> (Arc<SpyStore>, SessionConfig) {
        let key = crate::codec::Key::generate().expect("a key needs only the OS RNG");
        let store = crate::store::CookieStore::new(&crate::codec::KeyRing::new(key));
        SpyStore::in_config(store, development_cookie(cookie_name))
    }

    /// While `on`, every load fails with an [`ErrorKind::Store`](crate::ErrorKind::Store)
    /// error (still counted) without reaching the store behind.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::MemoryStore;
    /// # use fastsession::testing::SpyStore;
    /// let spy = SpyStore::new(Arc::new(MemoryStore::new()?));
    /// spy.fail_loads(true);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn fail_loads(&self, on: bool) {
        self.fail_loads.store(on, Ordering::SeqCst);
    }

    /// While `on`, every save fails with an [`ErrorKind::Store`](crate::ErrorKind::Store)
    /// error (still counted) and nothing reaches the store behind.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use fastsession::MemoryStore;
    /// # use fastsession::testing::SpyStore;
    /// let spy = SpyStore::new(Arc::new(MemoryStore::new()?));
    /// spy.fail_saves(true);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn fail_saves(&self, on: bool) {
        self.fail_saves.store(on, Ordering::SeqCst);
    }

    /// Returns the store behind the spy.
    #[must_use]
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many times [`Store::load`] was called.
    #[must_use]
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// How many times [`Store::save`] was called, whatever its outcome.
    #[must_use]
    pub fn saves(&self) -> usize {
        self.log().saves.len()
    }

    /// How many saves of `kind` were asked for.
    #[must_use]
    pub fn saves_of(&self, kind: SaveKind) -> usize {
        self.log().saves.iter().filter(|k| **k == kind).count()
    }

    /// Returns the cookie values successful saves returned, oldest first.
    #[must_use]
    pub fn issued(&self) -> Vec<String> {
        self.log().issued.clone()
    }
}

impl Store for SpyStore {
    fn cookie_content(&self) -> CookieContent {
        self.inner.cookie_content()
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        if self.fail_loads.load(Ordering::SeqCst) {
            return StoreFuture::ready(Err(injected()));
        }
        self.inner.load(request)
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved> {
        self.log().saves.push(request.kind());
        if self.fail_saves.load(Ordering::SeqCst) {
            return StoreFuture::ready(Err(injected()));
        }
        StoreFuture::io(async move {
            let saved = self.inner.save(request).await;
            self.record_issued(&saved);
            saved
        })
    }
}

impl SpyStore {
    fn record_issued(&self, saved: &Result<Saved>) {
        if let Ok(Saved::Cookie { value, .. }) = saved {
            self.log().issued.push(value.clone());
        }
    }
}

impl fmt::Debug for SpyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let log = self.log();
        f.debug_struct("SpyStore")
            .field("inner", &self.inner)
            .field("loads", &self.loads())
            .field("saves", &log.saves)
            .field("issued", &log.issued.len())
            .finish()
    }
}
