//! The shared half of every server-side store: ids, hashing, expiry and the save protocol.
//!
//! A server-side store is a [`ServerStore`] over a [`Backend`]. The backend only stores
//! records under [`StorageKey`]s and offers a few atomic operations; the `ServerStore` turns
//! them into the [`Store`] contract: it parses nothing (the registry hands it a parsed
//! [`SessionId`]), hashes every id before the backend sees it, never adopts an unknown id,
//! creates with create-if-absent and retries on collision, merges change sets, enforces expiry
//! at read time, and never brings back a session another request ended.

use std::fmt;

use ring::hmac;

use super::budget::DEFAULT_MAX_SESSION_BYTES;
use super::{
    BoxFuture, CookieContent, LoadRequest, Loaded, RejectReason, SaveKind, SaveRequest, Saved,
    Store,
};
use crate::codec::Key;
use crate::error::{Error, ErrorKind, Result};
use crate::session::{ChangeSet, Expiry, Record, SessionId};
use crate::time::UnixTime;

/// How many fresh ids a create tries before giving up; each collision is a 2^-256 event
/// unless the id source is broken, so more than one retry means something is wrong.
const CREATE_ATTEMPTS: usize = 4;

/// The key a record is stored under: HMAC-SHA256 of the session id under a secret key.
///
/// Stores keep this, never the raw id, so a dump of the store or a timing leak of its index
/// yields nothing a client could present as a cookie. Its text form is 64 lowercase hex
/// digits, safe as a file name on every file system and as part of a Redis key or SQL value.
///
/// # Examples
///
/// ```
/// use fastsession::Key;
/// use fastsession::session::SessionId;
/// use fastsession::store::IdHasher;
///
/// let hasher = IdHasher::new(&Key::generate()?);
/// let key = hasher.hash(&SessionId::generate()?);
/// assert_eq!(key.to_hex().len(), 64);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StorageKey([u8; 32]);

impl std::hash::Hash for StorageKey {
    /// Hashes the first 8 bytes only: the key is an HMAC output under a secret key, so they
    /// are already uniform and no client can aim for collisions.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// A [`BuildHasher`](std::hash::BuildHasher) for maps keyed by [`StorageKey`]: the key's own
/// first 8 bytes are the hash, with none of SipHash's work (see [`StorageKey`]'s `Hash`).
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use fastsession::store::{StorageKey, StorageKeyHash};
///
/// let mut records: HashMap<StorageKey, &str, StorageKeyHash> = HashMap::default();
/// records.insert(StorageKey::from_bytes([7; 32]), "record");
/// assert_eq!(records[&StorageKey::from_bytes([7; 32])], "record");
/// ```
pub type StorageKeyHash = std::hash::BuildHasherDefault<StorageKeyHasher>;

/// The [`Hasher`](std::hash::Hasher) of [`StorageKeyHash`]: keeps the last `u64` written.
/// Only for keys whose `Hash` writes one uniform `u64`, as [`StorageKey`]'s does.
#[derive(Debug, Default, Clone, Copy)]
pub struct StorageKeyHasher(u64);

impl std::hash::Hasher for StorageKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached by StorageKey; fold anything else in rather than ignore it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl StorageKey {
    /// The key whose bytes are `bytes` (for backends reading their own index back).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::StorageKey;
    ///
    /// // A backend reading its user index back from a binary column.
    /// let column: Vec<u8> = vec![0xab; 32];
    /// let bytes: [u8; 32] = column.as_slice().try_into().expect("32 bytes");
    /// let key = StorageKey::from_bytes(bytes);
    /// assert_eq!(key.as_bytes(), &[0xab; 32]);
    /// ```
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StorageKey(bytes)
    }

    /// Parses [`to_hex`](Self::to_hex) output; anything else is `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::StorageKey;
    ///
    /// // A file store lists its directory: each file is named by a key's hex digits.
    /// let key = StorageKey::from_bytes([0x5a; 32]);
    /// assert_eq!(StorageKey::from_hex(&key.to_hex()), Some(key));
    /// // Anything else in the directory is not a session.
    /// assert_eq!(StorageKey::from_hex("notes.txt"), None);
    /// assert_eq!(StorageKey::from_hex(&key.to_hex().to_uppercase()), None);
    /// ```
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(StorageKey(out))
    }

    /// The raw 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::IdHasher;
    /// use fastsession::session::SessionId;
    ///
    /// // What a database store binds as the row's `bytea` key.
    /// let key = IdHasher::random()?.hash(&SessionId::generate()?);
    /// let param: &[u8] = key.as_bytes();
    /// assert_eq!(param.len(), 32);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::StorageKey;
    ///
    /// // A file or key name that is safe anywhere: 64 lowercase hex digits.
    /// let name = StorageKey::from_bytes([0x01; 32]).to_hex();
    /// assert_eq!(name.len(), 64);
    /// assert!(name.starts_with("0101"));
    /// ```
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        self.push_hex(&mut out);
        out
    }

    /// Appends the 64 lowercase hex digits of [`to_hex`](Self::to_hex) to `out`, so that a
    /// backend can build a key name around them in one buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::StorageKey;
    ///
    /// let key = StorageKey::from_bytes([0xab; 32]);
    /// let mut name = String::from("s:");
    /// key.push_hex(&mut name);
    /// assert_eq!(name, format!("s:{}", key.to_hex()));
    /// ```
    pub fn push_hex(&self, out: &mut String) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 64];
        for (pair, b) in digits.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
        // One ASCII check of the whole buffer is cheaper than pushing 64 chars one by one.
        match std::str::from_utf8(&digits) {
            Ok(hex) => out.push_str(hex),
            Err(_) => unreachable!("hex digits are ASCII"),
        }
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A storage key is not a bearer secret; a short prefix helps correlate logs.
        write!(f, "StorageKey({}..)", &self.to_hex()[..12])
    }
}

