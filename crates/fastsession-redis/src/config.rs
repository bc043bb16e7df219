//! [`RedisConfig`]: where the server is and how long to wait for it.

use std::fmt;
use std::time::Duration;

use fastsession_core::store::{AnonymousBudget, NearCacheConfig};
use fastsession_core::{Error, ErrorKind, Result};

/// The default key prefix, see [`RedisConfig::with_key_prefix`].
pub const DEFAULT_KEY_PREFIX: &str = "fastsession:";
/// The default connect timeout, see [`RedisConfig::with_connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default command timeout, see [`RedisConfig::with_command_timeout`].
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);
/// The default lifetime of a user index, see [`RedisConfig::with_user_index_ttl`].
pub const DEFAULT_USER_INDEX_TTL: Duration = Duration::from_secs(31 * 24 * 3600);

/// How to reach Redis, and the settings of a [`RedisBackend`](crate::RedisBackend).
///
/// Build one with [`new`](Self::new) (one server) or [`cluster`](Self::cluster), adjust it
/// with the `with_*` methods, and connect with [`redis_store`](crate::redis_store) or
/// [`RedisBackend::connect`](crate::RedisBackend::connect). URLs are the client's:
/// `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS when this crate's
/// `tls-rustls` feature is on.
///
/// Its `Debug` output never shows the URLs, which may hold a password.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fastsession::redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379")
///     .with_key_prefix("myapp:session:")
///     .with_command_timeout(Duration::from_secs(1));
/// assert_eq!(config.key_prefix(), "myapp:session:");
/// assert!(!config.is_cluster());
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    pub(crate) urls: Vec<String>,
    pub(crate) cluster: bool,
    pub(crate) prefix: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) user_index_ttl: Duration,
    pub(crate) anonymous_budget: AnonymousBudget,
    pub(crate) near_cache: Option<NearCacheConfig>,
}

