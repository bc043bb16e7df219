//! What every check drives: a store behind a spy, a manual clock, and requests that go through
//! the public registry API exactly as an application's would.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Barrier;

use super::spy::SpyStore;
use super::{Accounts, Inspect, Instance, StoreUnderTest};
use crate::error::{ErrorKind, Result};
use crate::http::{CookieConfig, SessionConfig, Sessions};
use crate::session::{Expiry, Record, Session, SessionId};
use crate::store::CookieContent;
use crate::time::{Clock as _, ManualClock, UnixTime};

/// Where every check's clock starts (2023-11-14T22:13:20Z).
pub(crate) const T0: u64 = 1_700_000_000;
/// The idle timeout of the checks' default expiry, in seconds.
pub(crate) const IDLE: u64 = 600;
/// The absolute lifetime of the checks' default expiry, in seconds.
pub(crate) const ABSOLUTE: u64 = 3600;
/// How often each concurrency scenario is repeated with real concurrent tasks.
pub const ROUNDS: usize = 24;

/// Panics with the check's name and a message.
macro_rules! ensure {
    ($world:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            $world.fail(format_args!($($msg)+))
        }
    };
}
pub(crate) use ensure;

/// The default expiry of the checks: 10 minutes idle, 1 hour absolute, refresh after a quarter.
pub(crate) fn default_expiry() -> Expiry {
    Expiry::default()
        .with_idle_timeout(Duration::from_secs(IDLE))
        .and_then(|e| e.with_absolute_lifetime(Duration::from_secs(ABSOLUTE)))
        .unwrap_or_else(|e| panic!("the checks' expiry is valid: {e}"))
}

/// One check's world.
pub(crate) struct World {
    check: &'static str,
    clock: ManualClock,
    pub(crate) spy: Arc<SpyStore>,
    pub(crate) config: SessionConfig,
    pub(crate) inspect: Option<Arc<dyn Inspect>>,
    pub(crate) accounts: Option<Arc<dyn Accounts>>,
    /// The cookie holds a [`SessionId`] (the store keeps the session).
    pub(crate) server_side: bool,
    /// The store parses cookie values itself (the registry parses ids for the others).
    pub(crate) store_parses_cookie: bool,
    /// Concurrent change sets are merged.
    pub(crate) merges: bool,
    /// An ended session's old cookie loads nothing.
    pub(crate) revokes: bool,
    /// Whatever the store needs kept alive (dropped after the store, at the end of the check).
    _guards: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

/// What the suite expects of a store.
pub(crate) struct Abilities {
    /// Sessions live on the server; the cookie holds their id.
    pub(crate) server_side: bool,
    /// Concurrent change sets are merged.
    pub(crate) merges: bool,
    /// An ended session's old cookie loads nothing.
    pub(crate) revokes: bool,
}

impl World {
    /// The cookie the browser holds after `reply` to an update or a refresh of the session
    /// `old` names: `old` itself for a store of session ids, whose response must not send
    /// that same cookie again; the new value for the others, which must send one.
    #[track_caller]
    pub(crate) fn rewritten(&self, reply: &Reply, old: &str, what: &str) -> String {
        if self.store_parses_cookie {
            return reply.token(what);
        }
        reply.ok(what).sets_nothing(what);
        old.to_owned()
    }

    /// A fresh store from `sut`, with the default expiry.
    pub(crate) fn new(sut: &StoreUnderTest, check: &'static str) -> Arc<Self> {
        World::with_expiry(sut, check, default_expiry())
    }

    pub(crate) fn with_expiry(
        sut: &StoreUnderTest,
        check: &'static str,
        expiry: Expiry,
    ) -> Arc<Self> {
        let instance = sut.instance();
        let server_side = sut
            .server_side
            .unwrap_or(instance.store.cookie_content() == CookieContent::SessionId);
        let merges = sut.merges.unwrap_or(server_side);
        let revokes = sut.revokes.unwrap_or(server_side);
        World::from_instance(
            instance,
            check,
            expiry,
            Abilities {
                server_side,
                merges,
                revokes,
            },
        )
    }

