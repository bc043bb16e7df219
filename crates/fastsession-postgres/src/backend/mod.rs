//! [`PostgresBackend`]: each [`Backend`] operation as one SQL statement.

mod listen;
mod params;
mod pool;
mod rows;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use fastsession_core::session::{Expiry, Record};
use fastsession_core::store::{Backend, NearCache, StorageKey, StoreFuture, Update, UserIndex};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error, ErrorKind, Result};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use self::listen::Listener;
use self::params::{Delta, Liveness, flashes_json, len, secs, user_hash, values_json};
use self::pool::Retry;
use self::rows::{Written, decode, decode_versioned, evicted};
use crate::config::PostgresConfig;
use crate::error::{PostgresError, PostgresErrorKind};
use crate::nul_escape::escape_text;
use crate::sql::Statements;

/// How much longer than the server's statement timeout the client waits for an answer before
/// it gives the connection up as stalled.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// Sessions in a PostgreSQL table: the records of a [`PostgresStore`](crate::PostgresStore).
///
/// Every [`Backend`] operation is one SQL statement on a pooled connection, with parameters
/// (never spliced values); see the [crate documentation](crate) for the table, the statements
/// and the behaviour under faults.
///
/// # Examples
///
/// ```no_run
/// use fastsession::postgres::{PostgresBackend, PostgresConfig};
///
/// # async fn example() -> fastsession::Result<()> {
/// let backend = PostgresBackend::connect(PostgresConfig::new("postgres://app@127.0.0.1/app")).await?;
/// backend.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    sql: Statements,
    config: PostgresConfig,
    /// The client-side bound on one statement.
    bound: Duration,
    /// The anonymous budget's bounds, as statement parameters.
    max_anonymous: i64,
    max_anonymous_bytes: i64,
    /// The near cache and its listener, if the config turns it on.
    near: Option<Arc<Listener>>,
}

