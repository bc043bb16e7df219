//! The connection to Redis: one server or a Cluster, every command bounded by the command
//! timeout, reads retried after a dropped connection, and Redis's errors as the store's.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use fastsession_core::events::{self, Event};
use fastsession_core::{Error, ErrorKind, Result};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult,
    Script, ServerErrorKind, ToRedisArgs, Value,
};

use super::RedisBackend;
use crate::config::RedisConfig;

/// One server through a self-reconnecting multiplexed connection, or a Cluster.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// The near cache's connection, whose reads Redis tracks.
    Tracked(MultiplexedConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Tracked(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Tracked(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Tracked(c) => c.get_db(),
        }
    }
}

/// The connections of one store: the one made at `connect`, and one per thread whose
/// runtime runs on that thread alone, other than the first one's.
///
/// A connection is driven by a task of the runtime that made it. actix-web serves each
/// worker on a single-threaded runtime of its own, and applications make their store before
/// the server, on another thread: every command sent from a worker on that connection would
/// wake the other thread to write it and the worker again for the answer, two thread switches
/// per command (3 µs of CPU a request of actix-web over Redis, against axum on one runtime).
/// A worker's own connection is driven by its own runtime. A multi-threaded runtime (axum,
/// hyper on Tokio's default) shares the first connection, as its tasks move between threads.
pub(super) struct Conns {
    first: Conn,
    /// The thread that made `first`.
    home: ThreadId,
    config: RedisConfig,
    local: Mutex<HashMap<ThreadId, Local>>,
}

/// A thread's own connection, or when making it last failed (then `first` serves it, and the
/// thread tries again after [`RETRY_LOCAL`]).
enum Local {
    Open(Conn),
    Failed(Instant),
}

/// How long a thread whose own connection could not be made uses the shared one before
/// trying again.
const RETRY_LOCAL: Duration = Duration::from_secs(5);

impl Conns {
    pub(super) async fn open(config: &RedisConfig) -> Result<Conns> {
        Ok(Conns {
            first: Conn::open(config).await?,
            home: std::thread::current().id(),
            config: config.clone(),
            local: Mutex::new(HashMap::new()),
        })
    }

    /// The first connection (for what does not depend on the thread: its kind).
    pub(super) fn first(&self) -> &Conn {
        &self.first
    }

    /// The connection for the calling thread.
    pub(super) async fn get(&self) -> Conn {
        let Some(here) = own_runtime(self.home) else {
            return self.first.clone();
        };
        match self.lock().get(&here) {
            Some(Local::Open(conn)) => return conn.clone(),
            Some(Local::Failed(at)) if at.elapsed() < RETRY_LOCAL => return self.first.clone(),
            _ => {}
        }
        match Conn::open(&self.config).await {
            Ok(conn) => {
                // Two requests of the thread may both have connected: the first one kept wins.
                let mut local = self.lock();
                match local.get(&here) {
                    Some(Local::Open(kept)) => kept.clone(),
                    _ => {
                        local.insert(here, Local::Open(conn.clone()));
                        conn
                    }
                }
            }
            Err(error) => {
                tracing::debug!(target: "fastsession", %error, "redis: no connection of this thread's own; using the shared one");
                self.lock().insert(here, Local::Failed(Instant::now()));
                self.first.clone()
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, Local>> {
        self.local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The calling thread, if it is not `home` and runs a single-threaded runtime of its own (an
/// actix-web worker): such a thread gets connections of its own, driven by its own runtime.
pub(super) fn own_runtime(home: ThreadId) -> Option<ThreadId> {
    let here = std::thread::current().id();
    // The runtime is looked up only off the home thread: the home thread always shares.
    let alone = || {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
    };
    (here != home && alone()).then_some(here)
}

impl Conn {
    /// Connects to the server, or the Cluster, of `config` (already validated), within
    /// its connect timeout.
    pub(super) async fn open(config: &RedisConfig) -> Result<Conn> {
        let infos = connection_infos(config)?;
        if config.cluster {
            let client = ClusterClientBuilder::new(infos)
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.command_timeout)
                // The client would resend a script after an I/O error, which may have run
                // already: no retries. The price is one failed request per MOVED/ASK while a
                // slot migrates (the slot map is refreshed for the next).
                .retries(0)
                .build()
                .map_err(invalid_url)?;
            let connect = client.get_async_connection();
            let conn = bounded("connect", config.connect_timeout, connect).await?;
            Ok(Conn::Cluster(conn))
        } else {
            let info = infos
                .into_iter()
                .next()
                .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "no Redis URL"))?;
            let client = redis::Client::open(info).map_err(invalid_url)?;
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                // Every command is bounded by `bounded` already: a second timer per command
                // (the client's) costs a timer registration and, when the answer arrives
                // first, a wake-up of the runtime's driver on each command.
                .set_response_timeout(None)
                // Few, quick reconnection tries: requests wait for them, bounded by the
                // command timeout; a later request starts a new round.
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let connect = ConnectionManager::new_with_config(client, manager);
            bounded("connect", config.connect_timeout, connect)
                .await
                .map(Conn::Single)
        }
    }
}

/// The servers of `config`, each with Nagle's algorithm off: it would hold each small command
/// back while an earlier one is unacknowledged, on a multiplexed connection every command
/// under load.
pub(super) fn connection_infos(config: &RedisConfig) -> Result<Vec<ConnectionInfo>> {
    config
        .urls
        .iter()
        .map(|url| {
            let info = url.as_str().into_connection_info().map_err(invalid_url)?;
            let tcp = info.tcp_settings().clone().set_nodelay(true);
            Ok(info.set_tcp_settings(tcp))
        })
        .collect()
}

/// A command `name key ...` with room for `args` more arguments of `bytes` in all: redis-rs
/// starts a command empty and grows it argument by argument (several reallocations and
/// copies of the key for each command of a save).
pub(super) fn command(name: &str, key: &str, args: usize, bytes: usize) -> Cmd {
    let mut cmd = Cmd::with_capacity(2 + args, name.len() + key.len() + bytes);
    cmd.arg(name).arg(key);
    cmd
}

/// A script call as the one `EVALSHA` command it sends, its keys and arguments written into
/// it once. (redis-rs's `ScriptInvocation` keeps each argument in a buffer of its own and
/// copies them all into a new command at every call: a sixth of a create's client
/// instructions.)
pub(super) struct Call<'s> {
    script: &'s Script,
    cmd: Cmd,
}

impl<'s> Call<'s> {
    /// A call of `script` on `keys`, its arguments to follow.
    pub(super) fn new(script: &'s Script, keys: &[&str]) -> Self {
        // Room for the keys and a typical call's arguments (a new session's fields among them).
        let bytes = keys.iter().map(|k| k.len()).sum::<usize>() + 256;
        let mut cmd = Cmd::with_capacity(3 + keys.len() + 24, 7 + 40 + 2 + bytes);
        cmd.arg("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys);
        Call { script, cmd }
    }

    /// Appends `arg` (a slice appends each of its items).
    pub(super) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// The command, for writers that append to a [`Cmd`].
    pub(super) fn cmd_mut(&mut self) -> &mut Cmd {
        &mut self.cmd
    }
}

impl RedisBackend {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.conns.first(), Conn::Cluster(_))
    }

    /// Runs `op` on a clone of the connection, within the command timeout.
    pub(super) async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let (conn, epoch) = self.conn().await;
        let ran = bounded(what, self.timeout, op(conn)).await;
        if ran.as_ref().is_err_and(is_doubt) {
            self.doubt(epoch);
        }
        ran
    }

