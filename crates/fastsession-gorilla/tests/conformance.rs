//! The store conformance suite (`fastsession_core::conformance_tests!`) on this crate's stores:
//! the gorilla cookie store, and the migrating store serving native sessions (a server-side
//! store and a cookie store behind it). The gorilla cookie store with a revocation list is a
//! cookie store that refuses replays but cannot merge or order racing writes, which none of
//! the suite's two profiles describes; `stores.rs` tests it.

use fastsession_gorilla::{GorillaCookieStore, GorillaFormat, SecureCookie};

fn gorilla() -> GorillaCookieStore {
    let mut hash_key = [0u8; 32];
    getrandom::fill(&mut hash_key).unwrap();
    let mut block_key = [0u8; 32];
    getrandom::fill(&mut block_key).unwrap();
    let codec = SecureCookie::new(&hash_key, Some(&block_key)).unwrap();
    GorillaCookieStore::new(vec![codec])
        .unwrap()
        .with_format(GorillaFormat::new().with_user_key("user_id"))
}

mod gorilla_cookie_store {
    use std::sync::Arc;

    use fastsession_core::store::Store;

    fastsession_core::conformance_tests!(|| Arc::new(super::gorilla()) as Arc<dyn Store>);
}

mod migrating_to_a_memory_store {
    use std::sync::Arc;

    use fastsession_core::store::{MemoryStore, Store};
    use fastsession_core::testing::StoreUnderTest;
    use fastsession_gorilla::MigratingStore;

    fastsession_core::conformance_tests!(
        StoreUnderTest::new(|| {
            let native = MemoryStore::new().unwrap();
            Arc::new(MigratingStore::from_cookies(native, super::gorilla())) as Arc<dyn Store>
        })
        .with_server_side(true)
    );
}

mod migrating_to_a_cookie_store {
    use std::sync::Arc;

    use fastsession_core::codec::{Key, KeyRing};
    use fastsession_core::store::{CookieStore, Store};
    use fastsession_core::testing::StoreUnderTest;
    use fastsession_gorilla::MigratingStore;

    fastsession_core::conformance_tests!(StoreUnderTest::new(|| {
        let native = CookieStore::new(&KeyRing::new(Key::generate().unwrap()));
        Arc::new(MigratingStore::from_cookies(native, super::gorilla())) as Arc<dyn Store>
    }));
}