/// Hashes session ids into [`StorageKey`]s with a key derived for that purpose.
///
/// Keep the key stable: changing it makes every stored session unreachable (cookie-key
/// rotation does not touch it).
#[derive(Clone)]
pub struct IdHasher {
    key: hmac::Key,
    /// Tells this hasher's keys from another's (equal for equal keys), so that a storage
    /// key remembered in a record is used only by a store that would compute the same.
    tag: u64,
}

impl IdHasher {
    /// A hasher whose HMAC key HKDF derives from `key` for the purpose `"session-id-hash"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Key;
    /// use fastsession::session::SessionId;
    /// use fastsession::store::IdHasher;
    ///
    /// // Sessions that outlive the process (files, a database) need the same key at every
    /// // start: load it from your secrets, as the cookie keys (`openssl rand -base64 32`).
    /// # let secret = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
    /// let key = Key::from_base64(secret)?;
    /// let id = SessionId::generate()?;
    /// assert_eq!(IdHasher::new(&key).hash(&id), IdHasher::new(&key).hash(&id));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn new(key: &Key) -> Self {
        let derived = key.derive("session-id-hash");
        let mut hasher = IdHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_slice()),
            tag: 0,
        };
        let tag = hasher.hash_tagged(b"hasher-tag", &[]);
        hasher.tag = u64::from_be_bytes(tag.0[..8].try_into().unwrap_or_default());
        hasher
    }

    /// A hasher with a random key, for stores that do not outlive the process.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`] if the OS random number generator fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::{IdHasher, MemoryBackend, ServerStore};
    ///
    /// // Memory does not outlive the process, so neither need its hashing key.
    /// let store = ServerStore::with_backend(MemoryBackend::new(1_000), IdHasher::random()?);
    /// # let _ = store;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn random() -> Result<Self> {
        Ok(IdHasher::new(&Key::generate()?.with_id(0)))
    }

    /// The storage key of `id`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::SessionId;
    /// use fastsession::store::IdHasher;
    ///
    /// // The backend stores the session under this key, never under the id: whoever reads the
    /// // storage cannot turn what they see into a cookie.
    /// let hasher = IdHasher::random()?;
    /// let id = SessionId::generate()?;
    /// assert_ne!(hasher.hash(&id).as_bytes(), id.as_bytes());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn hash(&self, id: &SessionId) -> StorageKey {
        self.hash_tagged(b"session", id.as_bytes())
    }

    /// A storage key for other records a store keeps beside sessions (revocation markers,
    /// per-user epochs); the tag keeps them apart from session keys.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::IdHasher;
    ///
    /// // A per-user record beside the sessions (a "log out everywhere" epoch), keyed so that it
    /// // can never collide with a session's key.
    /// let hasher = IdHasher::random()?;
    /// let epoch_key = hasher.hash_tagged(b"user-epoch", "ada".as_bytes());
    /// assert_ne!(epoch_key, hasher.hash_tagged(b"user-epoch", "bob".as_bytes()));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn hash_tagged(&self, tag: &[u8], data: &[u8]) -> StorageKey {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(tag);
        ctx.update(&[0]);
        ctx.update(data);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        StorageKey(out)
    }
}

impl fmt::Debug for IdHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdHasher { .. }")
    }
}

/// Where new session ids come from. The default is the OS CSPRNG; tests inject one that
/// returns an id already in use, to check that a create never overwrites.
pub trait IdSource: fmt::Debug + Send + Sync + 'static {
    /// A new id.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Random`] if no id can be made.
    fn generate(&self) -> Result<SessionId>;
}

/// Ids from the operating system's CSPRNG, 256 bits each.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsIdSource;

impl IdSource for OsIdSource {
    fn generate(&self) -> Result<SessionId> {
        SessionId::generate()
    }
}

/// A session as listed by [`ServerStore::sessions_of`]: what an account page can show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's storage key (not its id, which only the client holds).
    pub key: StorageKey,
    /// When the session was created.
    pub created: UnixTime,
    /// When it was last saved or refreshed.
    pub last_active: UnixTime,
    /// Whether it is a "remember me" session.
    pub persistent: bool,
}

