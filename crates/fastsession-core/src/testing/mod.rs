//! The store conformance suite: one set of behaviours every [`Store`] must show, as public
//! checks any store crate can run against its own store (feature `testing`).
//!
//! Every check drives the store the way an application does: through the per-request
//! [`Sessions`](crate::http::Sessions) registry (`Sessions::new(&headers)`, `get`, `save_all`)
//! with a [`ManualClock`](crate::time::ManualClock) injected by
//! [`SessionConfig::with_clock`](crate::http::SessionConfig::with_clock). A [`SpyStore`]
//! between the registry and the store under test counts every call, so a check can prove that
//! a hostile cookie never reached the store or that an untouched session cost no store I/O.
//! Concurrency checks run real concurrent tasks on a multi-threaded runtime, each scenario
//! [`ROUNDS`] times. The whole suite runs in well under ten seconds.
//!
//! # Running it for a store
//!
//! In the store crate's tests, one line per store, each in its own module:
//!
//! ```
//! # fn main() {}
//! mod memory_store {
//!     use fastsession::MemoryStore;
//!
//!     // Every check, one #[test] each, with a fresh store per check:
//!     fastsession::conformance_tests!(
//!         || MemoryStore::new().unwrap(),
//!         // Optional: a store whose new ids come from a `ScriptedIds`, for case 29.
//!         id_source: |ids| MemoryStore::new().unwrap().with_id_source(ids),
//!     );
//! }
//!
//! mod cookie_store {
//!     use fastsession::{Key, KeyRing};
//!     use fastsession::CookieStore;
//!
//!     fastsession::conformance_tests!(|| {
//!         CookieStore::new(&KeyRing::new(Key::generate().unwrap()))
//!     });
//! }
//! ```
//!
//! The argument is a factory returning a fresh, independent store each time it is called: an
//! `Arc<dyn Store>`, a [`CookieStore`], a [`ServerStore`] (any backend), or an [`Instance`]
//! (a store plus an [`Inspect`] view of its records). It may also be a [`StoreUnderTest`], to
//! override what the suite assumes the store can do. A store that lives somewhere temporary
//! hands that over too, to be dropped when the check ends: the filesystem store's tests return
//! `Instance::from(filesystem_store(dir.path(), &key).unwrap()).keep_alive(dir)` for a fresh
//! `tempfile::TempDir` (see [`Instance::keep_alive`]).
//!
//! The macro writes plain `#[test]` functions named after the checks (so invoke it once per module) that run on a runtime the
//! suite builds itself: the calling crate needs `fastsession-core` with the `testing` feature
//! as a dev-dependency, and nothing else (no `tokio` of its own).
//!
//! Each check is also a public `async fn` taking a [`StoreUnderTest`]; [`run`] runs one:
//!
//! ```
//! use fastsession::MemoryStore;
//! use fastsession::testing::{StoreUnderTest, run, values_round_trip};
//!
//! let sut = StoreUnderTest::new(|| MemoryStore::new().unwrap());
//! run(values_round_trip(&sut));
//! ```
//!
//! # What the suite assumes a store can do
//!
//! A store whose cookie holds a session id
//! ([`CookieContent::SessionId`](crate::store::CookieContent::SessionId)) keeps the session: the
//! suite expects it to **merge** concurrent change sets (two requests that change different
//! keys both keep their change) and to **revoke**: once a session is destroyed, regenerated or
//! expired, its old cookie loads nothing. A store whose cookie holds the sealed session
//! ([`CookieContent::Sealed`](crate::store::CookieContent::Sealed)), like the [`CookieStore`],
//! can do neither; for it the suite pins the documented limits instead (a copied cookie still
//! opens after logout; of two concurrent changes the browser keeps one). A sealed store with a
//! revocation list says so with [`StoreUnderTest::with_revocation`].
//!
//! # The checks and the security cases they cover
//!
//! Numbers are the security cases listed in the repository's `SECURITY.md` ("Security cases by
//! number"). Every response in every check is also checked for `Vary: Cookie`, and for
//! `Cache-Control: no-store` whenever it sets the cookie (case 41).
//!
//! | check | cases | sealed (cookie) stores |
//! | --- | --- | --- |
//! | [`values_round_trip`] | (values, flashes, remember-me, user) | runs |
//! | [`untouched_sessions_cost_nothing`] | 44, 45 | runs |
//! | [`writes_that_change_nothing_save_nothing`] | (writes only on change) | runs |
//! | [`unknown_ids_are_not_adopted`] | 23 | runs (a bare id is just a bad sealed value) |
//! | [`fixation_is_prevented`] | 24, 25 | runs; the planted cookie may still open but never carries the login |
//! | [`regenerate_rotates_the_id`] | 25, 40 | runs; pins that the old cookie still opens, without the new data |
//! | [`destroy_ends_the_session`] | 34, 35, 45 | runs; pins that a replayed cookie still opens (34) |
//! | [`debug_output_hides_secrets`] | 22 | runs |
//! | [`issued_ids_are_distinct`] | 30 (the store's ids) | runs (distinct values) |
//! | [`idle_timeout_is_enforced`] | 36 | runs |
//! | [`absolute_lifetime_is_enforced`] | 37 (also across a regeneration) | runs |
//! | [`expired_records_are_never_returned`] | 38, 56 | runs; the in-flight part (56) needs revocation |
//! | [`refresh_waits_for_the_configured_share`] | 41 (c), the write contract | runs |
//! | [`sessions_end_at_their_own_deadline`] | (a session's own deadline, `Session::set_expires_at`); 38, 56 for it | runs; the in-flight part needs revocation |
//! | [`remembered_sessions_outlive_the_idle_timeout`] | (remember-me: the remembered idle timeout) | runs |
//! | [`concurrent_writes_to_different_keys_both_persist`] | 46 | pins: each response keeps only its own change |
//! | [`concurrent_writes_to_one_key_keep_one_whole_value`] | 47 | runs (each cookie holds one whole value) |
//! | [`concurrent_increments_all_count`] | 47 (counters: [`Session::increment`](crate::Session::increment)) | pins: each client's cookie holds only its own increments |
//! | [`increments_merge_onto_the_stored_value`] | 47 (counters) | pins: each cookie holds its request's value |
//! | [`logout_is_never_undone_by_a_slower_request`] | 48, 56 | skipped: needs revocation |
//! | [`regeneration_is_never_undone_by_a_slower_request`] | 48 (for regeneration), 49 | skipped: needs revocation |
//! | [`racing_regenerations_leave_one_id`] | 49 | skipped: needs revocation |
//! | [`touch_never_overwrites_data`] | 50 | skipped: needs merging |
//! | [`hostile_session_ids_never_reach_the_store`] | 26, 27 and 28 (their inputs), 15, 16, 17 (sizes) | runs; the sealed value is parsed by its store |
//! | [`duplicate_and_misplaced_ids_are_ignored`] | 31, 32 | runs |
//! | [`large_sessions`] | 20 | runs: over 4096 bytes is `CookieTooLarge` |
//! | [`ids_are_hashed_at_rest`] | 33 | [`ServerStore`] only |
//! | [`sign_out_everywhere`] | 39 | [`ServerStore`] only; without a user index, pins that it is refused |
//! | [`id_collisions_never_overwrite`] | 29 | id stores with an injectable id source |
//!
//! Checks that need something the store does not have return without checking anything: the
//! revocation and merging checks for sealed stores, and [`ids_are_hashed_at_rest`] and
//! [`sign_out_everywhere`] for id stores not built on [`ServerStore`] (whose API they use).
//! A [`ServerStore`] whose backend keeps no [`UserIndex`](crate::store::UserIndex) passes every
//! other check; for it, [`sign_out_everywhere`] only checks that "log out everywhere" fails
//! with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) and ends nothing.
//!
//! # Cases 23–51 and 61–65, store by store
//!
//! "Suite" means a check above runs it for that store; "not here" gives where it is covered
//! instead, or why it cannot apply.
//!
//! | case | cookie store | memory store | filesystem store |
//! | --- | --- | --- | --- |
//! | 23 unknown id | suite | suite | suite |
//! | 24 fixation | suite | suite | suite |
//! | 25 login rotates | suite; the old cookie cannot be revoked (documented, pinned) | suite | suite |
//! | 26 malformed ids, spy store | suite (the codec is its parser; over-long and non-UTF-8 values never reach it) | suite | suite |
//! | 27 PostgreSQL injection | not here: the PostgreSQL crate's tests (the suite sends the same inputs, refused by the id parser) | as cookie | as cookie |
//! | 28 Redis keys | not here: the Redis crate's tests (same inputs refused by the parser; namespacing is Redis-specific) | as cookie | as cookie |
//! | 29 id collision | not applicable: no ids | suite | suite |
//! | 30 10^6 ids, chi-square | not applicable | distinctness and form of issued ids here; the statistics of `SessionId::generate` belong to the core's id tests | as memory |
//! | 31 duplicate cookies | suite | suite | suite |
//! | 32 id outside the cookie | suite | suite | suite |
//! | 33 hashed at rest | not applicable: nothing at rest | suite | suite |
//! | 34 replay after logout | suite pins the unsafe behaviour (no revocation) | suite | suite |
//! | 35 logout clears the cookie | suite | suite | suite |
//! | 36 idle timeout | suite | suite | suite |
//! | 37 absolute timeout | suite | suite | suite |
//! | 38 expired record still stored | suite (the sealed timestamps) | suite (and lazy deletion) | suite (and lazy deletion) |
//! | 39 log out everywhere | not applicable: no server state | suite | suite |
//! | 40 renew | suite | suite | suite |
//! | 41 `Vary` / `no-store` | suite (every response) | suite | suite |
//! | 42, 43 cookie settings | not here: the `http` layer's tests (`tests/headers.rs`); store-independent | as cookie | as cookie |
//! | 44 failed handler | suite (store side: nothing saved without `save_all`); adapters test the rest | suite | suite |
//! | 45 anonymous requests | suite | suite | suite |
//! | 46 concurrent keys | suite pins the documented loss (browser keeps one cookie) | suite | suite |
//! | 47 same key | suite | suite | suite |
//! | 48 logout resurrection | not applicable: a cookie store cannot revoke (documented) | suite | suite |
//! | 49 rotation race | not applicable (as 48) | suite | suite |
//! | 50 touch vs write | not applicable: a touch reseals the whole cookie (as 46) | suite | suite |
//! | 51 stress vs a model, loom | not applicable: no shared state | not here: the store's own tests (a reference model and `loom` need its internals) | not here: the store's own tests |
//! | 61 crash between write and rename | not applicable | not applicable | not here: the filesystem crate's tests (needs its files) |
//! | 62 ENOSPC, EIO, read-only | not applicable | not applicable | not here: the filesystem crate's tests |
//! | 63 corrupt file | not applicable (tampered cookies: `tests/tamper.rs`) | not applicable | not here: the filesystem crate's tests (the `Store` API has no way to corrupt a record) |
//! | 64 symlinks, permissions | not applicable | not applicable | not here: the filesystem crate's tests |
//! | 65 two processes | not applicable | not applicable | in-process threads: suite (46–48); two processes: the filesystem crate's tests |

