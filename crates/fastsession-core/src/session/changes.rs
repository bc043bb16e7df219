//! What one request changed in a session.

use super::KeyMap;

/// How a request changed one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The key was set; its new value is in the request's [`Record`](super::Record).
    Set,
    /// The key was removed.
    Removed,
}

/// The keys a request set or removed, so a server-side store can merge them onto the record it
/// holds instead of overwriting it.
///
/// Applying a change set is [`Record::apply`](super::Record::apply): first the clears, then each
/// key's last change.
///
/// A key the request only changed with [`Session::increment`](super::Session::increment) is a
/// [`Change::Set`] with a [`delta`](Self::delta) besides: a store that merges adds the delta to
/// the value it holds, so concurrent increments all count; one that cannot merge (a cookie)
/// writes the request's value, as for any set.
///
/// # Examples
///
/// ```
/// use fastsession::session::{Change, Session};
///
/// let session = Session::new_detached();
/// session.insert("a", 1)?;
/// session.insert("b", 2)?;
/// session.remove("b");
/// let changes = session.changes();
/// assert_eq!(changes.values().collect::<Vec<_>>(), [("a", Change::Set), ("b", Change::Removed)]);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub(crate) values_cleared: bool,
    pub(crate) values: KeyMap<Change>,
    /// Of the keys in `values` set to an integer by increments only: the sum of those
    /// increments.
    pub(crate) deltas: KeyMap<i64>,
    pub(crate) flashes_cleared: bool,
    pub(crate) flashes: KeyMap<Change>,
    pub(crate) persistent_changed: bool,
    pub(crate) user_changed: bool,
    pub(crate) expires_at_changed: bool,
}

