//! The fastsession demo app.
//!
//! One axum app shows every feature: log in and out (the session id is regenerated at login
//! and the session destroyed at logout), counters, flash messages shown once, and "remember
//! me". Each request uses two sessions from two stores, saved together: the login session in
//! the store chosen with `--store`, and preferences (the last user name) in a cookie.
//!
//! `GET /` is an HTML page with plain forms; the same actions are a JSON API under `/api`:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /api/session` | `{"user": string\|null, "counters": {name: n}, "flashes": [string], "remember": bool}`; reading consumes the flashes |
//! | `POST /api/login?user=NAME` | `{"user": NAME}`; a new session id |
//! | `POST /api/logout` | `{"user": null}`; the session is destroyed |
//! | `POST /api/incr?key=K` | `{"key": K, "value": n}`; concurrent increments of one counter all count on a server-side store |
//! | `POST /api/flash?msg=M` | `{"flash": M}` |
//! | `POST /api/remember?on=true\|false` | `{"remember": bool}` |
//!
//! Bad input is a 400 with `{"error": "..."}`; a store failure an empty 503.
//!
//! # Examples
//!
//! ```
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let options = fastsession_demo::Options::default();
//! let app: axum::Router = fastsession_demo::app(&options).await?;
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use fastsession::codec::IdHasher;
use fastsession::store::{AnonymousBudget, RevocationList};
use fastsession::tower::SessionLayer;
use fastsession::{CookieConfig, CookieStore, Expiry, Key, KeyRing, MemoryStore, SessionConfig};
use fastsession::{NamedSession, Session};
use serde::Deserialize;
use serde_json::json;

mod page;

// The repository's README belongs to no published crate; the demo, which has every feature
// its examples use, doctests it.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The environment variable holding the master secret (base64, at least 32 bytes).
pub const SECRET_VAR: &str = "FASTSESSION_SECRET";
/// The login session's cookie.
pub const SESSION_COOKIE: &str = "fastsession";
/// The preferences session's cookie.
pub const PREFS_COOKIE: &str = "fastsession-prefs";

const COUNTER_PREFIX: &str = "counter:";
const MAX_USER_LEN: usize = 64;
const MAX_KEY_LEN: usize = 32;
const MAX_FLASH_LEN: usize = 200;

/// Where the login session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum StoreKind {
    /// Sealed in the cookie itself, with a server-side revocation list for logouts.
    Cookie,
    /// In this process's memory.
    Memory,
    /// In files under `--dir`.
    Fs,
    /// In Redis at `--redis-url`.
    Redis,
    /// In PostgreSQL at `--database-url`.
    Postgres,
}

/// Where the cookie store keeps its revocation list (the logged-out cookies it refuses).
///
/// It must outlive the process and be shared by every instance: a list in one process's
/// memory forgets every logout at a restart and knows nothing of the other instances'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum RevocationKind {
    /// In files under `--dir` (instances on one machine share it).
    Fs,
    /// In Redis at `--redis-url`.
    Redis,
    /// In PostgreSQL at `--database-url`.
    Postgres,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Cookie => "cookie",
            StoreKind::Memory => "memory",
            StoreKind::Fs => "fs",
            StoreKind::Redis => "redis",
            StoreKind::Postgres => "postgres",
        })
    }
}

