//! [`RedisBackend`]: a hash per session, every write one Lua step.

mod anonymous;
mod conn;
mod create;
mod keys;
mod merge;
mod tracking;
mod update;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fastsession_core::Result;
use fastsession_core::codec::IdHasher;
use fastsession_core::events::{self, Event};
use fastsession_core::session::{Expiry, Record};
use fastsession_core::store::{Backend, NearCache, StorageKey, StoreFuture, Update, UserIndex};
use fastsession_core::time::UnixTime;

use self::anonymous::AnonymousIndex;
use self::conn::{Call, Conn, Conns, command, has_code};
use self::tracking::Tracking;
use crate::config::RedisConfig;
use crate::layout::{self, Fields};
use crate::{dump, scripts};

/// The longest TTL handed to Redis (100 years): a far-off deadline must not overflow it.
const MAX_TTL_SECS: u64 = 3_153_600_000;

/// The records of a [`RedisStore`](crate::RedisStore): one Redis hash per session.
///
/// # Layout
///
/// ```text
/// <prefix>s:{<key>}   hash, one per session, <key> = 64 hex digits of the keyed id hash
///     created, last_active   Unix seconds
///     persistent             "1" if "remember me" (absent or "0": not)
///     user                   the user id, if the session has one
///     expires_at             the session's own deadline (Unix seconds), if it has one
///     version                2^32 at the create, plus one per update (absent or below 2^32:
///                            written before; moved past 2^32 by its next merge)
///     v:<name>               one field per value, its JSON text
///     f:<name>               one field per flash key, a JSON array of its messages
/// <prefix>u:{<hash>}  set of session <key>s, <hash> = keyed hash of the user id
/// <prefix>a:{<tag>}   list: the anonymous sessions' <key>s, each followed by the second it
///                     was queued at, oldest first
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
/// A load is one `DUMP`, whose payload (the hash in Redis's own serialisation, one reply
/// element where `HGETALL` answers two per field) the store reads itself; a hash in an encoding
/// it does not read, or a server that refuses `DUMP`, gets an `HGETALL`. Every write is one
/// atomic step on the server. An `update` applies the
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
/// below), that step is one round trip of plain commands (in a `MULTI`/`EXEC` when the fields
/// take more than one command), whose `version` bump answers whether the hash was there before
/// (an anonymous session whose TTL it sets also reads whether it has a user by now); otherwise (a login
/// or logout without a new id, a larger anonymous session, a request that cleared all values or
/// flashes) it is a Lua script that reads the stored timestamps first and keeps the anonymous
/// index. Redis spends a fraction as long on the `MULTI`/`EXEC` as on
/// the script (measured on a loaded 2-core machine: 5–8 µs against 26–36 µs per save). `create`
/// is one `RESTORE` of the new hash with its TTL, which writes only if the key is absent (Redis
/// 7 has no other single command for that; a server that refuses `RESTORE`, an ACL without it,
/// gets a script instead); an anonymous session's queue entry waits for those of the next
/// creates of the process and goes with one of them (below).
/// `remove` returns and deletes in one step; `touch` only moves `last_active` and the TTL; these
/// are scripts, sent by `EVALSHA`, falling back to loading them on `NOSCRIPT` (after a server
/// restart or failover).
///
/// # Anonymous sessions
///
/// Sessions without a user id live in the [anonymous budget](RedisConfig::with_anonymous_budget):
/// an index (a queue of the anonymous sessions in the order they were queued, and the bytes of
/// the larger ones) that creates keep, and a logout without a new id and a save that grows a
/// session beyond its share in the same step; other saves leave it alone, so every step is
/// O(1). A process sends its creates' queue entries together: every 64th create (a 64th of
/// the budget's sessions if that is fewer; every create for a budget under 128 sessions), and
/// any create of a session larger than its share, sends the entries waiting with its own
/// `RESTORE`, in one round trip, and checks the budget counting the entries it may still hold
/// unsent as queued; so one process never takes the index over the budget, and a create is
/// its `RESTORE` alone most of the time. Entries a failed or cancelled create did not send
/// wait for the next; those a process holds when it exits are lost, and their sessions are
/// not counted until they expire by their TTL.
/// Each session counts for its data ([`Record::data_len`] as the saving request saw it), but at
/// least for its share of the budget (its bytes over its sessions: 671 by default), so that a
/// session within its share never changes the count and its saves need not read it. A save
/// that puts the index over the budget takes entries from the head of the queue (a create:
/// in one script after its round trip, one such script at a time per process),
/// until there is room for a few more (a 64th of the budget's sessions, at most 64, so that
/// the next creates need not evict one by one), and judges each (the CLOCK algorithm's second
/// chance, an approximation of "least recently active first"): a session active since it was
/// queued goes back to the tail (at most eight per save, so a queue of busy sessions still
/// makes room in bounded steps); an entry whose session is gone (expired by its TTL, ended) or
/// has a user by then is dropped without touching the session; any other session is deleted. The budget never deletes a session
/// with a user, nor a revocation marker with one. An entry stays queued until its turn comes,
/// so the queue's length is an upper bound of the anonymous sessions: one that ended or
/// logged in counts until then (its bytes are taken out at once). On a
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
/// an [`io::Error`](std::io::Error) of kind `TimedOut`) as its source. A write Redis refuses for lack of
/// memory (`OOM`: `maxmemory` reached with nothing it may evict) is
/// [`ErrorKind::StoreFull`](fastsession_core::ErrorKind::StoreFull): nothing was written.
/// Nothing is retried except reads (`DUMP`, `HGETALL`, `SMEMBERS`), at most twice, and only after the
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
    conns: Conns,
    prefix: String,
    timeout: Duration,
    user_index_ttl: u64,
    users: IdHasher,
    anonymous: AnonymousIndex,
    /// Set when the server refused `RESTORE` (an ACL without it, say): creates are scripts.
    restore_refused: AtomicBool,
    /// Set when the server refused a listpack payload (a server before Redis 7.0): creates
    /// restore plain hashes.
    listpack_refused: AtomicBool,
    /// Set when the server refused `DUMP`: loads are `HGETALL`s.
    dump_refused: AtomicBool,
    /// Set while a create of this process makes room in the anonymous index.
    making_room: AtomicBool,
    /// The near cache and its tracked connection, when configured.
    near: Option<Arc<Tracking>>,
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
        let conns = Conns::open(config).await?;
        // One tag for both index keys (one Cluster slot), a keyed hash like every other.
        let tag = StorageKey::from_bytes(users.hash(b"redis-anonymous-index", &[]));
        let mut backend = RedisBackend {
            conns,
            prefix: config.prefix.clone(),
            timeout: config.command_timeout,
            user_index_ttl: config.user_index_ttl.as_secs().min(MAX_TTL_SECS),
            users,
            anonymous: AnonymousIndex::new(
                config.anonymous_budget,
                format!("{}s:{{", config.prefix),
            ),
            restore_refused: AtomicBool::new(false),
            listpack_refused: AtomicBool::new(false),
            dump_refused: AtomicBool::new(false),
            making_room: AtomicBool::new(false),
            near: config
                .near_cache
                .map(|near| Tracking::start(config, near))
                .transpose()?,
        };
        backend.anonymous.order = backend.key_name("a:{", &tag);
        backend.anonymous.bytes = backend.key_name("b:{", &tag);
        Ok(backend)
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
    decode_versioned(fields).map(|(record, _)| record)
}

