//! The public store conformance suite (`fastsession_core::conformance_tests!`) on the shared
//! Redis, every check on a store with a key prefix of its own, deleted afterwards.

use fastsession_core::testing::Instance;

use crate::support::shared_store_blocking;

/// A store under a fresh prefix; its keys are deleted when the check ends.
fn fresh() -> Instance {
    let (store, cleanup) = shared_store_blocking();
    Instance::from(store).keep_alive(cleanup)
}

fastsession_core::conformance_tests!(
    fresh,
    id_source: |ids| {
        let (store, cleanup) = shared_store_blocking();
        let store = std::sync::Arc::into_inner(store).unwrap().with_id_source(ids);
        Instance::from(store).keep_alive(cleanup)
    },
);

/// The same suite with the near cache on (and tracking) in every store.
mod near_cache {
    use fastsession_core::testing::Instance;

    use crate::support::shared_store_near_blocking;

    fn fresh() -> Instance {
        let (store, cleanup) = shared_store_near_blocking();
        Instance::from(store).keep_alive(cleanup)
    }

    fastsession_core::conformance_tests!(
        fresh,
        id_source: |ids| {
            let (store, cleanup) = shared_store_near_blocking();
            let store = std::sync::Arc::into_inner(store).unwrap().with_id_source(ids);
            Instance::from(store).keep_alive(cleanup)
        },
    );
}
