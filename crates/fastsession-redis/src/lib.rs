//! A [fastsession](https://docs.rs/fastsession) store that keeps sessions in Redis, shared by
//! every app server: one hash per session, merged field by field, expired by Redis itself.
//!
//! [`RedisStore`] is a [`ServerStore`] over a [`RedisBackend`]: the cookie holds only the
//! session id; Redis holds a hash under a keyed hash of it, never the id itself.
//!
//! # What is stored where
//!
//! Under the [key prefix](RedisConfig::with_key_prefix) (default `fastsession:`):
//! `s:{<hash of the id>}`, a hash with one field per session value (`v:<name>`, its JSON),
//! one per flash key (`f:<name>`), and `created`, `last_active`, `persistent`, `user`,
//! `expires_at` (the session's own deadline, if it has one) and `version`;
//! `u:{<hash of the user id>}`, the set of a user's sessions for
//! [`ServerStore::sessions_of`] and "log out everywhere"; and `a:{<tag>}` and `b:{<tag>}`,
//! the index of the anonymous sessions (see below). Each session and user index has a TTL:
//! Redis deletes expired sessions and forgotten indexes by itself; no reaper task is needed.
//! See [`RedisBackend`] for the details.
//!
//! # Anonymous sessions and TTL classes
//!
//! A session without a user id ([`Session::set_user_id`](fastsession_core::Session::set_user_id))
//! is *anonymous*; anyone can make one with a request. Two things keep a flood of them from
//! touching what logged-in users have:
//!
//! * **The anonymous budget** ([`RedisConfig::with_anonymous_budget`], default 100 000
//!   sessions and 64 MiB of session data): the store keeps an index of the anonymous sessions
//!   by last activity, and a save that puts them over the budget deletes the least recently
//!   active ones in the same atomic step (creates send their index entries and check the
//!   budget in batches of up to 64, counting the unsent ones: see
//!   [`RedisBackend`]). Sessions with a user id, and the revocation markers
//!   of sessions that had one (every logout of a logged-in user, every "log out everywhere"),
//!   are never deleted to make room. A session that logs in leaves the index; one that logs
//!   out without a new id joins it.
//! * **TTL classes**: every TTL the store sets is the session's own deadline, with the
//!   shorter [anonymous idle timeout](fastsession_core::session::Expiry::anonymous_idle_timeout)
//!   (by default the idle timeout, at most one hour) for a session without a user. So
//!   anonymous sessions expire first, and a Redis with `maxmemory-policy volatile-ttl` that
//!   runs short of memory evicts them first.
//!
//! # Memory and eviction
//!
//! Size Redis's `maxmemory` for your logged-in sessions and revocation markers plus the
//! anonymous budget (measured on Redis 7.0: about 350 bytes for a session holding one small
//! value, 700 with a user id and its user index, 4.8 KB for a session holding 4 KB), and
//! choose an eviction policy that never takes them:
//!
//! * `noeviction` (recommended on a dedicated instance, and the only policy that never loses
//!   a key): a Redis that is full refuses writes; the store then fails closed with
//!   [`ErrorKind::StoreFull`](fastsession_core::ErrorKind::StoreFull) (adapters answer 503)
//!   and saves nothing: a login is refused rather than stored half, a logout that needs a
//!   marker is refused rather than forgotten. Reads keep working, and so do logouts that
//!   only delete. Each refusal is counted as
//!   [`Event::StoreFull`](fastsession_core::events::Event::StoreFull).
//! * `volatile-ttl`: Redis short of memory evicts the keys nearest their expiry first:
//!   anonymous sessions, by their shorter TTL, before logged-in ones. The anonymous index
//!   has no TTL, so it is never evicted.
//! * `allkeys-lru`, `allkeys-lfu`, `allkeys-random`: work while the budget keeps Redis within
//!   `maxmemory`, but a Redis that runs out of room anyway (too small for the logged-in
//!   sessions, or shared with other data) evicts whatever it picks: logged-in sessions,
//!   **revocation markers** (a copied cookie of a logged-out session opens again) and the
//!   anonymous index itself. Not recommended.
//!
//! An evicted session ends, like an expired one.
//!
//! # Consistency
//!
//! A load is one round trip (`DUMP`, read by the store), and a save one atomic step (a `MULTI`/`EXEC`, or a
//! Lua script when liveness must be read back or the anonymous index kept): it checks that
//! the session is still there and live, applies only what the request changed (so two
//! requests that changed different keys of one session both persist; for one key, one whole
//! value wins, except that increments
//! ([`Session::increment`](fastsession_core::Session::increment)) are `HINCRBY`s and all
//! count), bumps the version and the last activity, and resets the TTL. A session that
//! another request destroyed or regenerated, or that expired or was evicted between load and
//! save, is never brought back: the save fails with
//! [`ErrorKind::SessionEnded`](fastsession_core::ErrorKind::SessionEnded). New sessions are
//! created only where no key exists, and a regeneration takes the old hash atomically, so two
//! racing regenerations leave one id. A session key holding anything this store did not
//! write (another type, a hash that is not a session) reads as no session and is cleared by
//! the next write to it: the client gets a fresh session, never an error on every request.
//!
//! # Faults
//!
//! Every operation is bounded by the [command timeout](RedisConfig::with_command_timeout)
//! (default 1.5 s). A server that is down, stalled or read-only (a replica) gives an
//! [`ErrorKind::Store`](fastsession_core::ErrorKind::Store) error, one out of memory an
//! [`ErrorKind::StoreFull`](fastsession_core::ErrorKind::StoreFull) error: never an anonymous
//! session instead of the stored one, never "saved" when nothing was. The connection
//! reconnects by itself when the server returns; the next request just works. Only reads are
//! retried, at most twice, after a dropped connection.
//!
//! # Deployment
//!
//! Standalone servers use one multiplexed connection that reconnects by itself, plus one per
//! thread whose Tokio runtime runs on that thread alone (each actix-web worker), so that a
//! worker's commands never wait on another thread; every write is one round trip. Redis
//! Cluster ([`RedisConfig::cluster`]) uses the client's cluster connection; every script
//! touches keys of one slot, so the anonymous index (in a slot of its own) is kept by a
//! second round trip after each write of an anonymous session, and each eviction is one more.
//! TLS (`rediss://` URLs) needs the `tls-rustls` feature (the facade's `redis-tls`): rustls
//! with its `ring` provider, and the webpki root certificates, so the server's certificate
//! must chain to a public certificate authority.
//!
//! With Redis ACLs, the store's user needs, on its key prefix, the commands it sends: hash,
//! list, set and key commands, `MULTI`/`EXEC`, `EVALSHA` and `SCRIPT LOAD` (its scripts' own
//! commands are checked too), and for its fast paths `RESTORE` (a create; ACL files it under
//! `@dangerous`) and `DUMP` (a load). A user refused either of those two gets the slower path
//! (a script per create, an `HGETALL` per load), and the store logs it once. A create sends
//! a small session in the compact form Redis 7.0 and later keep hashes in; a server before
//! 7.0 refuses that once (logged) and is sent the plain form from then on.
//!
//! # Example
//!
//! ```no_run
//! use fastsession::Key;
//! use fastsession::{CookieConfig, SessionConfig, Sessions};
//! use fastsession::redis::RedisConfig;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Keep the key stable (load it from your secrets): it names the session keys.
//! let key = Key::generate()?;
//! let redis = RedisConfig::new("redis://127.0.0.1:6379").with_key_prefix("myapp:");
//! let store = fastsession::redis::redis_store(&redis, &key).await?;
//! let config = SessionConfig::new(store, CookieConfig::new("id")?);
//!
//! let sessions = Sessions::new(&http::HeaderMap::new());
//! sessions.get(&config).await?.insert("name", "gopher")?;
//! let mut response = http::HeaderMap::new();
//! sessions.save_all(&mut response).await?; // one EVALSHA; a Store error if Redis is down
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod config;
mod dump;
mod layout;
mod scripts;