    pub(crate) fn from_instance(
        instance: Instance,
        check: &'static str,
        expiry: Expiry,
        abilities: Abilities,
    ) -> Arc<Self> {
        let Abilities {
            server_side,
            merges,
            revokes,
        } = abilities;
        let store_parses_cookie = instance.store.cookie_content() != CookieContent::SessionId;
        let clock = ManualClock::new(UnixTime::from_secs(T0));
        let spy = Arc::new(SpyStore::new(instance.store));
        let cookie = CookieConfig::new("sid").unwrap_or_else(|e| panic!("valid cookie name: {e}"));
        let config = SessionConfig::with_shared_store(spy.clone(), cookie)
            .with_clock(clock.clone())
            .with_expiry(expiry);
        Arc::new(World {
            check,
            clock,
            spy,
            config,
            inspect: instance.inspect,
            accounts: instance.accounts,
            server_side,
            store_parses_cookie,
            merges,
            revokes,
            _guards: instance.guards,
        })
    }

    /// Fails the check.
    #[track_caller]
    pub(crate) fn fail(&self, message: fmt::Arguments<'_>) -> ! {
        panic!("conformance check `{}` failed: {message}", self.check)
    }

    pub(crate) fn name(&self) -> &str {
        self.config.cookie().name()
    }

    pub(crate) fn now(&self) -> UnixTime {
        self.clock.now()
    }

    pub(crate) fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    /// Request headers carrying the session cookie with exactly these value bytes.
    pub(crate) fn cookie_bytes(&self, value: &[u8]) -> HeaderMap {
        let mut line = format!("{}=", self.name()).into_bytes();
        line.extend_from_slice(value);
        let mut headers = HeaderMap::new();
        match HeaderValue::from_bytes(&line) {
            Ok(v) => {
                headers.insert(COOKIE, v);
            }
            Err(_) => self.fail(format_args!(
                "test input {value:?} is not a valid header value"
            )),
        }
        headers
    }

    /// Loads the session as a request with `token` as its cookie (or none) would.
    pub(crate) async fn open(&self, token: Option<&str>) -> Pending {
        let headers = token.map_or_else(HeaderMap::new, |t| self.cookie_bytes(t.as_bytes()));
        self.open_headers(&headers).await
    }

    /// Loads the session as a request with these headers would.
    pub(crate) async fn open_headers(&self, headers: &HeaderMap) -> Pending {
        let sessions = Sessions::new(headers);
        let session = match sessions.get(&self.config).await {
            Ok(session) => session,
            Err(e) => self.fail(format_args!("loading the session failed: {e} ({e:?})")),
        };
        let was_new = session.is_new();
        Pending {
            sessions,
            session,
            was_new,
        }
    }

