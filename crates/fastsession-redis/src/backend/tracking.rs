//! The near cache's links to Redis: RESP3 connections with `CLIENT TRACKING ON NOLOOP`, one
//! for the thread that made the backend and the threads of a multi-threaded runtime, and one
//! for each thread with a single-threaded runtime of its own (an actix-web worker), driven by
//! that runtime like the backend's other connections there. While a place's link is up, every
//! command from there goes through it: Redis tracks the keys it reads, pushes an invalidation
//! on it when another connection changes one, and tells it nothing of its own writes (the
//! backend drops or replaces its own entries).
//!
//! The pushes arrive on the same connection as the replies, and the client hands each to
//! [`Pushes`] as it parses it, before the replies after it: an invalidation is applied no later
//! than the reply of any command sent after the write it reports. A lost connection drops the
//! cache at once; a task connects again, turns tracking on, and only then lets loads from that
//! place fill the cache again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use fastsession_core::store::{Fill, NearCache, NearCacheConfig, StorageKey};
use fastsession_core::{Error, ErrorKind, Result};
use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::Notify;

use super::conn::{connection_infos, own_runtime};
use crate::config::RedisConfig;

/// The first wait before connecting again, doubled up to [`MAX_RETRY`] while it fails.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Where a tracked connection serves: the thread that made the backend and every thread of
/// a multi-threaded runtime (`None`), or one thread with a runtime of its own (an actix-web
/// worker), whose connection that runtime drives, as for the backend's other connections.
type Place = Option<ThreadId>;

/// The tracked connection of one place, or none while it is being made.
struct Link {
    /// Raised at every new connection (unique among the backend's links): pushes and
    /// failures of an older one change nothing.
    epoch: u64,
    conn: Option<MultiplexedConnection>,
    /// Wakes the task that keeps this link: it was lost, or the backend dropped.
    wake: Arc<Notify>,
}

struct Links {
    /// The thread that made the backend.
    home: ThreadId,
    last_epoch: u64,
    by_place: HashMap<Place, Link>,
}

impl Links {
    fn any_up(&self) -> bool {
        self.by_place.values().any(|link| link.conn.is_some())
    }
}

/// The near cache of a [`RedisBackend`](super::RedisBackend) and its tracked connections.
///
/// Each connection's reads are tracked for that connection alone, so an entry may be served
/// anywhere in the process while the connection that read it is up. Losing any of them
/// drops the whole cache (its invalidations may be gone); a place whose link is down reads
/// through an ordinary connection and caches nothing.
pub(super) struct Tracking {
    cache: NearCache,
    links: Mutex<Links>,
    client: redis::Client,
    connect_timeout: Duration,
    /// What every session key starts with, to tell them from the store's other keys.
    session_prefix: String,
}

