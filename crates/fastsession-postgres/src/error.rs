//! The crate's one error type, reached through the `source` of a core [`Error`].

use std::error::Error as StdError;
use std::fmt;

use deadpool_postgres::PoolError;
use fastsession_core::{Error, ErrorKind};
use tokio_postgres::error::SqlState;

/// What went wrong talking to PostgreSQL.
///
/// # Examples
///
/// ```
/// use fastsession::postgres::{PostgresError, PostgresErrorKind};
///
/// fn is_retryable(error: &fastsession::Error) -> bool {
///     let pg = std::error::Error::source(error).and_then(|s| s.downcast_ref::<PostgresError>());
///     matches!(pg.map(PostgresError::kind), Some(PostgresErrorKind::PoolTimeout | PostgresErrorKind::Unavailable))
/// }
/// # let _ = is_retryable;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostgresErrorKind {
    /// No pooled connection became free within the acquire timeout.
    PoolTimeout,
    /// No connection could be made, or it was lost (server down, backend terminated,
    /// connect timeout, shutting down).
    Unavailable,
    /// The statement ran past the statement timeout (server side) or the client-side bound
    /// on a statement (a stalled connection).
    Timeout,
    /// The database refused a write because the session or server is read-only (a hot
    /// standby, `default_transaction_read_only`).
    ReadOnly,
    /// Any other error PostgreSQL reported (permissions, a missing table: run
    /// [`migrate`](crate::PostgresBackend::migrate)). A value `jsonb` cannot hold is of this
    /// kind too, inside a core error of kind
    /// [`ErrorKind::Unstorable`](fastsession_core::ErrorKind::Unstorable) rather than `Store`.
    Database,
}

impl PostgresErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            PostgresErrorKind::PoolTimeout => "no pooled connection within the acquire timeout",
            PostgresErrorKind::Unavailable => "server unavailable or connection lost",
            PostgresErrorKind::Timeout => "statement timed out",
            PostgresErrorKind::ReadOnly => "database is read-only",
            PostgresErrorKind::Database => "database error",
        }
    }
}