mod concurrency;
mod expiry;
mod flood;
mod harness;
mod ids;
mod input;
mod lifecycle;
mod limits;
mod server;
mod spy;
mod tools;
mod writes;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use concurrency::{
    concurrent_increments_all_count, concurrent_writes_to_different_keys_both_persist,
    concurrent_writes_to_one_key_keep_one_whole_value, increments_merge_onto_the_stored_value,
    logout_is_never_undone_by_a_slower_request, racing_regenerations_leave_one_id,
    regeneration_is_never_undone_by_a_slower_request, touch_never_overwrites_data,
};
pub use expiry::{
    absolute_lifetime_is_enforced, expired_records_are_never_returned, idle_timeout_is_enforced,
    refresh_waits_for_the_configured_share, remembered_sessions_outlive_the_idle_timeout,
    sessions_end_at_their_own_deadline,
};
pub use flood::anonymous_floods_spare_logged_in_sessions;
pub use harness::ROUNDS;
pub use ids::ScriptedIds;
pub use input::{
    duplicate_and_misplaced_ids_are_ignored, hostile_session_ids_never_reach_the_store,
};
pub use lifecycle::{
    debug_output_hides_secrets, destroy_ends_the_session, fixation_is_prevented,
    issued_ids_are_distinct, regenerate_rotates_the_id, unknown_ids_are_not_adopted,
    untouched_sessions_cost_nothing, values_round_trip,
};
pub use limits::large_sessions;
pub use server::{id_collisions_never_overwrite, ids_are_hashed_at_rest, sign_out_everywhere};
pub use spy::SpyStore;
pub use tools::{REQUIRE_ALL, SKIP_LOG, program_on_path, skip_test};
pub use writes::writes_that_change_nothing_save_nothing;

