//! [`RedisBackend`]: a hash per session, every write one Lua step.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use fastsession_core::session::{Change, Expiry, Record};
use fastsession_core::store::{Backend, BoxFuture, IdHasher, StorageKey, Update};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error, ErrorKind, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::config::RedisConfig;
use crate::layout::{self, Fields};
use crate::scripts;

/// The longest TTL handed to Redis (100 years): a far-off deadline must not overflow it.
const MAX_TTL_SECS: u64 = 3_153_600_000;

/// The records of a [`RedisStore`](crate::RedisStore): one Redis hash per session.
///
/// # Layout
///
/// ```text
/// <prefix>s:{<key>}   hash, one per session, <key> = 64 hex digits of the keyed id hash
///     created, last_active   Unix seconds
///     persistent             "0" or "1"
///     user                   the user id, if the session has one
///     version                bumped by every update
///     v:<name>               one field per value, its JSON text
///     f:<name>               one field per flash key, a JSON array of its messages
/// <prefix>u:{<hash>}  set of session <key>s, <hash> = keyed hash of the user id
/// ```
///
/// The raw session id and the raw user id never appear in a key. Each key's hash tag is its
/// own hash, so keys spread over a Cluster's slots, and every command or script touches one
/// key only.
///
/// # Atomicity
///
/// A load is one `HGETALL`. Every write is one atomic step on the server. An `update` applies
/// the change set field by field (so requests that changed different keys never overwrite
/// each other), bumps `version` and `last_active`, and sets the TTL, but only to a record that
/// exists and is live (judged with the caller's `now` and [`Expiry`], not the server's clock);
/// a missing, expired or malformed record is deleted and the update reports the session
/// ended, never recreating it. When the request's own record already shows the session live
/// ([`Update::is_live_as_loaded`], the common case), that step is one `MULTI`/`EXEC` of plain
/// commands that also asks whether the hash still has `created`; otherwise (or when a request
/// cleared all values or flashes) it is a Lua script that reads the stored timestamps first.
/// Redis spends about a third as long on the `MULTI`/`EXEC` as on the script.
/// `create` writes only if the key is absent; `take` returns and deletes in one step; `touch`
/// only moves `last_active` and the TTL; these are scripts, sent by `EVALSHA`, falling back to
/// loading them on `NOSCRIPT` (after a server restart or failover).
///
/// # Expiry
///
/// Every session hash carries a native TTL: the record's deadline
/// ([`Expiry::deadline`]) minus the caller's `now`, at least one second. So Redis deletes
/// expired sessions itself, [`reap`](Backend::reap) does nothing and returns 0, and no
/// reaper task is needed. Liveness is still decided by the stored timestamps at every load.
///
/// # Faults
///
/// Every operation is bounded by the [command timeout](RedisConfig::with_command_timeout);
/// a refused connection, a timeout, a `READONLY` replica, an out-of-memory refusal or any
/// other server error is an [`ErrorKind::Store`](fastsession_core::ErrorKind::Store) error with
/// the client's error (or an [`io::Error`] of kind `TimedOut`) as its source. Nothing is
/// retried except reads (`HGETALL`, `SMEMBERS`), at most twice, and only after the connection
/// dropped. The connection reconnects by itself in the background once the server is back. On a
/// Cluster the client's own retries are off, since it would resend a script after an I/O
/// error: a request that meets a `MOVED` or `ASK` while a slot migrates fails once, and the
/// refreshed slot map serves the next.
pub struct RedisBackend {
    conn: Conn,
    prefix: String,
    timeout: Duration,
    user_index_ttl: u64,
    users: IdHasher,
}