    /// Ends the request: `save_all`, then checks what every response must carry (case 41).
    pub(crate) async fn close(&self, pending: Pending) -> Reply {
        let mut headers = HeaderMap::new();
        let result = pending.sessions.save_all(&mut headers).await;
        let vary = headers.get_all(VARY).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("cookie"))
            })
        });
        ensure!(
            self,
            vary,
            "a response that used the session lacks `Vary: Cookie`"
        );
        let prefix = format!("{}=", self.name());
        let mut lines = Vec::new();
        for value in headers.get_all(SET_COOKIE) {
            match value.to_str() {
                Ok(line) if line.starts_with(&prefix) => lines.push(line.to_owned()),
                _ => self.fail(format_args!("unexpected Set-Cookie header")),
            }
        }
        ensure!(
            self,
            lines.len() <= 1,
            "the response sets the session cookie {} times",
            lines.len()
        );
        if !lines.is_empty() {
            ensure!(
                self,
                headers.get(CACHE_CONTROL).is_some_and(|v| v == "no-store"),
                "a response that sets the session cookie lacks `Cache-Control: no-store`"
            );
        }
        Reply {
            check: self.check,
            result,
            was_new: pending.was_new,
            line: lines.pop(),
            removal: self.config.cookie().removal().to_owned(),
            prefix,
        }
    }

    /// One whole request: load, run `handler`, save.
    pub(crate) async fn send(&self, token: Option<&str>, handler: impl FnOnce(&Session)) -> Reply {
        let pending = self.open(token).await;
        handler(&pending.session);
        self.close(pending).await
    }

    /// One whole request with arbitrary request headers.
    pub(crate) async fn send_headers(
        &self,
        headers: &HeaderMap,
        handler: impl FnOnce(&Session),
    ) -> Reply {
        let pending = self.open_headers(headers).await;
        handler(&pending.session);
        self.close(pending).await
    }

    /// Creates a session holding `key = value` and returns its cookie value.
    pub(crate) async fn create(&self, key: &str, value: impl Serialize) -> String {
        let reply = self.send(None, |s| put(self, s, key, value)).await;
        reply.token("creating a session")
    }

    /// The session `token` loads, without saving anything; `None` if it loads nothing.
    pub(crate) async fn peek(&self, token: &str) -> Option<Session> {
        let pending = self.open(Some(token)).await;
        (!pending.was_new).then_some(pending.session)
    }

    /// The session `token` loads; fails the check if it loads nothing.
    pub(crate) async fn live(&self, token: &str, what: &str) -> Session {
        match self.peek(token).await {
            Some(session) => session,
            None => self.fail(format_args!("{what}: the session cookie loads nothing")),
        }
    }

    /// What the store holds for the id `token`, expired or not; `None` if it cannot be asked.
    pub(crate) async fn stored(&self, token: &str) -> Option<Option<Record>> {
        let inspect = self.inspect.as_ref()?;
        let id = SessionId::parse(token)?;
        match inspect.stored(&id).await {
            Ok(record) => Some(record),
            Err(e) => self.fail(format_args!("inspecting the store failed: {e}")),
        }
    }

    /// Fails unless `token` loads nothing, now and at rest.
    pub(crate) async fn assert_gone(&self, token: &str, what: &str) {
        if let Some(session) = self.peek(token).await {
            self.fail(format_args!(
                "{what}: the old cookie still loads a session (keys {:?})",
                session.keys()
            ));
        }
        if let Some(Some(_)) = self.stored(token).await {
            self.fail(format_args!(
                "{what}: the store still holds a record under the old id"
            ));
        }
    }

    /// Runs two requests on `token` as real concurrent tasks: both load, both run their
    /// handler, then (once both have loaded) both save at the same time.
    pub(crate) async fn race(
        self: &Arc<Self>,
        token: &str,
        a: impl FnOnce(&World, &Session) + Send + 'static,
        b: impl FnOnce(&World, &Session) + Send + 'static,
    ) -> (Reply, Reply) {
        let barrier = Arc::new(Barrier::new(2));
        let task = |handler: Handler| {
            let world = Arc::clone(self);
            let barrier = Arc::clone(&barrier);
            let token = token.to_owned();
            async move {
                let pending = world.open(Some(&token)).await;
                ensure!(world, !pending.was_new, "a racing request found no session");
                handler(&world, &pending.session);
                barrier.wait().await;
                world.close(pending).await
            }
        };
        both(task(Box::new(a)), task(Box::new(b))).await
    }
}

/// What a request does with its session, given the check's world.
pub(crate) type Handler = Box<dyn FnOnce(&World, &Session) + Send>;

/// Runs two futures as separate tasks on the (multi-threaded) runtime and waits for both.
pub(crate) async fn both<A, B>(a: A, b: B) -> (A::Output, B::Output)
where
    A: Future + Send + 'static,
    A::Output: Send + 'static,
    B: Future + Send + 'static,
    B::Output: Send + 'static,
{
    let a = tokio::spawn(a);
    let b = tokio::spawn(b);
    (joined(a.await), joined(b.await))
}

fn joined<T>(result: Result<T, tokio::task::JoinError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a conformance task was cancelled: {e}"),
    }
}

/// A request that loaded its session and has not saved yet.
pub(crate) struct Pending {
    sessions: Sessions,
    pub(crate) session: Session,
    pub(crate) was_new: bool,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("sessions", &self.sessions)
            .field("session", &self.session)
            .field("was_new", &self.was_new)
            .finish()
    }
}

/// What a request's response said.
pub(crate) struct Reply {
    check: &'static str,
    pub(crate) result: Result<()>,
    /// `Session::is_new` as the handler saw it.
    pub(crate) was_new: bool,
    /// The `Set-Cookie` line for the session cookie, if any.
    pub(crate) line: Option<String>,
    removal: String,
    prefix: String,
}

impl Reply {
    #[track_caller]
    fn fail(&self, message: fmt::Arguments<'_>) -> ! {
        panic!("conformance check `{}` failed: {message}", self.check)
    }

