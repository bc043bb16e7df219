//! Memory per idle session in the `MemoryStore`: resident memory before and after creating
//! `N` sessions of four small values (about 100 bytes of JSON), through the registry.
//!
//! Run: `cargo run --release -p fastsession-benches --example memory_per_session [N]`

use std::sync::Arc;

use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::store::MemoryStore;
use http::HeaderMap;

/// Resident set size in bytes, from `/proc/self/statm` (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm");
    pages * 4096
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let store = Arc::new(MemoryStore::with_max_sessions(n).expect("store"));
    let config =
        SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id").expect("config"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let before = rss();
    rt.block_on(async {
        for i in 0..n {
            let sessions = Sessions::new(&HeaderMap::new());
            let s = sessions.get(&config).await.expect("get");
            s.insert("user", format!("user{i}")).expect("insert");
            s.insert("role", "admin").expect("insert");
            s.insert("cart", [17, 42, 99]).expect("insert");
            s.insert("theme", "dark").expect("insert");
            sessions
                .save_all(&mut HeaderMap::new())
                .await
                .expect("save");
        }
    });
    let after = rss();
    assert_eq!(store.backend().len(), n);
    println!(
        "{n} sessions: {} bytes resident, {} bytes per session",
        after - before,
        (after - before) / n
    );
}