    /// The connection for the next command: the near cache's tracked one while it is up (so
    /// that its own writes, under `NOLOOP`, cost it no invalidation), with its epoch, or else
    /// this thread's.
    async fn conn(&self) -> (Conn, Option<u64>) {
        if let Some((conn, epoch)) = self.near.as_ref().and_then(|near| near.conn()) {
            return (Conn::Tracked(conn), Some(epoch));
        }
        (self.conns.get().await, None)
    }

    /// A command through the tracked connection of `epoch` failed in a way that may have
    /// lost an invalidation (a dropped connection, a timeout): the near cache stops trusting
    /// it.
    fn doubt(&self, epoch: Option<u64>) {
        if let (Some(near), Some(epoch)) = (&self.near, epoch) {
            near.lost(epoch, "a command on the tracked connection failed");
        }
    }

    /// Runs `call` within the command timeout, loading its script first if the server does
    /// not have it (after a restart or failover: nothing ran, so sending it again is safe).
    pub(super) async fn invoke<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        call: Call<'_>,
    ) -> Result<T> {
        self.run(what, |mut c| async move {
            match call.cmd.query_async(&mut c).await {
                Err(e) if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                    call.script.load_async(&mut c).await?;
                    call.cmd.query_async(&mut c).await
                }
                other => other,
            }
        })
        .await
    }

    /// Like [`run`](Self::run), but retries if the connection dropped under it: only for
    /// reads, which are safe to repeat. Twice, because a read sent while the client is still
    /// noticing a killed connection can fail on it a second time; the next finds the new one.
    /// `None` if the key holds another type than the read is for.
    pub(super) async fn read_with_retry<T>(&self, what: &'static str, cmd: Cmd) -> Result<Option<T>>
    where
        T: redis::FromRedisValue,
    {
        Ok(self.read_answered(what, cmd, &["WRONGTYPE"]).await?.ok())
    }

    /// [`read_with_retry`](Self::read_with_retry), answering `Err(code)` when the server
    /// answered with an error whose code is among `codes`.
    pub(super) async fn read_answered<T>(
        &self,
        what: &'static str,
        cmd: Cmd,
        codes: &[&'static str],
    ) -> Result<std::result::Result<T, &'static str>>
    where
        T: redis::FromRedisValue,
    {
        // The epoch of the tracked connection the attempt used (0: none; epochs start at 1).
        let used = std::sync::atomic::AtomicU64::new(0);
        let note = |epoch: Option<u64>| used.store(epoch.unwrap_or(0), Ordering::Relaxed);
        let attempt = async {
            let (mut conn, mut epoch) = self.conn().await;
            note(epoch);
            let mut retries = 2;
            loop {
                match cmd.query_async(&mut conn).await {
                    Err(e) if retries > 0 && (e.is_connection_dropped() || e.is_io_error()) => {
                        retries -= 1;
                        tracing::debug!(target: "fastsession", error = %e, "redis read failed; retrying");
                        if epoch.is_some() {
                            // Lost with the tracked connection: the retry takes another.
                            self.doubt(epoch);
                            (conn, epoch) = self.conn().await;
                            note(epoch);
                        }
                    }
                    Err(e) => match codes.iter().find(|code| has_code(&e, code)) {
                        Some(code) => return Ok(Err(*code)),
                        None => return Err(e),
                    },
                    Ok(value) => return Ok(Ok(value)),
                }
            }
        };
        let read = bounded(what, self.timeout, attempt).await;
        if read.as_ref().is_err_and(is_doubt) {
            self.doubt(Some(used.load(Ordering::Relaxed)).filter(|&e| e > 0));
        }
        read
    }
}

/// `op` within `timeout`, with both failures mapped to store errors.
async fn bounded<T>(
    what: &'static str,
    timeout: Duration,
    op: impl Future<Output = RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(store_error(what, e)),
        Err(_) => Err(Error::store(
            format!("redis store: {what} timed out after {timeout:?}"),
            io::Error::new(io::ErrorKind::TimedOut, "redis operation timed out"),
        )),
    }
}

