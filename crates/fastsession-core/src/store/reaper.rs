//! Reaping expired records in the background (feature `tokio`).

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, ServerStore};
use crate::time::UnixTime;

/// Spawns a Tokio task that deletes expired sessions of `store` every `every`, in batches of
/// at most `batch` records (one [`ServerStore::reap`] call each, so other work interleaves),
/// until the store is dropped.
///
/// The task holds the store only while a batch runs: once every other `Arc` is gone, it ends
/// at its next tick. A failing pass logs a `warn` event (target `fastsession`) and the next
/// tick tries again. It works for any [`ServerStore`]; expired sessions are never returned
/// even without it, it only reclaims space. The filesystem and PostgreSQL store crates
/// re-export it.
///
/// # Panics
///
/// If called outside a Tokio runtime.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use fastsession::store::{MemoryStore, spawn_reaper};
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = Arc::new(MemoryStore::new()?);
/// let reaper = spawn_reaper(&store, Duration::from_millis(10), 1000);
/// drop(store);
/// tokio::time::timeout(Duration::from_secs(5), reaper).await??; // ends once the store is gone
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spawn_reaper<B: Backend>(
    store: &Arc<ServerStore<B>>,
    every: Duration,
    batch: usize,
) -> tokio::task::JoinHandle<()> {
    let store = Arc::downgrade(store);
    let batch = batch.max(1);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            loop {
                let Some(store) = store.upgrade() else {
                    return;
                };
                match store.reap(UnixTime::now(), batch).await {
                    // A full batch: more may be due; the next batch is a new blocking job.
                    Ok(n) if n >= batch => {}
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(target: "fastsession", %error, "session reaper pass failed");
                        break;
                    }
                }
            }
        }
    })
}
