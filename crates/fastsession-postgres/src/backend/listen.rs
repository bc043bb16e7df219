//! The near cache's link to PostgreSQL: one connection of its own (not pooled) that `LISTEN`s
//! on the table's channel, where the triggers `migrate` installs notify every committed change
//! of a row (see `sql::notify`).
//!
//! PostgreSQL delivers a notification only once its transaction is committed and visible, so
//! a read whose snapshot misses a commit began before that commit's notification arrives: the
//! cache's mark refuses the read's answer, or the notification removes it. A notification of
//! this backend's own merge (its origin, with a version) is skipped: the write itself either
//! proves its merged record current or drops the entry. Everything else drops its key, `*`
//! drops everything. The cache serves only while the connection listens and the triggers are
//! there (checked every second, which also notices a connection that died silently); a task
//! connects again with a back-off of 50 ms to 2 s.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use fastsession_core::store::{NearCache, NearCacheConfig, StorageKey};
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

/// The first wait before connecting again, doubled up to [`MAX_RETRY`] while it fails.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(2);
/// How often the listener checks that its connection answers and the triggers are there.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The notify triggers, all three, as `Statements::notify_check` counts them.
const TRIGGERS: i64 = 3;

/// The near cache of a [`PostgresBackend`](super::PostgresBackend) and what its listener
/// needs to tell its own writes from others'.
pub(super) struct Listener {
    cache: NearCache,
    /// Set on every pooled connection (`fastsession.origin`), read by the triggers.
    origin: String,
    /// Until then, notifications of this backend's own merges are not skipped: a merge whose
    /// answer was lost may still commit, and nothing else would drop what it changed.
    doubt_until: Mutex<Option<Instant>>,
}

/// What a notification asks of the cache.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Change<'a> {
    /// A row changed or went: `origin` the writer's, `version` set if a merge bumped it.
    Row {
        key: StorageKey,
        origin: &'a str,
        version: Option<u64>,
    },
    /// The table was truncated.
    All,
}

/// Reads a payload of the triggers: `<key hex> <origin> <version>` or `*`; `None` for
/// anything else.
pub(super) fn parse(payload: &str) -> Option<Change<'_>> {
    if payload == "*" {
        return Some(Change::All);
    }
    let (key, rest) = payload.split_once(' ')?;
    let (origin, version) = rest.rsplit_once(' ')?;
    let version = match version {
        "" => None,
        digits => Some(digits.parse().ok()?),
    };
    Some(Change::Row {
        key: StorageKey::from_hex(key)?,
        origin,
        version,
    })
}

impl Listener {
    /// Starts the cache and the task that keeps its connection; the cache serves nothing until
    /// that connection listens and the triggers are found.
    pub(super) fn start(
        near: NearCacheConfig,
        origin: String,
        pg: tokio_postgres::Config,
        listen: String,
        check: String,
    ) -> Arc<Listener> {
        let listener = Arc::new(Listener {
            cache: NearCache::new(near),
            origin,
            doubt_until: Mutex::new(None),
        });
        tokio::spawn(keep_listening(Arc::downgrade(&listener), pg, listen, check));
        listener
    }

    pub(super) fn cache(&self) -> &NearCache {
        &self.cache
    }

    /// A write of this backend failed in a way that may hide a commit: for `window`, its own
    /// merges' notifications drop their keys too.
    pub(super) fn doubt(&self, window: Duration) {
        let until = Instant::now() + window;
        let mut doubt = self
            .doubt_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *doubt = Some(doubt.map_or(until, |at| at.max(until)));
    }

    fn in_doubt(&self) -> bool {
        let doubt = self
            .doubt_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        doubt.is_some_and(|until| Instant::now() < until)
    }