/// The demo's settings: command-line flags, the secret from [`SECRET_VAR`].
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "demo", about = "The fastsession demo app")]
#[non_exhaustive]
pub struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Where the login session lives.
    #[arg(long, value_enum, default_value_t = StoreKind::Memory)]
    pub store: StoreKind,
    /// Directory of the `fs` store, and of the `cookie` store's revocation list (under
    /// `revoked/`) with `--revocation fs`; created with mode 0700 if missing. Default:
    /// `fastsession-demo-sessions` in the system's temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Redis URL of the `redis` store.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of the `redis` store's keys (instances sharing sessions use the same one).
    #[arg(long, default_value = "fastsession-demo:")]
    pub redis_prefix: String,
    /// Keep recently read sessions of the `redis` or `postgres` store in this process,
    /// coherent by Redis's invalidations (`CLIENT TRACKING`) or PostgreSQL's notifications
    /// (`LISTEN`/`NOTIFY`); its counts show on the page.
    #[arg(long)]
    pub near_cache: bool,
    /// PostgreSQL URL of the `postgres` store.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub database_url: String,
    /// Schema of the `postgres` store's table (created if missing).
    #[arg(long, default_value = "fastsession_demo")]
    pub database_schema: String,
    /// Seconds without a request after which a session ends.
    #[arg(long = "idle-timeout", value_name = "SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_secs: u64,
    /// Seconds after a session began after which it ends, however active (a login keeps the
    /// session's start).
    #[arg(long = "absolute-timeout", value_name = "SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub absolute_timeout_secs: u64,
    /// Where the `cookie` store keeps its revocation list.
    #[arg(long, value_enum, default_value_t = RevocationKind::Fs)]
    pub revocation: RevocationKind,
    /// Most sessions nobody logged into that the store keeps; when full, the least recently
    /// active one goes (never a logged-in session or a logout).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub anonymous_sessions: u64,
    /// Seconds without a request after which a session nobody logged into ends.
    #[arg(long = "anonymous-idle-timeout", value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub anonymous_idle_timeout_secs: u64,
    /// Most bytes of data one session may hold in a server-side store; a save over it is
    /// refused.
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_session_bytes: u64,
    /// Master secret, base64 of at least 32 random bytes; random if unset.
    #[arg(long, env = SECRET_VAR, hide_env_values = true)]
    pub secret: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        <Options as clap::Parser>::parse_from(["demo"])
    }
}

impl Options {
    /// These options with `store`.
    #[must_use]
    pub fn with_store(mut self, store: StoreKind) -> Self {
        self.store = store;
        self
    }

    /// These options with the `fs` store's directory.
    #[must_use]
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// These options with the `redis` store's key prefix and the `postgres` store's schema,
    /// so that demos which should not share sessions do not.
    #[must_use]
    pub fn with_namespace(mut self, redis_prefix: &str, database_schema: &str) -> Self {
        redis_prefix.clone_into(&mut self.redis_prefix);
        database_schema.clone_into(&mut self.database_schema);
        self
    }

    /// These options with the master secret (base64), as `FASTSESSION_SECRET` gives it.
    #[must_use]
    pub fn with_secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self
    }

    /// These options with the store of the `cookie` store's revocation list.
    #[must_use]
    pub fn with_revocation(mut self, revocation: RevocationKind) -> Self {
        self.revocation = revocation;
        self
    }

    /// These options with at most `sessions` anonymous sessions kept.
    #[must_use]
    pub fn with_anonymous_sessions(mut self, sessions: u64) -> Self {
        self.anonymous_sessions = sessions.max(1);
        self
    }

    /// These options with at most `bytes` of data per server-side session.
    #[must_use]
    pub fn with_max_session_bytes(mut self, bytes: u64) -> Self {
        self.max_session_bytes = bytes.max(1);
        self
    }

    /// These options with the idle and absolute timeouts.
    #[must_use]
    pub fn with_timeouts(mut self, idle: Duration, absolute: Duration) -> Self {
        self.idle_timeout_secs = idle.as_secs();
        self.absolute_timeout_secs = absolute.as_secs();
        self
    }
}

/// Why the demo could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum DemoError {
    /// A setting was refused (secret, timeouts, store directory).
    Config(fastsession::Error),
    /// The store's server could not be reached or set up.
    StoreUnavailable(StoreKind, fastsession::Error),
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::Config(e) => write!(f, "invalid setting: {e}"),
            DemoError::StoreUnavailable(kind, e) => {
                write!(f, "the `{kind}` store is not available: {e}")
            }
        }
    }
}

impl std::error::Error for DemoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DemoError::Config(e) | DemoError::StoreUnavailable(_, e) => Some(e),
        }
    }
}

impl From<fastsession::Error> for DemoError {
    fn from(e: fastsession::Error) -> Self {
        DemoError::Config(e)
    }
}

/// Names the preferences session, from a cookie store.
struct Prefs;

