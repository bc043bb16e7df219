//! A create: one `RESTORE` of the new hash with its TTL, only if the key is absent. An
//! anonymous session's queue entry (on one server) waits with those of the process's next
//! creates until one of them sends them all in its round trip; a script only past the budget.
//! Where the server cannot read a listpack (before Redis 7.0), the hash is restored in its
//! plain form; where it refuses `RESTORE` itself, a script creates the hash and the queue
//! step follows as a round trip of its own.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use fastsession_core::Result;
use fastsession_core::session::Record;
use fastsession_core::store::StorageKey;
use redis::{Cmd, RedisError, RedisResult, Value};

use super::RedisBackend;
use super::conn::{Call, command, has_code, store_error};
use crate::{layout, scripts};

/// What a `RESTORE` did.
enum Restored {
    Created,
    /// Something was there (`BUSYKEY`): nothing written.
    Taken,
    /// The server refused the command itself (an ACL without it, a renamed command, a server
    /// that cannot read the payload): nothing written.
    Refused(RedisError),
    /// The server refused a listpack payload with a plain error (one before Redis 7.0 does not
    /// know the type): nothing written, and the plain form may still be taken.
    RefusedListpack(RedisError),
}

impl Restored {
    fn of(reply: Option<RedisResult<Value>>) -> Result<Restored> {
        match reply {
            Some(Ok(_)) => Ok(Restored::Created),
            Some(Err(e)) if has_code(&e, "BUSYKEY") => Ok(Restored::Taken),
            // No permission (ACL), or a plain `ERR`: an unknown command, a payload the server
            // cannot read. Any other error (no answer, out of memory, a read-only replica, a
            // server loading its data) is passing, and the store's error.
            Some(Err(e)) if has_code(&e, "NOPERM") || has_code(&e, "ERR") => {
                Ok(Restored::Refused(e))
            }
            Some(Err(e)) => Err(store_error("create a session", e)),
            None => Ok(Restored::Refused(RedisError::from((
                redis::ErrorKind::Client,
                "no reply to RESTORE",
            )))),
        }
    }

    /// What a refusal means for the payload it answered: a listpack refused with a plain
    /// error (a server before Redis 7.0 reading a type it does not know, or an RDB version
    /// newer than its own) may still be taken in the plain form. Anything else stands.
    fn for_payload(self, listpack: bool) -> Restored {
        match self {
            Restored::Refused(e) if listpack && has_code(&e, "ERR") => Restored::RefusedListpack(e),
            restored => restored,
        }
    }
}

/// Queue entries on their way to the index, taken out of the unsent ones: put back if they
/// were not sent (the request failed or was cancelled first), so that no session goes
/// uncounted. (One that was sent but not answered may be queued twice: its second entry is
/// dropped at its turn.)
struct Batch<'a> {
    unsent: &'a Mutex<Vec<String>>,
    entries: Vec<String>,
    sent: bool,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.sent {
            let mut unsent = self.unsent.lock().unwrap_or_else(PoisonError::into_inner);
            unsent.append(&mut self.entries);
        }
    }
}

/// The answers to a create's index step: the queue's length after the `RPUSH`, and the bytes
/// counted beyond the shares.
type Queued = (Option<RedisResult<Value>>, Option<RedisResult<Value>>);

impl RedisBackend {
    /// Creates the session `record` under `key` if the key is absent, with a TTL of `ttl`
    /// seconds, and queues it in the anonymous index if it has no user. Returns whether it
    /// was created (`false`: the key was taken).
    pub(super) async fn create_record(
        &self,
        key: &StorageKey,
        record: &Record,
        ttl: u64,
    ) -> Result<bool> {
        let redis_key = self.session_key(key);
        let anonymous = record.user_id().is_none();
        let queue_here = anonymous && !self.is_cluster();
        let mut batch = if queue_here {
            self.entries_to_send(key, record)
        } else {
            None
        };
        let (created, queued) = if self.restore_refused.load(Ordering::Relaxed) {
            (self.create_by_script(&redis_key, record, ttl).await?, None)
        } else {
            let queue = batch.as_ref().map(|batch| self.queue_commands(batch));
            let (mut restored, queued) = self.restore(&redis_key, record, ttl, queue).await?;
            if let Some(batch) = &mut batch {
                batch.sent = true;
            }
            if let Restored::RefusedListpack(e) = restored {
                self.listpack_refused.store(true, Ordering::Relaxed);
                tracing::warn!(target: "fastsession", error = %e, "redis cannot read a listpack payload; sessions are restored as plain hashes from now on");
                restored = self.restore(&redis_key, record, ttl, None).await?.0;
            }
            match restored {
                Restored::Created => (true, queued),
                Restored::Taken => (false, None),
                Restored::Refused(e) | Restored::RefusedListpack(e) => {
                    self.restore_refused.store(true, Ordering::Relaxed);
                    tracing::warn!(target: "fastsession", error = %e, "redis refused RESTORE; sessions are created by script from now on");
                    (
                        self.create_by_script(&redis_key, record, ttl).await?,
                        queued,
                    )
                }
            }
        };
        if created && let Some(batch) = &mut batch {
            let queued = match queued {
                Some(queued) => queued,
                None => {
                    let [push, extras] = self.queue_commands(batch);
                    let mut reply = self.pipelined(push, [extras]).await?;
                    batch.sent = true;
                    (reply.next(), reply.next())
                }
            };
            self.make_room_if_over(key, &redis_key, record, batch, queued)
                .await?;
        }
        if created && anonymous && self.is_cluster() {
            let indexed = self
                .cluster_index("add", key, record.last_active(), record.data_len())
                .await;
            if let Err(e) = indexed {
                // Not counted, so not kept: the save reports the failure.
                let _ = self.discard(key).await;
                return Err(e);
            }
        }
        Ok(created)
    }

