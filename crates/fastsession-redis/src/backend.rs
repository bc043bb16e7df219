//! [`RedisBackend`]: a hash per session, every write one Lua step.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::time::Duration;

use fastsession_core::codec::IdHasher;
use fastsession_core::events::{self, Event};
use fastsession_core::session::{Change, Expiry, Record};
use fastsession_core::store::{
    AnonymousBudget, Backend, StorageKey, StoreFuture, Update, UserIndex,
};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error, ErrorKind, Result};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Script,
    ScriptInvocation, Value,
};

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
///     expires_at             the session's own deadline (Unix seconds), if it has one
///     version                bumped by every update
///     v:<name>               one field per value, its JSON text
///     f:<name>               one field per flash key, a JSON array of its messages
/// <prefix>u:{<hash>}  set of session <key>s, <hash> = keyed hash of the user id
/// <prefix>a:{<tag>}   sorted set: the anonymous sessions' <key>s by last activity
/// <prefix>b:{<tag>}   hash: the bytes an anonymous session holds beyond its share of the
///                     budget (only for those that do), and "#", their sum
/// ```
///
/// The raw session id and the raw user id never appear in a key. Each session's and user
/// index's hash tag is its own hash, so keys spread over a Cluster's slots; the two keys of
/// the anonymous index share one tag (a keyed hash too), so they are in one slot.
///
/// # Atomicity
///
/// A load is one `HGETALL`. Every write is one atomic step on the server. An `update` applies the
/// change set field by field (so requests that changed different keys never overwrite each other; a
/// key the request only [incremented](fastsession_core::Session::increment) is an `HINCRBY` of the
/// stored integer, so concurrent increments all count, and one Redis refuses, on a value that is
/// not an integer or a sum beyond `i64`, leaves the value as [`Record::apply`] does), bumps
/// `version` and `last_active`, and sets the TTL, but only to a record that exists and is live
/// (judged with the caller's `now` and [`Expiry`], not the server's clock); a missing, expired or
/// malformed record is deleted and the update reports the session ended, never recreating it. When
/// the request's own record already shows the session live ([`Update::is_live_as_loaded`], the
/// common case) and the update changes neither the class nor the bytes counted for an anonymous
/// session (it keeps its user, or it has none and holds no more than its share of the budget,
/// below), that step is one `MULTI`/`EXEC` of plain commands that also asks whether the hash still
/// has `created` (and for an anonymous session, moves its index entry and asks whether it has a
/// user by now); otherwise (a login or logout without a new id, a larger anonymous session, a
/// request that cleared all values or flashes) it is a Lua script that reads the stored timestamps
/// first and keeps the anonymous index. Redis spends a fraction as long on the `MULTI`/`EXEC` as on
/// the script (measured on a loaded 2-core machine: 5–8 µs against 26–36 µs per save). `create`
/// writes only if the key is absent; `remove` returns and deletes in one step; `touch` only moves
/// `last_active` and the TTL; these are scripts, sent by `EVALSHA`, falling back to loading them on
/// `NOSCRIPT` (after a server restart or failover).
///
/// # Anonymous sessions
///
/// Sessions without a user id live in the [anonymous budget](RedisConfig::with_anonymous_budget):
/// an index (a sorted set by last activity, and the bytes of the larger ones) that every write
/// of an anonymous session keeps in the same step. Each counts for its data
/// ([`Record::data_len`] as the saving request saw it), but at least for its share of the
/// budget (its bytes over its sessions: 671 by default), so that a session within its share
/// never changes the count and its saves need not read it. A save that puts the index over
/// the budget deletes the least recently active other anonymous sessions in that step. An
/// entry whose session is gone (expired by its TTL) is dropped when its turn comes, and an
/// entry whose session has a user by then is dropped without touching the session: the
/// budget never deletes a session with a user, nor a revocation marker with one. On a
/// Cluster the index is kept by a second round trip after the session's own (the index is in
/// another slot), and the evictions are one more each; the session's write is atomic, the
/// index catches up.
///
/// # Expiry
///
/// Every session hash carries a native TTL: the record's deadline ([`Expiry::deadline`],
/// with the shorter [anonymous idle timeout](Expiry::anonymous_idle_timeout) for a session
/// without a user, the [remembered one](Expiry::remembered_idle_timeout) for a persistent
/// session with a user, and never past the session's own
/// [deadline](fastsession_core::session::Record::expires_at)) minus the caller's `now`, at
/// least one second. So Redis deletes expired
/// sessions itself, [`reap`](Backend::reap) does nothing and returns 0, and no reaper task is
/// needed; with `maxmemory-policy volatile-ttl`, Redis short of memory deletes anonymous
/// sessions (the shorter TTLs) first. Liveness is still decided by the stored timestamps at
/// every load.
///
/// # Faults
///
/// Every operation is bounded by the [command timeout](RedisConfig::with_command_timeout);
/// a refused connection, a timeout, a `READONLY` replica or any other server error is an
/// [`ErrorKind::Store`](fastsession_core::ErrorKind::Store) error with the client's error (or
/// an [`io::Error`] of kind `TimedOut`) as its source. A write Redis refuses for lack of
/// memory (`OOM`: `maxmemory` reached with nothing it may evict) is
/// [`ErrorKind::StoreFull`](fastsession_core::ErrorKind::StoreFull): nothing was written.
/// Nothing is retried except reads (`HGETALL`, `SMEMBERS`), at most twice, and only after the
/// connection dropped. The connection reconnects by itself in the background once the server
/// is back. On a Cluster the client's own retries are off, since it would resend a script
/// after an I/O error: a request that meets a `MOVED` or `ASK` while a slot migrates fails
/// once, and the refreshed slot map serves the next.
///
/// A session key holding something this store did not write (another type, a hash without
/// `created`, fields it does not know) reads as no session, and a write to it deletes it and
/// reports the session ended: such a key can neither lock a client out nor fail every
/// request that carries its cookie. Each is counted as [`Event::UnreadableRecord`].
pub struct RedisBackend {
    conn: Conn,
    prefix: String,
    timeout: Duration,
    user_index_ttl: u64,
    users: IdHasher,
    anonymous: AnonymousIndex,
}

