//! The store conformance suite (`fastsession_core::testing`) run for the stores of this crate:
//! the cookie store and the memory store. One `#[test]` per check; see the `testing` module
//! documentation for what each covers.
//!
//! The suite is behind the crate's `testing` feature, so this module is compiled only with it
//! (`cargo test -p fastsession-core --all-features`, or `--features testing`); a plain
//! `cargo test -p fastsession-core` builds the other integration tests without it.

mod cookie_store {
    use fastsession_core::codec::{Key, KeyRing};
    use fastsession_core::store::CookieStore;

    fastsession_core::conformance_tests!(|| CookieStore::new(&KeyRing::new(
        Key::generate().unwrap()
    )));
}

mod memory_store {
    use fastsession_core::store::{AnonymousBudget, MemoryStore};
    use fastsession_core::testing::{StoreUnderTest, anonymous_floods_spare_logged_in_sessions};

    fastsession_core::conformance_tests!(
        || MemoryStore::new().unwrap(),
        id_source: |ids| MemoryStore::new().unwrap().with_id_source(ids),
    );

    /// Finding: about 100 000 cookie-less requests evicted every logged-in session (eviction
    /// took the session closest to expiry, which is the oldest). Now a flood of three times
    /// the anonymous budget evicts only anonymous sessions.
    #[test]
    fn an_anonymous_flood_logs_nobody_out() {
        let sut = StoreUnderTest::new(|| {
            MemoryStore::with_max_sessions(100)
                .unwrap()
                .with_anonymous_budget(AnonymousBudget::new(100, 1 << 20))
        });
        fastsession_core::testing::run(anonymous_floods_spare_logged_in_sessions(&sut, 20, 300));
    }
}

/// A store the suite sees only through the `Store` trait (no `Inspect`, no account API): the
/// memory store behind an `Arc<dyn Store>`, as a third-party store would be, described by a
/// `StoreUnderTest` with its abilities spelled out.
mod opaque_memory_store {
    use std::sync::Arc;

    use fastsession_core::store::{MemoryStore, Store};
    use fastsession_core::testing::StoreUnderTest;

    fastsession_core::conformance_tests!(
        StoreUnderTest::new(|| Arc::new(MemoryStore::new().unwrap()) as Arc<dyn Store>)
            .with_merging(true)
            .with_revocation(true)
    );
}
