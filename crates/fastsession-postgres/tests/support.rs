//! Shared fixtures: a store in a fresh schema (dropped afterwards), a raw connection for
//! inspecting and sabotaging, and a request driver.

use std::sync::Arc;
use std::time::Duration;

use fastsession_core::Error;
use fastsession_core::codec::Key;
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::{Expiry, Session, SessionId};
use fastsession_core::store::{ServerStore, StorageKey};
use fastsession_core::time::{ManualClock, UnixTime};
use fastsession_postgres::{PostgresBackend, PostgresConfig, PostgresStore};
use http::HeaderMap;

/// The test server (trust authentication on loopback).
pub(crate) const URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
/// What to do when it does not answer.
const START: &str =
    "start PostgreSQL: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
/// The start of every test's manual clock (2023-11-14T22:13:20Z).
pub(crate) const T0: u64 = 1_700_000_000;
/// The default session cookie's full name.
pub(crate) const NAME: &str = "__Host-id";

pub(crate) fn key() -> Key {
    let secret: [u8; 32] =
        std::array::from_fn(|i| u8::try_from(i).unwrap().wrapping_mul(37).wrapping_add(11));
    Key::from_secret(&secret).unwrap()
}

/// A name no other test or run uses.
pub(crate) fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

/// A raw connection to the test server, outside any store's pool.
pub(crate) async fn raw() -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = URL.parse().unwrap();
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = match config.connect(tokio_postgres::NoTls).await {
        Ok(pair) => pair,
        Err(e) => panic!("PostgreSQL on 127.0.0.1:5432 is unreachable ({e}); {START}"),
    };
    tokio::spawn(connection);
    client
}

/// Drops its schema when dropped (on a thread of its own: drops run inside runtimes).
#[derive(Debug)]
pub(crate) struct Schema(pub(crate) String);

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.0.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = raw().await;
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")),
                )
                .await;
            });
        });
        let _ = cleanup.join();
    }
}

/// The config of a store in a fresh schema of its own.
pub(crate) fn config() -> (PostgresConfig, Schema) {
    let schema = unique("fs_test");
    let config = PostgresConfig::new(URL)
        .with_schema(schema.clone())
        .with_table("sessions")
        .with_pool_size(8)
        .with_acquire_timeout(Duration::from_secs(5))
        .with_connect_timeout(Duration::from_secs(5))
        .with_statement_timeout(Duration::from_secs(5));
    (config, Schema(schema))
}

/// A migrated store with `config`.
pub(crate) async fn open(config: PostgresConfig) -> PostgresStore {
    let backend = match PostgresBackend::connect(config).await {
        Ok(b) => b,
        Err(e) => panic!("PostgreSQL on 127.0.0.1:5432 is unreachable ({e:?}); {START}"),
    };
    backend.migrate().await.unwrap();
    ServerStore::with_backend(backend, fastsession_core::codec::IdHasher::new(&key()))
}

/// Waits (up to 10 s) until the near cache of `store` serves (its listener listens and found
/// the triggers).
pub(crate) async fn tracking(store: &PostgresStore) {
    let cache = store.backend().near_cache().expect("the near cache is on");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cache.stats().is_tracking() {
        assert!(
            std::time::Instant::now() < deadline,
            "the near cache did not start serving within 10 s: {cache:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A migrated store with `config` and the near cache on, once its cache serves.
pub(crate) async fn open_near(config: PostgresConfig) -> PostgresStore {
    let store = open(config.with_near_cache(fastsession_core::store::NearCacheConfig::new())).await;
    tracking(&store).await;
    store
}

/// A migrated store in a fresh schema; keep the [`Schema`] alive as long as the store.
pub(crate) async fn fresh() -> (Arc<PostgresStore>, Schema) {
    let (config, schema) = config();
    (Arc::new(open(config).await), schema)
}

/// 100 s idle timeout, 1000 s absolute lifetime.
pub(crate) fn expiry() -> Expiry {
    Expiry::default()
        .with_idle_timeout(Duration::from_secs(100))
        .unwrap()
        .with_absolute_lifetime(Duration::from_secs(1000))
        .unwrap()
}

pub(crate) fn clock() -> ManualClock {
    ManualClock::new(UnixTime::from_secs(T0))
}

pub(crate) fn session_config(store: &Arc<PostgresStore>, clock: &ManualClock) -> SessionConfig {
    SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").unwrap())
        .with_clock(clock.clone())
        .with_expiry(expiry())
}

/// What one request gave back.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The cookie value the response set (`None` if it set none).
    pub(crate) set: Option<String>,
    /// The raw `Set-Cookie` line, if any.
    pub(crate) line: Option<String>,
    pub(crate) result: Result<(), Error>,
}

impl Reply {
    /// The cookie value set by a successful response; panics otherwise.
    pub(crate) fn cookie(&self) -> String {
        if let Err(e) = &self.result {
            panic!("save failed: {e:?}");
        }
        self.set.clone().expect("response sets the cookie")
    }
}

/// One request carrying session cookie `cookie` (if any), running `handler`, then saving.
/// A failed load is returned as the reply's error.
pub(crate) async fn request(
    config: &SessionConfig,
    cookie: Option<&str>,
    handler: impl FnOnce(&Session),
) -> Reply {
    let mut headers = HeaderMap::new();
    if let Some(c) = cookie {
        headers.insert("cookie", format!("{NAME}={c}").parse().unwrap());
    }
    let sessions = Sessions::new(&headers);
    let session = match sessions.get(config).await {
        Ok(s) => s,
        Err(e) => {
            return Reply {
                set: None,
                line: None,
                result: Err(e),
            };
        }
    };
    handler(&session);
    let mut out = HeaderMap::new();
    let result = sessions.save_all(&mut out).await;
    let line = out
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let set = line.as_deref().and_then(|l| {
        let value = l.split(';').next()?.strip_prefix(NAME)?.strip_prefix('=')?;
        (!value.is_empty()).then(|| value.to_owned())
    });
    Reply { set, line, result }
}

/// The storage key a cookie value maps to.
pub(crate) fn storage_key(store: &PostgresStore, cookie: &str) -> StorageKey {
    store.storage_key(&SessionId::parse(cookie).unwrap())
}

/// The PostgreSQL error kind inside a store error.
pub(crate) fn pg_kind(error: &Error) -> Option<fastsession_postgres::PostgresErrorKind> {
    std::error::Error::source(error)
        .and_then(|s| s.downcast_ref::<fastsession_postgres::PostgresError>())
        .map(fastsession_postgres::PostgresError::kind)
}
