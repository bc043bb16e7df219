//! The index of the anonymous sessions and their budget: the keys and arguments the indexed
//! scripts take, the Cluster's separate index step, and the evictions.

use fastsession_core::Result;
use fastsession_core::events::{self, Event};
use fastsession_core::store::{AnonymousBudget, StorageKey};
use fastsession_core::time::UnixTime;
use redis::{Script, ScriptInvocation};

use super::RedisBackend;
use crate::layout::Fields;
use crate::scripts;

/// Where the anonymous sessions are counted, and how many may be.
pub(super) struct AnonymousIndex {
    /// The sorted set of their storage keys (hex) by last activity.
    pub(super) order: String,
    /// The hash of the bytes the larger hold beyond their share, and `#`: the sum.
    pub(super) bytes: String,
    /// A session key's name up to its 64 hex digits: the scripts build the evicted ones'.
    pub(super) session_prefix: String,
    pub(super) budget: AnonymousBudget,
}

impl RedisBackend {
    /// Returns the Redis key of the anonymous index: a sorted set of the anonymous sessions'
    /// storage keys (64 hex digits, as in [`session_key`](Self::session_key)) by last activity. Its
    /// size is the number of anonymous sessions (an upper bound: entries of sessions that
    /// expired are dropped when their turn comes), for a metric or a health page.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::redis::RedisStore) -> redis::RedisResult<()> {
    /// let mut con = redis::Client::open("redis://127.0.0.1")?.get_multiplexed_async_connection().await?;
    /// let anonymous: u64 = redis::cmd("ZCARD")
    ///     .arg(store.backend().anonymous_index_key())
    ///     .query_async(&mut con)
    ///     .await?;
    /// assert!(anonymous <= store.backend().anonymous_budget().max_sessions() as u64);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn anonymous_index_key(&self) -> &str {
        &self.anonymous.order
    }

    /// Returns the budget of the anonymous sessions (see
    /// [`RedisConfig::with_anonymous_budget`](crate::RedisConfig::with_anonymous_budget)).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use fastsession::store::AnonymousBudget;
    ///
    /// # async fn run(store: fastsession::redis::RedisStore) {
    /// assert_eq!(store.backend().anonymous_budget(), AnonymousBudget::default());
    /// # }
    /// ```
    #[must_use]
    pub fn anonymous_budget(&self) -> AnonymousBudget {
        self.anonymous.budget
    }

    /// `script` with the keys and the five leading arguments of an indexed script (see
    /// [`scripts`]): the session `redis_key`, its storage key, and `len` data bytes.
    pub(super) fn indexed<'s>(
        &self,
        script: &'s Script,
        redis_key: &str,
        key: &StorageKey,
        len: usize,
    ) -> ScriptInvocation<'s> {
        let index = &self.anonymous;
        let mut invocation = script.key(redis_key);
        invocation
            .key(&index.order)
            .key(&index.bytes)
            .arg(&index.session_prefix)
            .arg(key.to_hex())
            .arg(index.budget.max_sessions())
            .arg(index.budget.max_bytes())
            .arg(len);
        invocation
    }

    /// The index step of a Cluster, after the session's own: `what` is `add` (with `score`
    /// and `len`), `del` or `touch` (with `score`). The sessions an `add` pushes out of the
    /// index are then deleted one by one, each unless it has a user.
    pub(super) async fn cluster_index(
        &self,
        what: &'static str,
        key: &StorageKey,
        score: UnixTime,
        len: usize,
    ) -> Result<()> {
        let index = &self.anonymous;
        let mut invocation = scripts::INDEX.key(&index.order);
        invocation
            .key(&index.bytes)
            .arg(what)
            .arg(key.to_hex())
            .arg(score.as_secs())
            .arg(len)
            .arg(index.budget.max_sessions())
            .arg(index.budget.max_bytes());
        let victims: Vec<String> = self.invoke("keep the anonymous index", invocation).await?;
        for victim in victims.iter().filter_map(|v| StorageKey::from_hex(v)) {
            let evict = scripts::EVICT.key(self.session_key(&victim));
            let evicted: i64 = self.invoke("evict an anonymous session", evict).await?;
            Self::evicted(evicted);
        }
        Ok(())
    }

    /// Counts `n` anonymous sessions evicted for the budget.
    pub(super) fn evicted(n: i64) {
        for _ in 0..n {
            events::record(Event::AnonymousEvicted);
        }
    }

    /// Deletes the key under `key` and its index entry, whatever it holds.
    pub(super) async fn discard(&self, key: &StorageKey) -> Result<()> {
        let redis_key = self.session_key(key);
        // What was there is not wanted: not decoded, not counted.
        if self.is_cluster() {
            let _: Fields = self
                .invoke("delete an ended session", scripts::REMOVE.key(&redis_key))
                .await?;
            self.cluster_index("del", key, UnixTime::EPOCH, 0).await?;
        } else {
            let remove = self.indexed(&scripts::REMOVE_INDEXED, &redis_key, key, 0);
            let _: Fields = self.invoke("delete an ended session", remove).await?;
        }
        Ok(())
    }

    /// The budget's bytes per session: an anonymous session counts for at least this much
    /// (see [`scripts`]), so a save of one that holds no more does not change the count and
    /// need not read it: it takes the plain `MULTI`/`EXEC`. (The budget still holds: its
    /// sessions fit in its bytes, and a larger one counts for what it holds.)
    pub(super) fn share(&self) -> usize {
        let budget = self.anonymous.budget;
        budget.max_bytes() / budget.max_sessions()
    }
}