use crate::session::{Expiry, Record, SessionId};
use crate::store::{Backend, CookieStore, ServerStore, StorageKey, Store, StoreFuture};
use crate::time::UnixTime;

/// How long one check may take before it is reported as hung (a deadlock, most likely).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one check to completion on a fresh multi-threaded runtime (4 workers), failing it if it
/// takes longer than a minute.
///
/// # Panics
///
/// If the check fails, the runtime cannot be built, or the check hangs.
pub fn run(check: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build the conformance runtime: {e}"));
    runtime.block_on(async {
        if tokio::time::timeout(CHECK_TIMEOUT, check).await.is_err() {
            panic!("conformance check did not finish within {CHECK_TIMEOUT:?}: a deadlock?");
        }
    });
}

/// A read-only view of the records a store holds, expired ones included, for checks that must
/// see what is at rest (an expired record deleted when found, a destroyed one gone).
///
/// [`ServerStore`] implements it; a store built otherwise may implement it and hand it over
/// with [`Instance::with_inspector`].
pub trait Inspect: Send + Sync + 'static {
    /// The record stored for `id`, whether expired or not, without changing anything.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn stored<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>>;
}

impl<B: Backend> Inspect for ServerStore<B> {
    fn stored<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(async move { self.backend().read(&self.storage_key(id)).await })
    }
}

