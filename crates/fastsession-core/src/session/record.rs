//! The stored form of a session, and its byte encoding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::changes::{Change, ChangeSet};
use super::id::{ID_BYTES, SessionId};
use crate::time::UnixTime;

/// Values by key, each kept as its JSON text.
pub(crate) type Values = BTreeMap<String, Box<RawValue>>;
/// Flash messages by key, oldest first.
pub(crate) type Flashes = BTreeMap<String, Vec<Box<RawValue>>>;

const FLAG_PERSISTENT: u8 = 1;
const FLAG_HAS_ID: u8 = 2;
/// The record carries its own deadline ([`Record::expires_at`]). A flag rather than a new
/// layout, so that records written before it existed (no flag) read as they always did; a
/// build that predates it refuses such a record as it refuses any unknown flag.
const FLAG_EXPIRES_AT: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_PERSISTENT | FLAG_HAS_ID | FLAG_EXPIRES_AT;
const FIXED_LEN: usize = 1 + 8 + 8;
/// Deepest JSON nesting a record may hold (the body object and its maps count).
const MAX_DEPTH: usize = 64;

/// Everything a store keeps of one session: values, flashes, timestamps and the
/// "remember me" flag.
///
/// Stores receive it in a `SaveRequest` and return it from `Store::load` (see the `store`
/// module). [`to_bytes`](Self::to_bytes) / [`from_bytes`](Self::from_bytes) give a compact,
/// versioned encoding that stores may use.
///
/// # Examples
///
/// ```
/// use fastsession::session::Record;
/// use fastsession::time::UnixTime;
///
/// let record = Record::new(UnixTime::from_secs(100));
/// let bytes = record.to_bytes();
/// assert_eq!(Record::from_bytes(&bytes).unwrap(), record);
/// ```
#[derive(Clone)]
pub struct Record {
    values: Values,
    flashes: Flashes,
    created: UnixTime,
    last_active: UnixTime,
    persistent: bool,
    id: Option<SessionId>,
    user: Option<String>,
    /// The session's own deadline, if the application set one; it can only end the session
    /// earlier than the expiry policy would.
    expires_at: Option<UnixTime>,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    #[serde(rename = "v", skip_serializing_if = "BTreeMap::is_empty")]
    values: &'a Values,
    #[serde(rename = "f", skip_serializing_if = "BTreeMap::is_empty")]
    flashes: &'a Flashes,
    #[serde(rename = "u", skip_serializing_if = "Option::is_none")]
    user: &'a Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(rename = "v", default, deserialize_with = "unique_keys")]
    values: Values,
    #[serde(rename = "f", default, deserialize_with = "unique_keys")]
    flashes: Flashes,
    #[serde(rename = "u", default)]
    user: Option<String>,
}

/// A JSON object as a map, refusing duplicate keys (serde would keep the last silently).
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object with unique keys")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                if out.insert(key, value).is_some() {
                    return Err(serde::de::Error::custom("duplicate key"));
                }
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(Unique(std::marker::PhantomData))
}

impl std::fmt::Debug for Record {
    /// Keys, counts and times only: values may be secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .field(
                "flashes",
                &self
                    .flashes
                    .iter()
                    .map(|(k, v)| (k, v.len()))
                    .collect::<Vec<_>>(),
            )
            .field("created", &self.created)
            .field("last_active", &self.last_active)
            .field("persistent", &self.persistent)
            .field("id", &self.id)
            .field("has_user", &self.user.is_some())
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl PartialEq for Record {
    /// Equal if every field is, comparing values by their JSON text.
    fn eq(&self, other: &Self) -> bool {
        let same_values = self.values.len() == other.values.len()
            && self
                .values
                .iter()
                .zip(&other.values)
                .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.get() == v2.get());
        let same_flashes = self.flashes.len() == other.flashes.len()
            && self
                .flashes
                .iter()
                .zip(&other.flashes)
                .all(|((k1, l1), (k2, l2))| {
                    k1 == k2
                        && l1.len() == l2.len()
                        && l1.iter().zip(l2).all(|(a, b)| a.get() == b.get())
                });
        same_values
            && same_flashes
            && self.created == other.created
            && self.last_active == other.last_active
            && self.persistent == other.persistent
            && self.id == other.id
            && self.user == other.user
            && self.expires_at == other.expires_at
    }
}

