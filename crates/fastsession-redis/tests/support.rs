//! Shared fixtures: the shared Redis, unique key prefixes cleaned up afterwards, a request
//! driver, and redis-server processes of a test's own.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastsession_core::Error;
use fastsession_core::codec::Key;
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::session::{Expiry, Session, SessionId};
use fastsession_core::store::{AnonymousBudget, NearCacheConfig};
use fastsession_core::time::{ManualClock, UnixTime};
use fastsession_redis::{RedisConfig, RedisStore};
use http::HeaderMap;

/// The shared Redis of this machine (CI starts it).
pub(crate) const URL: &str = "redis://127.0.0.1:6379";
/// The start of every test's manual clock (2023-11-14T22:13:20Z).
pub(crate) const T0: u64 = 1_700_000_000;
/// The default session cookie's full name.
pub(crate) const NAME: &str = "__Host-id";
/// How to get the shared Redis when it is missing.
const START: &str =
    "start Redis: redis-server --daemonize yes --port 6379 --save '' --appendonly no";

/// The same id-hashing key everywhere.
pub(crate) fn key() -> Key {
    let secret: [u8; 32] =
        std::array::from_fn(|i| u8::try_from(i).unwrap().wrapping_mul(37).wrapping_add(11));
    Key::from_secret(&secret).unwrap()
}

/// A key prefix no other test, run or process uses.
pub(crate) fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "fstest:{}-{nanos}-{}:",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on the shared Redis under a fresh prefix, and the guard that deletes its keys.
pub(crate) async fn shared_store() -> (Arc<RedisStore>, Cleanup) {
    shared_store_with(|config| config).await
}

/// [`shared_store`] with the near cache on, once its tracking is.
pub(crate) async fn shared_store_near() -> (Arc<RedisStore>, Cleanup) {
    let (store, cleanup) =
        shared_store_with(|config| config.with_near_cache(NearCacheConfig::new())).await;
    tracking(&store).await;
    (store, cleanup)
}

/// [`shared_store`] with its configuration changed by `change`.
async fn shared_store_with(
    change: impl FnOnce(RedisConfig) -> RedisConfig,
) -> (Arc<RedisStore>, Cleanup) {
    let prefix = unique_prefix();
    let config = change(RedisConfig::new(URL).with_key_prefix(&prefix));
    let store = match fastsession_redis::redis_store(&config, &key()).await {
        Ok(store) => store,
        Err(e) => panic!("cannot reach Redis on 127.0.0.1:6379 ({e}); {START}"),
    };
    (Arc::new(store), Cleanup::new(URL, prefix))
}

/// Waits (up to 10 s) until the near cache of `store` tracks.
pub(crate) async fn tracking(store: &RedisStore) {
    let cache = store.backend().near_cache().expect("the near cache is on");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cache.stats().is_tracking() {
        assert!(
            Instant::now() < deadline,
            "the near cache did not start tracking within 10 s: {cache:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A store on `url` under a fresh prefix with `budget`.
pub(crate) async fn store_with(url: &str, budget: AnonymousBudget) -> Arc<RedisStore> {
    let config = RedisConfig::new(url)
        .with_key_prefix(unique_prefix())
        .with_anonymous_budget(budget);
    Arc::new(
        fastsession_redis::redis_store(&config, &key())
            .await
            .unwrap(),
    )
}

/// [`shared_store`] from synchronous code running on a multi-threaded Tokio runtime (the
/// conformance factories).
pub(crate) fn shared_store_blocking() -> (Arc<RedisStore>, Cleanup) {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(shared_store()))
}

/// [`shared_store_near`] from synchronous code, as [`shared_store_blocking`].
pub(crate) fn shared_store_near_blocking() -> (Arc<RedisStore>, Cleanup) {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(shared_store_near()))
}

/// Deletes every key under a prefix when dropped.
#[derive(Debug)]
pub(crate) struct Cleanup {
    url: String,
    prefix: String,
}

impl Cleanup {
    pub(crate) fn new(url: &str, prefix: String) -> Self {
        Cleanup {
            url: url.to_owned(),
            prefix,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Best effort and synchronous: the test's runtime may be gone already.
        let Ok(mut con) = sync_connection(&self.url) else {
            return;
        };
        for key in keys(&mut con, &format!("{}*", self.prefix)) {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut con);
        }
    }
}

/// A blocking connection with short timeouts, for inspecting what is at rest.
pub(crate) fn sync_connection(url: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    con.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(con)
}

/// The keys matching `pattern`, by `SCAN`.
pub(crate) fn keys(con: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(con)
            .unwrap();
        out.extend(batch);
        if next == 0 {
            return out;
        }
        cursor = next;
    }
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

pub(crate) fn config(store: &Arc<RedisStore>, clock: &ManualClock) -> SessionConfig {
    SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").unwrap())
        .with_clock(clock.clone())
        .with_expiry(expiry())
}

/// What one request gave back.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The cookie value the response set (`None` if it set none).
    pub(crate) set: Option<String>,
    /// `Session::is_new` as the handler saw it, or the load's error.
    pub(crate) loaded: Result<bool, Error>,
    pub(crate) result: Result<(), Error>,
}