/// What the [`ServerStore`]-only checks use: the account API and raw backend reads.
pub(crate) trait Accounts: Send + Sync + 'static {
    /// Whether the backend keeps a user index, without which the account API refuses.
    fn has_user_index(&self) -> bool;

    fn live_sessions_of<'a>(
        &'a self,
        user: &'a str,
        expiry: &'a Expiry,
        now: UnixTime,
    ) -> StoreFuture<'a, usize>;

    fn end_sessions_of<'a>(
        &'a self,
        user: &'a str,
        keep: Option<&'a SessionId>,
    ) -> StoreFuture<'a, usize>;

    /// The backend's record under the raw id bytes used as a key (it must hold none).
    fn stored_unhashed<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>>;
}

impl<B: Backend> Accounts for ServerStore<B> {
    fn has_user_index(&self) -> bool {
        self.backend().user_index().is_some()
    }

    fn live_sessions_of<'a>(
        &'a self,
        user: &'a str,
        expiry: &'a Expiry,
        now: UnixTime,
    ) -> StoreFuture<'a, usize> {
        StoreFuture::io(async move { Ok(self.sessions_of(user, expiry, now).await?.len()) })
    }

    fn end_sessions_of<'a>(
        &'a self,
        user: &'a str,
        keep: Option<&'a SessionId>,
    ) -> StoreFuture<'a, usize> {
        StoreFuture::io(ServerStore::end_sessions_of(self, user, keep))
    }

    fn stored_unhashed<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Record>> {
        StoreFuture::io(async move {
            let raw = StorageKey::from_bytes(*id.as_bytes());
            self.backend().read(&raw).await
        })
    }
}