impl RedisConfig {
    /// Returns a configuration for one Redis server (or a proxy in front of several) at `url`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::{DEFAULT_KEY_PREFIX, RedisConfig};
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1:6379/0");
    /// assert_eq!(config.key_prefix(), DEFAULT_KEY_PREFIX);
    /// ```
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            urls: vec![url.into()],
            cluster: false,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            user_index_ttl: DEFAULT_USER_INDEX_TTL,
            anonymous_budget: AnonymousBudget::default(),
            near_cache: None,
        }
    }

    /// Returns a Redis Cluster, discovered from any of the seed node `urls`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::RedisConfig;
    ///
    /// let config = RedisConfig::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
    /// assert!(config.is_cluster());
    /// ```
    #[must_use]
    pub fn cluster(urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        RedisConfig {
            urls: urls.into_iter().map(Into::into).collect(),
            cluster: true,
            ..RedisConfig::new("")
        }
    }

    /// Puts every key this store writes under `prefix` (default [`DEFAULT_KEY_PREFIX`]), so
    /// that several applications can share one Redis. It must not contain `{` or `}`: the
    /// store places its own Cluster hash tags.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::RedisConfig;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1").with_key_prefix("shop:");
    /// assert_eq!(config.key_prefix(), "shop:");
    /// ```
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how long establishing a connection may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::redis::RedisConfig;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1").with_connect_timeout(Duration::from_secs(5));
    /// assert_eq!(config.connect_timeout(), Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long one store operation may take, from sending to the whole reply, including
    /// waiting for a reconnection and the one retry of a read (default
    /// [`DEFAULT_COMMAND_TIMEOUT`]). Past it the operation fails with a
    /// [`Store`](fastsession_core::ErrorKind::Store) error whose source is an [`std::io::Error`] of
    /// kind [`TimedOut`](std::io::ErrorKind::TimedOut).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::redis::RedisConfig;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1").with_command_timeout(Duration::from_millis(500));
    /// assert_eq!(config.command_timeout(), Duration::from_millis(500));
    /// ```
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets how long a user's session index lives after the last session was linked to it (default
    /// [`DEFAULT_USER_INDEX_TTL`]). Keep it at least the absolute session lifetime of your
    /// [`Expiry`](fastsession_core::session::Expiry), or "log out everywhere" may miss old
    /// sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastsession::redis::RedisConfig;
    ///
    /// let week = Duration::from_secs(7 * 24 * 3600);
    /// let config = RedisConfig::new("redis://127.0.0.1").with_user_index_ttl(week);
    /// assert_eq!(config.user_index_ttl(), week);
    /// ```
    #[must_use]
    pub fn with_user_index_ttl(mut self, ttl: Duration) -> Self {
        self.user_index_ttl = ttl;
        self
    }

    /// Bounds the sessions without a user id (anonymous sessions, and revocation markers of
    /// anonymous sessions) to `budget`: at most [`max_sessions`](AnonymousBudget::max_sessions)
    /// of them, holding at most [`max_bytes`](AnonymousBudget::max_bytes) of session data
    /// together (default [`AnonymousBudget::default`]: 100 000 sessions, 64 MiB).
    ///
    /// Anyone can make an anonymous session with one request, so they are counted apart: a
    /// save that puts the anonymous sessions over the budget deletes others in the same atomic
    /// step, the longest idle first (approximately: see
    /// [Anonymous sessions](crate::RedisBackend#anonymous-sessions)). Sessions with a user id and revocation markers with
    /// one are outside the budget and never deleted to make room, so an anonymous flood can
    /// neither log anybody out nor undo a logout. Size Redis's `maxmemory` for your logged-in
    /// sessions plus this budget (see the [crate documentation](crate#memory-and-eviction)).
    ///
    /// The bytes are [`Record::data_len`](fastsession_core::session::Record::data_len) of each
    /// session as its last save saw it, and at least its share, `max_bytes / max_sessions`
    /// (671 by default): the saves of a session within its share then take the cheaper path
    /// (see [`RedisBackend`](crate::RedisBackend)), and the sessions of the budget still fit
    /// in its bytes. Redis spends more per session than that (its key,
    /// field names, timestamps, TTL and index entries): measured on Redis 7.0, about 350
    /// bytes for a session holding one small value, about 4.8 KB for one holding 4 KB.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::AnonymousBudget;
    /// use fastsession::redis::RedisConfig;
    ///
    /// let budget = AnonymousBudget::new(20_000, 16 << 20);
    /// let config = RedisConfig::new("redis://127.0.0.1").with_anonymous_budget(budget);
    /// assert_eq!(config.anonymous_budget(), budget);
    /// ```
    #[must_use]
    pub fn with_anonymous_budget(mut self, budget: AnonymousBudget) -> Self {
        self.anonymous_budget = budget;
        self
    }

    /// Returns the budget of the anonymous sessions.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::RedisConfig;
    /// use fastsession::store::AnonymousBudget;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1");
    /// assert_eq!(config.anonymous_budget(), AnonymousBudget::default());
    /// ```
    #[must_use]
    pub fn anonymous_budget(&self) -> AnonymousBudget {
        self.anonymous_budget
    }

    /// Returns the key prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::RedisConfig;
    ///
    /// // For the application's own scans of its sessions in `redis-cli`.
    /// let config = RedisConfig::new("redis://127.0.0.1").with_key_prefix("shop:");
    /// assert_eq!(format!("{}*", config.key_prefix()), "shop:*");
    /// ```
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// Returns the connect timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::{DEFAULT_CONNECT_TIMEOUT, RedisConfig};
    ///
    /// assert_eq!(RedisConfig::new("redis://127.0.0.1").connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
    /// ```
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Returns the command timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::{DEFAULT_COMMAND_TIMEOUT, RedisConfig};
    ///
    /// assert_eq!(RedisConfig::new("redis://127.0.0.1").command_timeout(), DEFAULT_COMMAND_TIMEOUT);
    /// ```
    #[must_use]
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Returns the user index lifetime.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Expiry;
    /// use fastsession::redis::RedisConfig;
    ///
    /// // "Log out everywhere" must find every live session: keep the index as long as they live.
    /// let expiry = Expiry::default();
    /// let config = RedisConfig::new("redis://127.0.0.1");
    /// assert!(config.user_index_ttl() >= expiry.absolute_lifetime());
    /// ```
    #[must_use]
    pub fn user_index_ttl(&self) -> Duration {
        self.user_index_ttl
    }

    /// Returns `true` for a [`cluster`](Self::cluster) configuration.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::RedisConfig;
    ///
    /// assert!(!RedisConfig::new("redis://127.0.0.1").is_cluster());
    /// assert!(RedisConfig::cluster(["redis://10.0.0.1:7000"]).is_cluster());
    /// ```
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Refuses settings that cannot work, before any connection is made.
    /// Keeps recently read sessions in this process, served without asking Redis while Redis
    /// confirms nobody changed them (off by default).
    ///
    /// Redis tracks the keys the store reads (`CLIENT TRACKING`, Redis 6 or later) and pushes
    /// an invalidation when any client changes one; the cache serves a session only while that
    /// channel is up, drops everything when it goes down (a disconnect, a restart, a
    /// `FLUSHALL`), and never serves an entry older than the configuration's maximum age. A
    /// write still goes to Redis with the field-level merge, and drops the entry. So a load
    /// may trail a write made on another app server by the time the invalidation takes to
    /// arrive, never longer than the maximum age, and a session ended anywhere is never
    /// served again once that invalidation arrives.
    ///
    /// Not with a [`cluster`](Self::cluster): each node tracks only its own keys, so
    /// connecting refuses the combination with [`ErrorKind::InvalidConfig`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::redis::RedisConfig;
    /// use fastsession::store::NearCacheConfig;
    ///
    /// let config = RedisConfig::new("redis://127.0.0.1").with_near_cache(NearCacheConfig::new());
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
    /// use fastsession::redis::RedisConfig;
    ///
    /// assert!(RedisConfig::new("redis://127.0.0.1").near_cache().is_none());
    /// ```
    #[must_use]
    pub fn near_cache(&self) -> Option<&NearCacheConfig> {
        self.near_cache.as_ref()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |what: &'static str| Err(Error::new(ErrorKind::InvalidConfig, what));
        if self.urls.is_empty() || self.urls.iter().any(String::is_empty) {
            return invalid("redis store: no server URL");
        }
        if self.prefix.contains(['{', '}']) {
            return invalid("redis store: the key prefix must not contain '{' or '}'");
        }
        if self.connect_timeout.is_zero() || self.command_timeout.is_zero() {
            return invalid("redis store: timeouts must be positive");
        }
        if self.user_index_ttl.as_secs() == 0 {
            return invalid("redis store: the user index TTL must be at least one second");
        }
        if self.cluster && self.near_cache.is_some() {
            // Each node tracks only its own keys, and a slot moving between nodes would
            // carry no invalidation: never a silently incoherent cache.
            return invalid(
                "redis store: the near cache needs one Redis server; a Cluster is not supported",
            );
        }
        Ok(())
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry a password: only their number is shown.
        f.debug_struct("RedisConfig")
            .field("servers", &self.urls.len())
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("user_index_ttl", &self.user_index_ttl)
            .field("anonymous_budget", &self.anonymous_budget)
            .field("near_cache", &self.near_cache)
            .finish()
    }
}