impl PostgresBackend {
    /// Builds the pool and opens one connection to check that the server answers. It does not
    /// create the table: call [`migrate`](Self::migrate) once at startup (or run its SQL,
    /// [`migration_sql`](Self::migration_sql), with your own migration tool).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for an invalid URL, schema or table name;
    /// [`ErrorKind::Store`] (with a [`PostgresError`] source) if no connection can be made
    /// within the connect timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use fastsession::postgres::{PostgresBackend, PostgresConfig};
    ///
    /// # async fn example() -> fastsession::Result<()> {
    /// let config = PostgresConfig::new("host=127.0.0.1 user=app dbname=app")
    ///     .with_pool_size(8)
    ///     .with_acquire_timeout(Duration::from_millis(250));
    /// let backend = PostgresBackend::connect(config).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(config: PostgresConfig) -> Result<Self> {
        let table = config.qualified_table()?;
        // No source: the driver's parse error may quote the URL, password included.
        let mut pg: tokio_postgres::Config = config.url().parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidConfig,
                "postgres store: the connection URL is not valid",
            )
        })?;
        let mut options = format!(
            "{} -c statement_timeout={} -c plan_cache_mode=force_generic_plan",
            pg.get_options().unwrap_or_default(),
            config.statement_timeout().as_millis()
        );
        pg.connect_timeout(config.connect_timeout());
        // The listener's connection: the same server and settings, named apart so that it
        // can be told from the pool's in `pg_stat_activity`.
        let listen_pg = config.near_cache().map(|_| {
            let mut listen = pg.clone();
            // The server's keepalives: a listener it cannot tell is gone would hold the
            // notification queue's tail, which every other listener and writer shares.
            let keepalive =
                " -c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3";
            listen
                .options(format!("{options}{keepalive}").trim_start())
                .application_name(format!("{}-listen", config.application_name()));
            listen
        });
        // Every pooled connection names this backend to the notify triggers, so that the
        // listener can tell this backend's own merges from others' writes.
        let origin = listen_pg.as_ref().map(|_| origin()).transpose()?;
        if let Some(origin) = &origin {
            options.push_str(&format!(" -c fastsession.origin={origin}"));
        }
        pg.options(options.trim_start())
            .application_name(config.application_name());
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                // A lost connection is noticed by its closed flag, or by the failed statement
                // (retried where idempotent): no extra round trip per checkout.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size())
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.acquire_timeout()))
            .create_timeout(Some(config.connect_timeout()))
            .recycle_timeout(Some(config.connect_timeout()))
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("postgres store: cannot build the pool: {e}"),
                )
            })?;
        let bound = config.statement_timeout() + CLIENT_GRACE;
        let budget = config.anonymous_budget();
        let channel = config.near_cache().map(|_| config.notify_channel());
        let sql = Statements::new(&table, config.schema(), config.table(), channel.as_deref());
        let first = pool.get().await;
        drop(first.map_err(|e| PostgresError::from_pool("connect", e).into_core())?);
        let near = match (config.near_cache(), listen_pg, origin, channel) {
            (Some(near), Some(listen_pg), Some(origin), Some(channel)) => Some(Listener::start(
                *near,
                origin,
                listen_pg,
                format!("LISTEN \"{channel}\""),
                sql.notify_check.clone(),
            )),
            _ => None,
        };
        Ok(PostgresBackend {
            inner: Arc::new(Inner {
                pool,
                sql,
                max_anonymous: len(budget.max_sessions()),
                max_anonymous_bytes: len(budget.max_bytes()),
                config,
                bound,
                near,
            }),
        })
    }

    /// Creates the schema, the table, its indexes and the anonymous budget's counters and
    /// triggers if they do not exist, and upgrades a table made by an earlier version in place
    /// (see the [crate documentation](crate#table-layout)). With the
    /// [near cache](PostgresConfig::with_near_cache) on, also its notify function and triggers
    /// (see the [crate documentation](crate#near-cache)); without, it leaves them as they are.
    /// Idempotent, and safe to run from several processes at once (it takes a
    /// transaction-scoped advisory lock).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Store`] if a statement fails (no permission to create, server down).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn example(backend: fastsession::postgres::PostgresBackend) -> fastsession::Result<()> {
    /// backend.migrate().await?;
    /// backend.migrate().await?; // nothing to do the second time
    /// # Ok(())
    /// # }
    /// ```
    pub async fn migrate(&self) -> Result<()> {
        let client = self
            .client("migrate")
            .await
            .map_err(PostgresError::into_core)?;
        let run = client.batch_execute(&self.inner.sql.migrate);
        match tokio::time::timeout(self.inner.bound, run).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PostgresError::from_driver("migrate", e).into_core()),
            Err(_) => {
                drop(Object::take(client));
                Err(PostgresError::new(PostgresErrorKind::Timeout, "migrate").into_core())
            }
        }
    }

    /// Returns the SQL [`migrate`](Self::migrate) runs, for a migration tool of your own (with
    /// the near cache on, its notify function and triggers included).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn example(backend: fastsession::postgres::PostgresBackend) {
    /// assert!(backend.migration_sql().contains("CREATE TABLE IF NOT EXISTS"));
    /// # }
    /// ```
    #[must_use]
    pub fn migration_sql(&self) -> &str {
        &self.inner.sql.migrate
    }

    /// Returns the settings the backend was made with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn example(backend: fastsession::postgres::PostgresBackend) {
    /// println!("sessions in {}.{}", backend.config().schema(), backend.config().table());
    /// # }
    /// ```
    #[must_use]
    pub fn config(&self) -> &PostgresConfig {
        &self.inner.config
    }
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PostgresBackend")
            .field("schema", &self.inner.config.schema())
            .field("table", &self.inner.config.table())
            .field("pool_size", &status.max_size)
            .field("pool_open", &status.size)
            .field("pool_idle", &status.available)
            .field("near_cache", &self.near_cache())
            .finish_non_exhaustive()
    }
}