/// One store for one check: the store, and optionally a view of what it holds at rest.
///
/// Factories given to [`StoreUnderTest::new`] or
/// [`conformance_tests!`](crate::conformance_tests) return one of these, or anything that
/// converts into one: an `Arc<dyn Store>`, a [`CookieStore`], or a
/// [`ServerStore`] over any backend (which brings its own [`Inspect`] view and the account
/// API the [`ServerStore`]-only checks use).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use fastsession::{MemoryStore, Store};
/// use fastsession::testing::Instance;
///
/// let store = Arc::new(MemoryStore::new()?);
/// let instance = Instance::new(store.clone()).with_inspector(store);
/// # Ok::<(), fastsession::Error>(())
/// ```
pub struct Instance {
    store: Arc<dyn Store>,
    inspect: Option<Arc<dyn Inspect>>,
    accounts: Option<Arc<dyn Accounts>>,
    guards: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl Instance {
    /// Returns a store the suite sees only through the [`Store`] trait.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Instance {
            store,
            inspect: None,
            accounts: None,
            guards: Vec::new(),
        }
    }

    /// Lets the checks look at the records at rest through `inspect`.
    #[must_use]
    pub fn with_inspector(mut self, inspect: Arc<dyn Inspect>) -> Self {
        self.inspect = Some(inspect);
        self
    }

    /// Keeps `guard` alive as long as the check runs: a temporary directory, a test database
    /// or a container the store lives in, dropped (and so cleaned up) when the check ends.
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::testing::Instance;
    ///
    /// struct Cleanup; // a temporary directory, say
    /// let instance = Instance::from(MemoryStore::new()?).keep_alive(Cleanup);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn keep_alive(mut self, guard: impl Send + Sync + 'static) -> Self {
        self.guards.push(Box::new(guard));
        self
    }

    /// Returns the store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("store", &self.store)
            .field("inspect", &self.inspect.is_some())
            .field("server_store", &self.accounts.is_some())
            .field("guards", &self.guards.len())
            .finish()
    }
}

impl From<Arc<dyn Store>> for Instance {
    fn from(store: Arc<dyn Store>) -> Self {
        Instance::new(store)
    }
}

impl From<CookieStore> for Instance {
    fn from(store: CookieStore) -> Self {
        Instance::new(Arc::new(store))
    }
}

impl<B: Backend> From<ServerStore<B>> for Instance {
    fn from(store: ServerStore<B>) -> Self {
        Instance::from(Arc::new(store))
    }
}

impl<B: Backend> From<Arc<ServerStore<B>>> for Instance {
    fn from(store: Arc<ServerStore<B>>) -> Self {
        Instance {
            store: store.clone(),
            inspect: Some(store.clone()),
            accounts: Some(store),
            guards: Vec::new(),
        }
    }
}

type Factory = dyn Fn() -> Instance + Send + Sync;

/// The store a run of the suite checks: a factory of fresh, independent instances (one per
/// check, so that checks can run in parallel), and what the store can do.
///
/// By default the suite derives the store's abilities from
/// [`Store::cookie_content`]: a store whose cookie holds a session id must merge concurrent
/// writes and revoke ended sessions; a sealed-cookie store can do neither (see the
/// [module documentation](self)).
///
/// # Examples
///
/// ```
/// use fastsession::MemoryStore;
/// use fastsession::testing::{StoreUnderTest, run, regenerate_rotates_the_id};
///
/// let sut = StoreUnderTest::new(|| MemoryStore::new().unwrap());
/// run(regenerate_rotates_the_id(&sut));
/// ```
#[derive(Clone)]
pub struct StoreUnderTest {
    factory: Arc<Factory>,
    merges: Option<bool>,
    revokes: Option<bool>,
    pub(crate) server_side: Option<bool>,
}

impl StoreUnderTest {
    /// Returns the store `factory` makes; it is called once per check and must return a fresh store
    /// each time.
    #[must_use]
    pub fn new<F, S>(factory: F) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Into<Instance>,
    {
        StoreUnderTest {
            factory: Arc::new(move || factory().into()),
            merges: None,
            revokes: None,
            server_side: None,
        }
    }

    /// Says whether the store merges concurrent change sets; by default, `true`
    /// for stores whose cookie holds a session id.
    #[must_use]
    pub fn with_merging(mut self, merges: bool) -> Self {
        self.merges = Some(merges);
        self
    }

    /// Says whether a destroyed, regenerated or expired session's old cookie loads nothing;
    /// by default, `true` for stores whose cookie holds a session id.
    #[must_use]
    pub fn with_revocation(mut self, revokes: bool) -> Self {
        self.revokes = Some(revokes);
        self
    }

