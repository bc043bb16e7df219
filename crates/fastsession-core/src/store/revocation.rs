//! Revocation: ended sessions and "log out everywhere" times, for stores whose cookies a
//! logout cannot take back.

use std::fmt;

use super::{Backend, ServerStore, StorageKey, StoreFuture};
use crate::error::{Error, ErrorKind};
use crate::session::{Record, SessionId};
use crate::time::UnixTime;

/// A set of ended sessions and per-user "log out everywhere" times, checked by a
/// [`CookieStore`](super::CookieStore) so that a logout ends a copied cookie too.
///
/// Every [`ServerStore`] is one: markers live in its backend beside the sessions, each
/// deleted once the cookie it revokes would have expired anyway. A marker of a session with a
/// user id, and every "log out everywhere" marker, is outside the store's
/// [anonymous budget](super::AnonymousBudget): it is never evicted to make room, and a store
/// without room refuses to record it ([`ErrorKind::StoreFull`]) rather than forget a logout.
pub trait RevocationList: fmt::Debug + Send + Sync + 'static {
    /// Marks `id` as ended until `until` (after which its cookie has expired anyway); `user`
    /// is the session's user id, if it had one.
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
        user: Option<&'a str>,
        until: UnixTime,
    ) -> StoreFuture<'a, ()>;

    /// `true` if `id` was revoked.
    fn is_revoked<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool>;

    /// Ends every session of `user` last active at or before `at`, except the session `keep`
    /// (the one making the call, if it stays logged in); the marker lasts until `until`.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        at: UnixTime,
        keep: Option<&'a SessionId>,
        until: UnixTime,
    ) -> StoreFuture<'a, ()>;

    /// When the sessions of `user` were last ended, if they were, and whether `id` is the
    /// session that call kept.
    fn user_revocation<'a>(
        &'a self,
        user: &'a str,
        id: Option<&'a SessionId>,
    ) -> StoreFuture<'a, Option<UserRevocation>>;

    /// `true` if a session was ended: its `id` revoked, or the sessions of its `user` ended
    /// at or after its `last_active` time (and it was not the one kept). One look-up, two
    /// with a user.
    fn has_ended<'a>(
        &'a self,
        id: Option<&'a SessionId>,
        user: Option<&'a str>,
        last_active: UnixTime,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            if let Some(id) = id
                && self.is_revoked(id).await?
            {
                return Ok(true);
            }
            Ok(match user {
                Some(user) => self
                    .user_revocation(user, id)
                    .await?
                    .is_some_and(|r| r.ends(last_active)),
                None => false,
            })
        })
    }

    /// [`revoke`](Self::revoke), saying whether this call ended `id` (`false`: it was already
    /// revoked). Of two concurrent calls for one id, at most one gets `true` where the list
    /// can tell; the default asks [`is_revoked`](Self::is_revoked) first, which cannot.
    fn revoke_first<'a>(
        &'a self,
        id: &'a SessionId,
        user: Option<&'a str>,
        until: UnixTime,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            if self.is_revoked(id).await? {
                return Ok(false);
            }
            self.revoke(id, user, until).await?;
            Ok(true)
        })
    }
}

/// A "log out everywhere" as [`RevocationList::user_revocation`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRevocation {
    /// Sessions last active at or before this time are ended.
    pub at: UnixTime,
    /// The session asked about is the one the call kept.
    pub kept: bool,
}

impl UserRevocation {
    /// Returns `true` if a session last active at `last_active` is ended by it.
    ///
    /// Times are whole seconds, so a session active in the second of the call counts as
    /// ended: a store that seals a session of the user in that second afterwards dates it a
    /// second later.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::UserRevocation;
    /// use fastsession::time::UnixTime;
    ///
    /// let revocation = UserRevocation { at: UnixTime::from_secs(100), kept: false };
    /// assert!(revocation.ends(UnixTime::from_secs(100)));
    /// assert!(!revocation.ends(UnixTime::from_secs(101)));
    /// ```
    #[must_use]
    pub fn ends(&self, last_active: UnixTime) -> bool {
        !self.kept && last_active <= self.at
    }
}

/// The value under which a "log out everywhere" marker keeps the kept session's storage key.
const KEPT: &str = "kept";

impl<B: Backend> RevocationList for ServerStore<B> {
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
        user: Option<&'a str>,
        until: UnixTime,
    ) -> StoreFuture<'a, ()> {
        StoreFuture::io(async move {
            // Already revoked is as good as revoked now.
            self.revoke_first(id, user, until).await?;
            Ok(())
        })
    }

    fn revoke_first<'a>(
        &'a self,
        id: &'a SessionId,
        user: Option<&'a str>,
        until: UnixTime,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            let key = StorageKey::from_bytes(self.hasher.hash(b"revoked", id.as_bytes()));
            // The user id puts the marker outside the anonymous budget, as its session was.
            let mut marker = Record::new(UnixTime::EPOCH);
            marker.set_user_id(user.map(str::to_owned));
            // Create-if-absent: of two concurrent calls, one creates.
            self.backend.create(&key, &marker, until).await
        })
    }

    fn is_revoked<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, bool> {
        StoreFuture::io(async move {
            let key = StorageKey::from_bytes(self.hasher.hash(b"revoked", id.as_bytes()));
            Ok(self.backend.read(&key).await?.is_some())
        })
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        at: UnixTime,
        keep: Option<&'a SessionId>,
        until: UnixTime,
    ) -> StoreFuture<'a, ()> {
        StoreFuture::io(async move {
            let key = StorageKey::from_bytes(self.hasher.hash(b"user-revoked", user.as_bytes()));
            let mut marker = Record::new(at);
            marker.set_user_id(Some(user.to_owned()));
            if let Some(keep) = keep {
                let kept = format!("\"{}\"", StorageKey::of(&self.hasher, keep).to_hex());
                let kept = serde_json::value::RawValue::from_string(kept)
                    .map_err(|e| Error::new(ErrorKind::Serialize, "kept session").with_source(e))?;
                marker.insert_value(KEPT.to_owned(), kept);
            }
            // The latest revocation wins; a concurrent one in between is as recent.
            self.backend.remove(&key).await?;
            self.backend.create(&key, &marker, until).await?;
            Ok(())
        })
    }

    fn user_revocation<'a>(
        &'a self,
        user: &'a str,
        id: Option<&'a SessionId>,
    ) -> StoreFuture<'a, Option<UserRevocation>> {
        StoreFuture::io(async move {
            let key = StorageKey::from_bytes(self.hasher.hash(b"user-revoked", user.as_bytes()));
            let Some(marker) = self.backend.read(&key).await? else {
                return Ok(None);
            };
            let kept = match (id, marker.value(KEPT)) {
                (Some(id), Some(kept)) => {
                    kept.get().trim_matches('"') == StorageKey::of(&self.hasher, id).to_hex()
                }
                _ => false,
            };
            Ok(Some(UserRevocation {
                at: marker.created(),
                kept,
            }))
        })
    }
}
