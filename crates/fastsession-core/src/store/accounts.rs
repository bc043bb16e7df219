//! A user's sessions: the account API of a [`ServerStore`] ("log out everywhere", the list
//! on an account page), and the upkeep of its backend's [`UserIndex`].

use super::{Backend, ServerStore, SessionInfo, StorageKey, UserIndex};
use crate::error::{Error, ErrorKind, Result};
use crate::session::{Expiry, SessionId};
use crate::time::UnixTime;

impl<B: Backend> ServerStore<B> {
    /// Returns the live sessions tied to `user` with
    /// [`Session::set_user_id`](crate::Session::set_user_id).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] if the backend keeps no user index
    /// ([`Backend::user_index`]); otherwise the backend's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    /// use fastsession::time::UnixTime;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = Arc::new(MemoryStore::new()?);
    /// let config = SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id")?);
    /// // Ada logs in on two devices.
    /// for _ in 0..2 {
    ///     let sessions = Sessions::new(&http::HeaderMap::new());
    ///     sessions.get(&config).await?.set_user_id("ada");
    ///     sessions.save().await?;
    /// }
    /// // Her account page: where she is signed in.
    /// for info in store.sessions_of("ada", config.expiry(), UnixTime::now()).await? {
    ///     println!("signed in since {:?}, last seen {:?}", info.created, info.last_active);
    /// }
    /// assert_eq!(store.sessions_of("ada", config.expiry(), UnixTime::now()).await?.len(), 2);
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn sessions_of(
        &self,
        user: &str,
        expiry: &Expiry,
        now: UnixTime,
    ) -> Result<Vec<SessionInfo>> {
        let index = self.required_user_index()?;
        let mut out = Vec::new();
        for key in index.user_keys(user).await? {
            match self.backend.read(&key).await? {
                Some(r) if r.user_id() == Some(user) && expiry.check(&r, now).is_ok() => {
                    out.push(SessionInfo {
                        key,
                        created: r.created(),
                        last_active: r.last_active(),
                        persistent: r.is_persistent(),
                    })
                }
                _ => index.unlink_user(user, &key).await?,
            }
        }
        out.sort_by_key(|s| (s.created, s.key));
        Ok(out)
    }

    /// Ends one session of `user`, by the key [`sessions_of`](Self::sessions_of) listed; it
    /// is gone on its next request. Returns `false` if it was already gone.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] if the backend keeps no user index
    /// ([`Backend::user_index`]); otherwise the backend's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    /// use fastsession::time::UnixTime;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = Arc::new(MemoryStore::new()?);
    /// let config = SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?.set_user_id("ada");
    /// sessions.save().await?;
    /// // "Sign out this device" on Ada's account page, by the key the page listed.
    /// let listed = store.sessions_of("ada", config.expiry(), UnixTime::now()).await?;
    /// assert!(store.end_session("ada", &listed[0].key).await?);
    /// // Only her own sessions: a key of someone else's ends nothing.
    /// assert!(!store.end_session("bob", &listed[0].key).await?);
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn end_session(&self, user: &str, key: &StorageKey) -> Result<bool> {
        let index = self.required_user_index()?;
        let owned = self
            .backend
            .read(key)
            .await?
            .is_some_and(|r| r.user_id() == Some(user));
        let ended = owned && self.backend.remove(key).await?.is_some();
        index.unlink_user(user, key).await?;
        Ok(ended)
    }

    /// "Log out everywhere": ends every session of `user` except `keep` (typically the
    /// current one). Returns how many ended.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] if the backend keeps no user index
    /// ([`Backend::user_index`]); otherwise the backend's error, and sessions ended before it
    /// stay ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    /// use fastsession::session::SessionId;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let store = Arc::new(MemoryStore::new()?);
    /// let config = SessionConfig::with_shared_store(store.clone(), CookieConfig::new("id")?);
    /// let mut cookies = Vec::new();
    /// for _ in 0..3 {
    ///     let sessions = Sessions::new(&http::HeaderMap::new());
    ///     sessions.get(&config).await?.set_user_id("ada");
    ///     let mut response = http::HeaderMap::new();
    ///     sessions.save_all(&mut response).await?;
    ///     // `__Host-id=<id>; ...`: the value of a store's cookie is the session id.
    ///     let line = response["set-cookie"].to_str()?.to_owned();
    ///     cookies.push(line["__Host-id=".len()..line.find(';').unwrap_or(line.len())].to_owned());
    /// }
    /// // "Sign out everywhere else", from the request that carries the first cookie.
    /// let current = SessionId::parse(&cookies[0]);
    /// assert_eq!(store.end_sessions_of("ada", current.as_ref()).await?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn end_sessions_of(&self, user: &str, keep: Option<&SessionId>) -> Result<usize> {
        let index = self.required_user_index()?;
        let keep = keep.map(|id| StorageKey::of(&self.hasher, id));
        let mut ended = 0;
        for key in index.user_keys(user).await? {
            if Some(key) != keep && self.end_session(user, &key).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// The backend's user index, or the error of an account call on a backend without one.
    fn required_user_index(&self) -> Result<&dyn UserIndex> {
        self.backend.user_index().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "this store's backend keeps no user index: it cannot list or end a user's sessions",
            )
        })
    }

    /// Links the session under `key` to `user`, if the backend keeps a user index.
    pub(super) async fn link_user(&self, user: &str, key: &StorageKey) -> Result<()> {
        match self.backend.user_index() {
            Some(index) => index.link_user(user, key).await,
            None => Ok(()),
        }
    }

    /// Unlinks the session under `key` from `user`, if the backend keeps a user index.
    pub(super) async fn unlink_user(&self, user: &str, key: &StorageKey) -> Result<()> {
        match self.backend.user_index() {
            Some(index) => index.unlink_user(user, key).await,
            None => Ok(()),
        }
    }
}
