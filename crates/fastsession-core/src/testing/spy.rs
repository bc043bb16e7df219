//! A [`Store`] wrapper that counts what the registry asks of the store under test.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::Result;
use crate::store::{
    BoxFuture, CookieContent, LoadRequest, Loaded, SaveKind, SaveRequest, Saved, Store,
};

/// Wraps a store and records every call made to it: how many loads, which saves, and the cookie
/// values the saves handed out.
///
/// The conformance checks put it between the registry and the store under test, to prove that a
/// hostile cookie never reaches the store and that an untouched session costs no store I/O.
/// `Debug` shows counts only, never cookie values.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
/// use fastsession_core::store::{MemoryStore, Store};
/// use fastsession_core::testing::SpyStore;
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
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    saves: Vec<SaveKind>,
    /// Cookie values of successful saves, in the order they completed.
    issued: Vec<String>,
}

impl SpyStore {
    /// A spy in front of `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Store>) -> Self {
        SpyStore {
            inner,
            loads: AtomicUsize::new(0),
            log: Mutex::default(),
        }
    }

    /// The store behind the spy.
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

    /// The cookie values successful saves returned, oldest first.
    #[must_use]
    pub fn issued(&self) -> Vec<String> {
        self.log().issued.clone()
    }
}

impl Store for SpyStore {
    fn cookie_content(&self) -> CookieContent {
        self.inner.cookie_content()
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> BoxFuture<'a, Result<Loaded>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(request)
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> BoxFuture<'a, Result<Saved>> {
        self.log().saves.push(request.kind());
        Box::pin(async move {
            let saved = self.inner.save(request).await;
            if let Ok(Saved::Cookie { value, .. }) = &saved {
                self.log().issued.push(value.clone());
            }
            saved
        })
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
