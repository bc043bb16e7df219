//! The pool and the retries: every statement on a pooled connection, bounded on the client
//! side, tried again on a fresh connection only where running it twice is running it once.

use deadpool_postgres::Object;
use fastsession_core::Result;
use fastsession_core::events::{self, Event};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresBackend;
use crate::error::{PostgresError, PostgresErrorKind};

/// Whether a statement is tried again, on a fresh connection, when its connection was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Retry {
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

impl PostgresBackend {
    pub(super) async fn client(&self, op: &'static str) -> Result<Object, PostgresError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| PostgresError::from_pool(op, e))
    }

    /// Runs one statement, tried again as `retry` says if the connection was lost (a
    /// terminated backend, a server restart).
    pub(super) async fn rows(
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