/// A record's bytes were not a valid encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordError(());

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("session record is not valid")
    }
}

impl std::error::Error for RecordError {}

impl Record {
    /// An empty record created (and last active) at `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let now = UnixTime::from_secs(1_700_000_000);
    /// let record = Record::new(now);
    /// assert!(record.is_empty());
    /// assert_eq!((record.created(), record.last_active()), (now, now));
    /// ```
    #[must_use]
    pub fn new(now: UnixTime) -> Self {
        Record {
            values: Values::new(),
            flashes: Flashes::new(),
            created: now,
            last_active: now,
            persistent: false,
            id: None,
            user: None,
            expires_at: None,
        }
    }

    /// When the session was created.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{Expiry, Record};
    /// use fastsession::time::UnixTime;
    ///
    /// // The absolute lifetime counts from here, however active the session is.
    /// let record = Record::new(UnixTime::from_secs(1_000));
    /// let expiry = Expiry::default();
    /// assert!(expiry.deadline(&record) <= record.created().saturating_add(expiry.absolute_lifetime()));
    /// ```
    #[must_use]
    pub fn created(&self) -> UnixTime {
        self.created
    }

    /// When the session was last saved or refreshed.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_last_active(UnixTime::from_secs(1_060));
    /// // The idle timeout counts from the last save.
    /// assert_eq!(record.last_active().since(record.created()).as_secs(), 60);
    /// ```
    #[must_use]
    pub fn last_active(&self) -> UnixTime {
        self.last_active
    }

    /// Sets the last-activity time (stores refresh it on save and touch).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // A store that keeps the last activity in a column of its own puts it back on load.
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_last_active(UnixTime::from_secs(2_000));
    /// assert_eq!(record.last_active(), UnixTime::from_secs(2_000));
    /// ```
    pub fn set_last_active(&mut self, t: UnixTime) {
        self.last_active = t;
    }