/// Builds the app for `options`.
///
/// # Errors
///
/// [`DemoError`] if a setting is refused or the store cannot be opened.
pub async fn app(options: &Options) -> Result<Router, DemoError> {
    let key = match &options.secret {
        Some(secret) => Key::from_base64(secret)?,
        None => {
            tracing::warn!(
                "{SECRET_VAR} is not set: using a random key, so sessions will not survive a restart"
            );
            Key::generate()?
        }
    };
    let keys = KeyRing::new(key.clone());
    let expiry = Expiry::default()
        .with_idle_timeout(Duration::from_secs(options.idle_timeout_secs))?
        .with_absolute_lifetime(Duration::from_secs(options.absolute_timeout_secs))?
        .with_anonymous_idle_timeout(Duration::from_secs(options.anonymous_idle_timeout_secs));
    if !options.addr.ip().is_loopback() {
        tracing::warn!(
            addr = %options.addr,
            "the demo's cookies are not `Secure` (plain HTTP): anyone on the network path can \
             take them; serve it on loopback, or behind TLS for anything but a trial"
        );
    }
    let budget = Budget {
        anonymous: AnonymousBudget::new(
            usize::try_from(options.anonymous_sessions).unwrap_or(usize::MAX),
            AnonymousBudget::default().max_bytes(),
        ),
        session_bytes: usize::try_from(options.max_session_bytes).unwrap_or(usize::MAX),
    };
    if options.near_cache && !matches!(options.store, StoreKind::Redis | StoreKind::Postgres) {
        return Err(DemoError::Config(fastsession::Error::new(
            fastsession::ErrorKind::InvalidConfig,
            "--near-cache needs --store redis or --store postgres",
        )));
    }
    let mut near_cache = None;
    let store: Arc<dyn fastsession::Store> = match options.store {
        StoreKind::Cookie => {
            // Logged-out cookies go on a revocation list, so a copy cannot be replayed; the
            // list outlives restarts and is shared by the instances.
            let ended = revocation_list(options, &key, budget).await?;
            Arc::new(CookieStore::new(&keys).with_revocation(ended))
        }
        StoreKind::Memory => Arc::new(
            MemoryStore::new()?
                .with_anonymous_budget(budget.anonymous)
                .with_max_session_bytes(budget.session_bytes),
        ),
        StoreKind::Fs => fs_store(options, &key, budget)?,
        StoreKind::Redis => {
            let store = redis_store(options, &key, budget).await?;
            near_cache = store.backend().near_cache().cloned();
            Arc::new(store)
        }
        StoreKind::Postgres => {
            let store = postgres_store(options, &key, budget).await?;
            near_cache = store.backend().near_cache().cloned();
            store
        }
    };
    // Plain HTTP on loopback: no `Secure`, no `__Host-` prefix. Never in production.
    let cookie = |name: &str| {
        CookieConfig::builder(name)
            .with_insecure_development_mode()
            .build()
    };
    let login =
        SessionConfig::with_shared_store(store, cookie(SESSION_COOKIE)?).with_expiry(expiry);
    let prefs = SessionConfig::new(CookieStore::new(&keys), cookie(PREFS_COOKIE)?).with_expiry(
        Expiry::default()
            .with_idle_timeout(Duration::from_secs(30 * 86_400))?
            .with_absolute_lifetime(Duration::from_secs(365 * 86_400))?,
    );
    let layer = SessionLayer::new(login).with_named::<Prefs>(prefs);
    Ok(Router::new()
        .route("/", get(page_view))
        .route("/login", post(form_login))
        .route("/logout", post(form_logout))
        .route("/incr", post(form_incr))
        .route("/flash", post(form_flash))
        .route("/remember", post(form_remember))
        .route("/api/session", get(api_session))
        .route("/api/login", post(api_login))
        .route("/api/logout", post(api_logout))
        .route("/api/incr", post(api_incr))
        .route("/api/flash", post(api_flash))
        .route("/api/remember", post(api_remember))
        .layer(layer)
        .layer(Extension(NearCacheView(near_cache))))
}

/// What the server-side stores may hold.
#[derive(Clone, Copy)]
struct Budget {
    anonymous: AnonymousBudget,
    session_bytes: usize,
}

/// The cookie store's revocation list, in the store `--revocation` names.
async fn revocation_list(
    options: &Options,
    key: &Key,
    budget: Budget,
) -> Result<Arc<dyn RevocationList>, DemoError> {
    Ok(match options.revocation {
        RevocationKind::Fs => {
            let dir = options
                .dir
                .clone()
                .unwrap_or_else(default_dir)
                .join("revoked");
            let options = options.clone().with_dir(dir);
            fs_store(&options, key, budget)?
        }
        RevocationKind::Redis => Arc::new(redis_store(options, key, budget).await?),
        RevocationKind::Postgres => postgres_store(options, key, budget).await?,
    })
}

