//! The near cache's link to Redis: one RESP3 connection with `CLIENT TRACKING ON NOLOOP`.
//! While it is up, every command of the backend goes through it: Redis tracks the keys it
//! reads, pushes an invalidation on it when another client changes one, and tells it nothing
//! of its own writes (the backend drops or replaces its own entries).
//!
//! The pushes arrive on the same connection as the replies, and the client hands each to
//! [`Pushes`] as it parses it, before the replies after it: an invalidation is applied no later
//! than the reply of any command sent after the write it reports. A lost connection drops the
//! cache at once; a task connects again, turns tracking on, and only then lets loads use the
//! cache again.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use fastsession_core::store::{NearCache, NearCacheConfig, StorageKey};
use fastsession_core::{Error, ErrorKind, Result};
use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::Notify;

use super::conn::connection_infos;
use crate::config::RedisConfig;

/// The first wait before connecting again, doubled up to [`MAX_RETRY`] while it fails.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// The tracked connection of one epoch, or none while it is being made.
struct Link {
    /// Raised at every new connection: pushes and failures of an older one change nothing.
    epoch: u64,
    conn: Option<MultiplexedConnection>,
}

/// The near cache of a [`RedisBackend`](super::RedisBackend) and its tracked connection.
pub(super) struct Tracking {
    cache: NearCache,
    link: Mutex<Link>,
    /// Wakes the task that connects: the link was lost, or the backend dropped.
    wake: Arc<Notify>,
    /// What every session key starts with, to tell them from the store's other keys.
    session_prefix: String,
}

impl Tracking {
    /// Starts the cache and the task that keeps its connection; the cache serves nothing
    /// until that connection's tracking is on.
    pub(super) fn start(config: &RedisConfig, near: NearCacheConfig) -> Result<Arc<Tracking>> {
        let info = connection_infos(config)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "no Redis URL"))?;
        let redis = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(redis))
            .map_err(|_| Error::new(ErrorKind::InvalidConfig, "redis store: invalid server URL"))?;
        let wake = Arc::new(Notify::new());
        let tracking = Arc::new(Tracking {
            cache: NearCache::new(near),
            link: Mutex::new(Link {
                epoch: 0,
                conn: None,
            }),
            wake: Arc::clone(&wake),
            session_prefix: format!("{}s:{{", config.prefix),
        });
        let connect_timeout = config.connect_timeout;
        tokio::spawn(keep_linked(
            Arc::downgrade(&tracking),
            wake,
            client,
            connect_timeout,
        ));
        Ok(tracking)
    }

    pub(super) fn cache(&self) -> &NearCache {
        &self.cache
    }

    fn link(&self) -> MutexGuard<'_, Link> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tracked connection and its epoch, while it is up: every command goes through it
    /// then, so that the reads are tracked and, under `NOLOOP`, this process's own writes
    /// cost it no invalidation (it drops its entry itself).
    pub(super) fn conn(&self) -> Option<(MultiplexedConnection, u64)> {
        let link = self.link();
        Some((link.conn.clone()?, link.epoch))
    }

    /// The connection of `epoch` is lost or in doubt: nothing is served until another one
    /// tracks.
    pub(super) fn lost(&self, epoch: u64, why: &'static str) {
        let mut link = self.link();
        if link.epoch != epoch || link.conn.is_none() {
            return;
        }
        link.conn = None;
        self.cache.set_tracking(false);
        drop(link);
        tracing::warn!(target: "fastsession", why, "redis near cache: tracking lost; loads go to Redis until it is back");
        self.wake.notify_one();
    }

    /// Applies one push of the connection of `epoch`.
    fn push(&self, epoch: u64, info: &PushInfo) {
        match info.kind {
            PushKind::Invalidate => match info.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        if let Some(key) = self.storage_key(key) {
                            self.cache.invalidate(&key);
                        }
                    }
                }
                // After `FLUSHALL` or `FLUSHDB`, and when Redis drops its tracking table.
                _ => {
                    tracing::info!(target: "fastsession", "redis near cache: Redis invalidated every key; cache dropped");
                    self.cache.flush();
                }
            },
            PushKind::Disconnection => self.lost(epoch, "disconnected"),
            _ => {}
        }
    }

    /// The storage key of a session key Redis named, if it is one.
    fn storage_key(&self, key: &Value) -> Option<StorageKey> {
        let name = match key {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?,
            Value::SimpleString(text) => text.as_str(),
            _ => return None,
        };
        let hex = name.strip_prefix(&self.session_prefix)?.strip_suffix('}')?;
        StorageKey::from_hex(hex)
    }

    /// Installs `conn`, tracked, as the link of `epoch`, unless a newer attempt or a loss
    /// came first.
    fn install(&self, epoch: u64, conn: MultiplexedConnection) -> bool {
        let mut link = self.link();
        if link.epoch != epoch {
            return false;
        }
        link.conn = Some(conn);
        self.cache.set_tracking(true);
        true
    }

    fn next_epoch(&self) -> u64 {
        let mut link = self.link();
        link.epoch += 1;
        link.conn = None;
        link.epoch
    }

    fn is_linked(&self, epoch: u64) -> bool {
        let link = self.link();
        link.epoch == epoch && link.conn.is_some()
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        // The task holds only a weak handle: woken, it finds the backend gone and ends.
        self.wake.notify_one();
    }
}

/// Hands the pushes of one connection to its [`Tracking`].
struct Pushes {
    tracking: Weak<Tracking>,
    epoch: u64,
}

impl AsyncPushSender for Pushes {
    fn send(&self, info: PushInfo) -> std::result::Result<(), SendError> {
        match self.tracking.upgrade() {
            Some(tracking) => {
                tracking.push(self.epoch, &info);
                Ok(())
            }
            None => Err(SendError),
        }
    }
}

/// Keeps a tracked connection for as long as the backend lives: connects, turns tracking on,
/// waits until it is lost, and starts again after a pause that grows while connecting fails.
async fn keep_linked(
    tracking: Weak<Tracking>,
    wake: Arc<Notify>,
    client: redis::Client,
    connect_timeout: Duration,
) {
    let mut retry = FIRST_RETRY;
    loop {
        let epoch = match tracking.upgrade() {
            Some(tracking) => tracking.next_epoch(),
            None => return,
        };
        let pushes = Pushes {
            tracking: tracking.clone(),
            epoch,
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            // Each read is bounded by the command timeout already.
            .set_response_timeout(None)
            .set_push_sender(pushes);
        let connected = tokio::time::timeout(connect_timeout, async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("NOLOOP")
                .query_async::<()>(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(conn)
        })
        .await;
        let linked = match connected {
            Ok(Ok(conn)) => match tracking.upgrade() {
                Some(tracking) => tracking.install(epoch, conn),
                None => return,
            },
            Ok(Err(error)) => {
                tracing::warn!(target: "fastsession", %error, "redis near cache: cannot turn tracking on (Redis 6 or later needed); loads go to Redis");
                false
            }
            Err(_) => {
                tracing::warn!(target: "fastsession", "redis near cache: connecting timed out; loads go to Redis");
                false
            }
        };
        if linked {
            tracing::info!(target: "fastsession", "redis near cache: tracking on");
            retry = FIRST_RETRY;
            // Until the link is lost (or the backend dropped); a loss that came before this
            // wait left its permit.
            loop {
                wake.notified().await;
                match tracking.upgrade() {
                    Some(tracking) if tracking.is_linked(epoch) => {}
                    Some(_) => break,
                    None => return,
                }
            }
        } else {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(MAX_RETRY);
        }
    }
}