    /// Whether the cookie outlives the browser session ("remember me").
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// assert!(!record.is_persistent());
    /// // "Remember me": the cookie gets a Max-Age, and the store may keep the session longer.
    /// record.set_persistent(true);
    /// assert!(record.is_persistent());
    /// ```
    #[must_use]
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The session id a server-side store or a revocation check keyed it by, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{Record, SessionId};
    /// use fastsession::time::UnixTime;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// // A record of a cookie store has none; a server-side store sets it.
    /// assert!(record.id().is_none());
    /// let id = SessionId::generate()?;
    /// record.set_id(Some(id.clone()));
    /// assert_eq!(record.id(), Some(&id));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn id(&self) -> Option<&SessionId> {
        self.id.as_ref()
    }

    /// Sets or clears the session id.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::{Record, SessionId};
    /// use fastsession::time::UnixTime;
    ///
    /// // A store that reads a record by its id gives it back with the id, and the id travels in
    /// // the record's bytes.
    /// let id = SessionId::generate()?;
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_id(Some(id.clone()));
    /// assert_eq!(Record::from_bytes(&record.to_bytes()).unwrap().id(), Some(&id));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn set_id(&mut self, id: Option<SessionId>) {
        self.id = id;
    }

    /// The values, as JSON texts by key.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.insert_value("cart".to_owned(), RawValue::from_string("[1,2]".to_owned())?);
    /// record.insert_value("theme".to_owned(), RawValue::from_string("\"dark\"".to_owned())?);
    /// // A store that keeps one column or hash field per key writes them one by one.
    /// let fields: Vec<(&str, &str)> = record.values().map(|(key, json)| (key, json.get())).collect();
    /// assert_eq!(fields, [("cart", "[1,2]"), ("theme", "\"dark\"")]);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn values(&self) -> impl ExactSizeIterator<Item = (&str, &RawValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// The pending flash messages, as JSON texts by key, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let json = |text: &str| RawValue::from_string(text.to_owned());
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_flash_list("_flash".to_owned(), vec![json("\"Saved\"")?]);
    /// record.set_flash_list("errors".to_owned(), vec![json("\"Name is required\"")?, json("\"Too long\"")?]);
    /// // A store that keeps one field per flash key writes each list as a JSON array.
    /// let lists: Vec<(&str, usize)> = record.flashes().map(|(key, list)| (key, list.len())).collect();
    /// assert_eq!(lists, [("_flash", 1), ("errors", 2)]);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn flashes(&self) -> impl ExactSizeIterator<Item = (&str, &[Box<RawValue>])> {
        self.flashes.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The user the application tied the session to, for "log out everywhere".
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_user_id(Some("ada".to_owned()));
    /// // A server-side store indexes the session under its user, for "log out everywhere".
    /// assert_eq!(record.user_id(), Some("ada"));
    /// ```
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The JSON text of the value under `key`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.insert_value("visits".to_owned(), RawValue::from_string("3".to_owned())?);
    /// assert_eq!(record.value("visits").map(RawValue::get), Some("3"));
    /// assert!(record.value("cart").is_none());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn value(&self, key: &str) -> Option<&RawValue> {
        self.values.get(key).map(|v| &**v)
    }

    /// The pending flash messages under `key`, oldest first.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// let saved = RawValue::from_string("\"Saved\"".to_owned())?;
    /// record.set_flash_list("_flash".to_owned(), vec![saved]);
    /// let list = record.flash_list("_flash").unwrap_or_default();
    /// assert_eq!(list.iter().map(|m| m.get()).collect::<Vec<_>>(), ["\"Saved\""]);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn flash_list(&self, key: &str) -> Option<&[Box<RawValue>]> {
        self.flashes.get(key).map(Vec::as_slice)
    }

    /// Sets the creation time (stores that keep the fields of a record apart rebuild it
    /// with these setters).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(200));
    /// record.set_created(UnixTime::from_secs(100));
    /// record.set_persistent(true);
    /// record.set_user_id(Some("ada".to_owned()));
    /// record.insert_value("n".to_owned(), RawValue::from_string("1".to_owned())?);
    /// record.set_flash_list("info".to_owned(), vec![RawValue::from_string("\"hi\"".to_owned())?]);
    /// assert_eq!(record.value("n").map(RawValue::get), Some("1"));
    /// assert_eq!(record.flash_list("info").map(<[_]>::len), Some(1));
    /// assert_eq!(Record::from_bytes(&record.to_bytes()).unwrap(), record);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn set_created(&mut self, t: UnixTime) {
        self.created = t;
    }

    /// Switches "remember me" on or off.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // A store that keeps the flag in a column of its own puts it back on load.
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_persistent(true);
    /// assert!(Record::from_bytes(&record.to_bytes()).unwrap().is_persistent());
    /// ```
    pub fn set_persistent(&mut self, persistent: bool) {
        self.persistent = persistent;
    }

    /// Sets or clears the user the session is tied to.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_user_id(Some("ada".to_owned()));
    /// assert!(!record.is_empty());
    /// record.set_user_id(None);
    /// assert!(record.is_empty());
    /// ```
    pub fn set_user_id(&mut self, user: Option<String>) {
        self.user = user;
    }

    /// The session's own deadline, if it has one (see
    /// [`Session::set_expires_at`](super::Session::set_expires_at)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// // Most sessions have none: the expiry policy alone ends them.
    /// assert_eq!(record.expires_at(), None);
    /// record.set_expires_at(Some(UnixTime::from_secs(4_600)));
    /// assert_eq!(record.expires_at(), Some(UnixTime::from_secs(4_600)));
    /// ```
    #[must_use]
    pub fn expires_at(&self) -> Option<UnixTime> {
        self.expires_at
    }

    /// Sets or clears the session's own deadline (stores that keep the fields of a record
    /// apart rebuild it with this).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(100));
    /// record.set_expires_at(Some(UnixTime::from_secs(700)));
    /// assert_eq!(record.expires_at(), Some(UnixTime::from_secs(700)));
    /// assert_eq!(Record::from_bytes(&record.to_bytes()).unwrap(), record);
    /// ```
    pub fn set_expires_at(&mut self, at: Option<UnixTime>) {
        self.expires_at = at;
    }

    /// Sets the value under `key` to a JSON text; returns the one it replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// // A store rebuilding a record from its hash fields: each value is already JSON text.
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// let old = record.insert_value("n".to_owned(), RawValue::from_string("1".to_owned())?);
    /// assert!(old.is_none());
    /// let old = record.insert_value("n".to_owned(), RawValue::from_string("2".to_owned())?);
    /// assert_eq!(old.map(|v| v.get().to_owned()).as_deref(), Some("1"));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn insert_value(&mut self, key: String, value: Box<RawValue>) -> Option<Box<RawValue>> {
        self.values.insert(key, value)
    }

    /// Removes the value under `key`; returns it.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.insert_value("token".to_owned(), RawValue::from_string("\"abc\"".to_owned())?);
    /// assert!(record.remove_value("token").is_some());
    /// assert!(record.remove_value("token").is_none());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn remove_value(&mut self, key: &str) -> Option<Box<RawValue>> {
        self.values.remove(key)
    }

    /// Sets the flash messages under `key` (oldest first); an empty list removes the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// record.set_flash_list("errors".to_owned(), vec![RawValue::from_string("\"Oops\"".to_owned())?]);
    /// assert_eq!(record.flashes().len(), 1);
    /// // Once the messages are taken, an empty list removes the key.
    /// record.set_flash_list("errors".to_owned(), Vec::new());
    /// assert_eq!(record.flashes().len(), 0);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn set_flash_list(&mut self, key: String, list: Vec<Box<RawValue>>) {
        if list.is_empty() {
            self.flashes.remove(&key);
        } else {
            self.flashes.insert(key, list);
        }
    }

    /// The values as the map they are kept in, for the session handle's reads that need
    /// the map itself (a copy of it, its keys).
    pub(crate) fn value_map(&self) -> &Values {
        &self.values
    }

    /// The values, for the session handle's writes (which also record the change).
    pub(crate) fn values_mut(&mut self) -> &mut Values {
        &mut self.values
    }

    /// The flash lists, for the session handle's writes (which also record the change).
    pub(crate) fn flashes_mut(&mut self) -> &mut Flashes {
        &mut self.flashes
    }

    /// The bytes of the record's data: keys, values (as JSON text), flash messages and user
    /// id. Stores bound a session by it, and count it against their budgets.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let mut record = Record::new(UnixTime::from_secs(100));
    /// assert_eq!(record.data_len(), 0);
    /// record.insert_value("n".to_owned(), RawValue::from_string("12".to_owned())?);
    /// record.set_user_id(Some("ada".to_owned()));
    /// assert_eq!(record.data_len(), 1 + 2 + 3);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn data_len(&self) -> usize {
        let values: usize = self
            .values
            .iter()
            .map(|(k, v)| k.len() + v.get().len())
            .sum();
        let flashes: usize = self
            .flashes
            .iter()
            .map(|(k, list)| k.len() + list.iter().map(|m| m.get().len()).sum::<usize>())
            .sum();
        values + flashes + self.user.as_ref().map_or(0, String::len)
    }

    /// `true` if the record has no values, no flashes and no user.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // A store may skip writing an empty record that was never saved.
    /// let mut record = Record::new(UnixTime::from_secs(1_000));
    /// assert!(record.is_empty());
    /// // "Remember me" alone is not data.
    /// record.set_persistent(true);
    /// assert!(record.is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.flashes.is_empty() && self.user.is_none()
    }

    /// Applies the changes a request made (`changes`, with new values taken from `from`) onto
    /// this record, leaving every key the request did not touch as it is here.
    ///
    /// This is the merge that lets two concurrent requests that change different keys both
    /// persist. Timestamps and the id are left alone; the persistence flag follows `from` if
    /// the request changed it.
    ///
    /// A key the request only [incremented](super::Session::increment) (it has a
    /// [`ChangeSet::delta`]) gets the delta added to the integer held here, so concurrent
    /// increments all count: a missing key counts as 0; a value here that is not an `i64`
    /// (another request stored something else), or a sum beyond `i64`, is left as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    /// use serde_json::value::RawValue;
    ///
    /// let json = |text: &str| RawValue::from_string(text.to_owned());
    /// let now = UnixTime::from_secs(1_000);
    /// // The store holds {a: 1, b: 2}: another request set `b` after this one loaded.
    /// let mut stored = Record::new(now);
    /// stored.insert_value("a".to_owned(), json("1")?);
    /// stored.insert_value("b".to_owned(), json("2")?);
    /// // This request loaded {a: 1} and set `a` to 5.
    /// let session = Session::new_detached();
    /// session.insert("a", 5)?;
    /// let mut request = Record::new(now);
    /// request.insert_value("a".to_owned(), json("5")?);
    /// stored.apply(&session.changes(), &request);
    /// // Both changes persist.
    /// assert_eq!(stored.value("a").map(RawValue::get), Some("5"));
    /// assert_eq!(stored.value("b").map(RawValue::get), Some("2"));
    ///
    /// // Another request saved `n = 10` meanwhile; this one loaded the session without `n`
    /// // and added 2: it sees 2...
    /// stored.insert_value("n".to_owned(), json("10")?);
    /// let session = Session::new_detached();
    /// assert_eq!(session.increment("n", 2)?, 2);
    /// let mut request = Record::new(now);
    /// request.insert_value("n".to_owned(), json("2")?);
    /// // ...and its save adds 2 to what is stored.
    /// stored.apply(&session.changes(), &request);
    /// assert_eq!(stored.value("n").map(RawValue::get), Some("12"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(&mut self, changes: &ChangeSet, from: &Record) {
        if changes.values_cleared {
            self.values.clear();
        }
        merge_values(&mut self.values, changes, &from.values);
        if changes.flashes_cleared {
            self.flashes.clear();
        }
        merge(&mut self.flashes, &changes.flashes, &from.flashes);
        if changes.persistent_changed {
            self.persistent = from.persistent;
        }
        if changes.user_changed {
            self.user.clone_from(&from.user);
        }
        if changes.expires_at_changed {
            self.expires_at = from.expires_at;
        }
    }

    /// The record's bytes: a fixed binary header, then the values and flashes as JSON.
    ///
    /// ```text
    /// flags (1) ‖ created (8, BE) ‖ last active (8, BE) ‖ [session id (32) if flag 2]
    ///   ‖ [expires at (8, BE) if flag 4] ‖ JSON
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // A store that keeps whole records as blobs (a file, a key-value entry).
    /// let record = Record::new(UnixTime::from_secs(1_000));
    /// let blob = record.to_bytes();
    /// assert_eq!(blob.len(), 17); // the flags and two timestamps: no data yet
    /// assert_eq!(Record::from_bytes(&blob).unwrap(), record);
    /// ```
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out);
        out
    }

    /// Appends [`to_bytes`](Self::to_bytes) to `out`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// // A header of the store's own, then the record, in one buffer.
    /// let record = Record::new(UnixTime::from_secs(1_000));
    /// let mut file = b"v1\n".to_vec();
    /// record.write_to(&mut file);
    /// assert_eq!(Record::from_bytes(&file[3..]).unwrap(), record);
    /// ```
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.persistent {
            flags |= FLAG_PERSISTENT;
        }
        if self.id.is_some() {
            flags |= FLAG_HAS_ID;
        }
        if self.expires_at.is_some() {
            flags |= FLAG_EXPIRES_AT;
        }
        out.push(flags);
        out.extend_from_slice(&self.created.as_secs().to_be_bytes());
        out.extend_from_slice(&self.last_active.as_secs().to_be_bytes());
        if let Some(id) = &self.id {
            out.extend_from_slice(id.as_bytes());
        }
        if let Some(at) = self.expires_at {
            out.extend_from_slice(&at.as_secs().to_be_bytes());
        }
        if !self.is_empty() {
            let body = BodyRef {
                values: &self.values,
                flashes: &self.flashes,
                user: &self.user,
            };
            // Serializing maps of strings to already-valid JSON cannot fail.
            if serde_json::to_writer(&mut *out, &body).is_err() {
                unreachable!("record body serializes");
            }
        }
    }

    /// Parses [`to_bytes`](Self::to_bytes) output.
    ///
    /// # Errors
    ///
    /// [`RecordError`] for truncated input, unknown flags, or JSON that is not a record body
    /// (including nesting deeper than 64 levels).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::session::Record;
    /// use fastsession::time::UnixTime;
    ///
    /// let record = Record::new(UnixTime::from_secs(1_000));
    /// assert_eq!(Record::from_bytes(&record.to_bytes()), Ok(record));
    /// // A truncated or foreign blob is an error (the store treats it as no session).
    /// assert!(Record::from_bytes(b"not a record").is_err());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let bad = RecordError(());
        if bytes.len() < FIXED_LEN {
            return Err(bad);
        }
        let (fixed, mut rest) = bytes.split_at(FIXED_LEN);
        let flags = fixed[0];
        if flags & !KNOWN_FLAGS != 0 {
            return Err(bad);
        }
        let secs = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        let created = UnixTime::from_secs(secs(&fixed[1..9]));
        let last_active = UnixTime::from_secs(secs(&fixed[9..17]));
        let id = if flags & FLAG_HAS_ID != 0 {
            if rest.len() < ID_BYTES {
                return Err(bad);
            }
            let (id, tail) = rest.split_at(ID_BYTES);
            rest = tail;
            Some(SessionId::from_bytes(id.try_into().unwrap_or_default()))
        } else {
            None
        };
        let expires_at = if flags & FLAG_EXPIRES_AT != 0 {
            if rest.len() < 8 {
                return Err(bad);
            }
            let (at, tail) = rest.split_at(8);
            rest = tail;
            Some(UnixTime::from_secs(secs(at)))
        } else {
            None
        };
        let body: Body = if rest.is_empty() {
            Body::default()
        } else if rest[0] != b'{'
            || (bracket_count(rest) > MAX_DEPTH && nesting_depth(rest) > MAX_DEPTH)
        {
            // serde would also read a struct from an array; raw values skip its depth limit.
            return Err(bad);
        } else {
            serde_json::from_slice(rest).map_err(|_| bad)?
        };
        Ok(Record {
            values: body.values,
            flashes: body.flashes,
            created,
            last_active,
            persistent: flags & FLAG_PERSISTENT != 0,
            id,
            user: body.user,
            expires_at,
        })
    }
}

