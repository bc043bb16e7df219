//! The per-request registry of named sessions.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use super::cookies::{CookieLookup, all_cookies, find_cookie, parse_id, reject};
use super::response::Line;
use super::save::save_entries;
use super::{Finished, Handled, ResponseHeaders, SessionConfig, SessionSet, StoreErrorPolicy};
use crate::error::Result;
use crate::session::{Session, SessionId, State};
use crate::store::{CookieContent, LoadRequest, Memo, RejectReason};
use smallvec::SmallVec;

/// The sessions of one request: loaded lazily by name, saved together.
///
/// Create one per request from its headers (this copies only the `Cookie` header handles and
/// parses nothing), ask it for sessions with [`get`](Self::get), and after the handler call
/// [`save_all`](Self::save_all) with the response headers. It lives in the request (for
/// example in its extensions), never in a global, and is cheap to clone: clones share the same
/// sessions.
///
/// Writing the response, it adds `Vary: Cookie` if any session was asked for, one
/// `Set-Cookie` per session that changed (sorted by cookie name), and `Cache-Control: no-store`
/// when it sets a cookie, unless turned off with
/// [`set_cache_control_no_store`](Self::set_cache_control_no_store).
///
/// # Examples
///
/// ```
/// use fastsession::{Key, KeyRing};
/// use fastsession::{CookieConfig, SessionConfig, Sessions};
/// use fastsession::CookieStore;
/// use http::HeaderMap;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let keys = KeyRing::new(Key::generate()?);
/// let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("id")?);
///
/// // First request: no cookie yet.
/// let sessions = Sessions::new(&HeaderMap::new());
/// let session = sessions.get(&config).await?;
/// session.insert("name", "gopher")?;
/// let mut response = HeaderMap::new();
/// sessions.save_all(&mut response).await?;
/// let set_cookie = response["set-cookie"].to_str()?;
/// assert!(set_cookie.starts_with("__Host-id="));
///
/// // Next request sends the cookie back.
/// let mut request = HeaderMap::new();
/// request.insert("cookie", set_cookie.split(';').next().unwrap().parse()?);
/// let sessions = Sessions::new(&request);
/// let session = sessions.get(&config).await?;
/// assert_eq!(session.get::<String>("name")?.as_deref(), Some("gopher"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
    /// The sessions a middleware serves, by name (see [`with_set`](Self::with_set)).
    pub(super) set: Option<Arc<SessionSet>>,
}

struct Inner {
    /// The request's `Cookie` header values.
    cookies: CookieHeaders,
    /// Whether a session was loaded: read without the lock by a middleware after every
    /// handler, most of which load none.
    accessed: AtomicBool,
    state: Mutex<RegistryState>,
}

/// A request's `Cookie` header values, kept past the request: usually one, sometimes none,
/// several over HTTP/2 (which may split the header).
enum CookieHeaders {
    One(HeaderValue),
    Many(Vec<HeaderValue>),
}

impl CookieHeaders {
    fn as_slice(&self) -> &[HeaderValue] {
        match self {
            CookieHeaders::One(value) => std::slice::from_ref(value),
            CookieHeaders::Many(values) => values,
        }
    }
}

pub(super) struct RegistryState {
    /// Sorted by cookie name, the order sessions are saved and their cookies written in.
    pub(super) entries: SmallVec<[Entry; 1]>,
    no_store: bool,
}

pub(super) struct Entry {
    pub(super) config: SessionConfig,
    pub(super) session: Session,
    /// The request carried this session's cookie (valid or not).
    pub(super) had_cookie: bool,
    /// The `Set-Cookie` line of its last save, not yet written to a response.
    pub(super) pending: Option<(HeaderValue, Line)>,
    /// What the store attached to the session when it loaded it, for its next save.
    pub(super) memo: Option<Memo>,
    /// The values of the session's cookie when the request carried it more than once: none
    /// was trusted to load, but a logout ends every authentic one of them.
    pub(super) presented: Vec<Box<str>>,
}

impl Entry {
    fn new(
        config: &SessionConfig,
        state: State,
        had_cookie: bool,
        presented: Vec<Box<str>>,
        memo: Option<Memo>,
    ) -> Self {
        Entry {
            config: config.clone(),
            session: Session::from_state(state),
            had_cookie,
            pending: None,
            memo,
            presented,
        }
    }

    fn name(&self) -> &str {
        self.config.cookie().name()
    }
}

