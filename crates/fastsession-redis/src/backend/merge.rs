//! The common update as one `MULTI`/`EXEC` of plain commands, without a script.

use std::borrow::Cow;
use std::time::Duration;

use fastsession_core::Result;
use fastsession_core::store::{StorageKey, Update};
use redis::RedisResult;

use super::conn::{Call, command, has_code, store_error};
use super::{MAX_TTL_SECS, RedisBackend, unreadable};
use crate::layout::VERSION_BASE;
use crate::scripts;

/// An update's fields: to delete, to set (name, JSON), to increment (name, delta).
pub(super) struct Writes<'a> {
    pub(super) deletes: &'a [String],
    pub(super) sets: &'a [(String, Cow<'a, str>)],
    pub(super) increments: &'a [(String, i64)],
}

impl RedisBackend {
    /// The common update, without the script: the request's own record shows the session
    /// live now ([`Update::is_live_as_loaded`]), so only the stored record's existence is
    /// left to check. One round trip merges the fields, bumps `version` and sets the TTL
    /// (unless the session was loaded in this second, see below), in a `MULTI`/`EXEC` only
    /// when the fields take more than one command (deletions or increments besides the
    /// `HSET`); Redis runs these plain commands at a fraction of a script's cost.
    ///
    /// The `version` bump's answer says whether the key held the session before: a session
    /// starts at [`VERSION_BASE`], so an answer above it means it was there. Anything else
    /// means the key expired, was evicted or deleted by a logout since the load (the writes
    /// went into an empty hash, whose `version` counts from 0), or holds a hash written
    /// before versions started at the base: one more step ([`CHECK_MERGED`](scripts::CHECK_MERGED))
    /// reads `created` and moves an old hash's `version` past the base. A session that was
    /// not there has the hash deleted and is reported ended. It can never be loaded
    /// meanwhile, since a hash without `created` is refused. A key that is not a hash (not
    /// this store's) is deleted the same way.
    ///
    /// An anonymous session comes here only if its data is within its
    /// [share](Self::share), so the index has nothing to change (it judges activity by
    /// `last_active` when the session's turn comes). When the step sets its TTL, it reads
    /// after the writes whether the hash has a user by now (a login since the load), and
    /// `created` with it: then its TTL, set for an anonymous session, is set again for a
    /// logged-in one (one more round trip, only then).
    ///
    /// Answers `None` if the session had ended, else, when `retrack` asks, its `version` now
    /// if the near cache may cache the merge ([`RedisBackend::apply_update`]); 0 otherwise.
    pub(super) async fn merge(
        &self,
        key: &StorageKey,
        redis_key: &str,
        update: &Update<'_>,
        writes: Writes<'_>,
        retrack: bool,
    ) -> Result<Option<u64>> {
        let Writes {
            deletes,
            sets,
            increments,
        } = writes;
        let (now, expiry, from) = (update.now(), update.expiry(), update.from());
        let anonymous = from.user_id().is_none();
        // The request's deadline is the stored one: a changed one does not come here.
        let ttl_of = |idle: Duration| {
            let mut deadline = now
                .saturating_add(idle)
                .min(from.created().saturating_add(expiry.absolute_lifetime()));
            if let Some(at) = from.expires_at() {
                deadline = deadline.min(at);
            }
            i64::try_from(deadline.since(now).as_secs().clamp(1, MAX_TTL_SECS)).unwrap_or(i64::MAX)
        };
        let mut pipe = redis::Pipeline::with_capacity(4 + increments.len());
        // One `HSET` writes every field at once; a change that also deletes or increments
        // fields takes several commands, which `MULTI` makes one step for readers.
        if !deletes.is_empty() || !increments.is_empty() {
            pipe.atomic();
        }
        if !deletes.is_empty() {
            let bytes = deletes.iter().map(String::len).sum();
            let mut delete = command("HDEL", redis_key, deletes.len(), bytes);
            delete.arg(deletes);
            pipe.add_command(delete);
        }
        // Within the second the session was loaded in, `last_active` already holds it and
        // the TTL was set from it by the write that put it there (every write of
        // `last_active` sets the TTL with it): unless this update changes what else the
        // deadline depends on (the user, "remember me", its own deadline), neither is sent
        // again.
        let changes = update.changes();
        let same_second = update.previously_active() == Some(now)
            && !changes.user_changed()
            && !changes.persistent_changed()
            && !changes.expires_at_changed();
        if !same_second || !sets.is_empty() {
            let bytes = sets.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>() + 21;
            let mut set = command("HSET", redis_key, 2 + 2 * sets.len(), bytes);
            if !same_second {
                set.arg("last_active").arg(now.as_secs());
            }
            for (field, value) in sets {
                set.arg(field).arg(value.as_ref());
            }
            pipe.add_command(set);
        }
        // A value that is not an integer any more, or a sum beyond `i64`: Redis refuses the
        // `HINCRBY` and the stored value stays, as in `Record::apply` (its error is ignored).
        let first_increment = pipe.cmd_iter().count();
        let increments_at = first_increment..first_increment + increments.len() + 1;
        for (field, delta) in increments {
            let mut increment = command("HINCRBY", redis_key, 2, field.len() + 20);
            increment.arg(field).arg(*delta);
            pipe.add_command(increment);
        }
        let version_at = pipe.cmd_iter().count();
        let mut version = command("HINCRBY", redis_key, 2, 8);
        version.arg("version").arg(1);
        pipe.add_command(version);
        if !same_second {
            let mut expire = command("EXPIRE", redis_key, 1, 20);
            expire.arg(ttl_of(expiry.idle_timeout_of(from)));
            pipe.add_command(expire);
        }
        // An anonymous session whose TTL this step sets reads, after the writes, whether it
        // has a user by now (a login since the load, whose longer TTL it must put back), and
        // with it whether `created` is there: `created` is written only by a create, so if
        // it is, the key held the session before these writes. Otherwise the `version`
        // answer says it: a session starts at `VERSION_BASE`, an empty hash at 0.
        let read_user = anonymous && !same_second;
        if read_user {
            let mut read = command("HMGET", redis_key, 2, 12);
            read.arg("created").arg("user");
            pipe.add_command(read);
        }
        // With the near cache, the write is what ended Redis's tracking of the key for this
        // connection (every write does, and under `NOLOOP` without telling it): a read after
        // the writes tracks it again, and answers the version then, which must be the one
        // this write made for the merged session to be cached.
        if retrack {
            let mut version = command("HGET", redis_key, 1, 7);
            version.arg("version");
            pipe.add_command(version);
        }
        // Each answer on its own: the others are not marked ignored, which the client would
        // do with a hash set per command.
        pipe.ignore_errors();
        let mut reply: Vec<RedisResult<redis::Value>> = self
            .run("save a session", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        let tracked = if retrack { reply.pop() } else { None };
        let read = if read_user { reply.pop() } else { None };
        let version = match reply.get(version_at) {
            Some(Ok(redis::Value::Int(version))) => *version,
            _ => 0,
        };
        // Another client's write between this one and the read that tracks the key again
        // went unheard: then the version read is not this write's, and nothing is cached.
        let tracked_from = match tracked {
            Some(Ok(value)) => redis::from_redis_value::<i64>(value).ok(),
            _ => None,
        };
        let cacheable = tracked_from == Some(version);
        // A write Redis refused (out of memory, a read-only replica): the save failed, though
        // a later command answered. Not an increment's plain `ERR` (above), nor `WRONGTYPE`:
        // the key is not a hash, which the check below finds.
        for (at, written) in reply.iter().enumerate() {
            if let Err(e) = written
                && !has_code(e, "WRONGTYPE")
                && !(increments_at.contains(&at) && e.code() == Some("ERR"))
            {
                return Err(store_error("save a session", e.clone()));
            }
        }
        let (existed, logged_in) = match read {
            Some(Ok(read)) => {
                let read: Vec<redis::Value> = redis::from_redis_value(read)
                    .map_err(|e| store_error("save a session", e.into()))?;
                let present =
                    |field: usize| read.get(field).is_some_and(|v| *v != redis::Value::Nil);
                (present(0), present(1))
            }
            Some(Err(e)) if has_code(&e, "WRONGTYPE") => {
                unreadable("not a hash");
                (false, false)
            }
            Some(Err(e)) => return Err(store_error("save a session", e)),
            None => (
                version > VERSION_BASE || self.check_merged(redis_key).await?,
                false,
            ),
        };
        if !existed {
            self.discard(key).await?;
            return Ok(None);
        }
        if logged_in {
            // Logged in by another request since the load: a logged-in TTL (remembered, if the
            // session is persistent as this request knows it).
            let idle = if from.is_persistent() {
                expiry.remembered_idle_timeout()
            } else {
                expiry.idle_timeout()
            };
            let mut expire = redis::cmd("EXPIRE");
            expire.arg(redis_key).arg(ttl_of(idle));
            let _: i64 = self
                .run("save a session", |mut c| async move {
                    expire.query_async(&mut c).await
                })
                .await?;
        }
        Ok(Some(if cacheable {
            u64::try_from(version).unwrap_or(0)
        } else {
            0
        }))
    }

    /// [`CHECK_MERGED`](scripts::CHECK_MERGED): whether the session was there before a
    /// merge whose `version` answer does not show it.
    async fn check_merged(&self, redis_key: &str) -> Result<bool> {
        let mut call = Call::new(&scripts::CHECK_MERGED, &[redis_key]);
        call.arg(VERSION_BASE);
        let there: i64 = self.invoke("save a session", call).await?;
        if there < 0 {
            unreadable("not a hash");
        }
        Ok(there == 1)
    }
}
