//! The stored form of a session: its fields, private to this module; the byte encoding
//! ([`bytes`]) and the merge of a request's changes ([`merge`]) build on them.

mod bytes;
mod merge;

use std::ops::Deref;
use std::sync::Arc;

use serde_json::value::RawValue;

use super::KeyMap;
use super::id::SessionId;
use crate::time::UnixTime;

pub use bytes::RecordError;

/// Values by key, each kept as its JSON text.
pub(crate) type Values = KeyMap<Box<RawValue>>;
/// Flash messages by key, oldest first.
pub(crate) type Flashes = KeyMap<Vec<Box<RawValue>>>;

/// A record's values, shared by the copies of a record until one of them writes: a load from
/// the memory store copies a pointer instead of every key and value, and a request that only
/// reads never copies them. No values, no allocation.
#[derive(Clone, Default)]
pub(crate) struct SharedValues(Option<Arc<Values>>);

/// What a record without values reads.
static NO_VALUES: Values = KeyMap::new();

impl SharedValues {
    fn new(values: Values) -> Self {
        SharedValues((!values.is_empty()).then(|| Arc::new(values)))
    }

    /// The values to write to, copied first if another record shares them.
    fn make_mut(&mut self) -> &mut Values {
        Arc::make_mut(self.0.get_or_insert_with(Arc::default))
    }

    fn into_values(self) -> Values {
        self.0.map(Arc::unwrap_or_clone).unwrap_or_default()
    }
}

impl Deref for SharedValues {
    type Target = Values;

    fn deref(&self) -> &Values {
        self.0.as_deref().unwrap_or(&NO_VALUES)
    }
}

/// Sets `key` to `value`, copying the key only if the map does not hold it yet (rewriting a
/// key the session already had is the common case, in a handler and in a save's merge).
pub(super) fn put(values: &mut Values, key: &str, value: Box<RawValue>) {
    match values.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            values.insert(key.to_owned(), value);
        }
    }
}

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
    values: SharedValues,
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
                .zip(other.values.iter())
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

impl Record {
    /// Returns an empty record created (and last active) at `now`.
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
            values: SharedValues::default(),
            flashes: Flashes::new(),
            created: now,
            last_active: now,
            persistent: false,
            id: None,
            user: None,
            expires_at: None,
        }
    }

    /// Returns when the session was created.
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

    /// Returns when the session was last saved or refreshed.
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

    /// Returns whether the cookie outlives the browser session ("remember me").
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

    /// Returns the session id a server-side store or a revocation check keyed it by, if any.
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

    /// Returns the values, as JSON texts by key.
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

    /// Returns the pending flash messages, as JSON texts by key, oldest first.
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

    /// Returns the user the application tied the session to, for "log out everywhere".
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

    /// Returns the JSON text of the value under `key`.
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

    /// Returns the pending flash messages under `key`, oldest first.
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

    /// Returns the session's own deadline, if it has one (see
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
        self.values.make_mut().insert(key, value)
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
        if !self.values.contains_key(key) {
            return None;
        }
        self.values.make_mut().remove(key)
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

    /// The values, for the session handle's writes (which also record the change); copied
    /// first if another record shares them, so call it only to change something.
    pub(crate) fn values_mut(&mut self) -> &mut Values {
        self.values.make_mut()
    }

    /// Drops every value (without copying them if they are shared).
    pub(crate) fn clear_values(&mut self) {
        self.values = SharedValues::default();
    }

    /// Takes the values out, leaving none.
    pub(crate) fn take_values(&mut self) -> Values {
        std::mem::take(&mut self.values).into_values()
    }

    /// Replaces the values.
    pub(crate) fn set_values(&mut self, values: Values) {
        self.values = SharedValues::new(values);
    }

    /// The flash lists, for the session handle's writes (which also record the change).
    pub(crate) fn flashes_mut(&mut self) -> &mut Flashes {
        &mut self.flashes
    }

    /// Returns the bytes of the record's data: keys, values (as JSON text), flash messages and user
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

    /// Returns `true` if the record has no values, no flashes and no user.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON text for the record tests of this module and its children.
    pub(super) fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let mut r = Record::new(UnixTime::EPOCH);
        r.insert_value("token".into(), raw("\"s3cr3t\""));
        r.flashes.insert("_flash".into(), vec![raw("\"hidden\"")]);
        let text = format!("{r:?}");
        assert!(
            text.contains("token") && !text.contains("s3cr3t") && !text.contains("hidden"),
            "{text}"
        );
    }

    fn shared(a: &Record, b: &Record) -> bool {
        match (&a.values.0, &b.values.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    #[test]
    fn copies_share_values_until_one_writes() {
        let mut stored = Record::new(UnixTime::EPOCH);
        assert!(stored.values.0.is_none(), "no values, no allocation");
        stored.insert_value("a".into(), raw("1"));
        let mut copy = stored.clone();
        assert!(shared(&stored, &copy));
        // Reads, a remove of an absent key and clearing nothing copy nothing.
        assert_eq!(copy.value("a").map(RawValue::get), Some("1"));
        assert!(copy.remove_value("b").is_none());
        assert!(shared(&stored, &copy));
        copy.insert_value("a".into(), raw("2"));
        assert!(!shared(&stored, &copy));
        assert_eq!(stored.value("a").map(RawValue::get), Some("1"));
        assert_eq!(copy.value("a").map(RawValue::get), Some("2"));
        // Clearing a shared record leaves the other's values alone.
        let mut cleared = stored.clone();
        cleared.clear_values();
        assert!(cleared.is_empty());
        assert_eq!(stored.value("a").map(RawValue::get), Some("1"));
        // A merge without value changes keeps sharing.
        let mut merged = stored.clone();
        merged.apply(&crate::session::ChangeSet::default(), &copy);
        assert!(shared(&stored, &merged));
    }
}