impl Backend for PostgresBackend {
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let Some(near) = &self.inner.near else {
            return StoreFuture::io(async move {
                Ok(self.read_record(key).await?.map(|(record, _)| record))
            });
        };
        let cache = near.cache();
        if let Some(record) = cache.get(key) {
            return StoreFuture::ready(Ok(Some(record)));
        }
        // Marked before the SELECT takes its snapshot: a commit the snapshot misses is
        // notified after it, so after the mark: its notification refuses the answer, or drops
        // it if it is in by then. While the listener is down there is no mark.
        let fill = cache.begin(*key);
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
        StoreFuture::io(async move {
            let key = &key.as_bytes()[..];
            let user = record.user_id();
            let hash = user.map(user_hash);
            let stored_user = user.map(escape_text);
            let (created, last_active, expires) = (
                secs(record.created()),
                secs(record.last_active()),
                secs(expires),
            );
            let (persistent, data_len) = (record.is_persistent(), len(record.data_len()));
            let (vals, flashes) = (values_json(record.values()), flashes_json(record.flashes()));
            let expires_at = record.expires_at().map(secs);
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(13);
            params.extend([
                &key as &(dyn ToSql + Sync),
                &created,
                &last_active,
                &expires,
                &persistent,
                &stored_user,
                &hash,
                &vals,
                &flashes,
                &data_len,
                &expires_at,
            ]);
            // Only a row without a user enters (and makes room in) the anonymous budget.
            let sql = if user.is_none() {
                params.extend(self.budget_bounds());
                &self.inner.sql.create_anonymous
            } else {
                &self.inner.sql.create
            };
            // Not retried: after a lost answer, a second insert would find the first.
            let rows = self.rows("create", sql, &params, Retry::Never).await?;
            self.settle(key, Written::from_rows(&rows)).await
        })
    }

    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        let Some(near) = &self.inner.near else {
            return StoreFuture::io(
                async move { Ok(self.apply_update(key, update).await?.is_some()) },
            );
        };
        // Marked before the write, with the entry cached then: if the version the merge makes
        // is that entry's plus one, nobody else wrote between, and the entry merged with this
        // update is what the table holds now. Without such an entry, nothing is marked: the
        // entry is dropped after the write.
        let fill = near
            .cache()
            .begin(*key)
            .filter(|fill| fill.base().is_some_and(|(_, version)| version.is_some()));
        StoreFuture::io(async move {
            let written = self.apply_update(key, update).await;
            if written.is_err() {
                // A merge whose answer was lost may still commit, later than the drop below:
                // until it must have ended, its notification drops the key too. Before the
                // drop, so that a commit after the drop finds the doubt set.
                near.doubt(self.inner.bound * 2);
            }
            let version = written.as_ref().ok().copied().flatten().flatten();
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
        StoreFuture::io(self.written(key, self.touch_record(key, now, expiry)))
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(self.written(key, self.remove_record(key)))
    }

    fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
        // The rows it deletes are notified (without a version): every cache drops them.
        StoreFuture::io(async move {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = self
                .rows(
                    "reap",
                    &self.inner.sql.reap,
                    &[&secs(now), &limit],
                    Retry::Once,
                )
                .await?;
            let count: i64 = rows.first().map_or(0, |r| r.get(0));
            Ok(usize::try_from(count).unwrap_or(0))
        })
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

impl PostgresBackend {
    /// Returns the near cache, if [`PostgresConfig::with_near_cache`] turned it on: its
    /// [`stats`](NearCache::stats) for a health page or a metric.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::postgres::PostgresStore) {
    /// if let Some(cache) = store.backend().near_cache() {
    ///     let stats = cache.stats();
    ///     println!("near cache: {} hits, {} misses", stats.hits(), stats.misses());
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn near_cache(&self) -> Option<&NearCache> {
        self.inner.near.as_deref().map(Listener::cache)
    }

    /// Runs a write of the session under `key`, then drops its cached record: this process
    /// reads its own writes without waiting for the notification (which comes too).
    async fn written<T>(
        &self,
        key: &StorageKey,
        write: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let written = write.await;
        if let Some(near) = &self.inner.near {
            // Also after a failure: a write that timed out may have landed.
            near.cache().invalidate(key);
        }
        written
    }

    /// Reads the session under `key`, with its version.
    async fn read_record(&self, key: &StorageKey) -> Result<Option<(Record, Option<u64>)>> {
        let key = &key.as_bytes()[..];
        let rows = self
            .rows("read", &self.inner.sql.read, &[&key], Retry::Once)
            .await?;
        Ok(rows.first().and_then(decode_versioned))
    }

    /// Refreshes the session under `key` if it is live.
    async fn touch_record(&self, key: &StorageKey, now: UnixTime, expiry: &Expiry) -> Result<bool> {
        let key = &key.as_bytes()[..];
        let l = Liveness::new(now, expiry);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key];
        params.extend(l.params());
        // Setting the same activity time twice is the same as once.
        let rows = self
            .rows("touch", &self.inner.sql.touch, &params, Retry::Once)
            .await?;
        Ok(!rows.is_empty())
    }

    /// Ends the session under `key`; returns its record.
    async fn remove_record(&self, key: &StorageKey) -> Result<Option<Record>> {
        let key = &key.as_bytes()[..];
        // Not retried: the first delete may have removed the record, the second finds none.
        let rows = self
            .rows("remove", &self.inner.sql.remove, &[&key], Retry::Never)
            .await?;
        Ok(rows.first().and_then(decode))
    }

    /// Merges `update` into the session under `key`: `None` if the session ended, else the
    /// version the merge made (`None` inside if the statement did not say).
    async fn apply_update(
        &self,
        key: &StorageKey,
        update: Update<'_>,
    ) -> Result<Option<Option<u64>>> {
        {
            let key = &key.as_bytes()[..];
            let l = Liveness::new(update.now(), update.expiry());
            let d = Delta::new(&update);
            let changes = update.changes();
            let user = update.from().user_id();
            // The statement reads the user (and its hash) only when the request changed it.
            let changed_user = user.filter(|_| changes.user_changed());
            let hash = changed_user.map(user_hash);
            let stored_user = changed_user.map(escape_text);
            let (values_cleared, flashes_cleared) =
                (changes.values_cleared(), changes.flashes_cleared());
            let (persistent_changed, persistent) =
                (changes.persistent_changed(), update.from().is_persistent());
            let (user_changed, data_len) = (changes.user_changed(), len(update.from().data_len()));
            let (expires_at_changed, expires_at) = (
                changes.expires_at_changed(),
                update.from().expires_at().map(secs),
            );
            // `$1`, the liveness `$2..$11`, the merge `$12..$26` (the increments last), the
            // budget `$27..$28`.
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(28);
            params.push(&key);
            params.extend(l.params());
            params.extend([
                &values_cleared as &(dyn ToSql + Sync),
                &d.remove_values,
                &d.set_values,
                &flashes_cleared,
                &d.remove_flashes,
                &d.set_flashes,
                &persistent_changed,
                &persistent,
                &user_changed,
                &stored_user,
                &hash,
                &data_len,
                &expires_at_changed,
                &expires_at,
                &d.add_values,
            ]);
            // A session the request leaves with a user takes the plain merge, and so does one
            // it leaves anonymous as it found it, unless the row would grow: the statement
            // then holds the merge back (`$27`) and the one that keeps the budget runs
            // instead. A logout, which moves the row into the budget, takes that one at once.
            // Not retried: a lost answer may hide an applied merge.
            let kept_anonymous = user.is_none() && !user_changed;
            if user.is_some() || kept_anonymous {
                params.push(&kept_anonymous);
                let rows = self
                    .rows("update", &self.inner.sql.update, &params, Retry::Never)
                    .await?;
                if let Some(row) = rows.first() {
                    return Ok(Some(version(row.try_get(0).ok())));
                }
                // Merged nothing: the session ended, or the merge was held back.
                let live = l.params();
                let mut missed: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(8);
                missed.push(&key);
                missed.extend(&live[..6]);
                missed.push(&kept_anonymous);
                let rows = self
                    .rows(
                        "update",
                        &self.inner.sql.update_missed,
                        &missed,
                        Retry::Never,
                    )
                    .await?;
                if !Written::from_rows(&rows).held_back {
                    return Ok(None);
                }
                params.pop();
            }
            params.extend(self.budget_bounds());
            let rows = self
                .rows(
                    "update",
                    &self.inner.sql.update_anonymous,
                    &params,
                    Retry::Never,
                )
                .await?;
            let written = Written::from_rows(&rows);
            let applied = self.settle(key, written).await?;
            Ok(applied.then(|| version(written.version)))
        }
    }
}