/// How many `[` and `{` a text holds: a cheap bound on its nesting depth.
fn bracket_count(json: &[u8]) -> usize {
    json.iter().filter(|&&b| b == b'[' || b == b'{').count()
}

/// The deepest nesting of `[`/`{` in a JSON text, ignoring brackets inside strings.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// [`merge`] for values: a key with a delta gets it added to the value held (see
/// [`Record::apply`]).
fn merge_values(target: &mut Values, changes: &ChangeSet, from: &Values) {
    for (key, change) in &changes.values {
        match (change, changes.deltas.get(key), from.get(key)) {
            (Change::Set, Some(&delta), _) => add(target, key, delta),
            (Change::Set, None, Some(v)) => {
                target.insert(key.clone(), v.clone());
            }
            _ => {
                target.remove(key);
            }
        }
    }
}

/// Adds `delta` to the integer under `key` (a missing key counts as 0); a value that is not
/// an `i64`, or a sum beyond its range, is left as it is.
fn add(values: &mut Values, key: &str, delta: i64) {
    let sum = match values.get(key) {
        None => Some(delta),
        Some(raw) => serde_json::from_str::<i64>(raw.get())
            .ok()
            .and_then(|n| n.checked_add(delta)),
    };
    if let Some(raw) = sum.and_then(|n| serde_json::value::to_raw_value(&n).ok()) {
        values.insert(key.to_owned(), raw);
    }
}