/// Storage of records by [`StorageKey`], with the atomic operations a [`ServerStore`] needs.
///
/// Each method must be atomic with respect to the others on the same key, also across
/// processes when the storage is shared. `expires` is when the record may be deleted; a
/// backend with native expiry (a Redis TTL) uses it, others keep it for
/// [`reap`](Self::reap).
pub trait Backend: fmt::Debug + Send + Sync + 'static {
    /// `true` if every future this backend returns is ready when first polled: it does its
    /// work when called and never waits (no I/O, no async locks). The store then loads and
    /// saves through [`Store::load_now`] and [`Store::save_now`], without futures or copies
    /// of its own. Default `false`; a backend that says `true` and then returns a pending
    /// future fails that load or save with an error.
    fn is_immediate(&self) -> bool {
        false
    }

    /// The record under `key`, whether expired or not (the caller checks).
    fn read<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>>;

    /// Stores `record` under `key` only if nothing is there: `Ok(false)` if something is.
    fn create<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expires: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;

    /// If a record under `key` is live at `now` (per `expiry`), applies `changes` (new values
    /// from `from`) onto it with [`Record::apply`], sets its last activity to `now`, and
    /// returns `true`; otherwise deletes any expired record and returns `false`.
    ///
    /// Nothing of the merged record is returned: a backend on another machine need not send
    /// it back.
    fn update<'a>(&'a self, key: &'a StorageKey, update: Update<'a>)
    -> BoxFuture<'a, Result<bool>>;

    /// If a record under `key` is live at `now`, sets its last activity to `now` (never
    /// touching its data) and returns `true`.
    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        now: UnixTime,
        expiry: &'a Expiry,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Removes the record under `key` and returns it; of two concurrent takes, one gets it.
    fn take<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>>;

    /// Deletes up to `limit` records whose `expires` is at or before `now`; returns how many.
    fn reap(&self, now: UnixTime, limit: usize) -> BoxFuture<'_, Result<usize>>;

    /// Notes that the session under `key` belongs to `user` (for
    /// [`ServerStore::sessions_of`]). Links may go stale; readers check the record.
    fn link_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> BoxFuture<'a, Result<()>>;

    /// Removes a link made by [`link_user`](Self::link_user).
    fn unlink_user<'a>(&'a self, user: &'a str, key: &'a StorageKey) -> BoxFuture<'a, Result<()>>;

    /// The keys linked to `user`.
    fn user_keys<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Vec<StorageKey>>>;
}

/// The arguments of [`Backend::update`].
#[derive(Debug, Clone, Copy)]
pub struct Update<'a> {
    /// What the request changed.
    pub changes: &'a ChangeSet,
    /// The request's record, holding the new values.
    pub from: &'a Record,
    /// The current time.
    pub now: UnixTime,
    /// The expiry policy deciding whether the stored record is still live.
    pub expiry: &'a Expiry,
    /// When the session was last active before this request, as the request loaded it
    /// (`from.last_active()` is already `now`); `None` if the caller did not say.
    pub previously_active: Option<UnixTime>,
}

impl Update<'_> {
    /// Applies this update to `stored` if it is live; `None` if it expired.
    ///
    /// Backends that hold records in memory or read them into memory call this under their
    /// lock or transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::{Expiry, Record};
    /// use fastsession::store::Update;
    /// use fastsession::time::UnixTime;
    ///
    /// // A backend's `update`, for records it holds in memory (under its lock).
    /// fn update(slot: &mut Option<Record>, update: Update<'_>) -> bool {
    ///     match slot.take().and_then(|stored| update.apply_to(stored)) {
    ///         Some(merged) => { *slot = Some(merged); true }
    ///         None => false, // gone or expired: the save fails with SessionEnded
    ///     }
    /// }
    ///
    /// let now = UnixTime::from_secs(1_000);
    /// let session = Session::new_detached();
    /// session.set_persistent(true);
    /// let (changes, expiry) = (session.changes(), Expiry::default());
    /// let mut from = Record::new(now);
    /// from.set_persistent(true);
    /// let mut slot = Some(Record::new(now));
    /// assert!(update(&mut slot, Update { changes: &changes, from: &from, now, expiry: &expiry, previously_active: None }));
    /// assert!(slot.is_some_and(|r| r.is_persistent()));
    /// ```
    #[must_use]
    pub fn apply_to(&self, mut stored: Record) -> Option<Record> {
        self.expiry.check(&stored, self.now).ok()?;
        stored.apply(self.changes, self.from);
        stored.last_active = self.now;
        Some(stored)
    }

    /// `true` if the session is certainly live now, judged from what the request loaded: its
    /// creation time and [`previously_active`](Self::previously_active). The stored record
    /// can only be as live or more (a concurrent request may have been active since), so a
    /// backend may skip reading it back for liveness, provided it still makes sure the record
    /// exists. `false` when unknown or not live: the backend must check the stored record.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{ChangeSet, Expiry, Record};
    /// use fastsession::store::Update;
    /// use fastsession::time::UnixTime;
    ///
    /// let (loaded_at, now) = (UnixTime::from_secs(1_000), UnixTime::from_secs(1_030));
    /// let (changes, expiry) = (ChangeSet::default(), Expiry::default());
    /// let from = Record::new(loaded_at);
    /// let update = Update { changes: &changes, from: &from, now, expiry: &expiry, previously_active: Some(loaded_at) };
    /// // Active 30 seconds ago: live now, whatever the store holds. A remote backend may then
    /// // merge without reading the record's timestamps back first.
    /// assert!(update.is_live_as_loaded());
    /// assert!(!Update { previously_active: None, ..update }.is_live_as_loaded());
    /// ```
    #[must_use]
    pub fn is_live_as_loaded(&self) -> bool {
        // A deadline the request set is not the one the store holds: that one is unknown here.
        if self.changes.expires_at_changed() {
            return false;
        }
        // The shortest idle timeout (the anonymous one), whatever the record: a record live
        // under it is live under any.
        self.previously_active.is_some_and(|active| {
            let mut deadline = active
                .saturating_add(self.expiry.shortest_idle_timeout())
                .min(
                    self.from
                        .created()
                        .saturating_add(self.expiry.absolute_lifetime()),
                );
            if let Some(at) = self.from.expires_at() {
                deadline = deadline.min(at);
            }
            active <= self.now && self.now < deadline
        })
    }
}

