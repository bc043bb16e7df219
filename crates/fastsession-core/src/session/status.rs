//! What a request has done to its session so far.

/// What the next save will do with a session, as [`Session::status`](super::Session::status)
/// reports it (the states of tower-sessions and actix-session).
///
/// The strongest applies: a destroyed session is [`Purged`](Self::Purged) whatever else
/// changed, a regenerated one [`Renewed`](Self::Renewed) even if its values changed too. A
/// save resets it: a session saved without being destroyed is
/// [`Unchanged`](Self::Unchanged) again afterwards. A refresh that a read alone may cause (see
/// [`Expiry::needs_refresh`](super::Expiry::needs_refresh)) is not a change.
///
/// # Examples
///
/// ```
/// use fastsession::{Session, SessionStatus};
///
/// let session = Session::new_detached();
/// assert_eq!(session.status(), SessionStatus::Unchanged);
/// session.insert("cart", ["tea"])?;
/// assert_eq!(session.status(), SessionStatus::Changed);
/// session.regenerate();
/// assert_eq!(session.status(), SessionStatus::Renewed);
/// session.destroy();
/// assert_eq!(session.status(), SessionStatus::Purged);
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionStatus {
    /// Nothing to write: no value, flash, user, "remember me" or deadline changed.
    Unchanged,
    /// Values, flashes, the user id, "remember me" or the session's own deadline changed;
    /// the save writes them under the same id.
    Changed,
    /// [`regenerate`](super::Session::regenerate) was called: the save moves the session
    /// (with any changes) to a new id and ends the old one.
    Renewed,
    /// [`destroy`](super::Session::destroy) was called: the save ends the session and clears
    /// its cookie.
    Purged,
}

impl SessionStatus {
    /// Returns `true` unless [`Unchanged`](Self::Unchanged): the save will write something.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::SessionStatus;
    ///
    /// assert!(!SessionStatus::Unchanged.is_modified());
    /// assert!(SessionStatus::Purged.is_modified());
    /// ```
    #[must_use]
    pub fn is_modified(self) -> bool {
        self != SessionStatus::Unchanged
    }
}