impl ChangeSet {
    /// Returns `true` if the request changed nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // A request that only read: a server-side store has nothing to merge (at most a refresh).
    /// let _ = session.get::<String>("name")?;
    /// assert!(session.changes().is_empty());
    /// session.insert("name", "ada")?;
    /// assert!(!session.changes().is_empty());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.values_cleared
            && self.values.is_empty()
            && !self.flashes_cleared
            && self.flashes.is_empty()
            && !self.persistent_changed
            && !self.user_changed
            && !self.expires_at_changed
    }

    /// Returns `true` if every value was removed before the changes in [`values`](Self::values).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::Change;
    ///
    /// let session = Session::new_detached();
    /// session.insert("cart", [1, 2])?;
    /// session.clear();
    /// session.insert("theme", "dark")?;
    /// let changes = session.changes();
    /// // A store deletes every stored value first, then writes `theme`.
    /// assert!(changes.values_cleared());
    /// assert_eq!(changes.values().collect::<Vec<_>>(), [("theme", Change::Set)]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn values_cleared(&self) -> bool {
        self.values_cleared
    }

    /// Returns each value key the request changed, in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::Change;
    ///
    /// let session = Session::new_detached();
    /// session.insert("cart", [1, 2])?;
    /// session.remove("coupon");
    /// session.insert("coupon", "SPRING")?;
    /// session.remove("coupon");
    /// // Each key's last change only, in key order.
    /// let changes = session.changes();
    /// assert_eq!(changes.values().collect::<Vec<_>>(), [("cart", Change::Set), ("coupon", Change::Removed)]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn values(&self) -> impl Iterator<Item = (&str, Change)> {
        self.values.iter().map(|(k, c)| (k.as_str(), *c))
    }

    /// Returns the sum of the [increments](super::Session::increment) this request made to `key`,
    /// if all it did to `key` was increment it. The key is then also in [`values`](Self::values)
    /// as [`Change::Set`], and the request's record holds the value it computed; a store that
    /// merges adds the delta to the value it holds instead (see
    /// [`Record::apply`](super::Record::apply)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::Change;
    ///
    /// let session = Session::new_detached();
    /// session.increment("visits", 1)?;
    /// session.increment("visits", 2)?;
    /// session.insert("name", "ada")?;
    /// let changes = session.changes();
    /// assert_eq!(changes.delta("visits"), Some(3));
    /// assert_eq!(changes.delta("name"), None); // a plain set
    /// assert!(changes.values().any(|change| change == ("visits", Change::Set)));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn delta(&self, key: &str) -> Option<i64> {
        self.deltas.get(key).copied()
    }

    /// Returns each key this request only [incremented](super::Session::increment), with the sum of
    /// its increments, in key order (see [`delta`](Self::delta)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.increment("b", -1)?;
    /// session.increment("a", 5)?;
    /// assert_eq!(session.changes().deltas().collect::<Vec<_>>(), [("a", 5), ("b", -1)]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn deltas(&self) -> impl Iterator<Item = (&str, i64)> {
        self.deltas.iter().map(|(k, d)| (k.as_str(), *d))
    }

    /// Puts back in front of these changes the `earlier` ones a failed save took, so that the
    /// next save sends both: the earlier changes first, these over them. Increments of a
    /// key in both add up.
    pub(crate) fn put_back(&mut self, earlier: ChangeSet) {
        let later = std::mem::replace(self, earlier);
        if later.values_cleared {
            self.values_cleared = true;
            self.values.clear();
            self.deltas.clear();
        }
        for (key, change) in later.values {
            let delta = match (later.deltas.get(&key), self.values.get(&key)) {
                // Increments only, before and since: still increments only.
                (Some(&d), Some(_)) => self.deltas.get(&key).and_then(|e| e.checked_add(d)),
                // Incremented since, untouched before: the increments alone.
                (Some(&d), None) => Some(d),
                // Set or removed since: sent whole.
                (None, _) => None,
            };
            match delta {
                Some(d) => self.deltas.insert(key.clone(), d),
                None => self.deltas.remove(&key),
            };
            self.values.insert(key, change);
        }
        if later.flashes_cleared {
            self.flashes_cleared = true;
            self.flashes.clear();
        }
        self.flashes.extend(later.flashes);
        self.persistent_changed |= later.persistent_changed;
        self.user_changed |= later.user_changed;
        self.expires_at_changed |= later.expires_at_changed;
    }

    /// Returns `true` if every flash list was removed before the changes in
    /// [`flashes`](Self::flashes).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // Flash lists change key by key: adding a message clears nothing.
    /// session.add_flash("Saved")?;
    /// assert!(!session.changes().flashes_cleared());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn flashes_cleared(&self) -> bool {
        self.flashes_cleared
    }

    /// Returns each flash key the request changed (a list added to, or taken), in key order.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::session::Change;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash_under("errors", "Name is required")?;
    /// let changes = session.changes();
    /// assert_eq!(changes.flashes().collect::<Vec<_>>(), [("errors", Change::Set)]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn flashes(&self) -> impl Iterator<Item = (&str, Change)> {
        self.flashes.iter().map(|(k, c)| (k.as_str(), *c))
    }

    /// Returns `true` if the request set or cleared the session's user.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // A login: the store moves the session into the user's index.
    /// session.set_user_id("ada");
    /// assert!(session.changes().user_changed());
    /// ```
    #[must_use]
    pub fn user_changed(&self) -> bool {
        self.user_changed
    }

    /// Returns `true` if the request switched "remember me" on or off.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // "Remember me" ticked at login.
    /// session.set_persistent(true);
    /// assert!(session.changes().persistent_changed());
    /// ```
    #[must_use]
    pub fn persistent_changed(&self) -> bool {
        self.persistent_changed
    }

    /// Returns `true` if the request set or cleared the session's own deadline
    /// ([`Session::set_expires_at`](super::Session::set_expires_at)).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    /// use fastsession::time::UnixTime;
    ///
    /// let session = Session::new_detached();
    /// session.set_expires_at(Some(UnixTime::from_secs(2_000_000_000)));
    /// assert!(session.changes().expires_at_changed());
    /// ```
    #[must_use]
    pub fn expires_at_changed(&self) -> bool {
        self.expires_at_changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[(&str, Option<i64>)]) -> ChangeSet {
        let mut changes = ChangeSet::default();
        for (key, delta) in keys {
            changes.values.insert((*key).into(), Change::Set);
            if let Some(d) = delta {
                changes.deltas.insert((*key).into(), *d);
            }
        }
        changes
    }

    #[test]
    fn changes_put_back_after_a_failed_save_come_first() {
        // Sent: `hits` +2, `seen` +1, `name` set. Since: `hits` +3, `seen` set, `n` +4.
        let mut since = set(&[("hits", Some(3)), ("seen", None), ("n", Some(4))]);
        since.user_changed = true;
        since.put_back(set(&[("hits", Some(2)), ("seen", Some(1)), ("name", None)]));

        assert_eq!(since.delta("hits"), Some(5), "increments add up");
        assert_eq!(since.delta("seen"), None, "set since: sent whole");
        assert_eq!(since.delta("n"), Some(4));
        assert_eq!(since.delta("name"), None);
        let keys: Vec<_> = since.values().map(|(k, _)| k).collect();
        assert_eq!(keys, ["hits", "n", "name", "seen"]);
        assert!(since.user_changed() && !since.persistent_changed());
    }

    #[test]
    fn a_clear_since_the_failed_save_wins_over_what_it_sent() {
        let mut since = set(&[("n", Some(1))]);
        since.values_cleared = true;
        let mut earlier = set(&[("old", None), ("n", Some(5))]);
        earlier.flashes.insert("_flash".into(), Change::Set);
        since.put_back(earlier);
        assert!(since.values_cleared());
        let keys: Vec<_> = since.values().map(|(k, _)| k).collect();
        assert_eq!(keys, ["n"]);
        assert_eq!(
            since.delta("n"),
            Some(1),
            "counted from nothing after the clear"
        );
        assert_eq!(since.flashes().count(), 1, "flashes are not values");
    }

    #[test]
    fn increments_that_overflow_together_are_sent_whole() {
        let mut since = set(&[("n", Some(i64::MAX))]);
        since.put_back(set(&[("n", Some(1))]));
        assert_eq!(since.delta("n"), None);
        assert_eq!(since.values().count(), 1);
    }
}