    /// Fails unless `save_all` succeeded.
    #[track_caller]
    pub(crate) fn ok(&self, what: &str) -> &Self {
        if let Err(e) = &self.result {
            self.fail(format_args!("{what}: save_all failed: {e} ({e:?})"));
        }
        self
    }

    /// The error kind `save_all` returned, if it failed.
    pub(crate) fn error_kind(&self) -> Option<ErrorKind> {
        self.result.as_ref().err().map(crate::Error::kind)
    }

    /// `true` if the response clears the session cookie.
    pub(crate) fn cleared(&self) -> bool {
        self.line.as_deref() == Some(self.removal.as_str())
    }

    /// The value the response sets the session cookie to (not a removal), if any.
    pub(crate) fn value(&self) -> Option<String> {
        if self.cleared() {
            return None;
        }
        let line = self.line.as_deref()?;
        let pair = line.split(';').next()?;
        pair.strip_prefix(&self.prefix).map(str::to_owned)
    }

    /// The new cookie value; fails unless the save succeeded and set one.
    #[track_caller]
    pub(crate) fn token(&self, what: &str) -> String {
        self.ok(what);
        match self.value() {
            Some(value) if !value.is_empty() => value,
            _ => self.fail(format_args!(
                "{what}: the response does not set the session cookie (it sends {:?})",
                self.line.as_deref().map(redact)
            )),
        }
    }

    /// The cookie the browser holds after this response, which held `old` before.
    #[track_caller]
    pub(crate) fn token_or(&self, old: &str, what: &str) -> String {
        self.ok(what);
        self.value().unwrap_or_else(|| old.to_owned())
    }

    /// Fails if the response sets or clears the session cookie.
    #[track_caller]
    pub(crate) fn sets_nothing(&self, what: &str) -> &Self {
        if let Some(line) = &self.line {
            self.fail(format_args!(
                "{what}: the response sends `Set-Cookie: {}`",
                redact(line)
            ));
        }
        self
    }

    /// Fails unless `save_all` failed with [`ErrorKind::SessionEnded`] and the response clears
    /// the cookie.
    #[track_caller]
    pub(crate) fn assert_ended(&self, what: &str) {
        match &self.result {
            Err(e) if e.kind() == ErrorKind::SessionEnded => {}
            Err(e) => self.fail(format_args!("{what}: expected ErrorKind::SessionEnded, got {e} ({e:?})")),
            Ok(()) => self.fail(format_args!(
                "{what}: the save succeeded (it must fail with ErrorKind::SessionEnded); it sends {:?}",
                self.line.as_deref().map(redact)
            )),
        }
        if !self.cleared() {
            self.fail(format_args!(
                "{what}: the response must clear the cookie, it sends {:?}",
                self.line.as_deref().map(redact)
            ));
        }
    }
}

/// A `Set-Cookie` line with its value shortened, for failure messages.
fn redact(line: &str) -> String {
    match line.split_once('=') {
        Some((name, rest)) => {
            let (value, attributes) = rest.split_once(';').unwrap_or((rest, ""));
            let shown: String = value.chars().take(6).collect();
            format!("{name}={shown}…({} bytes);{attributes}", value.len())
        }
        None => "<unparsable>".to_owned(),
    }
}

/// Stores `value` under `key`, failing the check if it cannot.
pub(crate) fn put(world: &World, session: &Session, key: &str, value: impl Serialize) {
    if let Err(e) = session.insert(key, value) {
        world.fail(format_args!("inserting `{key}` failed: {e}"));
    }
}

/// The value under `key` as a `T`, failing the check if it is not one.
pub(crate) fn get<T: DeserializeOwned>(world: &World, session: &Session, key: &str) -> Option<T> {
    match session.get(key) {
        Ok(value) => value,
        Err(e) => world.fail(format_args!("reading `{key}` failed: {e}")),
    }
}

/// The flashes under `key`, failing the check if they are not `T`s.
pub(crate) fn flashes<T: DeserializeOwned>(world: &World, session: &Session, key: &str) -> Vec<T> {
    match session.take_flashes_under(key) {
        Ok(value) => value,
        Err(e) => world.fail(format_args!("reading flashes `{key}` failed: {e}")),
    }
}

/// What an application does at login: a new id, then the user.
pub(crate) fn login(world: &World, session: &Session, user: &str) {
    session.regenerate();
    session.set_user_id(user);
    put(world, session, "user", user);
}