/// [`decode`], with the hash's `version`.
fn decode_versioned(fields: Fields) -> Option<Versioned> {
    if fields.is_empty() {
        return None;
    }
    readable(layout::decode_versioned(fields))
}

/// The fields and values of an `HGETALL` answer, one after the other: an array in RESP2, a
/// map in RESP3 (the near cache's connection); `None` if it is neither.
fn flat_fields(answer: redis::Value) -> Option<Fields> {
    let bytes = |value: redis::Value| redis::from_redis_value::<Vec<u8>>(value).ok();
    match answer {
        redis::Value::Array(items) => items.into_iter().map(bytes).collect(),
        redis::Value::Map(pairs) => pairs
            .into_iter()
            .flat_map(|(field, value)| [bytes(field), bytes(value)])
            .collect(),
        redis::Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// A record and the `version` of the hash it was read from, if it had one.
type Versioned = (Record, Option<u64>);

/// The record read, or `None` (counted) if the hash was not one of ours.
fn readable<T>(read: std::result::Result<T, &'static str>) -> Option<T> {
    read.inspect_err(|detail| unreadable(detail)).ok()
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
        let Some(near) = &self.near else {
            return StoreFuture::io(async move {
                Ok(self.read_record(key).await?.map(|(record, _)| record))
            });
        };
        let cache = near.cache();
        if let Some(record) = cache.get(key) {
            return StoreFuture::ready(Ok(Some(record)));
        }
        // Marked before the read is sent: an invalidation or a loss of tracking meanwhile
        // keeps its answer out of the cache. (While tracking is down there is no mark, and the
        // read goes through another connection.)
        let fill = near.begin(*key);
        StoreFuture::io(async move {
            let read = self.read_record(key).await?;
            if let (Some(fill), Some((record, version))) = (fill, &read) {
                // A read refused leaves what is there: no older than its answer.
                let _ = fill.complete(record, *version);
            }
            Ok(read.map(|(record, _)| record))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> StoreFuture<'a, bool> {
        // A new key: nothing of it is cached.
        StoreFuture::io(self.create_record(key, record, Self::ttl_of(record, expires)))
    }

    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        let Some(near) = &self.near else {
            return StoreFuture::io(async move {
                Ok(self.apply_update(key, update, false).await?.is_some())
            });
        };
        // Marked before the write is sent, with the entry cached then: if the version the
        // write makes is that entry's plus one, nobody else wrote between, and the entry
        // merged with this update is what Redis holds now. Without such an entry (another
        // write dropped it), nothing is marked or asked: the entry is dropped after the write.
        let fill = near
            .begin(*key)
            .filter(|fill| fill.base().is_some_and(|(_, version)| version.is_some()));
        StoreFuture::io(async move {
            let written = self.apply_update(key, update, fill.is_some()).await;
            let version = written.as_ref().ok().copied().flatten();
            near.cache().written(key, fill, &update, version);
            Ok(written?.is_some())
        })
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::io(self.written(key, async move {
            let redis_key = self.session_key(key);
            let mut call = Call::new(&scripts::TOUCH, &[&redis_key]);
            call.arg(&expiry_args(now, expiry)[..]);
            let reply: Vec<i64> = self.invoke("refresh a session", call).await?;
            Ok(status(&reply) == 1)
        }))
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(self.written(key, self.remove_record(key)))
    }

    fn reap(&self, _now: UnixTime, _limit: usize) -> StoreFuture<'_, usize> {
        // Every session hash and user index carries a TTL: Redis deletes them itself.
        StoreFuture::io(async { Ok(0) })
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

impl RedisBackend {
    /// Returns the near cache, if [`RedisConfig::with_near_cache`] turned it on: its
    /// [`stats`](NearCache::stats) for a health page or a metric.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::redis::RedisStore) {
    /// if let Some(cache) = store.backend().near_cache() {
    ///     let stats = cache.stats();
    ///     println!("near cache: {} hits, {} misses", stats.hits(), stats.misses());
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn near_cache(&self) -> Option<&NearCache> {
        self.near.as_deref().map(Tracking::cache)
    }

    /// Runs a write of the session under `key`, then drops its cached record: this process
    /// reads its own writes without waiting for Redis's invalidation (which comes too).
    async fn written<T>(
        &self,
        key: &StorageKey,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let written = write.await;
        if let Some(near) = &self.near {
            // Also after a failure: a write that timed out may have landed.
            near.cache().invalidate(key);
        }
        written
    }

    /// Reads the session under `key`, with its version.
    async fn read_record(&self, key: &StorageKey) -> Result<Option<Versioned>> {
        let redis_key = self.session_key(key);
        if !self.dump_refused.load(Ordering::Relaxed) {
            let cmd = command("DUMP", &redis_key, 0, 0);
            let refusals = ["NOPERM", "ERR"];
            let payload: std::result::Result<Option<Vec<u8>>, _> =
                self.read_answered("load a session", cmd, &refusals).await?;
            match payload {
                Ok(None) => return Ok(None),
                Ok(Some(payload)) => {
                    if let Some(read) = dump::read_versioned(&payload) {
                        return Ok(readable(read));
                    }
                    // Another type, or an encoding not read here: `HGETALL` says which.
                }
                Err(_) => {
                    self.dump_refused.store(true, Ordering::Relaxed);
                    tracing::warn!(target: "fastsession", "redis refused DUMP; sessions are loaded by HGETALL from now on");
                }
            }
        }
        let cmd = command("HGETALL", &redis_key, 0, 0);
        match self
            .read_with_retry::<redis::Value>("load a session", cmd)
            .await?
            .and_then(flat_fields)
        {
            Some(fields) => Ok(decode_versioned(fields)),
            None => {
                unreadable("not a hash");
                Ok(None)
            }
        }
    }

    /// Ends the session under `key`; returns its record.
    async fn remove_record(&self, key: &StorageKey) -> Result<Option<Record>> {
        let redis_key = self.session_key(key);
        if !self.is_cluster() {
            let call = self.indexed(&scripts::REMOVE_INDEXED, &redis_key, key, 0);
            let fields: Fields = self.invoke("end a session", call).await?;
            return Ok(removed(fields));
        }
        let fields: Fields = self
            .invoke("end a session", Call::new(&scripts::REMOVE, &[&redis_key]))
            .await?;
        let was_there = !fields.is_empty();
        let record = removed(fields);
        if was_there && record.as_ref().is_none_or(|r| r.user_id().is_none()) {
            self.cluster_index("del", key, UnixTime::EPOCH, 0).await?;
        }
        Ok(record)
    }
}

impl UserIndex for RedisBackend {
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        StoreFuture::io(async move {
            let user_key = self.user_key(user);
            let mut call = Call::new(&scripts::LINK, &[&user_key]);
            call.arg(key.to_hex()).arg(self.user_index_ttl);
            let _: i64 = self.invoke("link a session to its user", call).await?;
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
                &match self.conns.first() {
                    Conn::Cluster(_) => "cluster",
                    _ => "standalone",
                },
            )
            .field("near_cache", &self.near_cache())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("anonymous_budget", &self.anonymous.budget)
            .finish_non_exhaustive()
    }
}
