//! A session store of your own: what a store author writes, and how the conformance suite
//! holds it to the contract every fastsession store keeps.
//!
//! A server-side store is a `ServerStore` over a `Backend`. The `ServerStore` does the hard
//! part (session ids and their hashing, expiry, regeneration, merging concurrent changes,
//! "log out everywhere"); a backend only keeps records under keys and offers a few operations,
//! each atomic. Here the records are in a `Mutex<BTreeMap>`; a database or a key-value service
//! would do the same with a transaction or a script per operation.
//!
//! ```text
//! cargo run --example custom_store     # a visit counter at http://127.0.0.1:8080
//! cargo test --example custom_store    # the conformance suite against this store
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

/// Records by storage key: a keyed hash of the session id, so the map never holds an id a
/// client could present as a cookie. Each record comes with the time it may be deleted.
#[derive(Debug, Default)]
struct MapBackend {
    records: Mutex<Records>,
}

type Records = BTreeMap<StorageKey, (Record, UnixTime)>;

impl MapBackend {
    fn lock(&self) -> MutexGuard<'_, Records> {
        // A handler that panicked holding the lock left the map whole: every method below
        // changes it in one step. So carry on rather than fail every later request.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// Every method does its work under one lock and returns a ready future. A backend doing
// I/O returns the future of that I/O instead.
impl Backend for MapBackend {
    fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        let found = self.lock().get(key).map(|(record, _)| record.clone());
        StoreFuture::ready(Ok(found)) // expired or not: the ServerStore checks
    }

    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> StoreFuture<'a, bool> {
        let mut records = self.lock();
        // Never over an existing record: that is how a colliding new id is caught.
        let free = !records.contains_key(key);
        if free {
            records.insert(*key, (record.clone(), expires));
        }
        StoreFuture::ready(Ok(free))
    }

    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
        let mut records = self.lock();
        // Only what this request changed goes onto what is stored now, so two requests that
        // changed different values both keep theirs. An expired record is dropped, not
        // brought back: `apply_to` returns `None` for it.
        let merged = records
            .remove(key)
            .and_then(|(stored, _)| update.apply_to(stored));
        let live = merged.is_some();
        if let Some(record) = merged {
            let expires = update.expiry().deadline(&record);
            records.insert(*key, (record, expires));
        }
        StoreFuture::ready(Ok(live))
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> StoreFuture<'a, bool> {
        // A read-only request pushes the idle deadline back, never touching the data.
        let live = match self.lock().get_mut(key) {
            Some((record, expires)) if expiry.check(record, now).is_ok() => {
                record.set_last_active(record.last_active().max(now));
                *expires = expiry.deadline(record);
                true
            }
            _ => false,
        };
        StoreFuture::ready(Ok(live))
    }

    fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
        // Of two requests removing one session (two logouts, a logout and a login), one gets it.
        let removed = self.lock().remove(key).map(|(record, _)| record);
        StoreFuture::ready(Ok(removed))
    }

    fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
        let mut records = self.lock();
        let due: Vec<StorageKey> = (records.iter())
            .filter(|(_, (_, expires))| *expires <= now)
            .map(|(key, _)| *key)
            .take(limit)
            .collect();
        for key in &due {
            records.remove(key);
        }
        StoreFuture::ready(Ok(due.len()))
    }

    // No user index (`Backend::user_index` stays `None`): "log out everywhere" fails with
    // `ErrorKind::Unsupported`. A backend that keeps one implements `store::UserIndex`.
}

/// The store: the backend, and the key session ids are hashed with. Keep that key stable
/// for a store that outlives the process, or every session in it becomes unreachable.
fn map_store(key: &Key) -> ServerStore<MapBackend> {
    ServerStore::with_backend(MapBackend::default(), IdHasher::new(key))
}

async fn visit(session: Session) -> Result<String> {
    let n = session.update_or("visits", 1_u64, |n| n.saturating_add(1))?;
    Ok(format!(
        "visit {n} of this session, kept in a store of our own\n"
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
    // cookies, and that "log out everywhere" is refused without a user index. `id_source`
    // adds the check that a new id colliding with a stored one never overwrites it.
    fastsession::conformance_tests!(
        || map_store(&Key::generate().unwrap()),
        id_source: |ids| map_store(&Key::generate().unwrap()).with_id_source(ids),
    );
}
