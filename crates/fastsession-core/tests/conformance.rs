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

/// A server store whose backend keeps no user index: the memory backend with its index hidden.
/// Every check passes; "log out everywhere" and the rest of the account API are refused with
/// `ErrorKind::Unsupported`, and nothing else changes.
mod server_store_without_a_user_index {
    use fastsession_core::ErrorKind;
    use fastsession_core::codec::IdHasher;
    use fastsession_core::session::{Expiry, Record};
    use fastsession_core::store::{
        Backend, MemoryBackend, ServerStore, StorageKey, StoreFuture, Update,
    };
    use fastsession_core::time::UnixTime;

    /// Passes every call on but `user_index`, which stays the default `None`.
    #[derive(Debug)]
    struct NoIndex(MemoryBackend);

    impl Backend for NoIndex {
        fn read<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
            self.0.read(key)
        }

        fn create<'a>(
            &'a self,
            key: &'a StorageKey,
            record: &'a Record,
            expires: UnixTime,
        ) -> StoreFuture<'a, bool> {
            self.0.create(key, record, expires)
        }

        fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>) -> StoreFuture<'a, bool> {
            self.0.update(key, update)
        }

        fn touch<'a>(
            &'a self,
            key: &'a StorageKey,
            now: UnixTime,
            expiry: &'a Expiry,
        ) -> StoreFuture<'a, bool> {
            self.0.touch(key, now, expiry)
        }

        fn remove<'a>(&'a self, key: &'a StorageKey) -> StoreFuture<'a, Option<Record>> {
            self.0.remove(key)
        }

        fn reap(&self, now: UnixTime, limit: usize) -> StoreFuture<'_, usize> {
            self.0.reap(now, limit)
        }
    }

    fn store() -> ServerStore<NoIndex> {
        let backend = NoIndex(MemoryBackend::new(10_000));
        ServerStore::with_backend(backend, IdHasher::random().unwrap())
    }

    fastsession_core::conformance_tests!(
        store,
        id_source: |ids| store().with_id_source(ids),
    );

    #[test]
    fn the_account_api_is_refused_with_a_typed_error() {
        fastsession_core::testing::run(async {
            let store = store();
            let (expiry, now) = (Expiry::default(), UnixTime::now());
            let key = StorageKey::from_bytes([7; 32]);
            let kinds = [
                store.sessions_of("ada", &expiry, now).await.map(|_| ()),
                store.end_session("ada", &key).await.map(|_| ()),
                store.end_sessions_of("ada", None).await.map(|_| ()),
            ]
            .map(|result| result.map_err(|e| e.kind()));
            assert_eq!(kinds, [Err(ErrorKind::Unsupported); 3]);
        });
    }
}
