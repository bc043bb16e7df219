//! The public store conformance suite (`fastsession_core::conformance_tests!`), every check on
//! a fresh store in a schema of its own, dropped when the check ends.

use fastsession_core::testing::Instance;
use fastsession_postgres::PostgresStore;

/// Builds a migrated store on the check's own runtime (the factory is synchronous).
fn build(with: impl FnOnce(PostgresStore) -> PostgresStore) -> Instance {
    let (config, schema) = crate::support::config();
    let store = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(crate::support::open(config))
    });
    Instance::from(with(store)).keep_alive(schema)
}

fastsession_core::conformance_tests!(
    || build(|s| s),
    id_source: |ids| build(move |s| s.with_id_source(ids)),
);

/// The same suite with the near cache on (and serving) in every store.
mod near_cache {
    use fastsession_core::testing::Instance;
    use fastsession_postgres::PostgresStore;

    fn build(with: impl FnOnce(PostgresStore) -> PostgresStore) -> Instance {
        let (config, schema) = crate::support::config();
        let store = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(crate::support::open_near(config))
        });
        Instance::from(with(store)).keep_alive(schema)
    }

    fastsession_core::conformance_tests!(
        || build(|s| s),
        id_source: |ids| build(move |s| s.with_id_source(ids)),
    );
}
