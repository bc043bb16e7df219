//! The names of the Redis keys: `<prefix><kind>{<64 hex digits>}`, each a keyed hash.

use std::fmt::Write as _;

use fastsession_core::store::StorageKey;

use super::RedisBackend;

impl RedisBackend {
    /// Returns the Redis key of the session stored under `key`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::redis::RedisStore, id: fastsession::session::SessionId) {
    /// let redis_key = store.backend().session_key(&store.storage_key(&id));
    /// assert!(redis_key.starts_with("fastsession:s:{"));
    /// # }
    /// ```
    #[must_use]
    pub fn session_key(&self, key: &StorageKey) -> String {
        self.key_name("s:{", key)
    }

    /// Returns the Redis key of `user`'s session index: a keyed hash of the user id, never the id.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(store: fastsession::redis::RedisStore) {
    /// let index = store.backend().user_key("alice");
    /// assert!(!index.contains("alice"));
    /// # }
    /// ```
    #[must_use]
    pub fn user_key(&self, user: &str) -> String {
        let hash = StorageKey::from_bytes(self.users.hash(b"redis-user-index", user.as_bytes()));
        self.key_name("u:{", &hash)
    }

    /// `<prefix><kind><64 hex>}` in one allocation (every load and save builds one).
    pub(super) fn key_name(&self, kind: &str, key: &StorageKey) -> String {
        let mut name = String::with_capacity(self.prefix.len() + kind.len() + 65);
        name.push_str(&self.prefix);
        name.push_str(kind);
        // `Display` writes the digits from the stack: no second buffer.
        let _ = write!(name, "{key}}}");
        name
    }

    /// Returns the key prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// // Where this store's keys are, for `redis-cli --scan --pattern`.
    /// fn scan_pattern(store: &fastsession::redis::RedisStore) -> String {
    ///     format!("{}*", store.backend().key_prefix())
    /// }
    /// # let _ = scan_pattern;
    /// ```
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }
}
