//! [`PostgresBackend`]: each [`Backend`] operation as one SQL statement.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use fastsession_core::events::{self, Event};
use fastsession_core::session::{Change, Expiry, Record};
use fastsession_core::store::{Backend, StorageKey, StoreFuture, Update, UserIndex};
use fastsession_core::time::UnixTime;
use fastsession_core::{Error, ErrorKind, Result};
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::config::PostgresConfig;
use crate::error::{PostgresError, PostgresErrorKind};
use crate::nul_escape::{escape_json, escape_text, unescape_json, unescape_text};
use crate::sql::Statements;

/// How much longer than the server's statement timeout the client waits for an answer before
/// it gives the connection up as stalled.
const CLIENT_GRACE: Duration = Duration::from_secs(1);
/// Whether a statement is tried again, on a fresh connection, when its connection was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Idempotent (running it twice is running it once): tried once more.
    Once,
    /// A lost answer may hide an applied write: a second try could act on it again.
    Never,
}

impl Retry {
    /// Tries in all, the first included.
    fn attempts(self) -> usize {
        match self {
            Retry::Once => 2,
            Retry::Never => 1,
        }
    }
}

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
        let options = format!(
            "{} -c statement_timeout={}",
            pg.get_options().unwrap_or_default(),
            config.statement_timeout().as_millis()
        );
        pg.options(options.trim_start())
            .application_name(config.application_name())
            .connect_timeout(config.connect_timeout());
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
        let backend = PostgresBackend {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(&table, config.schema(), config.table()),
                max_anonymous: len(budget.max_sessions()),
                max_anonymous_bytes: len(budget.max_bytes()),
                config,
                bound,
            }),
        };
        let first = backend.inner.pool.get().await;
        drop(first.map_err(|e| PostgresError::from_pool("connect", e).into_core())?);
        Ok(backend)
    }

    /// Creates the schema, the table, its indexes and the anonymous budget's counters and
    /// triggers if they do not exist, and upgrades a table made by an earlier version in place
    /// (see the [crate documentation](crate#table-layout)). Idempotent, and safe to run from
    /// several processes at once (it takes a transaction-scoped advisory lock).
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

    /// The SQL [`migrate`](Self::migrate) runs, for a migration tool of your own.
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

    /// The settings the backend was made with.
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

    async fn client(&self, op: &'static str) -> Result<Object, PostgresError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| PostgresError::from_pool(op, e))
    }

    /// `plain` for a row the write leaves with a user; `budgeted` for an anonymous one, which
    /// also keeps the anonymous budget, whose bounds go after `params`.
    fn statement<'s: 'p, 'p>(
        &'s self,
        anonymous: bool,
        plain: &'s str,
        budgeted: &'s str,
        params: &mut Vec<&'p (dyn ToSql + Sync)>,
    ) -> &'s str {
        if !anonymous {
            return plain;
        }
        params.extend([
            &self.inner.max_anonymous as &(dyn ToSql + Sync),
            &self.inner.max_anonymous_bytes,
        ]);
        budgeted
    }

    /// Runs one statement, tried again as `retry` says if the connection was lost (a
    /// terminated backend, a server restart).
    async fn rows(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        retry: Retry,
    ) -> Result<Vec<Row>> {
        let attempts = retry.attempts();
        let mut tried = 0;
        loop {
            tried += 1;
            match self.try_rows(op, sql, params).await {
                Ok(rows) => return Ok(rows),
                Err(e) if e.is_connection_lost() && tried < attempts => {
                    tracing::debug!(target: "fastsession", operation = op, "postgres connection lost; retrying an idempotent statement");
                }
                // Input jsonb cannot hold: the client's doing, not the store's, so counted and
                // summarised rather than logged each time.
                Err(e) if matches!(op, "create" | "update") && e.is_refused_input() => {
                    events::record(Event::Unstorable);
                    tracing::debug!(target: "fastsession::security", operation = op, code = e.code(), "session holds a value jsonb cannot hold; not saved");
                    return Err(e.into_unstorable());
                }
                Err(e) => {
                    tracing::warn!(target: "fastsession", operation = op, kind = ?e.kind(), code = e.code(), "postgres session store failed");
                    return Err(e.into_core());
                }
            }
        }
    }

    async fn try_rows(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PostgresError> {
        let client = self.client(op).await?;
        let work = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        match tokio::time::timeout(self.inner.bound, work).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => {
                let e = PostgresError::from_driver(op, e);
                if e.is_connection_lost() {
                    // Never hand this connection out again.
                    drop(Object::take(client));
                }
                Err(e)
            }
            Err(_) => {
                // The connection stalled: its state is unknown, so it leaves the pool.
                drop(Object::take(client));
                Err(PostgresError::new(PostgresErrorKind::Timeout, op))
            }
        }
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
            .finish_non_exhaustive()
    }
}

