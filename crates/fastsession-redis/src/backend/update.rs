//! An update: the change set sorted into fields to delete, set and increment, then the plain
//! `MULTI`/`EXEC` ([`merge`](RedisBackend::merge)) when it may, or else the update script.

use std::borrow::Cow;

use fastsession_core::Result;
use fastsession_core::session::Change;
use fastsession_core::store::{StorageKey, Update};

use super::conn::Call;
use super::merge::Writes;
use super::{RedisBackend, expiry_args, status};
use crate::layout;
use crate::scripts;

impl RedisBackend {
    /// [`Backend::update`](fastsession_core::store::Backend::update) (see
    /// [Atomicity](RedisBackend#atomicity)): the plain [`merge`](Self::merge) when the
    /// session is live as loaded and neither its class nor its counted bytes can change,
    /// otherwise the update script, followed on a Cluster by the index step.
    /// Applies `update`: `None` if the session ended meanwhile, else the `version` the hash
    /// has now, when the near cache may cache the merge (0 when not). `retrack` asks for that
    /// version (the near cache holds the session as it was before).
    pub(super) async fn apply_update(
        &self,
        key: &StorageKey,
        update: Update<'_>,
        retrack: bool,
    ) -> Result<Option<u64>> {
        let redis_key = self.session_key(key);
        let changes = update.changes();
        let from = update.from();
        let cleared = match (changes.values_cleared(), changes.flashes_cleared()) {
            (false, false) => "",
            (true, false) => "v",
            (false, true) => "f",
            (true, true) => "vf",
        };
        // One pass sorts the changes into fields to delete and pairs to set; the script
        // takes the deletions, counted, before the pairs.
        let mut deletes = Vec::new();
        // Values are sent as stored; flash lists are joined into one JSON array each.
        let mut sets: Vec<(String, Cow<'_, str>)> = Vec::new();
        // Keys only incremented: `HINCRBY` adds the delta to the stored integer.
        let mut increments: Vec<(String, i64)> = Vec::new();
        for (name, change) in changes.values() {
            match (change, changes.delta(name), from.value(name)) {
                (Change::Set, Some(delta), _) => {
                    increments.push((layout::value_field(name), delta));
                }
                (Change::Set, None, Some(value)) => {
                    sets.push((layout::value_field(name), Cow::Borrowed(value.get())))
                }
                _ => deletes.push(layout::value_field(name)),
            }
        }
        for (name, change) in changes.flashes() {
            match (change, from.flash_list(name)) {
                (Change::Set, Some(list)) if !list.is_empty() => {
                    sets.push((layout::flash_field(name), layout::flash_json(list).into()));
                }
                _ => deletes.push(layout::flash_field(name)),
            }
        }
        let user_change = match (changes.user_changed(), from.user_id()) {
            (false, _) => "",
            (true, None) => {
                deletes.push("user".to_owned());
                "d"
            }
            (true, Some(user)) => {
                sets.push(("user".to_owned(), user.into()));
                "s"
            }
        };
        let persistent_change = if changes.persistent_changed() {
            let persistent = if from.is_persistent() { "1" } else { "0" };
            sets.push(("persistent".to_owned(), persistent.into()));
            persistent
        } else {
            ""
        };
        let expires_change = match (changes.expires_at_changed(), from.expires_at()) {
            (false, _) => String::new(),
            (true, None) => {
                deletes.push("expires_at".to_owned());
                "-".to_owned()
            }
            (true, Some(at)) => {
                let secs = at.as_secs().to_string();
                sets.push(("expires_at".to_owned(), secs.clone().into()));
                secs
            }
        };
        // The plain commands, when liveness needs no read and neither the class nor the
        // anonymous bytes can change (see `merge`); a changed deadline is never "live as
        // loaded", so it takes the script, which reads the stored one.
        if cleared.is_empty()
            && user_change.is_empty()
            && (from.user_id().is_some() || from.data_len() <= self.share())
            && update.is_live_as_loaded()
        {
            return self
                .merge(
                    key,
                    &redis_key,
                    &update,
                    Writes {
                        deletes: &deletes,
                        sets: &sets,
                        increments: &increments,
                    },
                    retrack,
                )
                .await;
        }
        let cluster = self.is_cluster();
        let mut call = if cluster {
            Call::new(&scripts::UPDATE, &[&redis_key])
        } else {
            self.indexed(&scripts::UPDATE_INDEXED, &redis_key, key, from.data_len())
        };
        call.arg(&expiry_args(update.now(), update.expiry())[..])
            .arg(user_change)
            .arg(persistent_change)
            .arg(&expires_change)
            .arg(cleared);
        call.arg(deletes.len()).arg(&deletes[..]);
        call.arg(increments.len());
        for (field, delta) in &increments {
            call.arg(field).arg(*delta);
        }
        call.arg("last_active").arg(update.now().as_secs());
        for (field, value) in &sets {
            call.arg(field).arg(value.as_ref());
        }
        let reply: Vec<i64> = self.invoke("save a session", call).await?;
        if status(&reply) != 1 {
            return Ok(None);
        }
        // A Cluster's index step: queued if it became anonymous, counted anew if it stayed
        // so, its bytes out if it logged in.
        let step = match reply[1..] {
            [evicted] => {
                self.evicted(evicted);
                None
            }
            [1, 0] => Some("add"),
            [1, 1] => Some("grow"),
            [0, 1] => Some("del"),
            _ => None,
        };
        if let Some(what) = step {
            self.cluster_index(what, key, update.now(), from.data_len())
                .await?;
        }
        Ok(Some(0))
    }
}
