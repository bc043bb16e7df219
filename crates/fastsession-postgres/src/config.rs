//! [`PostgresConfig`]: where the sessions live and how long anything may wait.

use std::fmt;
use std::time::Duration;

use fastsession_core::store::{AnonymousBudget, NearCacheConfig};
use fastsession_core::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

/// The default pool size.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// The default bound on waiting for a pooled connection.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on opening a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default statement timeout.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`PostgresBackend`](crate::PostgresBackend): the connection URL, the schema
/// and table, the pool size, the timeouts and the budget of anonymous sessions.
///
/// Every wait is bounded: a request waits at most the acquire timeout for a pooled connection,
/// a new connection at most the connect timeout, and a statement at most the statement timeout
/// (enforced by the server with `statement_timeout`, and by the client one second later in case
/// the connection itself stalls).
///
/// The URL is a libpq-style connection string or `postgres://` URL; TLS is not supported, so
/// use a loopback, Unix-socket or otherwise protected network path. The URL may hold a
/// password: the config's `Debug` output never shows it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fastsession::store::AnonymousBudget;
/// use fastsession::postgres::PostgresConfig;
///
/// let config = PostgresConfig::new("postgres://app@127.0.0.1:5432/app")
///     .with_schema("auth")
///     .with_table("sessions")
///     .with_pool_size(32)
///     .with_acquire_timeout(Duration::from_millis(500))
///     .with_connect_timeout(Duration::from_secs(2))
///     .with_statement_timeout(Duration::from_secs(1))
///     .with_anonymous_budget(AnonymousBudget::new(50_000, 32 << 20));
/// assert_eq!(config.table(), "sessions");
/// assert_eq!(config.pool_size(), 32);
/// ```
#[derive(Clone)]
pub struct PostgresConfig {
    url: String,
    schema: String,
    table: String,
    pool_size: usize,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    statement_timeout: Duration,
    application_name: String,
    anonymous_budget: AnonymousBudget,
    near_cache: Option<NearCacheConfig>,
}

