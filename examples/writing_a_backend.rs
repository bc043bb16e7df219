//! Writing a backend: a session store of your own, method by method, held by the conformance
//! suite to the contract every fastsession store keeps.
//!
//! A server-side store is a `ServerStore` over a `Backend`. The `ServerStore` does the hard
//! part: session ids and their hashing, expiry, regeneration, merging concurrent changes,
//! never bringing back a session another request ended. A backend only keeps records under
//! keys, with six operations, each atomic with respect to the others on the same key. Here
//! the records are in a `BTreeMap` under a `Mutex`, so one lock makes each operation atomic;
//! a database does the same with one statement or transaction per operation, a key-value
//! service with one script, and then across processes too.
//!
//! ```text
//! cargo test --example writing_a_backend    # the conformance suite against this backend
//! cargo run --example writing_a_backend     # a visit counter at http://127.0.0.1:8080
//! ```
//!
//! `ADDR` overrides the address; `FASTSESSION_SECRET` (base64 of at least 32 random bytes, as
//! from `openssl rand -base64 32`) holds the key session ids are hashed with.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::routing::get;
use fastsession::codec::IdHasher;
use fastsession::session::{Expiry, Record};
use fastsession::store::{Backend, ServerStore, StorageKey, StoreFuture, Update};
use fastsession::time::UnixTime;
use fastsession::tower::SessionLayer;
use fastsession::{CookieConfig, Key, Result, Session, SessionConfig};
use tracing_subscriber::EnvFilter;

/// Records by storage key, each with the time it may be deleted.
///
/// A storage key is a keyed hash of the session id (the `ServerStore` computes it), so the
/// map never holds an id a client could present as a cookie: a leaked copy of the storage
/// opens no session.
#[derive(Debug, Default)]
struct MapBackend {
    records: Mutex<Records>,
}

type Records = BTreeMap<StorageKey, Stored>;

#[derive(Debug)]
struct Stored {
    record: Record,
    /// When the record may be deleted: `reap` goes by it. A backend with expiry of its own (a
    /// Redis TTL, say) hands it over instead.
    expires: UnixTime,
}

impl MapBackend {
    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic while the lock was held left the map whole: every method below changes it
        // in one step. So carry on rather than fail every later request.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// Every answer is known once the lock is released, so every method returns
// `StoreFuture::ready`, which allocates nothing. A backend that waits on a server returns
// `StoreFuture::io(async move { .. })` instead; the `ServerStore` awaits either the same way.
impl Backend for MapBackend {
    /// The record under `key`, expired or not: the `ServerStore` checks expiry itself (and
    /// removes an expired record it finds). Atomicity: one whole version, never half a write.
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let found = self.lock().get(key).map(|stored| stored.record.clone());
        StoreFuture::ready(Ok(found))
    }