    /// Applies one notification.
    fn apply(&self, payload: &str) {
        match parse(payload) {
            Some(Change::All) => {
                tracing::info!(target: "fastsession", "postgres near cache: the table was truncated; cache dropped");
                self.cache.flush();
            }
            Some(Change::Row {
                key,
                origin,
                version,
            }) => {
                // This backend's own merge: the write itself kept or dropped its entry.
                let own_merge = version.is_some() && origin == self.origin && !self.in_doubt();
                if !own_merge {
                    self.cache.invalidate(&key);
                }
            }
            None => {
                tracing::warn!(target: "fastsession", "postgres near cache: a notification it cannot read; cache dropped");
                self.cache.flush();
            }
        }
    }
}

/// Why a listening connection ended.
enum Lost {
    Closed,
    Failed(tokio_postgres::Error),
    TimedOut,
}

impl Lost {
    fn log(&self) {
        match self {
            Lost::Closed => {
                tracing::warn!(target: "fastsession", "postgres near cache: the listening connection closed; loads go to the table until it is back")
            }
            Lost::Failed(error) => {
                tracing::warn!(target: "fastsession", %error, "postgres near cache: the listening connection failed; loads go to the table until it is back")
            }
            Lost::TimedOut => {
                tracing::warn!(target: "fastsession", "postgres near cache: the listening connection stopped answering; loads go to the table until it is back")
            }
        }
    }
}