    /// Adds the queue entry of the anonymous session `record` (its 64 hex digits and the
    /// second it was active at) to the unsent ones, and takes them all if this create is to
    /// send them: every [`batch`](super::anonymous::AnonymousIndex::batch)th one, and one
    /// larger than its share (its bytes must be counted at once). The budget checks count
    /// the unsent entries as queued, so that one process never goes over the budget, and a
    /// create is its `RESTORE` alone most of the time.
    fn entries_to_send(&self, key: &StorageKey, record: &Record) -> Option<Batch<'_>> {
        let mut entry = String::with_capacity(84);
        let _ = write!(entry, "{key}");
        entry.push_str(itoa::Buffer::new().format(record.last_active().as_secs()));
        let index = &self.anonymous;
        let mut unsent = index.unsent.lock().unwrap_or_else(PoisonError::into_inner);
        unsent.push(entry);
        (unsent.len() >= index.batch || record.data_len() > self.share()).then(|| Batch {
            unsent: &index.unsent,
            entries: std::mem::replace(&mut *unsent, Vec::with_capacity(index.batch)),
            sent: false,
        })
    }

    /// The `RESTORE`, and the `queue` commands in the same round trip, whose answers it
    /// returns: what the budget check needs. (Queued for a key that was taken, the entry
    /// names a session that has its own and is judged at its turn like any other.)
    async fn restore(
        &self,
        redis_key: &str,
        record: &Record,
        ttl: u64,
        queue: Option<[Cmd; 2]>,
    ) -> Result<(Restored, Option<Queued>)> {
        let payload =
            layout::restore_payload(record, !self.listpack_refused.load(Ordering::Relaxed));
        let mut restore = command("RESTORE", redis_key, 2, 20 + payload.bytes.len());
        restore.arg(ttl.saturating_mul(1000)).arg(payload.bytes);
        let (restored, queued) = match queue {
            Some(queue) => {
                let mut reply = self.pipelined(restore, queue).await?;
                let restored = Restored::of(reply.next())?;
                (restored, Some((reply.next(), reply.next())))
            }
            None => {
                let reply = self
                    .run("create a session", |mut c| async move {
                        Ok(restore.query_async::<Value>(&mut c).await)
                    })
                    .await?;
                (Restored::of(Some(reply))?, None)
            }
        };
        Ok((restored.for_payload(payload.listpack), queued))
    }

    /// `first` and `then`, in one round trip, each answer on its own.
    async fn pipelined<const N: usize>(
        &self,
        first: Cmd,
        then: [Cmd; N],
    ) -> Result<std::vec::IntoIter<RedisResult<Value>>> {
        let mut pipe = redis::Pipeline::with_capacity(1 + N);
        pipe.add_command(first);
        for cmd in then {
            pipe.add_command(cmd);
        }
        pipe.ignore_errors();
        let reply: Vec<RedisResult<Value>> = self
            .run("create a session", |mut c| async move {
                pipe.query_async(&mut c).await
            })
            .await?;
        Ok(reply.into_iter())
    }

    /// The `batch`'s entries queued (`RPUSH`, whose answer is the queue's length), and the
    /// read of the bytes counted beyond the shares.
    fn queue_commands(&self, batch: &Batch<'_>) -> [Cmd; 2] {
        let index = &self.anonymous;
        let bytes = batch.entries.iter().map(String::len).sum();
        let mut push = command("RPUSH", &index.order, batch.entries.len(), bytes);
        push.arg(&batch.entries);
        let mut extras = command("HGET", &index.bytes, 1, 1);
        extras.arg("#");
        [push, extras]
    }

    /// After the queue step: if the index is over the budget, or the session larger than its
    /// share, [`MAKE_ROOM`](scripts::MAKE_ROOM) counts its bytes and makes room.
    async fn make_room_if_over(
        &self,
        key: &StorageKey,
        redis_key: &str,
        record: &Record,
        batch: &Batch<'_>,
        queued: Queued,
    ) -> Result<()> {
        let len = record.data_len();
        let unsent = self.anonymous.unsent_allowance();
        let step = match queued {
            (Some(Ok(Value::Int(count))), Some(Ok(extras))) => {
                let count = count.saturating_add(i64::try_from(unsent).unwrap_or(i64::MAX));
                match redis::from_redis_value::<Option<i64>>(extras) {
                    Ok(extras) if self.within_budget(len, count, extras.unwrap_or(0)) => {
                        return Ok(());
                    }
                    _ => "",
                }
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) if !has_code(&e, "WRONGTYPE") => {
                return Err(store_error("create a session", e));
            }
            // An index key holding something this store did not write.
            _ => "q",
        };
        // A session within its share changes no byte count: only room is to be made, and a
        // call already making it (from this process) makes room for every create queued
        // until it runs. The creates that saw the index over the budget while it was on its
        // way (one per request in flight) need not each send a script that finds nothing to do.
        let _making_room = match RoomGuard::take(&self.making_room) {
            Some(guard) => Some(guard),
            None if step.is_empty() && len <= self.share() => return Ok(()),
            None => None,
        };
        let mut call = self.indexed(&scripts::MAKE_ROOM, redis_key, key, len);
        call.arg(record.last_active().as_secs())
            .arg(step)
            .arg(unsent);
        if !step.is_empty() {
            call.arg(&batch.entries);
        }
        let evicted: i64 = self.invoke("make room for a session", call).await?;
        self.evicted(evicted);
        Ok(())
    }

    /// Whether an index of `count` entries and `extras` bytes beyond their shares, one of
    /// them a session of `len` bytes just queued, is within the budget (as the scripts judge).
    fn within_budget(&self, len: usize, count: i64, extras: i64) -> bool {
        let budget = self.anonymous.budget;
        let share = i64::try_from(self.share()).unwrap_or(i64::MAX);
        let max_bytes = i64::try_from(budget.max_bytes()).unwrap_or(i64::MAX);
        len <= self.share()
            && usize::try_from(count).is_ok_and(|count| count <= budget.max_sessions())
            && count.saturating_mul(share).saturating_add(extras) <= max_bytes
    }

    /// The create by script, where the server refuses `RESTORE`: the hash only (an
    /// anonymous session is queued after it, as after a `RESTORE`).
    async fn create_by_script(&self, redis_key: &str, record: &Record, ttl: u64) -> Result<bool> {
        let mut call = Call::new(&scripts::CREATE, &[redis_key]);
        call.arg(ttl);
        layout::write_fields(record, call.cmd_mut());
        let created: i64 = self.invoke("create a session", call).await?;
        Ok(created == 1)
    }
}

