//! The [`Store`] trait and the stores of this crate: the [`CookieStore`], which keeps the whole
//! session in the cookie, the [`MemoryStore`], and the [`ServerStore`] that every server-side
//! store (memory, files, Redis, PostgreSQL) builds on with a [`Backend`].
//!
//! A store turns a cookie value into a session record and back. The trait is dyn-compatible
//! (futures are boxed), so one request can hold sessions from several stores behind
//! `Arc<dyn Store>`.
//!
//! # The contract
//!
//! * **Load** gets the cookie value (and, for stores of [`CookieContent::SessionId`], the
//!   already-parsed [`SessionId`]: a malformed id never reaches a store). It returns the
//!   record, or a [`RejectReason`] for anything that is not a live session: unknown, expired
//!   (checked with [`Expiry::check`] even if the backend still holds it), tampered. Only a
//!   failure of the store itself is an `Err`.
//! * **Save** gets a [`SaveKind`], the full record after the request, and the request's
//!   [`ChangeSet`]. Server-side stores apply the change set onto the record they hold
//!   ([`Record::apply`]) atomically, so concurrent requests that change different keys both
//!   persist; a save for a session that another request destroyed or regenerated fails with
//!   [`ErrorKind::SessionEnded`](crate::ErrorKind::SessionEnded) and never brings it back.
//!   [`SaveKind::Create`] must never overwrite an existing record.
//! * Neither is called for a request that never asked for its session.
//!
//! [`SessionId`]: crate::session::SessionId
//! [`Expiry::check`]: crate::session::Expiry::check
//! [`ChangeSet`]: crate::session::ChangeSet
//! [`Record::apply`]: crate::session::Record::apply

mod accounts;
mod backend;
mod budget;
mod cookie;
mod future;
mod load;
mod memo;
mod memory;
#[cfg(feature = "near-cache")]
mod near_cache;
#[cfg(feature = "tokio")]
mod reaper;
mod revocation;
mod save;
mod server;
mod storage_key;

use std::fmt;

pub use backend::{Backend, IdSource, OsIdSource, SessionInfo, Update, UserIndex};
pub use budget::{
    AnonymousBudget, DEFAULT_ANONYMOUS_BYTES, DEFAULT_ANONYMOUS_SESSIONS, DEFAULT_MAX_SESSION_BYTES,
};
pub use cookie::{CookieStore, revoke_replaced};
pub use future::StoreFuture;
pub use load::{LoadRequest, Loaded};
pub use memo::Memo;
pub use memory::{DEFAULT_MAX_SESSIONS, MemoryBackend, MemoryStore};
#[cfg(feature = "near-cache")]
pub use near_cache::{
    DEFAULT_NEAR_CACHE_BYTES, DEFAULT_NEAR_CACHE_ENTRIES, DEFAULT_NEAR_CACHE_MAX_AGE, Fill,
    NearCache, NearCacheConfig, NearCacheStats,
};
#[cfg(feature = "tokio")]
pub use reaper::spawn_reaper;
pub use revocation::{RevocationList, UserRevocation};
pub use save::{SaveKind, SaveRequest, Saved};
pub use server::ServerStore;
pub use storage_key::StorageKey;

// Defined with the expiry checks that produce it; stores answer with it.
pub use crate::session::RejectReason;

/// Where sessions live.
///
/// See the [module documentation](self) for the contract every implementation keeps; the
/// conformance suite checks it.
///
/// # Examples
///
/// A store is used through a [`SessionConfig`](crate::http::SessionConfig); this is how the
/// registry calls it:
///
/// ```
/// use fastsession::{Key, KeyRing};
/// use fastsession::session::{Expiry, Record};
/// use fastsession::store::{CookieStore, LoadRequest, SaveKind, SaveRequest, Saved, Store};
/// use fastsession::time::UnixTime;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let store = CookieStore::new(&KeyRing::new(Key::generate()?));
/// let expiry = Expiry::default();
/// let now = UnixTime::now();
/// let record = Record::new(now);
/// let changes = Default::default();
/// let saved = store
///     .save(SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now))
///     .await?;
/// let Saved::Cookie { value, .. } = saved else { unreachable!() };
/// let loaded = store.load(LoadRequest::new("id", &value, None, &expiry, now)).await?;
/// assert_eq!(loaded.record(), Some(&record));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Store: fmt::Debug + Send + Sync + 'static {
    /// What the cookie holds for this store.
    fn cookie_content(&self) -> CookieContent;

    /// Finds the session a cookie names.
    fn load<'a>(&'a self, request: LoadRequest<'a>) -> StoreFuture<'a, Loaded>;

    /// Persists a session, returning what the cookie must say afterwards.
    fn save<'a>(&'a self, request: SaveRequest<'a>) -> StoreFuture<'a, Saved>;
}

/// What a store keeps in the cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieContent {
    /// A [`SessionId`](crate::session::SessionId); the registry parses it before the store sees it.
    SessionId,
    /// A value only the store can open or verify (the whole session, sealed or signed, for
    /// [`CookieStore`]).
    Sealed,
}