fn default_dir() -> PathBuf {
    std::env::temp_dir().join("fastsession-demo-sessions")
}

fn fs_store(
    options: &Options,
    key: &Key,
    budget: Budget,
) -> Result<Arc<fastsession::fs::FilesystemStore>, DemoError> {
    let dir = options.dir.clone().unwrap_or_else(default_dir);
    let backend =
        fastsession::fs::FilesystemBackend::open(dir)?.with_anonymous_budget(budget.anonymous);
    let store = fastsession::store::ServerStore::with_backend(backend, IdHasher::new(key))
        .with_max_session_bytes(budget.session_bytes);
    let store = Arc::new(store);
    // Expired sessions are never returned; the reaper only reclaims their files.
    let _reaper = fastsession::fs::spawn_reaper(&store, Duration::from_secs(60), 1000);
    Ok(store)
}

async fn redis_store(
    options: &Options,
    key: &Key,
    budget: Budget,
) -> Result<fastsession::redis::RedisStore, DemoError> {
    let mut config = fastsession::redis::RedisConfig::new(options.redis_url.as_str())
        .with_key_prefix(options.redis_prefix.as_str())
        .with_anonymous_budget(budget.anonymous);
    if options.near_cache {
        config = config.with_near_cache(fastsession::store::NearCacheConfig::new());
    }
    // Expired sessions go by Redis's own TTL: no reaper.
    let store = fastsession::redis::redis_store(&config, key)
        .await
        .map_err(|e| DemoError::StoreUnavailable(StoreKind::Redis, e))?;
    Ok(store.with_max_session_bytes(budget.session_bytes))
}

async fn postgres_store(
    options: &Options,
    key: &Key,
    budget: Budget,
) -> Result<Arc<fastsession::postgres::PostgresStore>, DemoError> {
    let mut config = fastsession::postgres::PostgresConfig::new(options.database_url.as_str())
        .with_schema(options.database_schema.as_str())
        .with_anonymous_budget(budget.anonymous);
    if options.near_cache {
        config = config.with_near_cache(fastsession::store::NearCacheConfig::new());
    }
    let unavailable = |e| DemoError::StoreUnavailable(StoreKind::Postgres, e);
    let store = fastsession::postgres::postgres_store(config, key)
        .await
        .map_err(unavailable)?
        .with_max_session_bytes(budget.session_bytes);
    store.backend().migrate().await.map_err(unavailable)?;
    let store = Arc::new(store);
    let _reaper = fastsession::postgres::spawn_reaper(&store, Duration::from_secs(60), 1000);
    Ok(store)
}

