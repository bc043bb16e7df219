//! The index of the anonymous sessions and their budget: the keys and arguments the indexed
//! scripts take, the Cluster's separate index step, and the evictions.

use std::sync::Mutex;

use fastsession_core::Result;
use fastsession_core::events::{self, Event};
use fastsession_core::store::{AnonymousBudget, StorageKey};
use fastsession_core::time::UnixTime;
use redis::Script;

use super::RedisBackend;
use super::conn::Call;
use crate::layout::Fields;
use crate::scripts;

/// Where the anonymous sessions are counted, and how many may be.
pub(super) struct AnonymousIndex {
    /// The queue (a list) of their storage keys (hex), each with the second it was queued at.
    pub(super) order: String,
    /// The hash of the bytes the larger hold beyond their share, and `#`: the sum.
    pub(super) bytes: String,
    /// A session key's name up to its 64 hex digits: the scripts build the evicted ones'.
    pub(super) session_prefix: String,
    pub(super) budget: AnonymousBudget,
    /// The queue entries of this process's anonymous creates not sent yet: fewer than
    /// `batch`, and counted by every budget check this process makes.
    pub(super) unsent: Mutex<Vec<String>>,
    /// How many creates' entries go to the queue in one `RPUSH`: the room a create that goes
    /// over the budget makes for the next (a 64th of its sessions, at most 64), at least 1.
    pub(super) batch: usize,
}

impl AnonymousIndex {
    pub(super) fn new(budget: AnonymousBudget, session_prefix: String) -> AnonymousIndex {
        // As the scripts' `room` computes its slack.
        let batch = (budget.max_sessions() / 64).clamp(1, 64);
        AnonymousIndex {
            order: String::new(),
            bytes: String::new(),
            session_prefix,
            budget,
            unsent: Mutex::new(Vec::with_capacity(batch)),
            batch,
        }
    }

    /// How many entries of this process may be unsent when it checks the budget: the
    /// check counts them as queued.
    pub(super) fn unsent_allowance(&self) -> usize {
        self.batch - 1
    }
}

impl RedisBackend {
    /// Returns the Redis key of the anonymous index: a list of the anonymous sessions' storage
    /// keys (64 hex digits, as in [`session_key`](Self::session_key)), each followed by the
    /// second it was queued at, oldest first. Its length is the number of anonymous sessions
    /// (an upper bound: entries of sessions that ended, expired or logged in since are dropped
    /// when their turn comes), for a metric or a health page.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::redis::RedisStore) -> redis::RedisResult<()> {
    /// let mut con = redis::Client::open("redis://127.0.0.1")?.get_multiplexed_async_connection().await?;
    /// let anonymous: u64 = redis::cmd("LLEN")
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
    ) -> Call<'s> {
        let index = &self.anonymous;
        let mut call = Call::new(script, &[redis_key, &index.order, &index.bytes]);
        call.arg(&index.session_prefix)
            .arg(key.to_hex())
            .arg(index.budget.max_sessions())
            .arg(index.budget.max_bytes())
            .arg(len);
        call
    }

    /// The index step of a Cluster, after the session's own: `what` is `add` (queue it at
    /// `at` and count its `len` bytes), `grow` (count them) or `del` (take them out). The
    /// entries a step takes out to make room are judged one by one on their own slots: a
    /// session with a user or gone is left, one active since it was queued is queued `back`
    /// (which makes room again; at most eight such second chances per call), any other is
    /// deleted.
    pub(super) async fn cluster_index(
        &self,
        what: &'static str,
        key: &StorageKey,
        at: UnixTime,
        len: usize,
    ) -> Result<()> {
        let mut step = (what, key.to_hex());
        let mut chances = 8;
        loop {
            let index = &self.anonymous;
            let mut call = Call::new(&scripts::INDEX, &[&index.order, &index.bytes]);
            call.arg(step.0)
                .arg(&step.1)
                .arg(at.as_secs())
                .arg(len)
                .arg(index.budget.max_sessions())
                .arg(index.budget.max_bytes());
            let taken: Vec<String> = self.invoke("keep the anonymous index", call).await?;
            let mut kept = None;
            for entry in &taken {
                let Some((victim, queued)) = entry
                    .split_at_checked(64)
                    .and_then(|(hex, secs)| Some((StorageKey::from_hex(hex)?, secs)))
                else {
                    continue;
                };
                let second = kept.is_none() && chances > 0;
                let victim_key = self.session_key(&victim);
                let mut judge = Call::new(&scripts::EVICT, &[&victim_key]);
                judge.arg(queued).arg(if second { "1" } else { "0" });
                match self
                    .invoke::<i64>("evict an anonymous session", judge)
                    .await?
                {
                    2 => kept = Some(victim),
                    evicted => self.evicted(evicted),
                }
            }
            match kept {
                Some(victim) => {
                    chances -= 1;
                    step = ("back", victim.to_hex());
                }
                None => return Ok(()),
            }
        }
    }

    /// Counts `n` anonymous sessions evicted for the budget, and empties the near cache if any
    /// was: this process deleted them, so (under `NOLOOP`) Redis tells it nothing, and which
    /// ones they were is not known here. Evictions happen only past the budget, in a flood.
    pub(super) fn evicted(&self, n: i64) {
        for _ in 0..n {
            events::record(Event::AnonymousEvicted);
        }
        if let (Some(near), true) = (&self.near, n > 0) {
            near.cache().flush();
        }
    }

    /// Deletes the key under `key` and its index entry, whatever it holds.
    pub(super) async fn discard(&self, key: &StorageKey) -> Result<()> {
        let redis_key = self.session_key(key);
        // What was there is not wanted: not decoded, not counted.
        if self.is_cluster() {
            let _: Fields = self
                .invoke(
                    "delete an ended session",
                    Call::new(&scripts::REMOVE, &[&redis_key]),
                )
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
    /// need not touch the index: it takes the plain `MULTI`/`EXEC`. (The budget still holds: its
    /// sessions fit in its bytes, and a larger one counts for what it holds.)
    pub(super) fn share(&self) -> usize {
        let budget = self.anonymous.budget;
        budget.max_bytes() / budget.max_sessions()
    }
}
