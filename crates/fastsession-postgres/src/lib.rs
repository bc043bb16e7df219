//! A [fastsession](https://docs.rs/fastsession) store that keeps sessions in PostgreSQL, shared
//! by every app server that reaches the database.
//!
//! [`PostgresStore`] is a [`ServerStore`] over a [`PostgresBackend`]: the cookie holds only the
//! session id, the row is keyed by a keyed hash of it, and every store guarantee holds across
//! app servers: concurrent requests changing different keys both persist, a destroyed or
//! regenerated session is never brought back, an expired one is never returned.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use fastsession::Key;
//! use fastsession::{CookieConfig, SessionConfig};
//! use fastsession::postgres::PostgresConfig;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = PostgresConfig::new("postgres://app@127.0.0.1:5432/app")
//!     .with_pool_size(16)
//!     .with_acquire_timeout(Duration::from_millis(500))
//!     .with_statement_timeout(Duration::from_secs(2));
//! // Keep the key stable (load it from your secrets): it locates the rows.
//! let store = fastsession::postgres::postgres_store(config, &Key::generate()?).await?;
//! store.backend().migrate().await?; // once at startup; idempotent
//! let store = Arc::new(store);
//! let _reaper = fastsession::postgres::spawn_reaper(&store, Duration::from_secs(60), 1000);
//! let sessions = SessionConfig::with_shared_store(store, CookieConfig::new("id")?);
//! # let _ = sessions;
//! # Ok(())
//! # }
//! ```
//!
//! # Table layout
//!
//! [`migrate`](PostgresBackend::migrate) creates (if missing) the schema, this table, three
//! indexes, the anonymous budget's counter table, trigger function and triggers, and, with the
//! [near cache](#near-cache), its notify function and triggers; the names
//! come from [`PostgresConfig`] (default `public.fastsession_sessions`):
//!
//! | column | type | holds |
//! | --- | --- | --- |
//! | `key` | `bytea` primary key | the [`StorageKey`](fastsession_core::store::StorageKey): keyed BLAKE3 hash of the id, never the id |
//! | `created`, `last_active` | `bigint` | Unix seconds, as the request's clock gave them |
//! | `expires` | `bigint`, indexed | when the row may be reaped ([`Expiry::deadline`](fastsession_core::session::Expiry::deadline), by the row's class) |
//! | `persistent` | `boolean` | "remember me" (with a user: the [remembered idle timeout](fastsession_core::session::Expiry::remembered_idle_timeout)) |
//! | `expires_at` | `bigint` null | the session's own deadline ([`Session::set_expires_at`](fastsession_core::Session::set_expires_at)); `NULL`: none |
//! | `user_id` | `text` null | the user the session is tied to; `NULL`: an anonymous session |
//! | `user_hash` | `bytea` null, indexed | SHA-256 of the user id: the "sessions of a user" index |
//! | `version` | `bigint` | 1 at creation, +1 on every merge |
//! | `vals`, `flashes` | `jsonb` | the values, and the flash lists, as objects by key |
//! | `data_len` | `bigint` | the session's data bytes ([`Record::data_len`](fastsession_core::session::Record::data_len)) as the last write saw them, for the anonymous budget |
//!
//! Beside it: the partial index `<table>_anon` on `(last_active, key)` of the rows without a
//! user (the eviction order), the table `<table>_budget` (16 rows counting the anonymous rows
//! and their bytes), the function `<table>_count` its triggers call, and the one-row table
//! `<table>_floor` (where the next eviction's walk starts). A table made by an
//! earlier version (without `data_len` and the budget) is upgraded in place by `migrate`,
//! once: it holds writers off while it fills in `data_len` of the anonymous rows (from their
//! stored JSON, a close upper bound) and counts them. A table without `expires_at` gets the
//! column (nullable, so no row is rewritten; its rows have no deadline of their own): run
//! `migrate` before a build that reads it serves requests. PostgreSQL 12 or later (the store's
//! connections ask for generic plans, `plan_cache_mode`).
//!
//! Each value lives in its own `jsonb` key, so a save merges the keys a request changed
//! instead of writing the whole record; a key the request only
//! [incremented](fastsession_core::Session::increment) gets the sum of its increments added
//! to the stored integer in the same statement, so concurrent increments all count. `jsonb`
//! normalizes the JSON text it stores (key order, whitespace, number spelling such as `1e2` →
//! `100`); values read back decode to the same Rust values.
//!
//! **U+0000.** PostgreSQL's `text` cannot hold the character U+0000, nor `jsonb` a string
//! with one, yet a key, a value, a flash message or a user id may hold it (a client sends
//! `%00`). Such text is held faithfully, escaped: U+0000 is stored as U+0001 followed by `0`,
//! and U+0001 as U+0001 followed by `1` (inside `jsonb` strings and keys, and in `user_id`),
//! and read back as it was. Text without either character, nearly all, is stored as it is
//! and costs one scan for them. A U+0001 written before this escape existed and followed by
//! `0` or `1` would now read as the escape.
//!
//! **What is refused, and why.** `jsonb` refuses two things JSON allows, and values an
//! application stores from client JSON may hold them: numbers beyond `numeric`'s range
//! (`1e1000000`) and strings with an unpaired surrogate escape (`"\ud800"`). Holding them
//! would mean giving up `jsonb`'s per-key merge, so a save holding one fails with
//! [`ErrorKind::Unstorable`](fastsession_core::ErrorKind::Unstorable) (adapters answer 400):
//! the statement fails as a whole, so nothing is written, and a login that regenerates the
//! session leaves the old one as it was. Each is counted as
//! [`Event::Unstorable`](fastsession_core::events::Event::Unstorable) and logged at most once
//! per interval, never a `warn` per request.
//!
//! # Anonymous sessions
//!
//! A session without a user id ([`Session::set_user_id`](fastsession_core::Session::set_user_id))
//! is *anonymous*: anyone can create one with a request, so they are kept apart from what
//! logged-in users have.
//!
//! * **Their own idle timeout**:
//!   [`Expiry::anonymous_idle_timeout`](fastsession_core::session::Expiry::anonymous_idle_timeout)
//!   (by default the idle timeout, at most one hour). Every liveness check and every `expires`
//!   the statements compute use the idle timeout of the row's class, so the reaper, which
//!   deletes by `expires`, takes idle anonymous rows long before logged-in ones.
//! * **Their own budget**, [`PostgresConfig::with_anonymous_budget`] (by default 100 000
//!   sessions holding 64 MiB of data together). Creating an anonymous session, or a merge
//!   leaving one larger, when the budget is then exceeded is followed by a statement that
//!   deletes the least recently active other anonymous sessions until it fits (at most 256
//!   per statement; later writes delete the rest). Between the two, and when concurrent
//!   writers evict at once (each skips the rows another is deleting), the budget can be over
//!   by at most the writes in flight. Rows with a user id, revocation markers of logged-in
//!   sessions and "log out everywhere" markers included, are never read nor deleted to make
//!   room; a row that gained a user or was active since the statement chose it is spared.
//!   Each eviction is counted as
//!   [`Event::AnonymousEvicted`](fastsession_core::events::Event::AnonymousEvicted).
//!
//! What the budget costs: triggers keep the count and bytes of the anonymous rows in 16
//! counter rows (each connection adds to its own, so that concurrent writers rarely wait for
//! each other and never deadlock), so no statement ever counts the table. A create of an
//! anonymous session also reads the 16 counter rows and the trigger updates one of them; a
//! merge that leaves an anonymous session no larger is the plain merge. When the budget is
//! full, each create is followed by the eviction statement: one probe of the `<table>_anon`
//! index per evicted session, from where the last eviction stopped (so the entries of rows
//! evicted since the last vacuum are not read again), and one deletion. A merge or refresh of
//! a session with a user fires no trigger and touches no counter. Every deletion of an anonymous row (a logout,
//! an eviction, each row of a reaper's batch) updates one counter row too, so the counter rows
//! see many updates: leave autovacuum on (the default).
//!
//! Every app server sharing the table should be configured with the same budget: each applies
//! its own when it writes.
//!
//! # Consistency
//!
//! Every operation is one SQL statement (autocommit, `READ COMMITTED`), with parameters only,
//! except that an anonymous write may be followed by the eviction the budget needs:
//!
//! * **load**: one `SELECT` by key; expiry is checked in Rust, and an expired row is deleted.
//!   With the [near cache](#near-cache), a load it can serve sends nothing.
//! * **save** (a request that changed something): one `UPDATE ... RETURNING` that, only if the
//!   row is live at the request's time under the request's expiry (the rule of
//!   [`Expiry::check`](fastsession_core::session::Expiry::check): the idle timeout of the
//!   row's class, absolute lifetime, the row's own deadline, clock skew), clears, removes
//!   (`jsonb - text[]`) and sets (`jsonb || jsonb`) the changed keys of `vals` and `flashes`,
//!   adds increments to the stored integers (as
//!   [`Record::apply`](fastsession_core::session::Record::apply) does), sets the user,
//!   "remember me" and the own deadline if changed, bumps `version`, and sets `last_active`,
//!   `expires` and `data_len`. Only when it merged nothing does a second statement run: a
//!   row that is not live is deleted. A merge that makes an anonymous session larger is
//!   held back by the first statement and runs as another that also tells whether the
//!   budget is exceeded (then what it needs
//!   is evicted, see [Anonymous sessions](#anonymous-sessions)). A row that
//!   another request deleted (logout, regeneration) matches nothing and the save fails with
//!   [`ErrorKind::SessionEnded`](fastsession_core::ErrorKind::SessionEnded): no resurrection.
//!   Row locks order concurrent saves of one session; each sees the other's committed keys.
//! * **create**: `INSERT ... ON CONFLICT DO NOTHING`; an id already present is never
//!   overwritten (the store draws another). For an anonymous session, the same statement
//!   tells whether the budget is exceeded (see [Anonymous sessions](#anonymous-sessions)).
//! * **regenerate**: the new row is created first, then the old one removed with
//!   `DELETE ... RETURNING` (so a failed create leaves the session as it was, and of two
//!   racing requests one wins). **destroy**: `DELETE ... RETURNING`.
//! * **refresh** of an unchanged session: an `UPDATE` of `last_active` and `expires` only, if
//!   live.
//! * **reaping**: [`ServerStore::reap`] deletes expired rows in batches
//!   (`WHERE key IN (SELECT ... WHERE expires <= now LIMIT n FOR UPDATE SKIP LOCKED)`), using
//!   the `expires` index; [`spawn_reaper`] runs it periodically.
//!
//! **Which clock decides**: the app server's. Times are the request's `now` (the
//! [`Clock`](fastsession_core::time::Clock) of the [`SessionConfig`](fastsession_core::http::SessionConfig)),
//! passed as parameters; the database's clock is never read. App servers must keep their
//! clocks in sync (NTP); the expiry's clock skew bounds how far ahead one may be.
//!
//! # Near cache
//!
//! [`PostgresConfig::with_near_cache`] keeps the sessions an app server reads in its memory
//! and serves a load from there while PostgreSQL's notifications say nobody changed them (off
//! by default):
//!
//! * [`migrate`](PostgresBackend::migrate), with the cache on, also creates the function
//!   `<table>_notify` and the triggers `fastsession_notify_update`, `fastsession_notify_delete`
//!   and `fastsession_notify_truncate`: every committed change of a row is notified
//!   (`pg_notify`) on the channel `fastsession_<16 hex digits of SHA-256("<schema>.<table>")>`
//!   as `<key in hex> <origin> <version>` (the version only for a merge), and a `TRUNCATE` as
//!   `*`. A `migrate` without the cache leaves them in place.
//! * Each backend keeps one more connection, outside the pool (`application_name`
//!   `<name>-listen`), that `LISTEN`s on the channel and checks every second that the triggers
//!   are there. The cache serves only while it listens and they are; it drops everything when
//!   the connection is lost or a trigger goes missing, and reconnects by itself.
//! * A notification drops its key from the cache, except one of this backend's own merges
//!   (recognized by the origin token its pooled connections carry as the setting
//!   `fastsession.origin`): a merge caches the merged session itself when the `version` it
//!   made shows nobody wrote between, and drops it otherwise. A touch or a removal drops it.
//!
//! A load may trail a write made through another app server by the time its notification
//! takes to arrive, and never by more than the maximum age
//! ([`NearCacheConfig::with_max_age`](fastsession_core::store::NearCacheConfig::with_max_age),
//! default 1 s); a session ended anywhere is never served again once it arrives.
//!
//! **What it costs**: every write of a row sends a notification, and PostgreSQL serializes
//! the commits of notifying transactions behind a database-wide lock: on a 2-core test
//! machine, a third fewer merges per second with 4 writers (DESIGN.md, "The PostgreSQL
//! source"), against a load served in about a microsecond instead of a round trip. Turn it on
//! where loads outnumber saves, and check the write rate your database needs.
//!
//! # Faults
//!
//! Every wait is bounded ([`PostgresConfig`]): the pool wait (acquire timeout), opening a
//! connection (connect timeout), and each statement (the server's `statement_timeout`, and a
//! client-side bound one second longer for a stalled connection, which then leaves the pool).
//! A failure is an [`ErrorKind::Store`](fastsession_core::ErrorKind::Store) error whose
//! source is a [`PostgresError`] with a [`PostgresErrorKind`]: `PoolTimeout`, `Unavailable`
//! (server down, backend terminated), `Timeout`, `ReadOnly`, `Database`, and a `warn` event
//! (target `fastsession`, with the operation, kind and SQLSTATE) is logged. (A value `jsonb`
//! refuses is the client's doing, not a failure: an
//! [`ErrorKind::Unstorable`](fastsession_core::ErrorKind::Unstorable) error with the same
//! source, counted as an event instead of logged.) A failed save is
//! never reported as saved; a failed load is an error, never a fresh anonymous session.
//! A row that does not decode (edited by hand) reads as no session; it is counted as
//! [`Event::UnreadableRecord`](fastsession_core::events::Event::UnreadableRecord) (a summary
//! at most once per interval) and traced at `debug` (target `fastsession::security`,
//! `reason = "corrupt"`). A value `jsonb` refuses is not a failure of the store: see
//! [what is refused](#table-layout).
//!
//! Statements whose repetition changes nothing (load, refresh, reap, the user index) are
//! tried once more on a fresh connection if the connection was lost. Create, merge, regenerate
//! and destroy are not: if the answer is lost, the caller gets an error, and the next request
//! sees whatever the database holds. A connection found closed is dropped from the pool, so
//! the store recovers by itself when the server is back.
//!
//! TLS is not supported by this crate: connect over loopback, a Unix socket or a protected
//! network. Statements are prepared once per pooled connection and the statement timeout is a
//! startup option, so connect to PostgreSQL itself or to a pooler in session mode, not to a
//! transaction-mode pooler such as PgBouncer's `pool_mode = transaction`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod config;
mod error;
// Not `nul.rs`: NUL is a reserved file name on Windows, where the package would not unpack.
mod nul_escape;
mod sql;