/// Seconds as PostgreSQL's `bigint`; times past year 292 billion saturate (a record dated
/// there is refused as from the future anyway).
fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn dur(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A size or count as PostgreSQL's `bigint`.
fn len(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The lookup key of a user in the user index: a hash, so the index never holds the id.
fn user_hash(user: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"fastsession-user\0");
    h.update(user.as_bytes());
    h.finalize().to_vec()
}

/// The parameters `$2..$11` of the liveness rule and the new deadline (see `sql::LIVE` and
/// `sql::deadline`): the same rules as [`Expiry::check`] and [`Expiry::deadline`], with the
/// idle timeout of each class (a row with a user, an anonymous row, a remembered row with a
/// user), rearranged so that no addition can overflow. The row's own deadline is a column.
struct Liveness {
    now: i64,
    latest: i64,
    created_after: i64,
    active_after: i64,
    anonymous_active_after: i64,
    remembered_active_after: i64,
    idle_deadline: i64,
    anonymous_idle_deadline: i64,
    remembered_idle_deadline: i64,
    absolute: i64,
}

impl Liveness {
    fn new(now: UnixTime, expiry: &Expiry) -> Self {
        let n = secs(now);
        let (idle, anonymous, remembered) = (
            expiry.idle_timeout(),
            expiry.anonymous_idle_timeout(),
            expiry.remembered_idle_timeout(),
        );
        Liveness {
            now: n,
            latest: secs(now.saturating_add(expiry.clock_skew())),
            created_after: n.saturating_sub(dur(expiry.absolute_lifetime())),
            active_after: n.saturating_sub(dur(idle)),
            anonymous_active_after: n.saturating_sub(dur(anonymous)),
            remembered_active_after: n.saturating_sub(dur(remembered)),
            idle_deadline: secs(now.saturating_add(idle)),
            anonymous_idle_deadline: secs(now.saturating_add(anonymous)),
            remembered_idle_deadline: secs(now.saturating_add(remembered)),
            absolute: dur(expiry.absolute_lifetime()),
        }
    }

    /// `$2..$11`, in order.
    fn params(&self) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.now,
            &self.latest,
            &self.created_after,
            &self.active_after,
            &self.anonymous_active_after,
            &self.remembered_active_after,
            &self.idle_deadline,
            &self.anonymous_idle_deadline,
            &self.remembered_idle_deadline,
            &self.absolute,
        ]
    }
}

/// JSON text as stored: with U+0000 escaped (see `nul`), without a copy when there is none.
fn stored_json(json: String) -> String {
    match escape_json(&json) {
        Cow::Borrowed(_) => json,
        Cow::Owned(escaped) => escaped,
    }
}

/// A record's values and flashes as the JSON objects stored in `vals` and `flashes`.
fn values_json<'a>(items: impl Iterator<Item = (&'a str, &'a RawValue)>) -> String {
    let map: BTreeMap<&str, &RawValue> = items.collect();
    stored_json(
        serde_json::to_string(&map).unwrap_or_else(|_| unreachable!("maps of raw JSON serialize")),
    )
}

fn flashes_json<'a>(items: impl Iterator<Item = (&'a str, &'a [Box<RawValue>])>) -> String {
    let map: BTreeMap<&str, &[Box<RawValue>]> = items.collect();
    stored_json(
        serde_json::to_string(&map).unwrap_or_else(|_| unreachable!("maps of raw JSON serialize")),
    )
}

/// The change set as SQL parameters: keys to remove and an object of keys to set, for values
/// and for flashes, and an object of the values' increments (keys only incremented, with the
/// sum to add to the stored integer).
struct Delta<'a> {
    remove_values: Vec<Cow<'a, str>>,
    set_values: String,
    add_values: String,
    remove_flashes: Vec<Cow<'a, str>>,
    set_flashes: String,
}

impl<'a> Delta<'a> {
    fn new(update: &Update<'a>) -> Self {
        let (changes, from) = (update.changes(), update.from());
        let mut remove_values = Vec::new();
        let mut set_values = Vec::new();
        let mut add_values = BTreeMap::new();
        for (key, change) in changes.values() {
            // A key set but missing from the record counts as removed, as in `Record::apply`.
            match (change, changes.delta(key), from.value(key)) {
                (Change::Set, Some(delta), _) => {
                    add_values.insert(key, delta);
                }
                (Change::Set, None, Some(v)) => set_values.push((key, v)),
                _ => remove_values.push(escape_text(key)),
            }
        }
        let mut remove_flashes = Vec::new();
        let mut set_flashes = Vec::new();
        for (key, change) in changes.flashes() {
            match (change, from.flash_list(key)) {
                (Change::Set, Some(list)) => set_flashes.push((key, list)),
                _ => remove_flashes.push(escape_text(key)),
            }
        }
        let add_values = if add_values.is_empty() {
            String::from("{}")
        } else {
            stored_json(
                serde_json::to_string(&add_values)
                    .unwrap_or_else(|_| unreachable!("maps of integers serialize")),
            )
        };
        Delta {
            remove_values,
            set_values: values_json(set_values.into_iter()),
            add_values,
            remove_flashes,
            set_flashes: flashes_json(set_flashes.into_iter()),
        }
    }
}