impl Tracking {
    /// Starts the cache and the task that keeps the first connection; the cache serves
    /// nothing until a connection's tracking is on.
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
        let tracking = Arc::new(Tracking {
            cache: NearCache::new(near),
            links: Mutex::new(Links {
                home: std::thread::current().id(),
                last_epoch: 0,
                by_place: HashMap::new(),
            }),
            client,
            connect_timeout: config.connect_timeout,
            session_prefix: format!("{}s:{{", config.prefix),
        });
        tracking.add_link(&mut tracking.links(), None);
        Ok(tracking)
    }

    pub(super) fn cache(&self) -> &NearCache {
        &self.cache
    }

    fn links(&self) -> MutexGuard<'_, Links> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the link of `place` and starts the task that keeps it, on the calling
    /// thread's runtime.
    fn add_link(self: &Arc<Self>, links: &mut Links, place: Place) {
        let wake = Arc::new(Notify::new());
        links.by_place.insert(
            place,
            Link {
                epoch: 0,
                conn: None,
                wake: Arc::clone(&wake),
            },
        );
        tokio::spawn(keep_linked(Arc::downgrade(self), place, wake));
    }

    /// The tracked connection of the calling thread's place and its epoch, while it is up:
    /// every command goes through it then, so that the reads are tracked and, under
    /// `NOLOOP`, this connection's own writes cost it no invalidation (the backend drops or
    /// replaces its entry itself). The first call from a new place starts its link.
    pub(super) fn conn(self: &Arc<Self>) -> Option<(MultiplexedConnection, u64)> {
        let mut links = self.links();
        let place = own_runtime(links.home);
        match links.by_place.get(&place) {
            Some(link) => Some((link.conn.clone()?, link.epoch)),
            None => {
                self.add_link(&mut links, place);
                None
            }
        }
    }

    /// Marks a read (or a write) of `key` in the cache, if the calling thread's place has a
    /// tracked connection: a read through any other connection must not fill the cache.
    pub(super) fn begin(&self, key: StorageKey) -> Option<Fill> {
        let fill = self.cache.begin(key)?;
        // After the mark: a loss from here on flushes the cache, which refuses this fill.
        let links = self.links();
        let place = own_runtime(links.home);
        let up = links.by_place.get(&place).is_some_and(|l| l.conn.is_some());
        drop(links);
        up.then_some(fill)
    }

    /// The connection of `epoch` is lost or in doubt: the cache is dropped, and its place
    /// reads through an ordinary connection until another one tracks.
    pub(super) fn lost(&self, epoch: u64, why: &'static str) {
        let mut links = self.links();
        let Some(link) = links
            .by_place
            .values_mut()
            .find(|link| link.epoch == epoch && link.conn.is_some())
        else {
            return;
        };
        link.conn = None;
        link.wake.notify_one();
        self.dropped(&links);
        drop(links);
        tracing::warn!(target: "fastsession", why, "redis near cache: tracking lost; loads go to Redis until it is back");
    }

    /// A link went down: what it tracked may change unreported, so nothing cached is kept.
    fn dropped(&self, links: &Links) {
        if links.any_up() {
            self.cache.flush();
        } else {
            self.cache.set_tracking(false);
        }
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

    /// Installs `conn`, tracked, as the link of `place` in `epoch`, unless a newer attempt
    /// or a loss came first.
    fn install(&self, place: Place, epoch: u64, conn: MultiplexedConnection) -> bool {
        let mut links = self.links();
        match links.by_place.get_mut(&place) {
            Some(link) if link.epoch == epoch => link.conn = Some(conn),
            _ => return false,
        }
        self.cache.set_tracking(true);
        true
    }

    /// Starts a new epoch for the link of `place`; `None` if the link was forgotten.
    fn next_epoch(&self, place: Place) -> Option<u64> {
        let mut links = self.links();
        links.last_epoch += 1;
        let epoch = links.last_epoch;
        let link = links.by_place.get_mut(&place)?;
        link.epoch = epoch;
        link.conn = None;
        Some(epoch)
    }

    fn is_linked(&self, place: Place, epoch: u64) -> bool {
        let links = self.links();
        links
            .by_place
            .get(&place)
            .is_some_and(|link| link.epoch == epoch && link.conn.is_some())
    }

    /// The task keeping the link of `place` ended without the backend ending (its runtime
    /// shut down: an actix-web worker stopped): nothing drives that connection any more.
    fn forget(&self, place: Place) {
        let mut links = self.links();
        let Some(link) = links.by_place.remove(&place) else {
            return;
        };
        if link.conn.is_some() {
            self.dropped(&links);
        }
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        // The tasks hold only weak handles: woken, each finds the backend gone and ends.
        for link in self.links().by_place.values() {
            link.wake.notify_one();
        }
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

/// Forgets the link of `place` when the task keeping it is dropped with its runtime.
struct Keeper {
    tracking: Weak<Tracking>,
    place: Place,
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if let Some(tracking) = self.tracking.upgrade() {
            tracking.forget(self.place);
        }
    }
}

/// Keeps the tracked connection of `place` for as long as the backend lives: connects,
/// turns tracking on, waits until it is lost, and starts again after a pause that grows
/// while connecting fails.
async fn keep_linked(tracking: Weak<Tracking>, place: Place, wake: Arc<Notify>) {
    let _keeper = Keeper {
        tracking: tracking.clone(),
        place,
    };
    let mut retry = FIRST_RETRY;
    loop {
        let Some((client, connect_timeout, epoch)) = tracking.upgrade().and_then(|tracking| {
            let epoch = tracking.next_epoch(place)?;
            Some((tracking.client.clone(), tracking.connect_timeout, epoch))
        }) else {
            return;
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
                Some(tracking) => tracking.install(place, epoch, conn),
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
                    Some(tracking) if tracking.is_linked(place, epoch) => {}
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