impl RegistryState {
    pub(super) fn entry_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.entries
            .as_mut_slice()
            .iter_mut()
            .find(|e| e.name() == name)
    }

    fn take_response_headers(&mut self) -> ResponseHeaders {
        // Pushed one by one: `collect` goes through `SmallVec::extend`, which reserves from a
        // size hint `filter_map` cannot give and costs more than the one line it usually moves.
        let mut set_cookies: SmallVec<[(HeaderValue, Line); 1]> = SmallVec::new();
        for entry in self.entries.as_mut_slice() {
            if let Some(line) = entry.pending.take() {
                set_cookies.push(line);
            }
        }
        ResponseHeaders {
            vary_cookie: !self.entries.is_empty(),
            cache_control_no_store: self.no_store && !set_cookies.is_empty(),
            set_cookies,
        }
    }
}
impl Sessions {
    /// Returns a registry for a request with these headers.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Sessions;
    ///
    /// // In a hyper service: one registry per request, from its headers.
    /// fn handle(request: http::Request<()>) -> http::Response<()> {
    ///     let sessions = Sessions::new(request.headers());
    ///     // ... sessions.get(&config), then sessions.save_all(response.headers_mut()) ...
    ///     # let _ = sessions;
    ///     http::Response::new(())
    /// }
    /// # let _ = handle;
    /// ```
    #[must_use]
    pub fn new(request_headers: &HeaderMap) -> Self {
        let mut values = request_headers.get_all(COOKIE).iter();
        let cookies = match (values.next(), values.next()) {
            (Some(one), None) => CookieHeaders::One(one.clone()),
            (None, _) => CookieHeaders::Many(Vec::new()),
            (Some(first), Some(second)) => {
                CookieHeaders::Many([first, second].into_iter().chain(values).cloned().collect())
            }
        };
        Sessions::with_cookies(cookies)
    }

    /// Returns a registry for a request with these parts.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Sessions;
    ///
    /// let (parts, _body) = http::Request::builder()
    ///     .header("cookie", "id=abc")
    ///     .body(())?
    ///     .into_parts();
    /// // Nothing is parsed yet: only the `Cookie` headers are kept.
    /// let sessions = Sessions::from_parts(&parts);
    /// assert!(!sessions.is_accessed());
    /// # Ok::<(), http::Error>(())
    /// ```
    #[must_use]
    pub fn from_parts(parts: &http::request::Parts) -> Self {
        Sessions::new(&parts.headers)
    }

