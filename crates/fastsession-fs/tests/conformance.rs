//! The public store conformance suite (`fastsession_core::conformance_tests!`), every check
//! on a fresh store in its own temporary directory.

use fastsession_core::testing::Instance;

/// A store in a new temporary directory, which lives as long as the check.
fn fresh() -> Instance {
    let tmp = tempfile::tempdir().unwrap();
    // A subdirectory: the store refuses a directory others may enter, such as a fresh
    // temporary directory can be.
    let store =
        fastsession_fs::filesystem_store(tmp.path().join("store"), &crate::support::key()).unwrap();
    Instance::from(store).keep_alive(tmp)
}

fastsession_core::conformance_tests!(
    fresh,
    id_source: |ids| {
        let tmp = tempfile::tempdir().unwrap();
        let store = fastsession_fs::filesystem_store(tmp.path().join("store"), &crate::support::key())
            .unwrap()
            .with_id_source(ids);
        Instance::from(store).keep_alive(tmp)
    },
);