/// Whether a create or merge (`SELECT applied, evicted`) was applied; each anonymous session
/// it evicted to make room is counted as an [`Event::AnonymousEvicted`].
fn applied(rows: &[Row]) -> bool {
    let Some(row) = rows.first() else {
        return false;
    };
    let applied: i64 = row.try_get(0).unwrap_or(0);
    let evicted: i64 = row.try_get(1).unwrap_or(0);
    for _ in 0..evicted {
        events::record(Event::AnonymousEvicted);
    }
    applied > 0
}

/// A row of `sql::RECORD_COLUMNS` as a record; `None` (and an [`Event::UnreadableRecord`]) if
/// it is not one.
fn decode(row: &Row) -> Option<Record> {
    let parsed = (|| -> std::result::Result<Record, &'static str> {
        let time = |i: usize| -> std::result::Result<UnixTime, &'static str> {
            let t: i64 = row.try_get(i).map_err(|_| "timestamp column")?;
            Ok(UnixTime::from_secs(
                u64::try_from(t).map_err(|_| "negative timestamp")?,
            ))
        };
        let mut record = Record::new(time(0)?);
        record.set_last_active(time(1)?);
        record.set_persistent(row.try_get(2).map_err(|_| "persistent column")?);
        let user: Option<String> = row.try_get(3).map_err(|_| "user column")?;
        record.set_user_id(user.map(unescape_text));
        let vals: &str = row.try_get(4).map_err(|_| "vals column")?;
        let values: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(&unescape_json(vals)).map_err(|_| "vals is not an object")?;
        for (key, value) in values {
            record.insert_value(key, value);
        }
        let flashes: &str = row.try_get(5).map_err(|_| "flashes column")?;
        let flashes: BTreeMap<String, Vec<Box<RawValue>>> =
            serde_json::from_str(&unescape_json(flashes))
                .map_err(|_| "flashes is not an object of arrays")?;
        for (key, list) in flashes {
            record.set_flash_list(key, list);
        }
        // NULL in rows written before sessions had their own deadline: none.
        let expires_at: Option<i64> = row.try_get(6).map_err(|_| "expires_at column")?;
        if let Some(at) = expires_at {
            let at = u64::try_from(at).map_err(|_| "negative expires_at")?;
            record.set_expires_at(Some(UnixTime::from_secs(at)));
        }
        Ok(record)
    })();
    match parsed {
        Ok(record) => Some(record),
        Err(detail) => {
            // Counted and summarised: whoever can make such a row can make many.
            events::record(Event::UnreadableRecord);
            tracing::debug!(target: "fastsession::security", reason = "corrupt", detail, "stored session row is not valid; treated as absent");
            None
        }
    }
}

impl Backend for PostgresBackend {
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(async move {
            let key = &key.as_bytes()[..];
            let rows = self
                .rows("read", &self.inner.sql.read, &[&key], Retry::Once)
                .await?;
            Ok(rows.first().and_then(decode))
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
            let sql = self.statement(
                user.is_none(),
                &self.inner.sql.create,
                &self.inner.sql.create_anonymous,
                &mut params,
            );
            // Not retried: after a lost answer, a second insert would find the first.
            let rows = self.rows("create", sql, &params, Retry::Never).await?;
            Ok(applied(&rows))
        })
    }

    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
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
            // A session the request leaves with a user takes the statement it always took; one
            // it leaves anonymous may grow, so its statement also keeps the budget.
            let sql = self.statement(
                user.is_none(),
                &self.inner.sql.update,
                &self.inner.sql.update_anonymous,
                &mut params,
            );
            // Not retried: a lost answer may hide an applied merge.
            let rows = self.rows("update", sql, &params, Retry::Never).await?;
            Ok(applied(&rows))
        })
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            let key = &key.as_bytes()[..];
            let l = Liveness::new(now, expiry);
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key];
            params.extend(l.params());
            // Setting the same activity time twice is the same as once.
            let rows = self
                .rows("touch", &self.inner.sql.touch, &params, Retry::Once)
                .await?;
            Ok(!rows.is_empty())
        })
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(async move {
            let key = &key.as_bytes()[..];
            // Not retried: the first delete may have removed the record, the second finds none.
            let rows = self
                .rows("remove", &self.inner.sql.remove, &[&key], Retry::Never)
                .await?;
            Ok(rows.first().and_then(decode))
        })
    }

    fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
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

impl UserIndex for PostgresBackend {
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        StoreFuture::io(async move {
            let key = &key.as_bytes()[..];
            self.rows(
                "link_user",
                &self.inner.sql.link,
                &[&key, &user_hash(user)],
                Retry::Once,
            )
            .await?;
            Ok(())
        })
    }

    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> StoreFuture<'a, ()> {
        StoreFuture::io(async move {
            let key = &key.as_bytes()[..];
            self.rows(
                "unlink_user",
                &self.inner.sql.unlink,
                &[&key, &user_hash(user)],
                Retry::Once,
            )
            .await?;
            Ok(())
        })
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