pub use backend::RedisBackend;
pub use config::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEY_PREFIX, DEFAULT_USER_INDEX_TTL,
    RedisConfig,
};

use fastsession_core::codec::IdHasher;
use fastsession_core::codec::Key;
use fastsession_core::store::ServerStore;

/// A server-side store whose sessions live in Redis.
///
/// Make one with [`redis_store`], or with [`ServerStore::with_backend`] over
/// [`RedisBackend::connect`] to choose the hashers yourself.
///
/// # Examples
///
/// ```no_run
/// use fastsession::Key;
/// use fastsession::redis::{RedisConfig, RedisStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store: RedisStore =
///     fastsession::redis::redis_store(&RedisConfig::new("redis://127.0.0.1"), &Key::generate()?).await?;
/// # Ok(()) }
/// ```
pub type RedisStore = ServerStore<RedisBackend>;

/// Connects to Redis as `config` says and returns a [`RedisStore`] hashing session ids (and
/// user ids, for its index) under sub-keys of `key`.
///
/// Keep `key` stable across restarts and the same on every app server: the Redis keys are
/// the hashes it makes, so with another key every stored session is unreachable (and expires).
/// It may be the cookie key ring's active key; the store derives its own purpose-bound
/// sub-key from it.
///
/// # Errors
///
/// As [`RedisBackend::connect`]: an invalid configuration, or no connection within the
/// connect timeout.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use fastsession::Key;
/// use fastsession::redis::RedisConfig;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = RedisConfig::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
///     .with_command_timeout(Duration::from_secs(1));
/// let store = fastsession::redis::redis_store(&config, &Key::generate()?).await?;
/// # Ok(()) }
/// ```
pub async fn redis_store(config: &RedisConfig, key: &Key) -> fastsession_core::Result<RedisStore> {
    let hasher = IdHasher::new(key);
    let backend = RedisBackend::connect(config, hasher.clone()).await?;
    Ok(ServerStore::with_backend(backend, hasher))
}