pub use backend::PostgresBackend;
pub use config::{
    DEFAULT_ACQUIRE_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_SIZE, DEFAULT_STATEMENT_TIMEOUT,
    PostgresConfig,
};
pub use error::{PostgresError, PostgresErrorKind};

use fastsession_core::codec::IdHasher;
use fastsession_core::codec::Key;
use fastsession_core::store::ServerStore;

/// A server-side store whose sessions live in a PostgreSQL table.
///
/// Make one with [`postgres_store`], or with [`ServerStore::with_backend`] to choose the
/// id-hashing key yourself.
///
/// # Examples
///
/// ```no_run
/// use fastsession::Key;
/// use fastsession::codec::IdHasher;
/// use fastsession::store::ServerStore;
/// use fastsession::postgres::{PostgresBackend, PostgresConfig, PostgresStore};
///
/// # async fn example() -> fastsession::Result<()> {
/// let backend = PostgresBackend::connect(PostgresConfig::new("postgres://app@127.0.0.1/app")).await?;
/// let store: PostgresStore = ServerStore::with_backend(backend, IdHasher::new(&Key::generate()?));
/// # Ok(())
/// # }
/// ```
pub type PostgresStore = ServerStore<PostgresBackend>;

/// Returns a [`PostgresStore`] with the settings of `config`, hashing session ids under a sub-key
/// of `key`. Call [`migrate`](PostgresBackend::migrate) on its backend before the first request.
///
/// Keep `key` stable across restarts and equal on every app server: rows are keyed by the
/// hashes it makes. It may be the cookie key ring's active key; the store derives its own
/// purpose-bound sub-key from it.
///
/// # Errors
///
/// As [`PostgresBackend::connect`].
///
/// # Examples
///
/// ```no_run
/// use fastsession::Key;
/// use fastsession::postgres::PostgresConfig;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let config = PostgresConfig::new("postgres://app@127.0.0.1/app").with_schema("web");
/// let store = fastsession::postgres::postgres_store(config, &Key::generate()?).await?;
/// store.backend().migrate().await?;
/// # Ok(())
/// # }
/// ```
pub async fn postgres_store(
    config: PostgresConfig,
    key: &Key,
) -> fastsession_core::Result<PostgresStore> {
    Ok(ServerStore::with_backend(
        PostgresBackend::connect(config).await?,
        IdHasher::new(key),
    ))
}

pub use fastsession_core::store::spawn_reaper;
