//! The per-request registry of named sessions.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};

use super::{SessionConfig, SessionSet, StoreErrorPolicy};
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Action, ChangeSet, Record, Session, SessionId, State};
use crate::store::{CookieContent, LoadRequest, Memo, RejectReason, SaveKind, SaveRequest, Saved};
use crate::time::UnixTime;
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
    cookies: SmallVec<[HeaderValue; 1]>,
    state: Mutex<RegistryState>,
}

struct RegistryState {
    /// Sorted by cookie name, the order sessions are saved and their cookies written in.
    entries: SmallVec<[Entry; 1]>,
    no_store: bool,
}

struct Entry {
    config: SessionConfig,
    session: Session,
    /// The request carried this session's cookie (valid or not).
    had_cookie: bool,
    /// The `Set-Cookie` line of its last save, not yet written to a response.
    pending: Option<(HeaderValue, Line)>,
    /// What the store attached to the session when it loaded it, for its next save.
    memo: Option<Memo>,
    /// The values of the session's cookie when the request carried it more than once: none
    /// was trusted to load, but a logout ends every authentic one of them.
    presented: Vec<Box<str>>,
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
    fn entry_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.entries
            .as_mut_slice()
            .iter_mut()
            .find(|e| e.name() == name)
    }
}

/// What the request's `Cookie` headers hold for one name.
enum CookieLookup<'a> {
    None,
    One(&'a [u8]),
    Several,
}

/// What a queued `Set-Cookie` line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// Gives the browser a session cookie.
    Sets,
    /// Clears the cookie of a session that ended.
    Clears,
}

/// The most duplicated values of one cookie a logout tries to end.
const MAX_PRESENTED: usize = 4;