/// An error of the PostgreSQL store: a [`PostgresErrorKind`], the SQLSTATE if the server
/// sent one, and the driver's error as [`source`](StdError::source).
///
/// The store returns it inside a core [`Error`] of kind
/// [`ErrorKind::Store`](fastsession_core::ErrorKind::Store); downcast that error's `source` to
/// reach it. Its `Display` names the operation, the kind and the SQLSTATE, never a value, an
/// id or the connection URL. The driver's error (its source) carries PostgreSQL's own message
/// and `DETAIL`, which may quote stored data: log it only where session data may go.
#[derive(Debug)]
pub struct PostgresError {
    kind: PostgresErrorKind,
    operation: &'static str,
    code: Option<SqlState>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl PostgresError {
    pub(crate) fn new(kind: PostgresErrorKind, operation: &'static str) -> Self {
        PostgresError {
            kind,
            operation,
            code: None,
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Returns what went wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::{PostgresError, PostgresErrorKind};
    ///
    /// // Page the on-call engineer for a database that refuses writes, not for a busy pool.
    /// fn is_read_only(error: &fastsession::Error) -> bool {
    ///     std::error::Error::source(error)
    ///         .and_then(|source| source.downcast_ref::<PostgresError>())
    ///         .is_some_and(|pg| pg.kind() == PostgresErrorKind::ReadOnly)
    /// }
    /// # let _ = is_read_only;
    /// ```
    #[must_use]
    pub fn kind(&self) -> PostgresErrorKind {
        self.kind
    }

    /// Returns the SQLSTATE code PostgreSQL sent (`"57014"` for a statement timeout), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresError;
    ///
    /// fn sqlstate(error: &fastsession::Error) -> Option<&str> {
    ///     std::error::Error::source(error)?.downcast_ref::<PostgresError>()?.code()
    /// }
    /// // "42P01" (undefined table): the table was never made; run `migrate`.
    /// # let _ = sqlstate;
    /// ```
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.code.as_ref().map(SqlState::code)
    }

    /// Returns the operation that failed (`"update"`, `"read"`, `"migrate"`, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::postgres::PostgresError;
    ///
    /// // A metric label: which statement fails.
    /// fn failing_operation(error: &fastsession::Error) -> &'static str {
    ///     std::error::Error::source(error)
    ///         .and_then(|source| source.downcast_ref::<PostgresError>())
    ///         .map_or("other", PostgresError::operation)
    /// }
    /// # let _ = failing_operation;
    /// ```
    #[must_use]
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// Classifies a driver error.
    pub(crate) fn from_driver(operation: &'static str, error: tokio_postgres::Error) -> Self {
        let code = error.code().cloned();
        let kind = match &code {
            Some(c) if *c == SqlState::QUERY_CANCELED => PostgresErrorKind::Timeout,
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => PostgresErrorKind::ReadOnly,
            Some(c)
                if *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
                    || *c == SqlState::TOO_MANY_CONNECTIONS
                    || c.code().starts_with("08") =>
            {
                PostgresErrorKind::Unavailable
            }
            Some(_) => PostgresErrorKind::Database,
            // No SQLSTATE: a closed connection or an I/O error (connect included) means the
            // server is out of reach; anything else (a type mismatch) is not.
            None if error.is_closed()
                || StdError::source(&error).is_some_and(|s| s.is::<std::io::Error>()) =>
            {
                PostgresErrorKind::Unavailable
            }
            None => PostgresErrorKind::Database,
        };
        PostgresError {
            kind,
            operation,
            code,
            source: Some(Box::new(error)),
        }
    }

    /// Classifies a pool error.
    pub(crate) fn from_pool(operation: &'static str, error: PoolError) -> Self {
        match error {
            PoolError::Backend(e) => PostgresError::from_driver(operation, e),
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                PostgresError::new(PostgresErrorKind::PoolTimeout, operation)
            }
            other => PostgresError::new(PostgresErrorKind::Unavailable, operation)
                .with_source(PoolErrorText(other.to_string())),
        }
    }

    /// `true` if the connection is unusable and the statement may not have run.
    pub(crate) fn is_connection_lost(&self) -> bool {
        self.kind == PostgresErrorKind::Unavailable
    }

    /// This error as a core [`Error`] of kind `Store`.
    pub(crate) fn into_core(self) -> Error {
        Error::store(format!("postgres store: {self}"), self)
    }

    /// `true` if PostgreSQL refused a parameter's content as input for its type: `jsonb`
    /// refusing a number beyond `numeric`'s range (`1e1000000`, SQLSTATE 22003) or a string
    /// with a lone surrogate escape (`"\ud800"`, 22P02), text not in the database's encoding
    /// (22P05, 22021). Our own parameters are binary, so only session data gets here.
    pub(crate) fn is_refused_input(&self) -> bool {
        self.code.as_ref().is_some_and(|c| {
            *c == SqlState::NUMERIC_VALUE_OUT_OF_RANGE
                || *c == SqlState::INVALID_TEXT_REPRESENTATION
                || *c == SqlState::UNTRANSLATABLE_CHARACTER
                || *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE
        })
    }

    /// This error as a core [`Error`] of kind [`ErrorKind::Unstorable`]: the statement
    /// failed as a whole, so nothing was written.
    pub(crate) fn into_unstorable(self) -> Error {
        Error::new(
            ErrorKind::Unstorable,
            format!(
                "postgres store: the session holds a value jsonb cannot hold (a number beyond numeric's range, a lone surrogate escape); nothing was saved ({self})"
            ),
        )
        .with_source(self)
    }
}

impl fmt::Display for PostgresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.operation, self.kind.as_str())?;
        if let Some(code) = &self.code {
            write!(f, " (SQLSTATE {})", code.code())?;
        }
        Ok(())
    }
}

impl StdError for PostgresError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// A pool error other than a driver error (a create or recycle timeout, a closed pool), kept
/// as its text: it holds nothing more.
#[derive(Debug)]
struct PoolErrorText(String);

impl fmt::Display for PoolErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for PoolErrorText {}