    /// Stores a new session only if nothing is under `key`. Atomicity: the check and the
    /// insert in one step. The answer `false` is how a new id colliding with a stored one is
    /// caught (the `ServerStore` then draws another), so a create must never overwrite.
    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> StoreFuture<'a, bool> {
        let mut records = self.lock();
        let free = !records.contains_key(key);
        if free {
            let record = record.clone();
            records.insert(*key, Stored { record, expires });
        }
        StoreFuture::ready(Ok(free))
    }

    /// Merges what one request changed onto the stored record, if it is still live.
    /// Atomicity: read, merge and write in one step. Only this request's changes go onto what
    /// is stored now, so two requests that changed different values both keep theirs; and a
    /// record that is gone (a logout, a regeneration) or expired is never written back, so a
    /// slow request cannot undo a logout.
    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        let mut records = self.lock();
        // `apply_to` does the merge, and answers `None` for an expired record, which then
        // stays out of the map.
        let merged = records
            .remove(key)
            .and_then(|stored| update.apply_to(stored.record));
        let live = merged.is_some();
        if let Some(record) = merged {
            let expires = update.expiry().deadline(&record);
            records.insert(*key, Stored { record, expires });
        }
        StoreFuture::ready(Ok(live))
    }

    /// A request that read its session but changed nothing pushes the idle deadline back.
    /// Atomicity: the liveness check and the new time in one step; the data is never written,
    /// so a touch cannot overwrite what a concurrent request saved.
    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool> {
        let live = match self.lock().get_mut(key) {
            Some(stored) if expiry.check(&stored.record, now).is_ok() => {
                // Never backwards: a request that started earlier may finish later.
                let active = stored.record.last_active().max(now);
                stored.record.set_last_active(active);
                stored.expires = expiry.deadline(&stored.record);
                true
            }
            _ => false,
        };
        StoreFuture::ready(Ok(live))
    }

    /// Removes the record under `key` and returns it. Atomicity: read and delete in one step.
    /// Of two requests removing one session (two logins regenerating it, a login and a
    /// logout), exactly one gets the record: that is how the `ServerStore` decides the race
    /// and keeps one session from ending up with two live ids.
    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let removed = self.lock().remove(key).map(|stored| stored.record);
        StoreFuture::ready(Ok(removed))
    }

    /// Deletes up to `limit` records due at `now`; the `ServerStore` calls it from
    /// `ServerStore::reap` (or `store::spawn_reaper`, on a timer). Atomicity: none across
    /// records, but each must still be due when it is deleted (under one lock here, trivially);
    /// expired records never load even before they are reaped, this only frees the space.
    fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
        let mut records = self.lock();
        let due: Vec<StorageKey> = (records.iter())
            .filter(|(_, stored)| stored.expires <= now)
            .map(|(key, _)| *key)
            .take(limit)
            .collect();
        for key in &due {
            records.remove(key);
        }
        StoreFuture::ready(Ok(due.len()))
    }

    // No `user_index`: the default `None`. Sessions work the same; only the account API
    // (`ServerStore::sessions_of`, `end_session`, `end_sessions_of`: "log out everywhere")
    // fails, with `ErrorKind::Unsupported`. To offer it, keep a map from user to keys beside
    // the records, implement `store::UserIndex` (`link_user`, `unlink_user`, `user_keys`) and
    // return `Some(self)` here. And a backend shared with the internet should bound what
    // anonymous clients can make it hold, as the memory backend's `AnonymousBudget` does.
}

/// The store: the backend, and the key session ids are hashed with. Keep that key stable
/// for a store that outlives the process, or every session in it becomes unreachable.
fn map_store(key: &Key) -> ServerStore<MapBackend> {
    ServerStore::with_backend(MapBackend::default(), IdHasher::new(key))
}

async fn visit(session: Session) -> Result<String> {
    let n = session.update_or("visits", 1_u64, |n| n.saturating_add(1))?;
    Ok(format!(
        "visit {n} of this session, kept in a backend of our own\n"
    ))
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let key = match std::env::var("FASTSESSION_SECRET") {
        Ok(secret) => Key::from_base64(&secret)?,
        Err(_) => {
            tracing::warn!("FASTSESSION_SECRET is not set: using a random key for this run");
            Key::generate()?
        }
    };
    // Plain HTTP on loopback: no `Secure` flag, no `__Host-` prefix. Not for production.
    let cookie = CookieConfig::builder("id")
        .with_insecure_development_mode()
        .build()?;
    let config = SessionConfig::new(map_store(&key), cookie);
    let app = Router::new()
        .route("/", get(visit))
        .layer(SessionLayer::new(config));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The public conformance suite (feature `testing`), one #[test] per check, each with a
    // fresh store: ids, fixation, regeneration, logout, expiry, concurrent requests, hostile
    // cookies. Without a user index, its "log out everywhere" check only checks that the
    // account API refuses. `id_source` adds the check that a new id colliding with a stored
    // one never overwrites it.
    fastsession::conformance_tests!(
        || map_store(&Key::generate().unwrap()),
        id_source: |ids| map_store(&Key::generate().unwrap()).with_id_source(ids),
    );
}