/// Whether a failed command may have lost a push of its connection: a connection error or a
/// timeout, not an error reply.
fn is_doubt(error: &Error) -> bool {
    !matches!(error.kind(), ErrorKind::StoreFull)
        && std::error::Error::source(error).is_some_and(|source| {
            source
                .downcast_ref::<RedisError>()
                .is_none_or(|e| e.is_connection_dropped() || e.is_io_error() || e.is_timeout())
        })
}

/// `true` if Redis answered `e` with the error `code` (`OOM`, `WRONGTYPE`), also as one of
/// the errors of a transaction or inside a script.
pub(super) fn has_code(e: &RedisError, code: &str) -> bool {
    e.code() == Some(code)
        || e.clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == code))
}

pub(super) fn store_error(what: &'static str, e: RedisError) -> Error {
    if has_code(&e, "OOM") {
        // maxmemory reached with nothing Redis may evict: refused, nothing written. Fail
        // closed, and say so: never evict a login or a logout marker to make room.
        events::record(Event::StoreFull);
        return Error::new(
            ErrorKind::StoreFull,
            format!("redis store: cannot {what}: Redis is out of memory (maxmemory)"),
        )
        .with_source(e);
    }
    Error::store(format!("redis store: cannot {what}"), e)
}

fn invalid_url(e: RedisError) -> Error {
    // The client's message may quote the URL, password included: it is not kept.
    tracing::debug!(target: "fastsession", kind = ?e.kind(), "redis URL refused");
    Error::new(
        fastsession_core::ErrorKind::InvalidConfig,
        "redis store: invalid server URL",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const START: &str =
        "start Redis: redis-server --daemonize yes --port 6379 --save '' --appendonly no";

    /// The id Redis gives the connection `conn` is.
    async fn client_id(mut conn: Conn) -> i64 {
        redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await
            .expect("CLIENT ID")
    }

    fn runtime(alone: bool) -> tokio::runtime::Runtime {
        let mut builder = if alone {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(1);
            builder
        };
        builder.enable_all().build().expect("a runtime")
    }

    #[test]
    fn a_thread_with_a_runtime_of_its_own_gets_a_connection_of_its_own() {
        let config = RedisConfig::new("redis://127.0.0.1:6379");
        // Made on a multi-threaded runtime, whose workers keep driving the first connection.
        let home = runtime(false);
        let conns = home
            .block_on(Conns::open(&config))
            .unwrap_or_else(|e| panic!("cannot reach Redis on 127.0.0.1:6379 ({e}); {START}"));
        let conns = Arc::new(conns);
        let first = home.block_on(async { client_id(conns.get().await).await });
        let on_thread = |alone: bool| {
            let conns = Arc::clone(&conns);
            std::thread::spawn(move || {
                runtime(alone).block_on(async {
                    let once = client_id(conns.get().await).await;
                    (once, client_id(conns.get().await).await)
                })
            })
            .join()
            .expect("the thread ends")
        };
        // actix-web's workers: one connection each, kept.
        let (worker, again) = on_thread(true);
        assert_ne!(worker, first);
        assert_eq!(worker, again);
        let (other, _) = on_thread(true);
        assert_ne!(other, worker);
        // A multi-threaded runtime's tasks move between threads: they share the first.
        assert_eq!(on_thread(false), (first, first));
    }
}