/// A handler's failure: bad input (400 with a message) or a session error (opaque).
enum Failure {
    BadInput(&'static str),
    Session(fastsession::Error),
}

impl From<fastsession::Error> for Failure {
    fn from(e: fastsession::Error) -> Self {
        Failure::Session(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::BadInput(message) => {
                (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
            }
            // Logged by the error itself, at the level its kind deserves.
            Failure::Session(e) => e.into_response(),
        }
    }
}

type Answer<T> = Result<T, Failure>;

/// What the page and `GET /api/session` show.
#[derive(Debug, serde::Serialize)]
struct View {
    user: Option<String>,
    counters: BTreeMap<String, i64>,
    flashes: Vec<String>,
    remember: bool,
}

fn view(session: &Session) -> Answer<View> {
    let mut counters = BTreeMap::new();
    for key in session.keys() {
        if let Some(name) = key.strip_prefix(COUNTER_PREFIX) {
            counters.insert(name.to_owned(), session.get::<i64>(&key)?.unwrap_or(0));
        }
    }
    Ok(View {
        user: session.user_id(),
        counters,
        flashes: session.take_flashes()?,
        remember: session.is_persistent(),
    })
}

fn checked_user(user: &str) -> Answer<&str> {
    let user = user.trim();
    if user.is_empty() || user.chars().count() > MAX_USER_LEN {
        return Err(Failure::BadInput("user must be 1 to 64 characters"));
    }
    Ok(user)
}

fn checked_key(key: &str) -> Answer<&str> {
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(Failure::BadInput(
            "key must be 1 to 32 of A-Z, a-z, 0-9, `_` and `-`",
        ));
    }
    Ok(key)
}

fn checked_flash(msg: &str) -> Answer<&str> {
    if msg.is_empty() || msg.chars().count() > MAX_FLASH_LEN {
        return Err(Failure::BadInput("msg must be 1 to 200 characters"));
    }
    Ok(msg)
}

fn login(session: &Session, prefs: &NamedSession<Prefs>, user: &str) -> Answer<()> {
    let user = checked_user(user)?;
    // A new id at login, so an id planted before it (fixation) is worth nothing.
    session.regenerate();
    session.set_user_id(user);
    session.add_flash(format!("Welcome, {user}!"))?;
    prefs.insert("last_user", user)?;
    Ok(())
}

/// Adds 1 to a counter. `increment` is merged by the store: concurrent requests to one
/// counter all count on a server-side store (the cookie store keeps the last response's).
fn incr(session: &Session, key: &str) -> Answer<i64> {
    let key = format!("{COUNTER_PREFIX}{}", checked_key(key)?);
    Ok(session.increment(&key, 1)?)
}

fn flash(session: &Session, msg: &str) -> Answer<()> {
    session.add_flash(checked_flash(msg)?)?;
    Ok(())
}

// --- the HTML page and its forms ---

/// The Redis or PostgreSQL store's near cache, when `--near-cache` turned it on.
#[derive(Clone)]
struct NearCacheView(Option<fastsession::store::NearCache>);

async fn page_view(
    session: Session,
    prefs: NamedSession<Prefs>,
    Extension(near): Extension<NearCacheView>,
) -> Answer<Html<String>> {
    let view = view(&session)?;
    let last_user = prefs.get::<String>("last_user")?;
    let near = near.0.as_ref().map(fastsession::store::NearCache::stats);
    Ok(Html(page::render(&view, last_user.as_deref(), near)))
}

#[derive(Deserialize)]
struct UserForm {
    user: String,
}

#[derive(Deserialize)]
struct KeyForm {
    key: String,
}

#[derive(Deserialize)]
struct FlashForm {
    msg: String,
}

#[derive(Deserialize)]
struct RememberForm {
    on: bool,
}

async fn form_login(
    session: Session,
    prefs: NamedSession<Prefs>,
    Form(form): Form<UserForm>,
) -> Answer<Redirect> {
    login(&session, &prefs, &form.user)?;
    Ok(Redirect::to("/"))
}

async fn form_logout(session: Session) -> Redirect {
    session.destroy();
    Redirect::to("/")
}

async fn form_incr(session: Session, Form(form): Form<KeyForm>) -> Answer<Redirect> {
    incr(&session, &form.key)?;
    Ok(Redirect::to("/"))
}

async fn form_flash(session: Session, Form(form): Form<FlashForm>) -> Answer<Redirect> {
    flash(&session, &form.msg)?;
    Ok(Redirect::to("/"))
}

async fn form_remember(session: Session, Form(form): Form<RememberForm>) -> Redirect {
    session.set_persistent(form.on);
    Redirect::to("/")
}

// --- the JSON API ---

async fn api_session(session: Session) -> Answer<Json<View>> {
    Ok(Json(view(&session)?))
}

async fn api_login(
    session: Session,
    prefs: NamedSession<Prefs>,
    Query(query): Query<UserForm>,
) -> Answer<Json<serde_json::Value>> {
    login(&session, &prefs, &query.user)?;
    Ok(Json(json!({ "user": session.user_id() })))
}

async fn api_logout(session: Session) -> Json<serde_json::Value> {
    session.destroy();
    Json(json!({ "user": null }))
}

async fn api_incr(
    session: Session,
    Query(query): Query<KeyForm>,
) -> Answer<Json<serde_json::Value>> {
    let value = incr(&session, &query.key)?;
    Ok(Json(json!({ "key": query.key, "value": value })))
}

async fn api_flash(
    session: Session,
    Query(query): Query<FlashForm>,
) -> Answer<Json<serde_json::Value>> {
    flash(&session, &query.msg)?;
    Ok(Json(json!({ "flash": query.msg })))
}

async fn api_remember(
    session: Session,
    Query(query): Query<RememberForm>,
) -> Json<serde_json::Value> {
    session.set_persistent(query.on);
    Json(json!({ "remember": query.on }))
}