/// Runs `work` (queries through the connection's client) while polling `conn`, whose
/// notifications go to `listener` as they are read, in order with the answers. Ends when the
/// work does, or with the connection, or when the backend is dropped.
async fn drive<T>(
    conn: &mut Connection<Socket, NoTlsStream>,
    listener: &Weak<Listener>,
    work: impl Future<Output = Result<T, Lost>>,
) -> Option<Result<T, Lost>> {
    let mut work = pin!(work);
    poll_fn(|cx| {
        loop {
            match conn.poll_message(cx) {
                Poll::Ready(Some(Ok(AsyncMessage::Notification(note)))) => {
                    match listener.upgrade() {
                        Some(listener) => listener.apply(note.payload()),
                        None => return Poll::Ready(None),
                    }
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Some(Err(Lost::Failed(error))));
                }
                Poll::Ready(None) => return Poll::Ready(Some(Err(Lost::Closed))),
                Poll::Pending => break,
            }
        }
        // The work's queries wake this task when their answers come: the loop above reads
        // them (and every notification before them) on the next poll.
        work.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Runs `query` through `client` within `bound`.
async fn query_bounded<T>(
    bound: Duration,
    query: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Lost> {
    match tokio::time::timeout(bound, query).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(Lost::Failed(error)),
        Err(_) => Err(Lost::TimedOut),
    }
}

/// The notify triggers counted.
async fn triggers(client: &Client, check: &str, bound: Duration) -> Result<bool, Lost> {
    let row = query_bounded(bound, client.query_one(check, &[])).await?;
    Ok(row.try_get::<_, i64>(0).map_err(Lost::Failed)? == TRIGGERS)
}

/// Keeps a listening connection for as long as the backend lives: connects, listens, lets the
/// cache serve while the triggers are there, and starts again after a pause that grows while
/// connecting fails.
async fn keep_listening(
    listener: Weak<Listener>,
    pg: tokio_postgres::Config,
    listen: String,
    check: String,
) {
    let bound = pg
        .get_connect_timeout()
        .copied()
        .unwrap_or(Duration::from_secs(5));
    let mut retry = FIRST_RETRY;
    let mut warned_missing = false;
    loop {
        if listener.strong_count() == 0 {
            return;
        }
        let (client, mut conn) = match tokio::time::timeout(bound, pg.connect(NoTls)).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(error)) => {
                tracing::warn!(target: "fastsession", %error, "postgres near cache: cannot connect to listen; loads go to the table");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
            Err(_) => {
                tracing::warn!(target: "fastsession", "postgres near cache: connecting to listen timed out; loads go to the table");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        let client = &client;
        let session = async {
            // LISTEN takes effect when it returns (autocommit): every commit after it is
            // notified here, so the cache may serve from then on if the triggers are there.
            query_bounded(bound, client.batch_execute(&listen)).await?;
            retry = FIRST_RETRY;
            let mut tracking = false;
            loop {
                let present = triggers(client, &check, bound).await?;
                let Some(listener) = listener.upgrade() else {
                    return Ok(());
                };
                if present != tracking {
                    tracking = present;
                    listener.cache.set_tracking(present);
                    if present {
                        warned_missing = false;
                        tracing::info!(target: "fastsession", "postgres near cache: listening");
                    }
                }
                if !present && !warned_missing {
                    warned_missing = true;
                    tracing::warn!(target: "fastsession", "postgres near cache: the notify triggers are missing (run `migrate` with the near cache on); loads go to the table");
                }
                drop(listener);
                tokio::time::sleep(CHECK_EVERY).await;
            }
        };
        let ended = drive(&mut conn, &listener, session).await;
        let Some(listener) = listener.upgrade() else {
            return;
        };
        listener.cache.set_tracking(false);
        match ended {
            Some(Err(lost)) => lost.log(),
            Some(Ok(())) | None => return,
        }
        drop(listener);
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    #[test]
    fn payloads_are_read() {
        let key = StorageKey::from_bytes([1; 32]);
        assert_eq!(parse("*"), Some(Change::All));
        assert_eq!(
            parse(&format!("{KEY} abc 42")),
            Some(Change::Row {
                key,
                origin: "abc",
                version: Some(42)
            })
        );
        // A touch or a delete: no version; a connection without an origin: empty.
        assert_eq!(
            parse(&format!("{KEY} abc ")),
            Some(Change::Row {
                key,
                origin: "abc",
                version: None
            })
        );
        assert_eq!(
            parse(&format!("{KEY}  ")),
            Some(Change::Row {
                key,
                origin: "",
                version: None
            })
        );
        // An origin someone set with spaces in it still parses.
        assert_eq!(
            parse(&format!("{KEY} a b 7")),
            Some(Change::Row {
                key,
                origin: "a b",
                version: Some(7)
            })
        );
    }

    #[test]
    fn other_payloads_are_refused() {
        for payload in [
            "",
            "**",
            KEY,
            &format!("{KEY} abc"),
            &format!("{KEY} abc x"),
            &format!("{KEY} abc -1"),
            "0101 abc 1",
        ] {
            assert_eq!(parse(payload), None, "{payload:?}");
        }
    }

    #[tokio::test]
    async fn own_merges_are_skipped_and_everything_else_drops_its_key() {
        let listener = Listener {
            cache: NearCache::new(NearCacheConfig::new()),
            origin: "me".to_owned(),
            doubt_until: Mutex::new(None),
        };
        let cache = listener.cache();
        cache.set_tracking(true);
        let key = StorageKey::from_bytes([1; 32]);
        let fill = |version| {
            let record = fastsession_core::session::Record::new(
                fastsession_core::time::UnixTime::from_secs(1),
            );
            assert!(cache.begin(key).unwrap().complete(&record, Some(version)));
        };
        fill(1);
        listener.apply(&format!("{KEY} me 2"));
        assert!(cache.get(&key).is_some(), "own merge skipped");
        for payload in [
            format!("{KEY} me "),
            format!("{KEY} other 2"),
            format!("{KEY}  2"),
        ] {
            fill(1);
            listener.apply(&payload);
            assert!(cache.get(&key).is_none(), "{payload:?} must drop the key");
        }
        fill(1);
        listener.doubt(Duration::from_secs(60));
        listener.apply(&format!("{KEY} me 2"));
        assert!(cache.get(&key).is_none(), "in doubt, own merges drop too");
        fill(1);
        listener.apply("*");
        assert_eq!(cache.stats().entries(), 0);
    }
}