/// A version from the table, if it is one.
fn version(stored: Option<i64>) -> Option<u64> {
    stored.and_then(|v| u64::try_from(v).ok())
}

/// A fresh origin token for this backend's connections: 16 random hex digits.
fn origin() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| {
        Error::new(
            ErrorKind::Store,
            "postgres store: no randomness for the near cache's origin token",
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl PostgresBackend {
    /// After a write of the anonymous row `key`: if it may have taken the budget
    /// over, evicts the least recently active other anonymous rows until it holds, walking
    /// from the eviction floor, and from the start of the order if that walk ran short (a row
    /// behind the floor). Apart from the write, so that a write with room costs no eviction
    /// machinery; the budget is over only between the two statements, and by at most the
    /// writers in flight.
    async fn settle(&self, key: &[u8], written: Written) -> Result<bool> {
        if written.applied && written.over {
            for from_start in [false, true] {
                let [max_sessions, max_bytes] = self.budget_bounds();
                let params = [
                    &key as &(dyn ToSql + Sync),
                    max_sessions,
                    max_bytes,
                    &from_start,
                ];
                // Retried once: evicting twice is evicting once. A failure (logged by `rows`)
                // leaves the write standing: the next write's eviction catches up.
                let Ok(rows) = self
                    .rows("evict", &self.inner.sql.evict, &params, Retry::Once)
                    .await
                else {
                    break;
                };
                if !evicted(&rows) {
                    break;
                }
            }
        }
        Ok(written.applied)
    }

    /// Links or unlinks (by `sql`) the session under `key` and `user`'s index.
    async fn user_link(
        &self,
        what: &'static str,
        sql: &str,
        user: &str,
        key: &StorageKey,
    ) -> Result<()> {
        let key = &key.as_bytes()[..];
        self.rows(what, sql, &[&key, &user_hash(user)], Retry::Once)
            .await?;
        Ok(())
    }
}

impl UserIndex for PostgresBackend {
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        StoreFuture::io(self.user_link("link_user", &self.inner.sql.link, user, key))
    }

    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        StoreFuture::io(self.user_link("unlink_user", &self.inner.sql.unlink, user, key))
    }

    fn user_keys<'a>(&'a self, user: &'a str) -> StoreFuture<'a, Vec<StorageKey>> {
        StoreFuture::io(async move {
            let rows = self
                .rows(
                    "user_keys",
                    &self.inner.sql.user_keys,
                    &[&user_hash(user)],
                    Retry::Once,
                )
                .await?;
            Ok(rows
                .iter()
                .filter_map(|r| {
                    let bytes: &[u8] = r.try_get(0).ok()?;
                    Some(StorageKey::from_bytes(bytes.try_into().ok()?))
                })
                .collect())
        })
    }
}