fn merge<V: Clone>(
    target: &mut BTreeMap<String, V>,
    changes: &BTreeMap<String, Change>,
    from: &BTreeMap<String, V>,
) {
    for (key, change) in changes {
        match (change, from.get(key)) {
            (Change::Set, Some(v)) => {
                target.insert(key.clone(), v.clone());
            }
            _ => {
                target.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn round_trips_every_field() {
        let mut r = Record::new(UnixTime::from_secs(5));
        r.last_active = UnixTime::from_secs(9);
        r.persistent = true;
        r.id = Some(SessionId::from_bytes([7; ID_BYTES]));
        r.values.insert("name".into(), raw("\"gopher\""));
        r.flashes
            .insert("_flash".into(), vec![raw("1"), raw("{\"a\":[]}")]);
        let bytes = r.to_bytes();
        assert_eq!(Record::from_bytes(&bytes).unwrap(), r);
    }

    #[test]
    fn expires_at_round_trips_behind_its_flag() {
        let mut r = Record::new(UnixTime::from_secs(5));
        r.id = Some(SessionId::from_bytes([7; ID_BYTES]));
        r.values.insert("a".into(), raw("1"));
        r.expires_at = Some(UnixTime::from_secs(0x0102_0304_0506_0708));
        let bytes = r.to_bytes();
        assert_eq!(bytes[0], FLAG_HAS_ID | FLAG_EXPIRES_AT);
        assert_eq!(
            bytes[FIXED_LEN + ID_BYTES..FIXED_LEN + ID_BYTES + 8],
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(Record::from_bytes(&bytes).unwrap(), r);
        // Without an id, the deadline follows the timestamps directly.
        r.id = None;
        assert_eq!(Record::from_bytes(&r.to_bytes()).unwrap(), r);
        // The flag without its eight bytes is refused, not read as a body.
        let mut cut = Record::new(UnixTime::from_secs(5)).to_bytes();
        cut[0] = FLAG_EXPIRES_AT;
        cut.extend_from_slice(&[0; 7]);
        assert!(Record::from_bytes(&cut).is_err());
    }

    /// Bytes written before records had their own deadline (no flag 4) read as they did.
    #[test]
    fn records_written_before_expires_at_still_load() {
        let mut old = vec![FLAG_PERSISTENT];
        old.extend_from_slice(&100u64.to_be_bytes());
        old.extend_from_slice(&150u64.to_be_bytes());
        old.extend_from_slice(br#"{"v":{"n":1},"u":"ada"}"#);
        let r = Record::from_bytes(&old).unwrap();
        assert_eq!(r.expires_at(), None);
        assert!(r.is_persistent());
        assert_eq!(r.user_id(), Some("ada"));
        assert_eq!(r.value("n").map(RawValue::get), Some("1"));
        assert_eq!(r.to_bytes(), old, "and are written back byte for byte");
    }

    #[test]
    fn apply_takes_the_deadline_only_when_the_request_changed_it() {
        let mut stored = Record::new(UnixTime::from_secs(5));
        stored.expires_at = Some(UnixTime::from_secs(50));
        let from = Record::new(UnixTime::from_secs(5));
        stored.apply(&ChangeSet::default(), &from);
        assert_eq!(stored.expires_at, Some(UnixTime::from_secs(50)));
        let changed = ChangeSet {
            expires_at_changed: true,
            ..ChangeSet::default()
        };
        stored.apply(&changed, &from);
        assert_eq!(stored.expires_at, None);
    }

    #[test]
    fn apply_adds_deltas_to_the_stored_integers() {
        let mut stored = Record::new(UnixTime::EPOCH);
        for (k, v) in [
            ("n", "10"),
            ("text", "\"x\""),
            ("float", "1.5"),
            ("max", "9223372036854775807"),
            ("set", "1"),
        ] {
            stored.values.insert(k.into(), raw(v));
        }
        let mut changes = ChangeSet::default();
        let mut from = Record::new(UnixTime::EPOCH);
        for (k, delta, seen) in [
            ("n", 2, "2"),
            ("missing", 3, "3"),
            ("text", 1, "1"),
            ("float", 1, "1"),
            ("max", 1, "1"),
        ] {
            changes.values.insert(k.into(), Change::Set);
            changes.deltas.insert(k.into(), delta);
            from.values.insert(k.into(), raw(seen));
        }
        changes.values.insert("set".into(), Change::Set);
        from.values.insert("set".into(), raw("7"));
        stored.apply(&changes, &from);
        let value = |k: &str, r: &Record| r.value(k).map(|v| v.get().to_owned());
        assert_eq!(value("n", &stored).as_deref(), Some("12"));
        assert_eq!(value("missing", &stored).as_deref(), Some("3"));
        assert_eq!(
            value("set", &stored).as_deref(),
            Some("7"),
            "a key without a delta is set"
        );
        // Not an i64 any more, or the sum would overflow: the stored value stays.
        assert_eq!(value("text", &stored).as_deref(), Some("\"x\""));
        assert_eq!(value("float", &stored).as_deref(), Some("1.5"));
        assert_eq!(
            value("max", &stored).as_deref(),
            Some("9223372036854775807")
        );

        // After a clear, a delta counts from 0.
        changes.values_cleared = true;
        stored.apply(&changes, &from);
        assert_eq!(value("n", &stored).as_deref(), Some("2"));
        assert_eq!(value("text", &stored).as_deref(), Some("1"));
        assert_eq!(stored.values.len(), 6);
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(nesting_depth(br#"{"a":"[[[{\"]]"}"#), 1);
        assert_eq!(nesting_depth(br#"{"v":{"a":[[1]]}}"#), 4);
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let mut r = Record::new(UnixTime::EPOCH);
        r.values.insert("token".into(), raw("\"s3cr3t\""));
        r.flashes.insert("_flash".into(), vec![raw("\"hidden\"")]);
        let text = format!("{r:?}");
        assert!(
            text.contains("token") && !text.contains("s3cr3t") && !text.contains("hidden"),
            "{text}"
        );
    }

    #[test]
    fn empty_record_is_just_the_header() {
        assert_eq!(Record::new(UnixTime::EPOCH).to_bytes().len(), FIXED_LEN);
    }

    #[test]
    fn hostile_bodies_are_refused_without_panicking() {
        let header = Record::new(UnixTime::EPOCH).to_bytes();
        let deep = format!(
            "{{\"v\":{{\"a\":{}{}}}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        for body in [
            &b"{"[..],
            b"[]",
            b"{\"v\":[]}",
            b"{\"x\":{}}",
            b"{\"v\":{\"a\":}}",
            b"\xff\xfe",
            br#"{"v":{"a":1,"a":2}}"#,
            br#"{"f":{"_flash":[1],"_flash":[2]}}"#,
            deep.as_bytes(),
        ] {
            let mut bytes = header.clone();
            bytes.extend_from_slice(body);
            let shown: String = String::from_utf8_lossy(body).chars().take(40).collect();
            assert!(Record::from_bytes(&bytes).is_err(), "{shown}");
        }
        assert!(Record::from_bytes(&[0x80; 17]).is_err());
        assert!(Record::from_bytes(&[2; 20]).is_err());
    }
}