impl Reply {
    /// The cookie value set by a successful response; panics otherwise.
    pub(crate) fn cookie(&self) -> String {
        if let Err(e) = &self.loaded {
            panic!("load failed: {e:?}");
        }
        if let Err(e) = &self.result {
            panic!("save failed: {e:?}");
        }
        self.set.clone().expect("response sets the cookie")
    }

    pub(crate) fn was_new(&self) -> bool {
        *self.loaded.as_ref().unwrap()
    }
}

/// `n` new anonymous sessions, the i-th holding `i = i`: their cookies, oldest first.
pub(crate) async fn anonymous_sessions(config: &SessionConfig, n: i32) -> Vec<String> {
    let mut cookies = Vec::new();
    for i in 0..n {
        cookies.push(
            request(config, None, |s| s.insert("i", i).unwrap())
                .await
                .cookie(),
        );
    }
    cookies
}

/// One request carrying session cookie `cookie` (if any), running `handler`, then saving.
/// A failed load is reported as such, without running the handler.
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
        Ok(session) => session,
        Err(e) => {
            return Reply {
                set: None,
                loaded: Err(e),
                result: Ok(()),
            };
        }
    };
    let was_new = session.is_new();
    handler(&session);
    let mut out = HeaderMap::new();
    let result = sessions.save_all(&mut out).await;
    let set = out.get("set-cookie").and_then(|v| {
        let line = v.to_str().unwrap();
        let value = line
            .split(';')
            .next()?
            .strip_prefix(NAME)?
            .strip_prefix('=')?;
        (!value.is_empty()).then(|| value.to_owned())
    });
    Reply {
        set,
        loaded: Ok(was_new),
        result,
    }
}

/// The Redis key of a cookie's session.
pub(crate) fn session_key(store: &RedisStore, cookie: &str) -> String {
    store
        .backend()
        .session_key(&store.storage_key(&SessionId::parse(cookie).unwrap()))
}

/// A redis-server of the test's own on a free port, in a temporary directory, without
/// persistence; killed when dropped (also when the test panics).
#[derive(Debug)]
pub(crate) struct OwnServer {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl OwnServer {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server started with `extra` arguments too (cluster mode, say).
    pub(crate) fn start_with(extra: &[&str]) -> Self {
        let port = free_port();
        let mut server = OwnServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.restart();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}); install Redis (apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut con) = sync_connection(&self.url())
                && redis::cmd("PING").query::<String>(&mut con).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("own redis-server on port {} did not start", self.port);
    }

    /// Kills the server and waits until it is gone.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server process.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A command on a fresh blocking connection.
    pub(crate) fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let mut con = sync_connection(&self.url()).unwrap();
        cmd.query(&mut con).unwrap()
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped process ignores SIGKILL until continued on some systems: continue first.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}

/// A port nothing listens on now (the OS's pick, released at once).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// 100 s idle timeout for a session with a user, 30 s for one without, 1000 s absolute.
pub(crate) fn class_expiry() -> Expiry {
    expiry().with_anonymous_idle_timeout(Duration::from_secs(30))
}

/// A field of `INFO` (`used_memory`, `evicted_keys`), as a number.
pub(crate) fn info(server: &OwnServer, field: &str) -> i64 {
    let text: String = server.query(&mut redis::cmd("INFO"));
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .trim()
        .parse()
        .unwrap()
}

/// The session hashes under `prefix` with and without a user (revocation markers included).
pub(crate) fn session_classes(con: &mut redis::Connection, prefix: &str) -> (usize, usize) {
    let (mut with_user, mut anonymous) = (0, 0);
    for key in keys(con, &format!("{prefix}s:*")) {
        let user: Option<String> = redis::cmd("HGET").arg(&key).arg("user").query(con).unwrap();
        if user.is_some() {
            with_user += 1;
        } else {
            anonymous += 1;
        }
    }
    (with_user, anonymous)
}

/// How many entries the anonymous index of `store` holds.
pub(crate) fn indexed(con: &mut redis::Connection, store: &RedisStore) -> usize {
    redis::cmd("LLEN")
        .arg(store.backend().anonymous_index_key())
        .query(con)
        .unwrap()
}
