//! What one request changed in a session.

use std::collections::BTreeMap;

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
    pub(crate) values: BTreeMap<String, Change>,
    /// Of the keys in `values` set to an integer by increments only: the sum of those
    /// increments.
    pub(crate) deltas: BTreeMap<String, i64>,
    pub(crate) flashes_cleared: bool,
    pub(crate) flashes: BTreeMap<String, Change>,
    pub(crate) persistent_changed: bool,
    pub(crate) user_changed: bool,
    pub(crate) expires_at_changed: bool,
}

impl ChangeSet {
    /// `true` if the request changed nothing.
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

    /// `true` if every value was removed before the changes in [`values`](Self::values).
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

    /// Each value key the request changed, in key order.
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

    /// The sum of the [increments](super::Session::increment) this request made to `key`, if
    /// all it did to `key` was increment it. The key is then also in [`values`](Self::values)
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

    /// Each key this request only [incremented](super::Session::increment), with the sum of
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

    /// Takes out of these changes the increments `sent` already saved, for a session changed
    /// again while its save ran: the next save must send only what was added since, because a
    /// store adds a delta each time it gets one. A key left with nothing to add has nothing
    /// to send.
    pub(crate) fn forget_sent_deltas(&mut self, sent: &ChangeSet) {
        for (key, sent_delta) in &sent.deltas {
            let Some(delta) = self.deltas.get_mut(key) else {
                continue; // set or removed since: sent whole, as it should be
            };
            // The current sum includes the sent one, so the difference fits.
            *delta = delta.saturating_sub(*sent_delta);
            if *delta == 0 {
                self.deltas.remove(key);
                self.values.remove(key);
            }
        }
    }

    /// `true` if every flash list was removed before the changes in [`flashes`](Self::flashes).
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

    /// Each flash key the request changed (a list added to, or taken), in key order.
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

    /// `true` if the request set or cleared the session's user.
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

    /// `true` if the request switched "remember me" on or off.
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

    /// `true` if the request set or cleared the session's own deadline
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

    #[test]
    fn increments_already_saved_are_not_sent_again() {
        let mut sent = ChangeSet::default();
        sent.values.insert("hits".into(), Change::Set);
        sent.deltas.insert("hits".into(), 2);
        sent.values.insert("seen".into(), Change::Set);
        sent.deltas.insert("seen".into(), 1);

        // While the save ran: `hits` went up by 3 more, `seen` not at all, `name` was set.
        let mut now = sent.clone();
        now.deltas.insert("hits".into(), 5);
        now.values.insert("name".into(), Change::Set);
        now.forget_sent_deltas(&sent);

        assert_eq!(now.delta("hits"), Some(3));
        assert_eq!(now.delta("seen"), None);
        let keys: Vec<_> = now.values().map(|(k, _)| k).collect();
        assert_eq!(keys, ["hits", "name"], "nothing left to send for `seen`");
    }
}