/// A [`Store`] that keeps sessions on the server, in a [`Backend`], and only their id in the
/// cookie.
///
/// # Examples
///
/// ```
/// use fastsession::{CookieConfig, SessionConfig};
/// use fastsession::MemoryStore;
///
/// let store = MemoryStore::new()?;
/// let config = SessionConfig::new(store, CookieConfig::new("id")?);
/// # Ok::<(), fastsession::Error>(())
/// ```
pub struct ServerStore<B> {
    backend: B,
    hasher: IdHasher,
    ids: Box<dyn IdSource>,
    max_session_bytes: usize,
}

impl<B: Backend> ServerStore<B> {
    /// Sessions in `backend`, stored under ids hashed by `hasher`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Key;
    /// use fastsession::store::{IdHasher, MemoryBackend, ServerStore};
    /// use fastsession::{CookieConfig, SessionConfig};
    ///
    /// // Any `Backend`: a store crate's own constructor does this for its backend.
    /// let key = Key::generate()?; // in production: a stable key from your secrets
    /// let store = ServerStore::with_backend(MemoryBackend::new(10_000), IdHasher::new(&key));
    /// let config = SessionConfig::new(store, CookieConfig::new("id")?);
    /// # let _ = config;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_backend(backend: B, hasher: IdHasher) -> Self {
        ServerStore {
            backend,
            hasher,
            ids: Box::new(OsIdSource),
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
        }
    }

    /// Bounds each session's data ([`Record::data_len`]) at `max` bytes (default
    /// [`DEFAULT_MAX_SESSION_BYTES`]): a save over it fails with
    /// [`ErrorKind::SessionTooLarge`] and changes nothing, so that no client can make a session
    /// grow without end (a flash message per request, say).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    ///
    /// let store = MemoryStore::new()?.with_max_session_bytes(16 * 1024);
    /// assert_eq!(store.max_session_bytes(), 16 * 1024);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_max_session_bytes(mut self, max: usize) -> Self {
        self.max_session_bytes = max;
        self
    }

    /// The bound on each session's data, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::store::DEFAULT_MAX_SESSION_BYTES;
    ///
    /// assert_eq!(MemoryStore::new()?.max_session_bytes(), DEFAULT_MAX_SESSION_BYTES);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn max_session_bytes(&self) -> usize {
        self.max_session_bytes
    }

    /// This store with its backend changed by `f` (for a backend's own builder methods).
    pub(crate) fn map_backend(mut self, f: impl FnOnce(B) -> B) -> Self {
        self.backend = f(self.backend);
        self
    }

    /// Takes new ids from `ids` instead of the OS CSPRNG (for tests).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::testing::ScriptedIds;
    ///
    /// // A test that makes a new session draw an id already in use.
    /// let ids = ScriptedIds::new();
    /// let store = MemoryStore::new()?.with_id_source(ids.clone());
    /// assert_eq!(ids.drawn(), 0);
    /// # let _ = store;
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn with_id_source(mut self, ids: impl IdSource) -> Self {
        self.ids = Box::new(ids);
        self
    }

    /// The backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    ///
    /// // The backend's own methods, for a health page or a test.
    /// let store = MemoryStore::new()?;
    /// println!("{} sessions held", store.backend().len());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The storage key of `id`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::session::SessionId;
    ///
    /// // The key a session is listed under by `sessions_of`: this request's own session, to tell
    /// // it apart on an account page.
    /// let store = MemoryStore::new()?;
    /// let current = SessionId::generate()?; // the id in this request's cookie
    /// let key = store.storage_key(&current);
    /// assert_eq!(key, store.storage_key(&current));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn storage_key(&self, id: &SessionId) -> StorageKey {
        self.hasher.hash(id)
    }

    /// The storage key of `record`'s id: the one this store's hasher remembered in it at the
    /// load, or computed now.
    fn key_of(&self, record: &Record) -> Option<StorageKey> {
        let id = record.id()?;
        Some(match record.storage_key.as_deref() {
            Some(&(tag, key)) if tag == self.hasher.tag => key,
            _ => self.hasher.hash(id),
        })
    }

    /// Deletes up to `limit` expired records; returns how many.
    ///
    /// # Errors
    ///
    /// The backend's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::MemoryStore;
    /// use fastsession::time::UnixTime;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// // A maintenance task, now and then (or `spawn_reaper`): a backend without native expiry
    /// // keeps expired sessions until they are reaped, though none of them ever loads again.
    /// let store = MemoryStore::new()?;
    /// let reaped = store.reap(UnixTime::now(), 1_000).await?;
    /// assert_eq!(reaped, 0);
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn reap(&self, now: UnixTime, limit: usize) -> Result<usize> {
        self.backend.reap(now, limit).await
    }

    /// The live sessions tied to `user` with [`Session::set_user_id`](crate::Session::set_user_id).
    ///
    /// # Errors
    ///
    /// The backend's error.
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
        let mut out = Vec::new();
        for key in self.backend.user_keys(user).await? {
            match self.backend.read(&key).await? {
                Some(r) if r.user_id() == Some(user) && expiry.check(&r, now).is_ok() => {
                    out.push(SessionInfo {
                        key,
                        created: r.created,
                        last_active: r.last_active,
                        persistent: r.persistent,
                    })
                }
                _ => self.backend.unlink_user(user, &key).await?,
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
    /// The backend's error.
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
        let owned = self
            .backend
            .read(key)
            .await?
            .is_some_and(|r| r.user_id() == Some(user));
        let ended = owned && self.backend.take(key).await?.is_some();
        self.backend.unlink_user(user, key).await?;
        Ok(ended)
    }

    /// "Log out everywhere": ends every session of `user` except `keep` (typically the
    /// current one). Returns how many ended.
    ///
    /// # Errors
    ///
    /// The backend's error; sessions ended before it stay ended.
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
        let keep = keep.map(|id| self.hasher.hash(id));
        let mut ended = 0;
        for key in self.backend.user_keys(user).await? {
            if Some(key) != keep && self.end_session(user, &key).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn load_id(&self, request: LoadRequest<'_>) -> Result<Loaded> {
        let Some(id) = request.session_id() else {
            return Ok(Loaded::rejected(RejectReason::Malformed));
        };
        let key = self.hasher.hash(id);
        let Some(mut record) = self.backend.read(&key).await? else {
            return Ok(Loaded::rejected(RejectReason::UnknownId));
        };
        if let Err(reason) = request.expiry().check(&record, request.now()) {
            // Expired but not yet reaped: never returned, and deleted now.
            self.backend.take(&key).await?;
            return Ok(Loaded::rejected(reason));
        }
        record.id = Some(id.clone());
        record.storage_key = Some(Box::new((self.hasher.tag, key)));
        Ok(Loaded::found(record))
    }

    async fn save_record(&self, request: SaveRequest<'_>) -> Result<Saved> {
        let record = request.record();
        let current = self.key_of(record);
        let ended = || Error::new(ErrorKind::SessionEnded, "session ended by another request");
        let grows = matches!(
            request.kind(),
            SaveKind::Create | SaveKind::Update | SaveKind::Regenerate
        );
        if grows {
            let size = record.data_len();
            if size > self.max_session_bytes {
                crate::events::record(crate::events::Event::SessionTooLarge);
                return Err(Error::new(
                    ErrorKind::SessionTooLarge {
                        size,
                        limit: self.max_session_bytes,
                    },
                    "session not saved",
                ));
            }
        }
        match (request.kind(), current) {
            (SaveKind::Create, _) => self.create(record.clone(), request.expiry()).await,
            (SaveKind::Update, Some(key)) => {
                let update = Update {
                    changes: request.changes(),
                    from: record,
                    now: request.now(),
                    expiry: request.expiry(),
                    previously_active: request.previously_active(),
                };
                if !self.backend.update(&key, update).await? {
                    return Err(ended());
                }
                // A changed user is the request's: the merge took it from there.
                if let (Some(user), true) = (record.user_id(), request.changes().user_changed()) {
                    self.backend.link_user(user, &key).await?;
                }
                Ok(id_cookie(record.id().cloned()))
            }
            (SaveKind::Touch, Some(key)) => {
                if self
                    .backend
                    .touch(&key, request.now(), request.expiry())
                    .await?
                {
                    Ok(id_cookie(record.id().cloned()))
                } else {
                    Err(ended())
                }
            }
            (SaveKind::Regenerate, Some(key)) => self.regenerate(&key, &request).await,
            (SaveKind::Destroy, Some(key)) => {
                self.delete(&key).await?;
                Ok(Saved::Remove)
            }
            (SaveKind::Destroy, None) => Ok(Saved::Remove),
            (kind, None) => Err(Error::new(
                ErrorKind::Internal,
                format!("{kind:?} save of a session that has no id"),
            )),
        }
    }

    /// Moves the session under `key` to a new id with the request's changes.
    ///
    /// The new record is written before the old one is taken, so a failed write leaves the
    /// session as it was. Taking the old one decides between racing regenerations (and a
    /// destroy): the one that takes it wins; the others delete the record they wrote and
    /// report the session ended, so one session never has two live ids.
    async fn regenerate(&self, key: &StorageKey, request: &SaveRequest<'_>) -> Result<Saved> {
        let ended = || Error::new(ErrorKind::SessionEnded, "session ended by another request");
        let (changes, now, expiry) = (request.changes(), request.now(), request.expiry());
        let stays_anonymous = request.record().user_id().is_none();
        // An anonymous session moving within a full budget must not be the one its own new
        // record evicts: marked active now, it is the last in line.
        if stays_anonymous && !self.backend.touch(key, now, expiry).await? {
            return Err(ended());
        }
        let read = self.backend.read(key).await?.ok_or_else(ended)?;
        if expiry.check(&read, now).is_err() {
            return Err(ended());
        }
        let merge = |mut stored: Record| {
            stored.apply(changes, request.record());
            stored.set_last_active(now);
            stored
        };
        let saved = self.create(merge(read.clone()), expiry).await?;
        let Saved::Cookie {
            id: Some(new_id), ..
        } = &saved
        else {
            return Err(Error::new(
                ErrorKind::Internal,
                "a created session has no id",
            ));
        };
        let new_key = self.hasher.hash(new_id);
        let Some(old) = self.backend.take(key).await? else {
            self.delete(&new_key).await?;
            return Err(ended());
        };
        if let Some(user) = old.user_id() {
            self.backend.unlink_user(user, key).await?;
        }
        if old != read {
            // Another request saved between the read and the take: its changes are in `old`,
            // so the new record is written again from it. Nobody else knows the new id yet.
            self.delete(&new_key).await?;
            let mut again = merge(old);
            again.set_id(Some(new_id.clone()));
            if !self
                .backend
                .create(&new_key, &again, expiry.deadline(&again))
                .await?
            {
                return Err(Error::new(
                    ErrorKind::Store,
                    "the regenerated session's new record was taken",
                ));
            }
            if let Some(user) = again.user_id() {
                self.backend.link_user(user, &new_key).await?;
            }
        }
        Ok(saved)
    }

    /// Deletes the record under `key` and its user link.
    async fn delete(&self, key: &StorageKey) -> Result<()> {
        if let Some(old) = self.backend.take(key).await?
            && let Some(user) = old.user_id()
        {
            self.backend.unlink_user(user, key).await?;
        }
        Ok(())
    }

    /// Stores `record` under a new id, never over an existing record.
    async fn create(&self, mut record: Record, expiry: &Expiry) -> Result<Saved> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = self.ids.generate()?;
            let key = self.hasher.hash(&id);
            // No key remembered: backends would keep it, and the registry sets the id anew.
            record.id = Some(id);
            record.storage_key = None;
            if self
                .backend
                .create(&key, &record, expiry.deadline(&record))
                .await?
            {
                if let Some(user) = record.user_id() {
                    self.backend.link_user(user, &key).await?;
                }
                return Ok(id_cookie(record.id));
            }
            tracing::warn!(target: "fastsession::security", "new session id collided with a stored one; drawing another");
        }
        Err(Error::new(
            ErrorKind::Random,
            "every new session id collided with a stored one",
        ))
    }
}

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
    ) -> BoxFuture<'a, Result<()>>;

    /// `true` if `id` was revoked.
    fn is_revoked<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool>>;

    /// Ends every session of `user` last active at or before `at`, except the session `keep`
    /// (the one making the call, if it stays logged in); the marker lasts until `until`.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        at: UnixTime,
        keep: Option<&'a SessionId>,
        until: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;

    /// When the sessions of `user` were last ended, if they were, and whether `id` is the
    /// session that call kept.
    fn user_revocation<'a>(
        &'a self,
        user: &'a str,
        id: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<Option<UserRevocation>>>;

    /// `true` if a session was ended: its `id` revoked, or the sessions of its `user` ended
    /// at or after its `last_active` time (and it was not the one kept). One look-up, two
    /// with a user.
    fn has_ended<'a>(
        &'a self,
        id: Option<&'a SessionId>,
        user: Option<&'a str>,
        last_active: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
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
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
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
    /// `true` if a session last active at `last_active` is ended by it.
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
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
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
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let key = self.hasher.hash_tagged(b"revoked", id.as_bytes());
            // The user id puts the marker outside the anonymous budget, as its session was.
            let mut marker = Record::new(UnixTime::EPOCH);
            marker.set_user_id(user.map(str::to_owned));
            // Create-if-absent: of two concurrent calls, one creates.
            self.backend.create(&key, &marker, until).await
        })
    }

    fn is_revoked<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let key = self.hasher.hash_tagged(b"revoked", id.as_bytes());
            Ok(self.backend.read(&key).await?.is_some())
        })
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        at: UnixTime,
        keep: Option<&'a SessionId>,
        until: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let key = self.hasher.hash_tagged(b"user-revoked", user.as_bytes());
            let mut marker = Record::new(at);
            marker.set_user_id(Some(user.to_owned()));
            if let Some(keep) = keep {
                let kept = format!("\"{}\"", self.hasher.hash(keep).to_hex());
                let kept = serde_json::value::RawValue::from_string(kept)
                    .map_err(|e| Error::new(ErrorKind::Serialize, "kept session").with_source(e))?;
                marker.insert_value(KEPT.to_owned(), kept);
            }
            // The latest revocation wins; a concurrent one in between is as recent.
            self.backend.take(&key).await?;
            self.backend.create(&key, &marker, until).await?;
            Ok(())
        })
    }

    fn user_revocation<'a>(
        &'a self,
        user: &'a str,
        id: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<Option<UserRevocation>>> {
        Box::pin(async move {
            let key = self.hasher.hash_tagged(b"user-revoked", user.as_bytes());
            let Some(marker) = self.backend.read(&key).await? else {
                return Ok(None);
            };
            let kept = match (id, marker.value(KEPT)) {
                (Some(id), Some(kept)) => {
                    kept.get().trim_matches('"') == self.hasher.hash(id).to_hex()
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

fn id_cookie(id: Option<SessionId>) -> Saved {
    match id {
        Some(id) => Saved::Cookie {
            value: id.as_str().to_owned(),
            id: Some(id),
        },
        None => Saved::Remove,
    }
}

impl<B: Backend> Store for ServerStore<B> {
    fn cookie_content(&self) -> CookieContent {
        CookieContent::SessionId
    }

    fn load<'a>(&'a self, request: LoadRequest<'a>) -> BoxFuture<'a, Result<Loaded>> {
        Box::pin(self.load_id(request))
    }

    fn save<'a>(&'a self, request: SaveRequest<'a>) -> BoxFuture<'a, Result<Saved>> {
        Box::pin(self.save_record(request))
    }

    fn load_now(&self, request: LoadRequest<'_>) -> Option<Result<Loaded>> {
        self.backend
            .is_immediate()
            .then(|| at_once(self.load_id(request)))
    }

    fn save_now(&self, request: SaveRequest<'_>) -> Option<Result<Saved>> {
        self.backend
            .is_immediate()
            .then(|| at_once(self.save_record(request)))
    }
}

/// The output of a future over an immediate backend, polled once.
fn at_once<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => Err(Error::new(
            ErrorKind::Internal,
            "a backend that says it is immediate returned a pending future",
        )),
    }
}

impl<B: fmt::Debug> fmt::Debug for ServerStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerStore")
            .field("backend", &self.backend)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_round_trip_through_hex() {
        let hasher =
            IdHasher::new(&Key::from_secret(&[(0..32).collect::<Vec<u8>>()].concat()).unwrap());
        let key = hasher.hash(&SessionId::from_bytes([5; 32]));
        assert_eq!(StorageKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(StorageKey::from_hex(&key.to_hex().to_uppercase()), None);
        assert_eq!(StorageKey::from_hex("../etc"), None);
        assert_ne!(
            key.as_bytes(),
            SessionId::from_bytes([5; 32]).as_bytes(),
            "hashed, not raw"
        );
    }

    /// A memory backend whose every future waits once before it is ready, like one doing I/O,
    /// and that says it is immediate or not as told.
    #[derive(Debug)]
    struct Waiting {
        inner: crate::store::MemoryBackend,
        claims_immediate: bool,
    }

    /// Pending at the first poll, then the inner future's output.
    fn wait_once<'a, T: Send + 'a>(inner: BoxFuture<'a, T>) -> BoxFuture<'a, T> {
        Box::pin(async move {
            let mut waited = false;
            std::future::poll_fn(|cx| {
                if waited {
                    return std::task::Poll::Ready(());
                }
                waited = true;
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            })
            .await;
            inner.await
        })
    }

    impl Backend for Waiting {
        fn is_immediate(&self) -> bool {
            self.claims_immediate
        }
        fn read<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>> {
            wait_once(self.inner.read(key))
        }
        fn create<'a>(
            &'a self,
            key: &'a StorageKey,
            record: &'a Record,
            expires: UnixTime,
        ) -> BoxFuture<'a, Result<bool>> {
            wait_once(self.inner.create(key, record, expires))
        }
        fn update<'a>(
            &'a self,
            key: &'a StorageKey,
            update: Update<'a>,
        ) -> BoxFuture<'a, Result<bool>> {
            wait_once(self.inner.update(key, update))
        }
        fn touch<'a>(
            &'a self,
            key: &'a StorageKey,
            now: UnixTime,
            expiry: &'a Expiry,
        ) -> BoxFuture<'a, Result<bool>> {
            wait_once(self.inner.touch(key, now, expiry))
        }
        fn take<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, Result<Option<Record>>> {
            wait_once(self.inner.take(key))
        }
        fn reap(&self, now: UnixTime, limit: usize) -> BoxFuture<'_, Result<usize>> {
            wait_once(self.inner.reap(now, limit))
        }
        fn link_user<'a>(
            &'a self,
            user: &'a str,
            key: &'a StorageKey,
        ) -> BoxFuture<'a, Result<()>> {
            wait_once(self.inner.link_user(user, key))
        }
        fn unlink_user<'a>(
            &'a self,
            user: &'a str,
            key: &'a StorageKey,
        ) -> BoxFuture<'a, Result<()>> {
            wait_once(self.inner.unlink_user(user, key))
        }
        fn user_keys<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<Vec<StorageKey>>> {
            wait_once(self.inner.user_keys(user))
        }
    }

    /// An immediate backend loads and saves without a future; one that waits does not, and
    /// one that claims to be immediate but waits fails instead of losing the work.
    #[tokio::test]
    async fn only_immediate_backends_load_and_save_at_once() {
        use crate::store::{MemoryBackend, MemoryStore, Store};
        use std::time::Duration;

        let expiry = Expiry::default()
            .with_idle_timeout(Duration::from_secs(60))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(600))
            .unwrap();
        let now = UnixTime::now();
        let (changes, record) = (ChangeSet::default(), Record::new(now));
        let create = || SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);

        let memory = MemoryStore::new().unwrap();
        let Some(Ok(Saved::Cookie {
            value,
            id: Some(id),
        })) = memory.save_now(create())
        else {
            panic!("the memory store saves at once");
        };
        let request = LoadRequest::new("id", &value, Some(&id), &expiry, now);
        let loaded = memory.load_now(request).expect("at once").unwrap();
        assert!(loaded.into_parts().0.is_ok(), "found");

        let waiting = |claims_immediate| {
            ServerStore::with_backend(
                Waiting {
                    inner: MemoryBackend::new(16),
                    claims_immediate,
                },
                IdHasher::random().unwrap(),
            )
        };
        let honest = waiting(false);
        assert!(honest.save_now(create()).is_none());
        let Ok(Saved::Cookie {
            value,
            id: Some(id),
        }) = honest.save(create()).await
        else {
            panic!("saved with a future");
        };
        let request = LoadRequest::new("id", &value, Some(&id), &expiry, now);
        assert!(honest.load_now(request).is_none());
        assert!(honest.load(request).await.unwrap().into_parts().0.is_ok());

        let lying = waiting(true);
        let error = lying.save_now(create()).expect("answered").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal);
        let error = lying.load_now(request).expect("answered").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal);
    }

    /// The storage key computed at the load is reused by the save of the same id through a
    /// store with the same hasher key, and by nothing else.
    #[tokio::test]
    async fn a_loaded_record_remembers_its_storage_key_for_its_own_hasher() {
        use crate::store::{MemoryStore, Store};
        use std::time::Duration;

        let store = MemoryStore::new().unwrap();
        let expiry = Expiry::default()
            .with_idle_timeout(Duration::from_secs(60))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(600))
            .unwrap();
        let now = UnixTime::now();
        let (changes, record) = (ChangeSet::default(), Record::new(now));
        let create = SaveRequest::new("id", SaveKind::Create, &record, &changes, &expiry, now);
        let Ok(Saved::Cookie {
            value,
            id: Some(id),
        }) = store.save(create).await
        else {
            panic!("created");
        };
        let request = LoadRequest::new("id", &value, Some(&id), &expiry, now);
        let loaded = store.load(request).await.unwrap().into_parts().0.unwrap();
        let key = store.storage_key(&id);
        assert_eq!(
            loaded.storage_key.as_deref(),
            Some(&(store.hasher.tag, key))
        );
        assert_eq!(store.key_of(&loaded), Some(key));

        // Another hasher's memo is ignored, a forged one included.
        let other = IdHasher::random().unwrap();
        assert_ne!(other.tag, store.hasher.tag);
        let mut foreign = loaded.clone();
        foreign.storage_key = Some(Box::new((other.tag, other.hash(&id))));
        assert_eq!(store.key_of(&foreign), Some(key));
        // A new id forgets the memo; the same id keeps it.
        let mut renamed = loaded.clone();
        renamed.set_id(Some(id.clone()));
        assert_eq!(renamed.storage_key, loaded.storage_key);
        let new_id = SessionId::from_bytes([9; 32]);
        renamed.set_id(Some(new_id.clone()));
        assert_eq!(renamed.storage_key, None);
        assert_eq!(store.key_of(&renamed), Some(store.storage_key(&new_id)));
        // Equal keys give equal tags, so clones and rebuilt hashers agree.
        let secret = Key::from_secret(&(0..32).collect::<Vec<u8>>())
            .unwrap()
            .with_id(3);
        assert_eq!(IdHasher::new(&secret).tag, IdHasher::new(&secret).tag);
    }

    #[test]
    fn liveness_as_loaded_agrees_with_the_expiry_check() {
        use std::time::Duration;

        let expiry = Expiry::default()
            .with_idle_timeout(Duration::from_secs(30))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(100))
            .unwrap();
        let changes = ChangeSet::default();
        let from = Record::new(UnixTime::from_secs(1_000));
        let update = |active: Option<u64>, now: u64| Update {
            changes: &changes,
            from: &from,
            now: UnixTime::from_secs(now),
            expiry: &expiry,
            previously_active: active.map(UnixTime::from_secs),
        };
        for active in 1_000..1_100 {
            for now in active..1_140 {
                let mut loaded = from.clone();
                loaded.last_active = UnixTime::from_secs(active);
                let live = expiry.check(&loaded, UnixTime::from_secs(now)).is_ok();
                assert_eq!(update(Some(active), now).is_live_as_loaded(), live);
            }
        }
        assert!(!update(None, 1_001).is_live_as_loaded(), "unknown: check");
        assert!(
            !update(Some(1_010), 1_005).is_live_as_loaded(),
            "active after now: check"
        );
    }

    #[test]
    fn liveness_as_loaded_honours_the_records_own_deadline() {
        use std::time::Duration;

        let expiry = Expiry::default()
            .with_idle_timeout(Duration::from_secs(30))
            .unwrap()
            .with_absolute_lifetime(Duration::from_secs(100))
            .unwrap();
        let mut from = Record::new(UnixTime::from_secs(1_000));
        from.set_expires_at(Some(UnixTime::from_secs(1_010)));
        let unchanged = ChangeSet::default();
        let update = |changes, now| Update {
            changes,
            from: &from,
            now: UnixTime::from_secs(now),
            expiry: &expiry,
            previously_active: Some(UnixTime::from_secs(1_000)),
        };
        assert!(update(&unchanged, 1_009).is_live_as_loaded());
        assert!(!update(&unchanged, 1_010).is_live_as_loaded());
        // Changed by the request: the stored deadline is unknown, so the store must check.
        let changed = ChangeSet {
            expires_at_changed: true,
            ..ChangeSet::default()
        };
        assert!(!update(&changed, 1_001).is_live_as_loaded());
    }
}