impl Sessions {
    /// A registry for a request with these headers.
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
        Sessions::with_cookies(request_headers.get_all(COOKIE).iter().cloned().collect())
    }

    /// A registry for a request with these parts.
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

    /// A registry for a request whose `Cookie` header values are these bytes, for frameworks
    /// with their own header types (actix-web). A value that is not a valid header value
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
        Sessions::with_cookies(cookies)
    }

    fn with_cookies(cookies: SmallVec<[HeaderValue; 1]>) -> Self {
        Sessions {
            set: None,
            inner: Arc::new(Inner {
                cookies,
                state: Mutex::new(RegistryState {
                    entries: SmallVec::new(),
                    no_store: true,
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RegistryState> {
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

    /// The session `config` names, loading it on first use in this request.
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
        let (outcome, reseal, memo) = store.load(request).await?.into_parts();
        match outcome {
            Ok(record) => {
                let mut state = State::with_record(record, false);
                // Signed by a retired key: signed again with the active one at the save.
                state.reseal = reseal || stale_signature;
                Ok(Entry::new(config, state, true, Vec::new(), memo))
            }
            Err(reason) => {
                reject(name, reason);
                Ok(fresh(true, Vec::new()))
            }
        }
    }

    /// Ends every authentic session among `values`, the duplicated values of the cookie of
    /// `config` that a request destroying its session carried: the user meant to log out of
    /// whichever the browser sent.
    async fn end_presented(&self, config: &SessionConfig, values: &[Box<str>]) -> Result<()> {
        let (store, name, expiry) = (config.store(), config.cookie().name(), config.expiry());
        let now = config.clock().now();
        for value in values {
            let id = match store.cookie_content() {
                CookieContent::SessionId => match parse_id(config, value) {
                    Ok((id, _)) => Some(id),
                    Err(_) => continue,
                },
                _ => None,
            };
            let value = id.as_ref().map_or(&**value, SessionId::as_str);
            let request = LoadRequest::new(name, value, id.as_ref(), expiry, now);
            let (Ok(record), ..) = store.load(request).await?.into_parts() else {
                continue;
            };
            let changes = ChangeSet::default();
            let end = SaveRequest::new(name, SaveKind::Destroy, &record, &changes, expiry, now);
            // A session another request ended meanwhile is as good as ended here.
            match store.save(end).await {
                Ok(_) => {}
                Err(e) if e.is_session_ended() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The destroyed sessions of this request whose cookie came more than once, with those
    /// values, taken so that they are ended once.
    fn take_presented(&self) -> Vec<(SessionConfig, Vec<Box<str>>)> {
        let mut out = Vec::new();
        for (config, session) in self.with_presented() {
            // The session is locked with the registry released: saves lock them the other way.
            if session.is_destroyed()
                && let Some(entry) = self.lock().entry_mut(config.cookie().name())
            {
                out.push((config, std::mem::take(&mut entry.presented)));
            }
        }
        out
    }

    /// The sessions whose cookie came more than once (usually none: nothing allocated).
    fn with_presented(&self) -> Vec<(SessionConfig, Session)> {
        self.lock()
            .entries
            .as_slice()
            .iter()
            .filter(|e| !e.presented.is_empty())
            .map(|e| (e.config.clone(), e.session.clone()))
            .collect()
    }

    /// Saves every session that needs it: modified ones, ones due for an expiry refresh, ones
    /// sealed with a retired key. Their `Set-Cookie` lines wait for
    /// [`write_headers`](Self::write_headers). Unmodified sessions cost no store I/O.
    ///
    /// Adapters call it (through [`finish`](Self::finish)) after a successful
    /// handler; a handler may call it itself to commit before the response is built.
    ///
    /// # Errors
    ///
    /// The first error among the sessions (all are attempted):
    /// [`ErrorKind::CookieTooLarge`] (that session's cookie is not set),
    /// [`ErrorKind::SessionEnded`] (its cookie is cleared), or a store error.
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
    /// sessions.get(&config).await?.set_user_id("ada");
    /// // Commit the login before answering (a store error is still the handler's to report).
    /// sessions.save().await?;
    /// let mut response = HeaderMap::new();
    /// sessions.write_headers(&mut response);
    /// assert!(response.contains_key("set-cookie"));
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn save(&self) -> Result<()> {
        let mut first_error = None;
        for (config, values) in self.take_presented() {
            if let Err(e) = self.end_presented(&config, &values).await {
                first_error.get_or_insert(e);
            }
        }
        for (config, session, had_cookie) in self.to_save() {
            if let Err(e) = self.save_one(&config, &session, had_cookie).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The sessions to save, in cookie-name order; copied so that no save runs while the
    /// registry is locked.
    fn to_save(&self) -> SmallVec<[(SessionConfig, Session, bool); 1]> {
        self.lock()
            .entries
            .as_slice()
            .iter()
            .map(|e| (e.config.clone(), e.session.clone(), e.had_cookie))
            .collect()
    }

    /// Saves one session, and then what was written to it after a `destroy`, as a new one.
    ///
    /// The session is not held during the store's work: the save takes a copy of its record
    /// (cheap: the values are shared until written) and its change set, so that a handle
    /// still in use elsewhere goes on working, and what it changes meanwhile stays for the
    /// next save.
    async fn save_one(
        &self,
        config: &SessionConfig,
        session: &Session,
        mut had_cookie: bool,
    ) -> Result<()> {
        loop {
            let Some(save) = self.begin_save(config, session, had_cookie) else {
                return Ok(());
            };
            let mut request = SaveRequest::new(
                config.cookie().name(),
                save.kind,
                &save.record,
                &save.changes,
                config.expiry(),
                save.now,
            )
            .with_memo(save.memo.as_ref());
            if save.kind == SaveKind::Regenerate {
                // The old id ends at a regeneration: the store must know before whether the
                // new cookie fits.
                let overhead = config
                    .cookie()
                    .line_for("", save.record.is_persistent())
                    .len()
                    + config.signed_id_overhead();
                request = request.with_max_cookie_value_len(
                    config.max_set_cookie_len().saturating_sub(overhead),
                );
            }
            let saved = config.store().save(request).await;
            let mut state = session.lock();
            let persistent = save.record.is_persistent();
            if let Err(e) = self.apply_outcome(config, &mut state, saved, persistent, save.now) {
                if !e.is_session_ended() {
                    // Nothing was saved: what was sent is still to send, before what came since.
                    state.changes.put_back(save.changes);
                    drop(state);
                    if let Some(entry) = self.lock().entry_mut(config.cookie().name()) {
                        entry.memo = save.memo;
                    }
                }
                return Err(e);
            }
            if !state.is_carried() {
                return Ok(());
            }
            // A destroyed session with what was written after `destroy`: now a new one.
            had_cookie = false;
        }
    }

    /// What the save of this session needs, taken from it, or `None` if it needs no save.
    fn begin_save(
        &self,
        config: &SessionConfig,
        session: &Session,
        had_cookie: bool,
    ) -> Option<PendingSave> {
        let now = config.clock().now();
        let mut state = session.lock();
        if state.is_new_and_written_after_destroy() {
            // Never saved, so nothing to end but the cookie it came with.
            if had_cookie {
                self.queue_removal(config.cookie().name(), config.cookie().removal());
            }
            state.begin_anew(now);
        }
        let kind = self.save_kind(config, &state, had_cookie, now)?;
        let mut record = state.record.clone();
        record.set_last_active(now);
        let changes = std::mem::take(&mut state.changes);
        drop(state);
        let memo = self
            .lock()
            .entry_mut(config.cookie().name())
            .and_then(|e| e.memo.take());
        Some(PendingSave {
            kind,
            now,
            record,
            changes,
            memo,
        })
    }

    /// What a save of this session must do, or `None` if it needs none (an unmodified
    /// session, or a new one destroyed before it was ever saved).
    fn save_kind(
        &self,
        config: &SessionConfig,
        state: &State,
        had_cookie: bool,
        now: UnixTime,
    ) -> Option<SaveKind> {
        match (state.action, state.is_new) {
            (Action::Destroy, true) => {
                if had_cookie {
                    self.queue_removal(config.cookie().name(), config.cookie().removal());
                }
                None
            }
            (Action::Destroy, false) => Some(SaveKind::Destroy),
            (Action::Regenerate, false) => Some(SaveKind::Regenerate),
            (_, true) if state.action == Action::Regenerate || !state.changes.is_empty() => {
                Some(SaveKind::Create)
            }
            (_, true) => None,
            (_, false) if !state.changes.is_empty() => Some(SaveKind::Update),
            (_, false) if state.reseal || config.expiry().needs_refresh(&state.record, now) => {
                Some(SaveKind::Touch)
            }
            (_, false) => None,
        }
    }

    /// Applies a save's outcome to the session and queues its header. `persistent` is what
    /// was saved.
    fn apply_outcome(
        &self,
        config: &SessionConfig,
        state: &mut State,
        saved: Result<Saved>,
        persistent: bool,
        now: UnixTime,
    ) -> Result<()> {
        let name = config.cookie().name();
        let (mut value, mut id) = match saved {
            Ok(Saved::Cookie { value, id }) => (value, id),
            Ok(Saved::Remove) => {
                self.queue_removal(name, config.cookie().removal());
                // What the handler wrote after `destroy` goes to a new session, saved next.
                state.begin_anew(now);
                return Ok(());
            }
            Err(e) => {
                if e.is_session_ended() {
                    self.queue_removal(name, config.cookie().removal());
                    *state = State::fresh(now);
                }
                return Err(e);
            }
        };
        if let Some(signer) = config.id_signer() {
            let signed = id
                .take()
                .or_else(|| SessionId::parse(&value))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Internal,
                        "a store of session ids returned a cookie value that is not a session id",
                    )
                })?;
            value = signer.sign(name, signed.as_bytes());
            id = Some(signed);
        }
        // A session with a deadline of its own gets a cookie that ends with it.
        let line = match state.record.expires_at() {
            Some(_) if persistent => {
                let max_age =
                    config
                        .expiry()
                        .cookie_max_age(&state.record, now, config.cookie().max_age());
                config
                    .cookie()
                    .persistent_cookie_line_until(&value, max_age)
            }
            _ => config.cookie().line_for(&value, persistent),
        };
        let limit = config.max_set_cookie_len();
        if line.len() > limit {
            return Err(Error::new(
                ErrorKind::CookieTooLarge {
                    size: line.len(),
                    limit,
                },
                format!("session cookie `{name}` not set"),
            ));
        }
        self.queue_line(name, line, Line::Sets);
        state.record.set_last_active(now);
        state.record.set_id(id);
        state.is_new = false;
        state.reseal = false;
        if state.action == Action::Regenerate {
            state.action = Action::Keep;
        }
        Ok(())
    }

    /// Queues a `Set-Cookie` line built for this response, without copying it.
    fn queue_line(&self, name: &str, line: String, kind: Line) {
        match HeaderValue::from_maybe_shared(bytes::Bytes::from(line)) {
            Ok(mut value) => {
                value.set_sensitive(true);
                // Only the sessions of this registry are saved.
                if let Some(entry) = self.lock().entry_mut(name) {
                    entry.pending = Some((value, kind));
                }
            }
            Err(_) => {
                tracing::error!(target: "fastsession", cookie = name, "Set-Cookie line is not a valid header")
            }
        }
    }

    /// Queues the line that clears the cookie of an ended session.
    fn queue_removal(&self, name: &str, line: &str) {
        self.queue_line(name, line.to_owned(), Line::Clears);
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

    /// The response headers for what this request did with its sessions, for adapters whose
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
        let mut registry = self.lock();
        let set_cookies: SmallVec<[(HeaderValue, Line); 1]> = registry
            .entries
            .as_mut_slice()
            .iter_mut()
            .filter_map(|e| e.pending.take())
            .collect();
        ResponseHeaders {
            vary_cookie: !registry.entries.is_empty(),
            cache_control_no_store: registry.no_store && !set_cookies.is_empty(),
            set_cookies,
        }
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

    /// The end of a request, for framework adapters: saves the sessions if the handler
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
    pub async fn finish(&self, handled: Handled, policy: StoreErrorPolicy) -> Finished {
        let saved = match handled {
            Handled::Succeeded => self.save().await,
            // A failed handler persists only what it saved itself.
            Handled::Failed => Ok(()),
        };
        let headers = self.take_response_headers();
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

    /// `true` if any session was asked for in this request.
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
        !self.lock().entries.is_empty()
    }
}

/// A save taken from a session: the kind of save due, the time it was decided at, and what
/// the store gets.
struct PendingSave {
    kind: SaveKind,
    now: UnixTime,
    record: Record,
    changes: ChangeSet,
    memo: Option<Memo>,
}

/// How a request's handler ended, as an adapter tells [`Sessions::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// With a response the sessions are saved for.
    Succeeded,
    /// With an error or a server-error response: only what the handler saved itself persists.
    Failed,
}

/// What [`Sessions::finish`] leaves an adapter to write.
#[derive(Debug)]
#[must_use = "the Set-Cookie lines are lost unless written to the response"]
pub struct Finished {
    headers: ResponseHeaders,
    error: Option<Error>,
}

impl Finished {
    /// The headers to write, and the error the response must become instead of the
    /// handler's, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Sessions;
    /// use fastsession::http::{Handled, StoreErrorPolicy};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// let (headers, error) = sessions.finish(Handled::Failed, StoreErrorPolicy::Fail).await.into_parts();
    /// assert!(error.is_none() && !headers.vary_cookie());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_parts(self) -> (ResponseHeaders, Option<Error>) {
        (self.headers, self.error)
    }
}

/// The headers a response needs for its sessions, from
/// [`Sessions::take_response_headers`].
#[derive(Debug, Clone, Default)]
#[must_use = "the Set-Cookie lines are lost unless written to the response"]
pub struct ResponseHeaders {
    vary_cookie: bool,
    /// Sorted by cookie name.
    set_cookies: SmallVec<[(HeaderValue, Line); 1]>,
    cache_control_no_store: bool,
}

impl ResponseHeaders {
    /// The response depends on the request's cookies: add `Vary: Cookie`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?;
    /// // A framework with its own header types adds `Vary: Cookie` itself.
    /// assert!(sessions.take_response_headers().vary_cookie());
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn vary_cookie(&self) -> bool {
        self.vary_cookie
    }

    /// The `Set-Cookie` lines, one per saved session, sorted by cookie name.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// sessions.save().await?;
    /// let headers = sessions.take_response_headers();
    /// // Each line goes into a `Set-Cookie` header of its own.
    /// for line in headers.set_cookies() {
    ///     assert!(line.to_str()?.starts_with("__Host-id="));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn set_cookies(&self) -> impl ExactSizeIterator<Item = &HeaderValue> {
        self.set_cookies.as_slice().iter().map(|(line, _)| line)
    }

    /// These headers for a response that failed: a server error from the handler, or a save
    /// that failed. Such a response gives the browser no session cookie, for any of its
    /// sessions, so that what failed does not stick halfway (one session's cookie set while
    /// another's save failed); lines that clear the cookie of a session that ended stay.
    pub(crate) fn for_failed_response(mut self) -> Self {
        self.set_cookies = std::mem::take(&mut self.set_cookies)
            .into_iter()
            .filter(|(_, kind)| *kind == Line::Clears)
            .collect();
        self.cache_control_no_store &= !self.set_cookies.is_empty();
        self
    }

    /// Set `Cache-Control: no-store`, replacing any other `Cache-Control`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// sessions.save().await?;
    /// // A response that sets a session cookie must not be stored by a shared cache.
    /// assert!(sessions.take_response_headers().cache_control_no_store());
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cache_control_no_store(&self) -> bool {
        self.cache_control_no_store
    }

    /// Adds these headers to `headers`.
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
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// sessions.save().await?;
    /// let mut response = HeaderMap::new();
    /// sessions.take_response_headers().write_to(&mut response);
    /// assert!(response.contains_key("set-cookie"));
    /// assert_eq!(response["cache-control"], "no-store");
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_to(self, headers: &mut HeaderMap) {
        if self.vary_cookie {
            add_vary_cookie(headers);
        }
        for (line, _) in self.set_cookies {
            headers.append(SET_COOKIE, line);
        }
        if self.cache_control_no_store {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
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

/// The session id a cookie value names for `config`: a bare id, or with
/// [`SessionConfig::with_signed_id`] a signed one (then also whether a retired key signed it).
fn parse_id(
    config: &SessionConfig,
    value: &str,
) -> std::result::Result<(SessionId, bool), RejectReason> {
    let Some(signer) = config.id_signer() else {
        return SessionId::parse(value)
            .map(|id| (id, false))
            .ok_or(RejectReason::Malformed);
    };
    // One length, one canonical text: anything else is refused before any decoding.
    if value.len() != super::config::SIGNED_ID_LEN {
        return Err(RejectReason::Malformed);
    }
    let verified = signer
        .verify(config.cookie().name(), value)
        .map_err(RejectReason::of_open_error)?;
    // The length check leaves 32 bytes; were it otherwise, an authentic value of ours that is
    // not an id.
    let bytes = verified
        .plaintext()
        .try_into()
        .map_err(|_| RejectReason::Corrupt)?;
    Ok((SessionId::from_bytes(bytes), verified.is_stale()))
}

fn reject(name: &str, reason: RejectReason) {
    // Every rejection at `debug`; at `warn`/`info` only the summary of `events`, since a
    // client can cause one per request.
    tracing::debug!(
        target: "fastsession::security",
        cookie = name,
        reason = reason.as_str(),
        "session cookie rejected; starting a fresh session"
    );
    crate::events::record(crate::events::Event::Rejected(reason));
}

/// Finds the cookie called `name` in the `Cookie` headers, without allocating.
///
/// More than one cookie of that name (`id=A; id=B`, or one for `/` and one for `/sub`, or
/// one tossed in from a parent domain) is reported as [`CookieLookup::Several`]: which one the
/// browser meant cannot be known, so none is trusted.
fn find_cookie<'a>(headers: &'a [HeaderValue], name: &str) -> CookieLookup<'a> {
    let mut found = CookieLookup::None;
    for header in headers {
        let bytes = header.as_bytes();
        let mut start = 0;
        // memchr finds the separators with SIMD; a sealed cookie is a long run without one.
        let ends = memchr::memchr_iter(b';', bytes).chain(std::iter::once(bytes.len()));
        for end in ends {
            let pair = bytes[start..end].trim_ascii();
            start = end + 1;
            let Some(rest) = pair.strip_prefix(name.as_bytes()) else {
                continue;
            };
            let Some(value) = rest.strip_prefix(b"=") else {
                continue;
            };
            found = match found {
                CookieLookup::None => CookieLookup::One(value),
                _ => return CookieLookup::Several,
            };
        }
    }
    found
}

/// Every value of the cookie called `name` in the `Cookie` headers, at most
/// [`MAX_PRESENTED`] of them, each at most the longest sealed value.
fn all_cookies(headers: &[HeaderValue], name: &str) -> Vec<Box<str>> {
    let mut out: Vec<Box<str>> = Vec::new();
    for header in headers {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let Some(value) = pair
                .trim_ascii()
                .strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
            else {
                continue;
            };
            if let Ok(value) = std::str::from_utf8(value)
                && value.len() <= crate::codec::MAX_SEALED_LEN
                && out.len() < MAX_PRESENTED
                && !out.iter().any(|v| v.as_ref() == value)
            {
                out.push(value.into());
            }
        }
    }
    out
}

fn add_vary_cookie(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("cookie") || t.trim() == "*")
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> Vec<HeaderValue> {
        values
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect()
    }

    #[test]
    fn cookie_lookup() {
        let h = headers(&["a=1; id=xyz;b=2", "c=3"]);
        assert!(matches!(find_cookie(&h, "id"), CookieLookup::One(b"xyz")));
        assert!(matches!(find_cookie(&h, "i"), CookieLookup::None));
        assert!(matches!(find_cookie(&h, "c"), CookieLookup::One(b"3")));
        let dup = headers(&["id=A; id=B"]);
        assert!(matches!(find_cookie(&dup, "id"), CookieLookup::Several));
        let split = headers(&["id=A", "x=1; id=B"]);
        assert!(matches!(find_cookie(&split, "id"), CookieLookup::Several));
        assert!(matches!(
            find_cookie(&headers(&["id="]), "id"),
            CookieLookup::One(b"")
        ));
    }

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

    mod signed_ids {
        use super::*;
        use crate::codec::{Key, KeyRing};
        use crate::http::CookieConfig;
        use crate::store::{CookieStore, MemoryStore};
        use proptest::prelude::*;
        use std::sync::LazyLock;

        fn keys(id: u32) -> KeyRing {
            let secret: Vec<u8> = (0..32u8).map(|i| i ^ 0x5c).collect();
            KeyRing::new(Key::from_secret(&secret).unwrap().with_id(id))
        }

        fn memory() -> SessionConfig {
            SessionConfig::new(
                MemoryStore::new().unwrap(),
                CookieConfig::new("id").unwrap(),
            )
        }

        static SIGNED: LazyLock<SessionConfig> =
            LazyLock::new(|| memory().with_signed_id(&keys(1)));
        static PLAIN: LazyLock<SessionConfig> = LazyLock::new(memory);

        #[test]
        fn the_option_applies_to_stores_of_ids_only() {
            assert!(SIGNED.id_signer().is_some());
            assert_eq!(SIGNED.signed_id_overhead(), 28);
            assert!(PLAIN.id_signer().is_none());
            assert_eq!(PLAIN.signed_id_overhead(), 0);
            let cookie =
                SessionConfig::new(CookieStore::new(&keys(1)), CookieConfig::new("c").unwrap())
                    .with_signed_id(&keys(1));
            assert!(cookie.id_signer().is_none());
            assert_eq!(cookie.signed_id_overhead(), 0);
            let shown = format!("{:?}", *SIGNED);
            assert!(
                shown.contains(
                    r#"id_signer: Some(Signer { purpose: "signed-session-id", key_ids: [1], .. })"#
                ),
                "{shown}"
            );
        }

        #[test]
        fn a_retired_key_verifies_and_asks_for_a_new_signature() {
            let old = memory().with_signed_id(&keys(1));
            let secret: Vec<u8> = (0..32u8).map(|i| i ^ 0x5c).collect();
            let ring = keys(2)
                .with_retired(Key::from_secret(&secret).unwrap())
                .unwrap();
            let rotated = memory().with_signed_id(&ring);
            let id = SessionId::generate().unwrap();
            let signed = old.id_signer().unwrap().sign("__Host-id", id.as_bytes());
            assert_eq!(parse_id(&rotated, &signed), Ok((id.clone(), true)));
            assert_eq!(parse_id(&old, &signed), Ok((id, false)));
            assert_eq!(
                parse_id(&memory().with_signed_id(&keys(2)), &signed),
                Err(RejectReason::UnknownKey)
            );
        }

        proptest! {
            /// With the option, exactly the signed ids parse, to their id; bare ids and any
            /// other text are refused. Without it, signed ids are refused.
            #[test]
            fn only_signed_ids_parse(bytes in any::<[u8; 32]>(), text in "\\PC{0,100}") {
                let id = SessionId::from_bytes(bytes);
                let signed = SIGNED.id_signer().unwrap().sign("__Host-id", &bytes);
                prop_assert_eq!(signed.len(), crate::http::config::SIGNED_ID_LEN);
                prop_assert_eq!(parse_id(&SIGNED, &signed), Ok((id.clone(), false)));
                prop_assert_eq!(parse_id(&SIGNED, id.as_str()), Err(RejectReason::Malformed));
                prop_assert_eq!(parse_id(&PLAIN, &signed), Err(RejectReason::Malformed));
                prop_assert_eq!(parse_id(&PLAIN, id.as_str()), Ok((id, false)));
                let other = SIGNED.id_signer().unwrap().sign("__Host-other", &bytes);
                prop_assert_eq!(parse_id(&SIGNED, &other), Err(RejectReason::NotAuthentic));
                prop_assert!(parse_id(&SIGNED, &text).is_err());
            }
        }
    }

    #[test]
    fn vary_is_added_once() {
        let mut h = HeaderMap::new();
        h.append(VARY, HeaderValue::from_static("Accept-Encoding, cookie"));
        add_vary_cookie(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        let mut h = HeaderMap::new();
        add_vary_cookie(&mut h);
        add_vary_cookie(&mut h);
        assert_eq!(h.get_all(VARY).iter().collect::<Vec<_>>(), ["Cookie"]);
    }
}