    /// Says whether sessions live on the server and the cookie holds only their id; by
    /// default, `true` for stores whose [`cookie_content`](Store::cookie_content) is
    /// `SessionId`. A store that parses its cookies itself (it reads other formats too, as
    /// `fastsession-gorilla`'s `MigratingStore`) declares `Sealed` and says `true` here.
    #[must_use]
    pub fn with_server_side(mut self, server_side: bool) -> Self {
        self.server_side = Some(server_side);
        self
    }

    /// Returns a fresh instance of the store.
    #[must_use]
    pub fn instance(&self) -> Instance {
        (self.factory)()
    }
}

impl<F, S> From<F> for StoreUnderTest
where
    F: Fn() -> S + Send + Sync + 'static,
    S: Into<Instance>,
{
    fn from(factory: F) -> Self {
        StoreUnderTest::new(factory)
    }
}

impl fmt::Debug for StoreUnderTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreUnderTest")
            .field("merges", &self.merges)
            .field("server_side", &self.server_side)
            .field("revokes", &self.revokes)
            .finish_non_exhaustive()
    }
}

/// Writes the conformance suite as `#[test]` functions, one per check, for a store.
///
/// The first argument is a factory returning a fresh store (anything converting into an
/// [`Instance`](crate::testing::Instance): `Arc<dyn Store>`, `CookieStore`, `ServerStore<_>`)
/// or a [`StoreUnderTest`](crate::testing::StoreUnderTest). The optional
/// `id_source: |ids| ...` argument makes a store that takes its new ids from a
/// [`ScriptedIds`](crate::testing::ScriptedIds) and adds
/// [`id_collisions_never_overwrite`](crate::testing::id_collisions_never_overwrite).
///
/// The tests are named after the checks, so invoke the macro once per module. They build their
/// own runtime ([`run`](crate::testing::run)): the calling crate needs no `tokio`.
///
/// # Examples
///
/// ```
/// # fn main() {}
/// mod memory {
///     use fastsession::MemoryStore;
///
///     fastsession::conformance_tests!(
///         || MemoryStore::new().unwrap(),
///         id_source: |ids| MemoryStore::new().unwrap().with_id_source(ids),
///     );
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($store:expr, id_source: $with_ids:expr $(,)?) => {
        $crate::conformance_tests!($store);

        #[test]
        fn id_collisions_never_overwrite() {
            $crate::testing::run($crate::testing::id_collisions_never_overwrite($with_ids));
        }
    };
    ($store:expr $(,)?) => {
        $crate::__conformance_tests!(
            $store;
            values_round_trip,
            untouched_sessions_cost_nothing,
            writes_that_change_nothing_save_nothing,
            unknown_ids_are_not_adopted,
            fixation_is_prevented,
            regenerate_rotates_the_id,
            destroy_ends_the_session,
            debug_output_hides_secrets,
            issued_ids_are_distinct,
            idle_timeout_is_enforced,
            absolute_lifetime_is_enforced,
            expired_records_are_never_returned,
            refresh_waits_for_the_configured_share,
            sessions_end_at_their_own_deadline,
            remembered_sessions_outlive_the_idle_timeout,
            concurrent_writes_to_different_keys_both_persist,
            concurrent_writes_to_one_key_keep_one_whole_value,
            concurrent_increments_all_count,
            increments_merge_onto_the_stored_value,
            logout_is_never_undone_by_a_slower_request,
            regeneration_is_never_undone_by_a_slower_request,
            racing_regenerations_leave_one_id,
            touch_never_overwrites_data,
            hostile_session_ids_never_reach_the_store,
            duplicate_and_misplaced_ids_are_ignored,
            large_sessions,
            ids_are_hashed_at_rest,
            sign_out_everywhere,
        );
    };
}

/// One `#[test]` per named check (an implementation detail of
/// [`conformance_tests!`](crate::conformance_tests)).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($store:expr; $($check:ident),+ $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::testing::run(async {
                    let sut = $crate::testing::StoreUnderTest::from($store);
                    $crate::testing::$check(&sut).await;
                });
            }
        )+
    };
}