/// One server through a self-reconnecting multiplexed connection, or a Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
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
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisBackend {
    /// Connects to the server(s) of `config`; `users` hashes user ids into index keys (give
    /// it a key of its own, or the store's hasher: its tag keeps the purposes apart).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](fastsession_core::ErrorKind::InvalidConfig) if the
    /// configuration is refused (a URL that does not parse, a prefix with `{`, a zero
    /// timeout); [`ErrorKind::Store`](fastsession_core::ErrorKind::Store) if no connection can be
    /// made within the connect timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use fastsession_core::codec::Key;
    /// use fastsession_core::store::{IdHasher, ServerStore};
    /// use fastsession_redis::{RedisBackend, RedisConfig, RedisStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = Key::generate(1)?; // load it from your secrets instead
    /// let config = RedisConfig::new("redis://127.0.0.1:6379");
    /// let backend = RedisBackend::connect(&config, IdHasher::new(&key)).await?;
    /// let store: RedisStore = ServerStore::with_backend(backend, IdHasher::new(&key));
    /// # Ok(()) }
    /// ```
    pub async fn connect(config: &RedisConfig, users: IdHasher) -> Result<Self> {
        config.validate()?;
        // Nagle's algorithm would hold each small command back while an earlier one is
        // unacknowledged: on a multiplexed connection that is every command under load.
        let infos = config
            .urls
            .iter()
            .map(|url| {
                let info = url.as_str().into_connection_info().map_err(invalid_url)?;
                let tcp = info.tcp_settings().clone().set_nodelay(true);
                Ok(info.set_tcp_settings(tcp))
            })
            .collect::<Result<Vec<_>>>()?;
        let conn = if config.cluster {
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
            Conn::Cluster(conn)
        } else {
            let info = infos
                .into_iter()
                .next()
                .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "no Redis URL"))?;
            let client = redis::Client::open(info).map_err(invalid_url)?;
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.command_timeout))
                // Few, quick reconnection tries: requests wait for them, bounded by the
                // command timeout; a later request starts a new round.
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(500));
            let connect = ConnectionManager::new_with_config(client, manager);
            Conn::Single(bounded("connect", config.connect_timeout, connect).await?)
        };
        Ok(RedisBackend {
            conn,
            prefix: config.prefix.clone(),
            timeout: config.command_timeout,
            user_index_ttl: config.user_index_ttl.as_secs().min(MAX_TTL_SECS),
            users,
        })
    }

    /// The Redis key of the session stored under `key`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession_redis::RedisStore, id: fastsession_core::session::SessionId) {
    /// let redis_key = store.backend().session_key(&store.storage_key(&id));
    /// assert!(redis_key.starts_with("fastsession:s:{"));
    /// # }
    /// ```
    #[must_use]
    pub fn session_key(&self, key: &StorageKey) -> String {
        self.key_name("s:{", key)
    }

    /// The Redis key of `user`'s session index: a keyed hash of the user id, never the id.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession_redis::RedisStore) {
    /// let index = store.backend().user_key("alice");
    /// assert!(!index.contains("alice"));
    /// # }
    /// ```
    #[must_use]
    pub fn user_key(&self, user: &str) -> String {
        let hash = self.users.hash_tagged(b"redis-user-index", user.as_bytes());
        self.key_name("u:{", &hash)
    }

    /// `<prefix><kind><64 hex>}` in one allocation (every load and save builds one).
    fn key_name(&self, kind: &str, key: &StorageKey) -> String {
        let mut name = String::with_capacity(self.prefix.len() + kind.len() + 65);
        name.push_str(&self.prefix);
        name.push_str(kind);
        key.push_hex(&mut name);
        name.push('}');
        name
    }

    /// The key prefix.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `op` on a clone of the connection, within the command timeout.
    async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        bounded(what, self.timeout, op(self.conn.clone())).await
    }

    /// Like [`run`](Self::run), but retries if the connection dropped under it: only for
    /// reads, which are safe to repeat. Twice, because a read sent while the client is still
    /// noticing a killed connection can fail on it a second time; the next finds the new one.
    async fn read_with_retry<T>(&self, what: &'static str, cmd: Cmd) -> Result<T>
    where
        T: redis::FromRedisValue,
    {
        let attempt = async {
            let mut conn = self.conn.clone();
            let mut retries = 2;
            loop {
                match cmd.query_async(&mut conn).await {
                    Err(e) if retries > 0 && (e.is_connection_dropped() || e.is_io_error()) => {
                        retries -= 1;
                        tracing::debug!(target: "fastsession", error = %e, "redis read failed; retrying");
                    }
                    other => return other,
                }
            }
        };
        bounded(what, self.timeout, attempt).await
    }

    /// The common update, without the script: the request's own record shows the session
    /// live now ([`Update::is_live_as_loaded`]), so only the stored record's existence is left
    /// to check. One `MULTI`/`EXEC` asks whether `created` is there and, in the same step,
    /// merges the fields, bumps `version` and sets the TTL; Redis runs these plain commands at
    /// a fraction of a script's cost. If `created` was missing (the key expired, was evicted
    /// or deleted by a logout since the load), the step wrote into an empty hash: that hash is
    /// deleted and the session reported ended. It can never be loaded meanwhile, since a hash
    /// without `created` is refused.
    async fn merge(
        &self,
        redis_key: &str,
        now: UnixTime,
        deletes: &[String],
        sets: &[(String, Cow<'_, str>)],
        ttl: u64,
    ) -> Result<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic().hexists(redis_key, "created");
        if !deletes.is_empty() {
            pipe.hdel(redis_key, deletes).ignore();
        }
        let set = pipe
            .cmd("HSET")
            .arg(redis_key)
            .arg("last_active")
            .arg(now.as_secs());
        for (field, value) in sets {
            set.arg(field).arg(value.as_ref());
        }
        set.ignore()
            .hincr(redis_key, "version", 1)
            .ignore()
            .expire(redis_key, i64::try_from(ttl).unwrap_or(i64::MAX))
            .ignore();
        let (existed,): (bool,) = self
            .run("save a session", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        if !existed {
            let mut del = redis::cmd("DEL");
            del.arg(redis_key);
            let _: i64 = self
                .run("delete an ended session", |mut c| async move {
                    del.query_async(&mut c).await
                })
                .await?;
        }
        Ok(existed)
    }

    fn ttl_of(record: &Record, expires: UnixTime) -> u64 {
        // The deadline comes from the caller's clock, which may be far from the server's (a
        // test clock): measure it from the record's own activity, and from the wall clock for
        // markers whose timestamps are placeholders; the shorter positive one wins.
        [record.last_active(), UnixTime::now()]
            .into_iter()
            .map(|from| expires.since(from).as_secs())
            .filter(|&secs| secs > 0)
            .min()
            .unwrap_or(1)
            .min(MAX_TTL_SECS)
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

fn store_error(what: &'static str, e: RedisError) -> Error {
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

fn expiry_args(now: UnixTime, expiry: &Expiry) -> [u64; 4] {
    [
        now.as_secs(),
        expiry.idle_timeout().as_secs(),
        expiry.absolute_lifetime().as_secs(),
        expiry.clock_skew().as_secs(),
    ]
}

/// A record out of a reply, or `None` (with a `warn` event) if the hash is not one of ours.
fn decode(fields: Fields) -> Option<Record> {
    if fields.is_empty() {
        return None;
    }
    match layout::decode(fields) {
        Ok(record) => Some(record),
        Err(detail) => {
            tracing::warn!(target: "fastsession::security", reason = "corrupt", detail, "redis session hash is not valid; treated as no session");
            None
        }
    }
}

impl Backend for RedisBackend {
    fn read<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(self.session_key(key));
            let fields: Fields = self.read_with_retry("load a session", cmd).await?;
            Ok(decode(fields))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut invocation = scripts::CREATE.key(self.session_key(key));
            invocation.arg(Self::ttl_of(record, expires));
            for (field, value) in layout::encode(record) {
                invocation.arg(field).arg(value);
            }
            let created: i64 = self
                .run("create a session", |mut c| async move {
                    invocation.invoke_async(&mut c).await
                })
                .await?;
            Ok(created == 1)
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a StorageKey,
        update: Update<'a>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let redis_key = self.session_key(key);
            let changes = update.changes;
            let from = update.from;
            let cleared = match (changes.values_cleared(), changes.flashes_cleared()) {
                (false, false) => "",
                (true, false) => "v",
                (false, true) => "f",
                (true, true) => "vf",
            };
            // One pass sorts the changes into fields to delete and pairs to set; the script
            // takes the deletions, counted, before the pairs.
            let mut deletes = Vec::new();
            // Values are sent as stored; flash lists are joined into one JSON array each.
            let mut sets: Vec<(String, Cow<'_, str>)> = Vec::new();
            for (name, change) in changes.values() {
                match (change, from.value(name)) {
                    (Change::Set, Some(value)) => {
                        sets.push((layout::value_field(name), Cow::Borrowed(value.get())))
                    }
                    _ => deletes.push(layout::value_field(name)),
                }
            }
            for (name, change) in changes.flashes() {
                match (change, from.flash_list(name)) {
                    (Change::Set, Some(list)) if !list.is_empty() => {
                        sets.push((layout::flash_field(name), layout::flash_json(list).into()));
                    }
                    _ => deletes.push(layout::flash_field(name)),
                }
            }
            match (changes.user_changed(), from.user_id()) {
                (false, _) => {}
                (true, None) => deletes.push("user".to_owned()),
                (true, Some(user)) => sets.push(("user".to_owned(), user.into())),
            }
            if changes.persistent_changed() {
                let persistent = if from.is_persistent() { "1" } else { "0" };
                sets.push(("persistent".to_owned(), persistent.into()));
            }
            if cleared.is_empty() && update.is_live_as_loaded() {
                let ttl = update
                    .expiry
                    .deadline_of(from.created(), update.now)
                    .since(update.now)
                    .as_secs()
                    .clamp(1, MAX_TTL_SECS);
                return self
                    .merge(&redis_key, update.now, &deletes, &sets, ttl)
                    .await;
            }
            let mut invocation = scripts::UPDATE.key(&redis_key);
            invocation
                .arg(&expiry_args(update.now, update.expiry)[..])
                .arg(cleared);
            invocation.arg(deletes.len()).arg(&deletes[..]);
            invocation.arg("last_active").arg(update.now.as_secs());
            for (field, value) in &sets {
                invocation.arg(field).arg(value.as_ref());
            }
            let applied: Option<i64> = self
                .run("save a session", |mut c| async move {
                    invocation.invoke_async(&mut c).await
                })
                .await?;
            Ok(applied.is_some())
        })
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut invocation = scripts::TOUCH.key(self.session_key(key));
            invocation.arg(&expiry_args(now, expiry)[..]);
            let touched: Option<i64> = self
                .run("refresh a session", |mut c| async move {
                    invocation.invoke_async(&mut c).await
                })
                .await?;
            Ok(touched == Some(1))
        })
    }

    fn take<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>> {
        Box::pin(async move {
            let invocation = scripts::TAKE.key(self.session_key(key));
            let fields: Fields = self
                .run("end a session", |mut c| async move {
                    invocation.invoke_async(&mut c).await
                })
                .await?;
            Ok(decode(fields))
        })
    }

    fn reap(&self, _now: UnixTime, _limit: usize) -> BoxFuture<'_, Result<usize>> {
        // Every session hash and user index carries a TTL: Redis deletes them itself.
        Box::pin(async { Ok(0) })
    }

    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut invocation = scripts::LINK.key(self.user_key(user));
            invocation.arg(key.to_hex()).arg(self.user_index_ttl);
            let _: i64 = self
                .run("link a session to its user", |mut c| async move {
                    invocation.invoke_async(&mut c).await
                })
                .await?;
            Ok(())
        })
    }

    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SREM");
            cmd.arg(self.user_key(user)).arg(key.to_hex());
            let _: i64 = self
                .run("unlink a session from its user", |mut c| async move {
                    cmd.query_async(&mut c).await
                })
                .await?;
            Ok(())
        })
    }

    fn user_keys<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Vec<StorageKey>>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SMEMBERS");
            cmd.arg(self.user_key(user));
            let members: Vec<String> = self.read_with_retry("list a user's sessions", cmd).await?;
            Ok(members
                .iter()
                .filter_map(|m| StorageKey::from_hex(m))
                .collect())
        })
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field(
                "mode",
                &match self.conn {
                    Conn::Single(_) => "standalone",
                    Conn::Cluster(_) => "cluster",
                },
            )
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