impl PostgresConfig {
    /// Returns a configuration for sessions in the database `url` names, in table
    /// `public.fastsession_sessions`, with a pool of [`DEFAULT_POOL_SIZE`] and the default
    /// timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::{DEFAULT_POOL_SIZE, PostgresConfig};
    ///
    /// // Nothing connects yet: `postgres_store` does.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1:5432/app");
    /// assert_eq!((config.schema(), config.table()), ("public", "fastsession_sessions"));
    /// assert_eq!(config.pool_size(), DEFAULT_POOL_SIZE);
    /// ```
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "public".to_owned(),
            table: "fastsession_sessions".to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            application_name: "fastsession".to_owned(),
            anonymous_budget: AnonymousBudget::default(),
            near_cache: None,
        }
    }

    /// Returns the schema holding the table (default `public`): lowercase ASCII letters, digits and
    /// `_`, starting with a letter or `_`, at most 63 bytes; checked when connecting.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// // A schema the application's role owns, apart from its own tables.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app").with_schema("auth");
    /// assert_eq!(config.schema(), "auth");
    /// ```
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Returns the table name (default `fastsession_sessions`), under the same rule as the schema,
    /// and at most 55 bytes: the indexes, the budget's counter table and its trigger function
    /// are named after it (`<table>_expires`, `<table>_user`, `<table>_anon`,
    /// `<table>_budget`, `<table>_count`, and with the near cache `<table>_notify`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// // Two applications sharing a database keep their sessions apart.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app").with_table("shop_sessions");
    /// assert_eq!(config.table(), "shop_sessions");
    /// ```
    #[must_use]
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Returns the most connections the pool opens (at least one; default [`DEFAULT_POOL_SIZE`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// // Each app server opens at most 32 connections: mind the server's `max_connections`.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app").with_pool_size(32);
    /// assert_eq!(config.pool_size(), 32);
    /// ```
    #[must_use]
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Sets how long a request waits for a free pooled connection before failing with
    /// [`PostgresErrorKind::PoolTimeout`](crate::PostgresErrorKind::PoolTimeout) (default
    /// [`DEFAULT_ACQUIRE_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// // Under overload, fail fast (503) rather than queue requests behind the pool.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app")
    ///     .with_acquire_timeout(Duration::from_millis(250));
    /// assert_eq!(config.acquire_timeout(), Duration::from_millis(250));
    /// ```
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets how long opening one connection may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app")
    ///     .with_connect_timeout(Duration::from_secs(2));
    /// assert_eq!(config.connect_timeout(), Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Returns the server-side `statement_timeout` of every pooled connection (default
    /// [`DEFAULT_STATEMENT_TIMEOUT`], at least one millisecond); the client gives up one second
    /// after it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// // A session statement takes milliseconds: one that takes a second is stuck behind a lock.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app")
    ///     .with_statement_timeout(Duration::from_secs(1));
    /// assert_eq!(config.statement_timeout(), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Returns the `application_name` the connections report (default `fastsession`), as shown in
    /// `pg_stat_activity`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// // Tells the session connections of each service apart in `pg_stat_activity`.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app")
    ///     .with_application_name("shop-sessions");
    /// assert_eq!(config.application_name(), "shop-sessions");
    /// ```
    #[must_use]
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Sets how many sessions without a user id the table keeps, and how many bytes of data they
    /// hold together (default [`AnonymousBudget::default`]: 100 000 sessions, 64 MiB).
    ///
    /// Creating an anonymous session, or growing one, when the budget is full deletes the
    /// least recently active anonymous sessions until it fits (at most 256 per statement; the
    /// next writes delete the rest). Sessions with a user id and revocation markers are outside
    /// the budget and never deleted to make room. Every app server sharing the table should use
    /// the same budget: each enforces its own when it writes. See the
    /// [crate documentation](crate#anonymous-sessions) for what it costs.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::AnonymousBudget;
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app")
    ///     .with_anonymous_budget(AnonymousBudget::new(10_000, 16 << 20));
    /// assert_eq!(config.anonymous_budget().max_sessions(), 10_000);
    /// ```
    #[must_use]
    pub fn with_anonymous_budget(mut self, budget: AnonymousBudget) -> Self {
        self.anonymous_budget = budget;
        self
    }

    /// Returns the budget of anonymous sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    /// use fastsession::store::AnonymousBudget;
    ///
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app");
    /// assert_eq!(config.anonymous_budget(), AnonymousBudget::default());
    /// ```
    #[must_use]
    pub fn anonymous_budget(&self) -> AnonymousBudget {
        self.anonymous_budget
    }

    /// Keeps recently read sessions in this process, served without asking PostgreSQL while
    /// PostgreSQL's notifications say nobody changed them (off by default).
    ///
    /// With it, [`migrate`](crate::PostgresBackend::migrate) also installs triggers on the
    /// table that `NOTIFY` every committed change of a row (an update, a delete, a `TRUNCATE`)
    /// on the channel `fastsession_<16 hex digits>` (the first 64 bits of the SHA-256 of
    /// `<schema>.<table>`: the same for every app server on the table, at most 63 bytes), and
    /// each backend keeps one more connection, outside the pool, that `LISTEN`s on it. The
    /// cache serves a session only while that connection listens and the triggers are there
    /// (checked every second), drops everything when either goes, and never serves an entry
    /// older than the configuration's maximum age. A write still goes to the table with the
    /// merge, and keeps or drops the entry. So a load may trail a write made on another app
    /// server by the time its notification takes to arrive, never longer than the maximum
    /// age, and a session ended anywhere is never served again once that notification arrives.
    ///
    /// What it costs: every write of the table sends a notification, and PostgreSQL
    /// serializes the commits of notifying transactions (a database-wide lock at commit): see
    /// the [crate documentation](crate#near-cache). A backend without the near cache leaves
    /// the triggers as they are (another app server may rely on them).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    /// use fastsession::store::NearCacheConfig;
    ///
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app")
    ///     .with_near_cache(NearCacheConfig::new());
    /// assert!(config.near_cache().is_some());
    /// ```
    #[must_use]
    pub fn with_near_cache(mut self, near_cache: NearCacheConfig) -> Self {
        self.near_cache = Some(near_cache);
        self
    }

    /// Returns the near cache's configuration, if it is on.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// assert!(PostgresConfig::new("postgres://app@127.0.0.1/app").near_cache().is_none());
    /// ```
    #[must_use]
    pub fn near_cache(&self) -> Option<&NearCacheConfig> {
        self.near_cache.as_ref()
    }

    /// Returns the schema name.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// assert_eq!(PostgresConfig::new("postgres://app@127.0.0.1/app").schema(), "public");
    /// ```
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Returns the table name.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app");
    /// // For the application's own queries on the table, e.g. a "signed in on" page.
    /// let query = format!("SELECT count(*) FROM {}.{}", config.schema(), config.table());
    /// assert_eq!(query, "SELECT count(*) FROM public.fastsession_sessions");
    /// ```
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Returns the pool size.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// assert_eq!(PostgresConfig::new("postgres://app@127.0.0.1/app").with_pool_size(0).pool_size(), 1);
    /// ```
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Returns the acquire timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::{DEFAULT_ACQUIRE_TIMEOUT, PostgresConfig};
    ///
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app");
    /// assert_eq!(config.acquire_timeout(), DEFAULT_ACQUIRE_TIMEOUT);
    /// ```
    #[must_use]
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// Returns the connect timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::{DEFAULT_CONNECT_TIMEOUT, PostgresConfig};
    ///
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app");
    /// assert_eq!(config.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
    /// ```
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Returns the statement timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// // At least one millisecond: zero would mean no timeout to PostgreSQL.
    /// let config = PostgresConfig::new("postgres://app@127.0.0.1/app")
    ///     .with_statement_timeout(Duration::ZERO);
    /// assert_eq!(config.statement_timeout(), Duration::from_millis(1));
    /// ```
    #[must_use]
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// Returns the application name.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresConfig;
    ///
    /// assert_eq!(PostgresConfig::new("postgres://app@127.0.0.1/app").application_name(), "fastsession");
    /// ```
    #[must_use]
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// The near cache's notification channel: stable for the schema and table, the same on
    /// every app server, a plain identifier of 28 bytes.
    pub(crate) fn notify_channel(&self) -> String {
        let digest = Sha256::digest(format!("{}.{}", self.schema, self.table));
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("fastsession_{hex}")
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `"schema"."table"` after checking both names.
    pub(crate) fn qualified_table(&self) -> Result<String> {
        check_identifier("schema", &self.schema)?;
        check_identifier("table", &self.table)?;
        // The longest name made from it is the expiry index's, `<table>_expires`: it must fit.
        check_identifier("table", &format!("{}_expires", self.table))?;
        Ok(format!("\"{}\".\"{}\"", self.schema, self.table))
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<hidden>")
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .field("anonymous_budget", &self.anonymous_budget)
            .field("near_cache", &self.near_cache)
            .finish()
    }
}

/// Names are spliced into SQL (identifiers cannot be parameters), so only a plain lowercase
/// form is accepted, and it is quoted as well.
fn check_identifier(what: &str, name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "postgres store: the {what} name must be 1 to 63 of [a-z0-9_], not starting with a digit"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        let ok = PostgresConfig::new("x").with_schema("s_1").with_table("t");
        assert_eq!(ok.qualified_table().unwrap(), "\"s_1\".\"t\"");
        for bad in ["", "1a", "A", "a\"b", "a b", "a;drop", "é", &"a".repeat(60)] {
            let config = PostgresConfig::new("x").with_table(bad);
            assert!(config.qualified_table().is_err(), "{bad:?}");
            let config = PostgresConfig::new("x").with_schema(bad);
            assert!(
                bad.len() > 50 || config.qualified_table().is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_hides_the_url() {
        let config = PostgresConfig::new("postgres://u:hunter2@h/db");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