/// Marks a call making room in the anonymous index as on its way, until dropped (also when
/// the request is cancelled).
struct RoomGuard<'a>(&'a AtomicBool);

impl<'a> RoomGuard<'a> {
    fn take(flag: &'a AtomicBool) -> Option<Self> {
        (!flag.swap(true, Ordering::Acquire)).then_some(RoomGuard(flag))
    }
}

impl Drop for RoomGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(reply: RedisResult<Value>, listpack: bool) -> Restored {
        Restored::of(Some(reply)).unwrap().for_payload(listpack)
    }

    /// The answers of a server before Redis 7.0 to a listpack payload ("Bad data format", or
    /// the RDB version refused) fall back to the plain form; an ACL's refusal, the same error
    /// to a plain payload, and a taken key do not.
    #[test]
    fn only_a_plain_error_to_a_listpack_tries_the_plain_form() {
        let err = |detail: &str| {
            Err(RedisError::from((
                redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
                "An error was signalled by the server",
                detail.to_owned(),
            )))
        };
        let coded = |code: &str| Err(redis::make_extension_error(code.to_owned(), None));
        for detail in [
            "Bad data format",
            "DUMP payload version or checksum are wrong",
        ] {
            assert!(matches!(
                answered(err(detail), true),
                Restored::RefusedListpack(_)
            ));
            assert!(matches!(answered(err(detail), false), Restored::Refused(_)));
        }
        assert!(matches!(
            answered(coded("NOPERM"), true),
            Restored::Refused(_)
        ));
        assert!(matches!(answered(coded("BUSYKEY"), true), Restored::Taken));
        assert!(matches!(answered(Ok(Value::Okay), true), Restored::Created));
        assert!(
            Restored::of(Some(coded("OOM"))).is_err(),
            "passing: the store's error"
        );
    }
}