    /// Returns a registry for a request whose `Cookie` header values are these bytes, for
    /// frameworks with their own header types (actix-web). A value that is not a valid header value
    /// cannot have come from a parsed request and is ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Sessions;
    ///
    /// let sessions = Sessions::from_cookie_headers([&b"id=abc; theme=dark"[..]]);
    /// assert!(!sessions.is_accessed());
    /// ```
    #[must_use]
    pub fn from_cookie_headers<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let cookies = values
            .into_iter()
            .filter_map(|v| HeaderValue::from_bytes(v).ok())
            .collect();
        Sessions::with_cookies(CookieHeaders::Many(cookies))
    }

    fn with_cookies(cookies: CookieHeaders) -> Self {
        Sessions {
            set: None,
            inner: Arc::new(Inner {
                cookies,
                accessed: AtomicBool::new(false),
                state: Mutex::new(RegistryState {
                    entries: SmallVec::new(),
                    no_store: true,
                }),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, RegistryState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Chooses whether responses that set a cookie get `Cache-Control: no-store` (default
    /// yes, replacing any other `Cache-Control`). Turn it off only if the application sets a
    /// `Cache-Control` that keeps shared caches from storing the response.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    /// use http::HeaderMap;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&HeaderMap::new());
    /// // This application marks every response `Cache-Control: private` itself.
    /// sessions.set_cache_control_no_store(false);
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// let mut response = HeaderMap::new();
    /// response.insert("cache-control", "private".parse()?);
    /// sessions.save_all(&mut response).await?;
    /// assert_eq!(response["cache-control"], "private");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_cache_control_no_store(&self, no_store: bool) {
        self.lock().no_store = no_store;
    }

    /// Returns the session `config` names, loading it on first use in this request.
    ///
    /// A missing, malformed, tampered, expired or duplicated cookie yields a fresh session and
    /// a `tracing` event (target `fastsession::security`) with the reason; it is not an error.
    ///
    /// # Errors
    ///
    /// The store's error if loading failed (never an anonymous session in its place).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// let session = sessions.get(&config).await?;
    /// session.insert("cart", vec![42])?;
    /// // A second `get` in the same request is the same session, not a second load.
    /// let again = sessions.get(&config).await?;
    /// assert_eq!(again.get::<Vec<u32>>("cart")?, Some(vec![42]));
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn get(&self, config: &SessionConfig) -> Result<Session> {
        let name = config.cookie().name();
        if let Some(session) = self.find(name) {
            return Ok(session);
        }
        let entry = self.load(config).await?;
        let mut registry = self.lock();
        let entries = registry.entries.as_slice();
        let index = entries.partition_point(|e| e.name() < name);
        // Another task of this request may have loaded it meanwhile: keep the first.
        if let Some(entry) = entries.get(index).filter(|e| e.name() == name) {
            return Ok(entry.session.clone());
        }
        let session = entry.session.clone();
        registry.entries.insert(index, entry);
        self.inner.accessed.store(true, Ordering::Release);
        Ok(session)
    }

    fn find(&self, name: &str) -> Option<Session> {
        let registry = self.lock();
        registry
            .entries
            .as_slice()
            .iter()
            .find(|e| e.name() == name)
            .map(|e| e.session.clone())
    }

    async fn load(&self, config: &SessionConfig) -> Result<Entry> {
        let now = config.clock().now();
        let name = config.cookie().name();
        let fresh = |had_cookie, presented| {
            let mut state = State::fresh(now);
            state
                .record
                .set_persistent(config.cookie().is_persistent_by_default());
            Entry::new(config, state, had_cookie, presented, None)
        };
        let value = match find_cookie(self.inner.cookies.as_slice(), name) {
            CookieLookup::None => return Ok(fresh(false, Vec::new())),
            CookieLookup::Several => {
                reject(name, RejectReason::DuplicateCookies);
                let presented = all_cookies(self.inner.cookies.as_slice(), name);
                return Ok(fresh(true, presented));
            }
            CookieLookup::One(value) => value,
        };
        let Some(value) = std::str::from_utf8(value)
            .ok()
            .filter(|v| v.len() <= crate::codec::MAX_SEALED_LEN)
        else {
            reject(name, RejectReason::Malformed);
            return Ok(fresh(true, Vec::new()));
        };
        let store = config.store();
        // A malformed, unsigned or forged id goes no further: no store sees it.
        let (id, stale_signature) = match store.cookie_content() {
            CookieContent::SessionId => match parse_id(config, value) {
                Ok((id, stale)) => (Some(id), stale),
                Err(reason) => {
                    reject(name, reason);
                    return Ok(fresh(true, Vec::new()));
                }
            },
            _ => (None, false),
        };
        // Stores of ids see the id as they wrote it, signed or not.
        let value = id.as_ref().map_or(value, SessionId::as_str);
        let request = LoadRequest::new(name, value, id.as_ref(), config.expiry(), now);
        let loaded = store.load(request).await?;
        match loaded.outcome {
            Ok(record) => {
                let mut state = State::with_record(record, false);
                // Signed by a retired key: signed again with the active one at the save.
                state.reseal = loaded.reseal || stale_signature;
                state.hidden_values = loaded.hidden_values;
                Ok(Entry::new(config, state, true, Vec::new(), loaded.memo))
            }
            Err(reason) => {
                reject(name, reason);
                Ok(fresh(true, Vec::new()))
            }
        }
    }

    /// Writes the response headers for what this request did with its sessions: `Vary:
    /// Cookie` if any session was asked for, the pending `Set-Cookie` lines, and
    /// `Cache-Control: no-store` with them.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    /// use http::HeaderMap;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&HeaderMap::new());
    /// // Only read: no cookie to set, but the answer depends on the cookie.
    /// let _ = sessions.get(&config).await?.get::<String>("name")?;
    /// sessions.save().await?;
    /// let mut response = HeaderMap::new();
    /// sessions.write_headers(&mut response);
    /// assert_eq!(response["vary"], "Cookie");
    /// assert!(!response.contains_key("set-cookie"));
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        self.take_response_headers().write_to(headers);
    }

    /// Returns the response headers for what this request did with its sessions, for adapters whose
    /// framework has its own header types. Takes the pending `Set-Cookie` lines: a second
    /// call returns only lines from saves made since.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Sessions;
    ///
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// let headers = sessions.take_response_headers();
    /// assert!(!headers.vary_cookie() && headers.set_cookies().len() == 0);
    /// ```
    pub fn take_response_headers(&self) -> ResponseHeaders {
        self.lock().take_response_headers()
    }

    /// [`save`](Self::save), then [`write_headers`](Self::write_headers).
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save); the headers of the sessions that did save are written anyway.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// // The end of a hyper service: save what the handler changed, then answer with the cookies.
    /// async fn finish(sessions: &Sessions, mut response: http::Response<String>) -> http::Response<String> {
    ///     if let Err(error) = sessions.save_all(response.headers_mut()).await {
    ///         // The error's status (503 for a store that is down); the cookies that did save stay.
    ///         *response.status_mut() = error.status();
    ///     }
    ///     response
    /// }
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?.insert("theme", "dark")?;
    /// let response = finish(&sessions, http::Response::new("ok".to_owned())).await;
    /// assert!(response.headers().contains_key("set-cookie"));
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn save_all(&self, response_headers: &mut HeaderMap) -> Result<()> {
        let result = self.save().await;
        self.write_headers(response_headers);
        result
    }

    /// Returns the end of a request, for framework adapters: saves the sessions if the handler
    /// succeeded, and says what the response gets. With [`StoreErrorPolicy::Fail`], a failed
    /// save comes back as the error the response must become, with headers that set no
    /// session cookie; with [`StoreErrorPolicy::KeepResponse`] it is only logged. Every
    /// failure is logged once, here.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::http::{Handled, StoreErrorPolicy};
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// let (headers, error) = sessions
    ///     .finish(Handled::Succeeded, StoreErrorPolicy::Fail)
    ///     .await
    ///     .into_parts();
    /// assert!(error.is_none());
    /// assert_eq!(headers.set_cookies().len(), 1);
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn finish(mut self, handled: Handled, policy: StoreErrorPolicy) -> Finished {
        let succeeded = handled == Handled::Succeeded;
        // A failed handler persists only what it saved itself.
        let (saved, headers) = match Arc::get_mut(&mut self.inner) {
            // No clone left: the sessions are this call's alone, saved with no registry lock.
            Some(inner) => {
                let registry = inner
                    .state
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner);
                let saved = if succeeded {
                    save_entries(&mut registry.entries).await
                } else {
                    Ok(())
                };
                (saved, registry.take_response_headers())
            }
            // A clone kept elsewhere (a task the handler spawned): rare, and boxed, so that the
            // common future stays small enough for the allocator's fast path.
            None => Box::pin(self.finish_shared(succeeded)).await,
        };
        let Err(error) = saved else {
            return Finished {
                headers,
                error: None,
            };
        };
        crate::events::report_failure(crate::events::Action::Save, &error);
        match policy {
            StoreErrorPolicy::KeepResponse => Finished {
                headers,
                error: None,
            },
            _ => Finished {
                headers: headers.for_failed_response(),
                error: Some(error),
            },
        }
    }

    async fn finish_shared(&self, succeeded: bool) -> (Result<()>, ResponseHeaders) {
        let saved = if succeeded { self.save().await } else { Ok(()) };
        (saved, self.take_response_headers())
    }

    /// Returns `true` if any session was asked for in this request.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// // A handler that never asked for a session: nothing to save, no `Vary: Cookie`.
    /// assert!(!sessions.is_accessed());
    /// sessions.get(&config).await?;
    /// assert!(sessions.is_accessed());
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn is_accessed(&self) -> bool {
        self.inner.accessed.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = self.lock();
        let entries = registry.entries.as_slice();
        let names: Vec<&str> = entries.iter().map(Entry::name).collect();
        let pending: Vec<&str> = entries
            .iter()
            .filter(|e| e.pending.is_some())
            .map(Entry::name)
            .collect();
        f.debug_struct("Sessions")
            .field("cookie_headers", &self.inner.cookies.as_slice().len())
            .field("loaded", &names)
            .field("pending", &pending)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adapters run these futures on multi-threaded executors.
    #[test]
    fn registry_and_its_futures_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let keys = crate::codec::KeyRing::new(crate::codec::Key::generate().unwrap());
        let config = SessionConfig::new(
            crate::store::CookieStore::new(&keys),
            super::super::CookieConfig::new("id").unwrap(),
        );
        let sessions = Sessions::new(&HeaderMap::new());
        assert_send(&sessions);
        assert_send(&sessions.get(&config));
        assert_send(&sessions.save());
        let mut headers = HeaderMap::new();
        assert_send(&sessions.save_all(&mut headers));
    }

    /// Adapters box the future of `finish` for every request that used a session. Over about
    /// 1 KiB, glibc's allocator serves that box from its slow path, which cost the cookie
    /// store 550 instructions a request when it reached 1 112 bytes.
    #[test]
    fn the_future_of_finish_stays_small() {
        let sessions = Sessions::new(&HeaderMap::new());
        let finish = sessions.finish(Handled::Succeeded, StoreErrorPolicy::Fail);
        let size = std::mem::size_of_val(&finish);
        assert!(size <= 640, "the future of `finish` grew to {size} bytes");
    }
}
