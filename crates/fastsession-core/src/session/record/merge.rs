//! Merging a request's changes onto a stored record.

use super::{Record, Values, put};
use crate::session::KeyMap;
use crate::session::changes::{Change, ChangeSet};

impl Record {
    /// Applies the changes a request made (`changes`, with new values taken from `from`) onto
    /// this record, leaving every key the request did not touch as it is here.
    ///
    /// This is the merge that lets two concurrent requests that change different keys both
    /// persist. Timestamps and the id are left alone; the persistence flag follows `from` if
    /// the request changed it.
    ///
    /// A key the request only [incremented](crate::Session::increment) (it has a
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
            self.clear_values();
        }
        if !changes.values.is_empty() {
            merge_values(self.values_mut(), changes, &from.values);
        }
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
}

/// [`merge`] for values: a key with a delta gets it added to the value held (see
/// [`Record::apply`]).
fn merge_values(target: &mut Values, changes: &ChangeSet, from: &Values) {
    for (key, change) in &changes.values {
        match (change, changes.deltas.get(key), from.get(key)) {
            (Change::Set, Some(&delta), _) => add(target, key, delta),
            (Change::Set, None, Some(v)) => put(target, key, v.clone()),
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
        put(values, key, raw);
    }
}

fn merge<V: Clone>(target: &mut KeyMap<V>, changes: &KeyMap<Change>, from: &KeyMap<V>) {
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
    use super::super::tests::raw;
    use super::*;
    use crate::time::UnixTime;

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
            stored.insert_value(k.into(), raw(v));
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
            from.insert_value(k.into(), raw(seen));
        }
        changes.values.insert("set".into(), Change::Set);
        from.insert_value("set".into(), raw("7"));
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
}