/// Where the anonymous sessions are counted, and how many may be.
struct AnonymousIndex {
    /// The sorted set of their storage keys (hex) by last activity.
    order: String,
    /// The hash of the bytes the larger hold beyond their share, and `#`: the sum.
    bytes: String,
    /// A session key's name up to its 64 hex digits: the scripts build the evicted ones'.
    session_prefix: String,
    budget: AnonymousBudget,
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
    /// use fastsession::Key;
    /// use fastsession::codec::IdHasher;
    /// use fastsession::store::ServerStore;
    /// use fastsession::redis::{RedisBackend, RedisConfig, RedisStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = Key::generate()?; // load it from your secrets instead
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
        // One tag for both index keys (one Cluster slot), a keyed hash like every other.
        let tag = StorageKey::from_bytes(users.hash(b"redis-anonymous-index", &[]));
        let mut backend = RedisBackend {
            conn,
            prefix: config.prefix.clone(),
            timeout: config.command_timeout,
            user_index_ttl: config.user_index_ttl.as_secs().min(MAX_TTL_SECS),
            users,
            anonymous: AnonymousIndex {
                order: String::new(),
                bytes: String::new(),
                session_prefix: format!("{}s:{{", config.prefix),
                budget: config.anonymous_budget,
            },
        };
        backend.anonymous.order = backend.key_name("a:{", &tag);
        backend.anonymous.bytes = backend.key_name("b:{", &tag);
        Ok(backend)
    }

    /// The Redis key of the session stored under `key`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::redis::RedisStore, id: fastsession::session::SessionId) {
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
    /// # async fn run(store: fastsession::redis::RedisStore) {
    /// let index = store.backend().user_key("alice");
    /// assert!(!index.contains("alice"));
    /// # }
    /// ```
    #[must_use]
    pub fn user_key(&self, user: &str) -> String {
        let hash = StorageKey::from_bytes(self.users.hash(b"redis-user-index", user.as_bytes()));
        self.key_name("u:{", &hash)
    }

    /// The Redis key of the anonymous index: a sorted set of the anonymous sessions' storage
    /// keys (64 hex digits, as in [`session_key`](Self::session_key)) by last activity. Its
    /// size is the number of anonymous sessions (an upper bound: entries of sessions that
    /// expired are dropped when their turn comes), for a metric or a health page.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::redis::RedisStore) -> redis::RedisResult<()> {
    /// let mut con = redis::Client::open("redis://127.0.0.1")?.get_multiplexed_async_connection().await?;
    /// let anonymous: u64 = redis::cmd("ZCARD")
    ///     .arg(store.backend().anonymous_index_key())
    ///     .query_async(&mut con)
    ///     .await?;
    /// assert!(anonymous <= store.backend().anonymous_budget().max_sessions() as u64);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn anonymous_index_key(&self) -> &str {
        &self.anonymous.order
    }

    /// The budget of the anonymous sessions (see [`RedisConfig::with_anonymous_budget`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use fastsession::store::AnonymousBudget;
    ///
    /// # async fn run(store: fastsession::redis::RedisStore) {
    /// assert_eq!(store.backend().anonymous_budget(), AnonymousBudget::default());
    /// # }
    /// ```
    #[must_use]
    pub fn anonymous_budget(&self) -> AnonymousBudget {
        self.anonymous.budget
    }

    /// `<prefix><kind><64 hex>}` in one allocation (every load and save builds one).
    fn key_name(&self, kind: &str, key: &StorageKey) -> String {
        let mut name = String::with_capacity(self.prefix.len() + kind.len() + 65);
        name.push_str(&self.prefix);
        name.push_str(kind);
        // Writing to a `String` cannot fail.
        let _ = write!(name, "{key}}}");
        name
    }

    /// The key prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// // Where this store's keys are, for `redis-cli --scan --pattern`.
    /// fn scan_pattern(store: &fastsession::redis::RedisStore) -> String {
    ///     format!("{}*", store.backend().key_prefix())
    /// }
    /// # let _ = scan_pattern;
    /// ```
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// Runs `op` on a clone of the connection, within the command timeout.
    async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        bounded(what, self.timeout, op(self.conn.clone())).await
    }

    /// Runs `invocation` within the command timeout.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        invocation: ScriptInvocation<'_>,
    ) -> Result<T> {
        self.run(what, |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// Like [`run`](Self::run), but retries if the connection dropped under it: only for
    /// reads, which are safe to repeat. Twice, because a read sent while the client is still
    /// noticing a killed connection can fail on it a second time; the next finds the new one.
    /// `None` if the key holds another type than the read is for.
    async fn read_with_retry<T>(&self, what: &'static str, cmd: Cmd) -> Result<Option<T>>
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
                    Err(e) if has_code(&e, "WRONGTYPE") => return Ok(None),
                    other => return other.map(Some),
                }
            }
        };
        bounded(what, self.timeout, attempt).await
    }

    /// `script` with the keys and the five leading arguments of an indexed script (see
    /// [`scripts`]): the session `redis_key`, its storage key, and `len` data bytes.
    fn indexed<'s>(
        &self,
        script: &'s Script,
        redis_key: &str,
        key: &StorageKey,
        len: usize,
    ) -> ScriptInvocation<'s> {
        let index = &self.anonymous;
        let mut invocation = script.key(redis_key);
        invocation
            .key(&index.order)
            .key(&index.bytes)
            .arg(&index.session_prefix)
            .arg(key.to_hex())
            .arg(index.budget.max_sessions())
            .arg(index.budget.max_bytes())
            .arg(len);
        invocation
    }

    /// The index step of a Cluster, after the session's own: `what` is `add` (with `score`
    /// and `len`), `del` or `touch` (with `score`). The sessions an `add` pushes out of the
    /// index are then deleted one by one, each unless it has a user.
    async fn cluster_index(
        &self,
        what: &'static str,
        key: &StorageKey,
        score: UnixTime,
        len: usize,
    ) -> Result<()> {
        let index = &self.anonymous;
        let mut invocation = scripts::INDEX.key(&index.order);
        invocation
            .key(&index.bytes)
            .arg(what)
            .arg(key.to_hex())
            .arg(score.as_secs())
            .arg(len)
            .arg(index.budget.max_sessions())
            .arg(index.budget.max_bytes());
        let victims: Vec<String> = self.invoke("keep the anonymous index", invocation).await?;
        for victim in victims.iter().filter_map(|v| StorageKey::from_hex(v)) {
            let evict = scripts::EVICT.key(self.session_key(&victim));
            let evicted: i64 = self.invoke("evict an anonymous session", evict).await?;
            Self::evicted(evicted);
        }
        Ok(())
    }

    /// Counts `n` anonymous sessions evicted for the budget.
    fn evicted(n: i64) {
        for _ in 0..n {
            events::record(Event::AnonymousEvicted);
        }
    }

    /// The common update, without the script: the request's own record shows the session
    /// live now ([`Update::is_live_as_loaded`]), so only the stored record's existence is
    /// left to check. One `MULTI`/`EXEC` asks whether `created` is there and, in the same
    /// step, merges the fields, bumps `version` and sets the TTL; Redis runs these plain
    /// commands at a fraction of a script's cost. If `created` was missing (the key expired,
    /// was evicted or deleted by a logout since the load), the step wrote into an empty hash:
    /// that hash is deleted and the session reported ended. It can never be loaded meanwhile,
    /// since a hash without `created` is refused. A key that is not a hash (not this store's)
    /// is deleted the same way.
    ///
    /// An anonymous session comes here only if its data is within its
    /// [share](Self::share), so its bytes in the index stay as they are: the same step
    /// moves its index entry (on one server; a Cluster's index step follows) and asks whether
    /// the hash has a user by now (a login since the load): then its TTL, set for an
    /// anonymous session, is set again for a logged-in one (one more round trip, only then).
    async fn merge(
        &self,
        key: &StorageKey,
        redis_key: &str,
        update: &Update<'_>,
        deletes: &[String],
        sets: &[(String, Cow<'_, str>)],
        increments: &[(String, i64)],
    ) -> Result<bool> {
        let (now, expiry, from) = (update.now(), update.expiry(), update.from());
        let anonymous = from.user_id().is_none();
        // The request's deadline is the stored one: a changed one does not come here.
        let ttl_of = |idle: Duration| {
            let mut deadline = now
                .saturating_add(idle)
                .min(from.created().saturating_add(expiry.absolute_lifetime()));
            if let Some(at) = from.expires_at() {
                deadline = deadline.min(at);
            }
            i64::try_from(deadline.since(now).as_secs().clamp(1, MAX_TTL_SECS)).unwrap_or(i64::MAX)
        };
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
        set.ignore();
        // A value that is not an integer any more, or a sum beyond `i64`: Redis refuses the
        // `HINCRBY` and the stored value stays, as in `Record::apply` (its error is ignored).
        for (field, delta) in increments {
            pipe.hincr(redis_key, field, *delta).ignore();
        }
        pipe.hincr(redis_key, "version", 1)
            .ignore()
            .expire(redis_key, ttl_of(expiry.idle_timeout_of(from)))
            .ignore();
        if anonymous {
            if !self.is_cluster() {
                pipe.cmd("ZADD")
                    .arg(&self.anonymous.order)
                    .arg("XX")
                    .arg(now.as_secs())
                    .arg(key.to_hex())
                    .ignore();
            }
            pipe.hexists(redis_key, "user");
        }
        // Each answer on its own: a foreign value under the index key (its ZADD fails) must
        // not fail the session's save; the next anonymous create replaces it.
        pipe.ignore_errors();
        let reply: Vec<RedisResult<bool>> = self
            .run("save a session", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let mut reply = reply.into_iter();
        let existed = match reply.next() {
            Some(Ok(existed)) => existed,
            Some(Err(e)) if has_code(&e, "WRONGTYPE") => {
                unreadable("not a hash");
                false
            }
            Some(Err(e)) => return Err(store_error("save a session", e)),
            None => false,
        };
        if !existed {
            self.discard(key).await?;
            return Ok(false);
        }
        if anonymous {
            if let Some(Ok(true)) = reply.next() {
                // Logged in by another request since the load: a logged-in TTL (remembered,
                // if the session is persistent as this request knows it).
                let idle = if from.is_persistent() {
                    expiry.remembered_idle_timeout()
                } else {
                    expiry.idle_timeout()
                };
                let mut expire = redis::cmd("EXPIRE");
                expire.arg(redis_key).arg(ttl_of(idle));
                let _: i64 = self
                    .run("save a session", |mut c| async move {
                        expire.query_async(&mut c).await
                    })
                    .await?;
            } else if self.is_cluster() {
                self.cluster_index("touch", key, now, 0).await?;
            }
        }
        Ok(true)
    }

    /// Deletes the key under `key` and its index entry, whatever it holds.
    async fn discard(&self, key: &StorageKey) -> Result<()> {
        let redis_key = self.session_key(key);
        // What was there is not wanted: not decoded, not counted.
        if self.is_cluster() {
            let _: Fields = self
                .invoke("delete an ended session", scripts::REMOVE.key(&redis_key))
                .await?;
            self.cluster_index("del", key, UnixTime::EPOCH, 0).await?;
        } else {
            let remove = self.indexed(&scripts::REMOVE_INDEXED, &redis_key, key, 0);
            let _: Fields = self.invoke("delete an ended session", remove).await?;
        }
        Ok(())
    }

    /// The budget's bytes per session: an anonymous session counts for at least this much
    /// (see [`scripts`]), so a save of one that holds no more does not change the count and
    /// need not read it: it takes the plain `MULTI`/`EXEC`. (The budget still holds: its
    /// sessions fit in its bytes, and a larger one counts for what it holds.)
    fn share(&self) -> usize {
        let budget = self.anonymous.budget;
        budget.max_bytes() / budget.max_sessions()
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

/// `true` if Redis answered `e` with the error `code` (`OOM`, `WRONGTYPE`), also as one of
/// the errors of a transaction or inside a script.
fn has_code(e: &RedisError, code: &str) -> bool {
    e.code() == Some(code)
        || e.clone()
            .into_server_errors()
            .is_some_and(|errors| errors.iter().any(|(_, e)| e.code() == code))
}

fn store_error(what: &'static str, e: RedisError) -> Error {
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

/// The liveness arguments of the update and touch scripts.
fn expiry_args(now: UnixTime, expiry: &Expiry) -> [u64; 6] {
    [
        now.as_secs(),
        expiry.idle_timeout().as_secs(),
        expiry.anonymous_idle_timeout().as_secs(),
        expiry.absolute_lifetime().as_secs(),
        expiry.clock_skew().as_secs(),
        expiry.remembered_idle_timeout().as_secs(),
    ]
}

/// Counts a session key that held something this store did not write. A client may cause
/// one per request (by replaying the cookie): counted, logged at most once per interval.
fn unreadable(detail: &'static str) {
    events::record(Event::UnreadableRecord);
    tracing::debug!(target: "fastsession::security", reason = "corrupt", detail, "redis session key holds no valid session; treated as no session");
}

/// A record out of a reply, or `None` (counted) if the hash is not one of ours.
fn decode(fields: Fields) -> Option<Record> {
    if fields.is_empty() {
        return None;
    }
    match layout::decode(fields) {
        Ok(record) => Some(record),
        Err(detail) => {
            unreadable(detail);
            None
        }
    }
}

/// What a `REMOVE` script returned: the record, if one was there and readable.
fn removed(fields: Fields) -> Option<Record> {
    if fields.len() == 1 && fields[0] == scripts::FOREIGN.as_bytes() {
        unreadable("not a hash");
        return None;
    }
    decode(fields)
}

/// The status of an update or touch script's reply (`1` applied, `0` not live, `-1` a
/// foreign value, deleted), counting the foreign one.
fn status(reply: &[i64]) -> i64 {
    let status = reply.first().copied().unwrap_or(0);
    if status < 0 {
        unreadable("not a hash");
    }
    status
}

impl Backend for RedisBackend {
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(async move {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(self.session_key(key));
            match self.read_with_retry("load a session", cmd).await? {
                Some(fields) => Ok(decode(fields)),
                None => {
                    unreadable("not a hash");
                    Ok(None)
                }
            }
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            let redis_key = self.session_key(key);
            let ttl = Self::ttl_of(record, expires);
            let anonymous = record.user_id().is_none();
            if anonymous && !self.is_cluster() {
                let mut invocation = self.indexed(
                    &scripts::CREATE_ANONYMOUS,
                    &redis_key,
                    key,
                    record.data_len(),
                );
                invocation.arg(record.last_active().as_secs()).arg(ttl);
                for (field, value) in layout::encode(record) {
                    invocation.arg(field).arg(value);
                }
                let reply: i64 = self.invoke("create a session", invocation).await?;
                Self::evicted(reply - 1);
                return Ok(reply > 0);
            }
            let mut invocation = scripts::CREATE.key(&redis_key);
            invocation.arg(ttl);
            for (field, value) in layout::encode(record) {
                invocation.arg(field).arg(value);
            }
            let created: i64 = self.invoke("create a session", invocation).await?;
            if created == 1 && anonymous {
                let indexed = self
                    .cluster_index("add", key, record.last_active(), record.data_len())
                    .await;
                if let Err(e) = indexed {
                    // Not counted, so not kept: the save reports the failure.
                    let _ = self.discard(key).await;
                    return Err(e);
                }
            }
            Ok(created == 1)
        })
    }

    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            let redis_key = self.session_key(key);
            let changes = update.changes();
            let from = update.from();
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
            // Keys only incremented: `HINCRBY` adds the delta to the stored integer.
            let mut increments: Vec<(String, i64)> = Vec::new();
            for (name, change) in changes.values() {
                match (change, changes.delta(name), from.value(name)) {
                    (Change::Set, Some(delta), _) => {
                        increments.push((layout::value_field(name), delta));
                    }
                    (Change::Set, None, Some(value)) => {
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
            let user_change = match (changes.user_changed(), from.user_id()) {
                (false, _) => "",
                (true, None) => {
                    deletes.push("user".to_owned());
                    "d"
                }
                (true, Some(user)) => {
                    sets.push(("user".to_owned(), user.into()));
                    "s"
                }
            };
            let persistent_change = if changes.persistent_changed() {
                let persistent = if from.is_persistent() { "1" } else { "0" };
                sets.push(("persistent".to_owned(), persistent.into()));
                persistent
            } else {
                ""
            };
            let expires_change = match (changes.expires_at_changed(), from.expires_at()) {
                (false, _) => String::new(),
                (true, None) => {
                    deletes.push("expires_at".to_owned());
                    "-".to_owned()
                }
                (true, Some(at)) => {
                    let secs = at.as_secs().to_string();
                    sets.push(("expires_at".to_owned(), secs.clone().into()));
                    secs
                }
            };
            // The plain commands, when liveness needs no read and neither the class nor the
            // anonymous bytes can change (see `merge`); a changed deadline is never "live as
            // loaded", so it takes the script, which reads the stored one.
            if cleared.is_empty()
                && user_change.is_empty()
                && (from.user_id().is_some() || from.data_len() <= self.share())
                && update.is_live_as_loaded()
            {
                return self
                    .merge(key, &redis_key, &update, &deletes, &sets, &increments)
                    .await;
            }
            let cluster = self.is_cluster();
            let mut invocation = if cluster {
                scripts::UPDATE.key(&redis_key)
            } else {
                self.indexed(&scripts::UPDATE_INDEXED, &redis_key, key, from.data_len())
            };
            invocation
                .arg(&expiry_args(update.now(), update.expiry())[..])
                .arg(user_change)
                .arg(persistent_change)
                .arg(&expires_change)
                .arg(cleared);
            invocation.arg(deletes.len()).arg(&deletes[..]);
            invocation.arg(increments.len());
            for (field, delta) in &increments {
                invocation.arg(field).arg(*delta);
            }
            invocation.arg("last_active").arg(update.now().as_secs());
            for (field, value) in &sets {
                invocation.arg(field).arg(value.as_ref());
            }
            let reply: Vec<i64> = self.invoke("save a session", invocation).await?;
            if status(&reply) != 1 {
                return Ok(false);
            }
            match reply[1..] {
                [evicted] => Self::evicted(evicted),
                [1, _] => {
                    self.cluster_index("add", key, update.now(), from.data_len())
                        .await?;
                }
                [0, 1] => self.cluster_index("del", key, update.now(), 0).await?,
                _ => {}
            }
            Ok(true)
        })
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            let redis_key = self.session_key(key);
            let cluster = self.is_cluster();
            let mut invocation = if cluster {
                scripts::TOUCH.key(&redis_key)
            } else {
                self.indexed(&scripts::TOUCH_INDEXED, &redis_key, key, 0)
            };
            invocation.arg(&expiry_args(now, expiry)[..]);
            let reply: Vec<i64> = self.invoke("refresh a session", invocation).await?;
            if status(&reply) != 1 {
                return Ok(false);
            }
            if cluster && reply.get(1) == Some(&1) {
                self.cluster_index("touch", key, now, 0).await?;
            }
            Ok(true)
        })
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(async move {
            let redis_key = self.session_key(key);
            if !self.is_cluster() {
                let invocation = self.indexed(&scripts::REMOVE_INDEXED, &redis_key, key, 0);
                let fields: Fields = self.invoke("end a session", invocation).await?;
                return Ok(removed(fields));
            }
            let fields: Fields = self
                .invoke("end a session", scripts::REMOVE.key(&redis_key))
                .await?;
            let was_there = !fields.is_empty();
            let record = removed(fields);
            if was_there && record.as_ref().is_none_or(|r| r.user_id().is_none()) {
                self.cluster_index("del", key, UnixTime::EPOCH, 0).await?;
            }
            Ok(record)
        })
    }

    fn reap(&self, _now: UnixTime, _limit: usize) -> StoreFuture<'_, usize> {
        // Every session hash and user index carries a TTL: Redis deletes them itself.
        StoreFuture::io(async { Ok(0) })
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

impl UserIndex for RedisBackend {
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        StoreFuture::io(async move {
            let mut invocation = scripts::LINK.key(self.user_key(user));
            invocation.arg(key.to_hex()).arg(self.user_index_ttl);
            let _: i64 = self
                .invoke("link a session to its user", invocation)
                .await?;
            Ok(())
        })
    }

    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        StoreFuture::io(async move {
            let mut cmd = redis::cmd("SREM");
            cmd.arg(self.user_key(user)).arg(key.to_hex());
            let _: Option<i64> = self
                .run("unlink a session from its user", |mut c| async move {
                    match cmd.query_async(&mut c).await {
                        // Not a set of this store's: nothing of ours is linked there.
                        Err(e) if has_code(&e, "WRONGTYPE") => Ok(None),
                        other => other.map(Some),
                    }
                })
                .await?;
            Ok(())
        })
    }

    fn user_keys<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StorageKey>> {
        StoreFuture::io(async move {
            let mut cmd = redis::cmd("SMEMBERS");
            cmd.arg(self.user_key(user));
            let members: Vec<String> = self
                .read_with_retry("list a user's sessions", cmd)
                .await?
                .unwrap_or_default();
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
            .field("anonymous_budget", &self.anonymous.budget)
            .finish_non_exhaustive()
    }
}
