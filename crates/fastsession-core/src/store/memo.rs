//! What a store remembers of a session between its load and its save.

use std::any::Any;
use std::fmt;

/// A value a store attaches to a session it loads ([`Loaded::with_memo`](super::Loaded::with_memo))
/// and gets back when it saves that session ([`SaveRequest::memo`](super::SaveRequest::memo)),
/// opaque to everyone else.
///
/// A server-side store keeps the storage key it computed, so the save does not hash the id
/// again; a store reading another format keeps what that format holds and sessions cannot
/// (Go types, say), so that its save can write it back.
///
/// # Examples
///
/// ```
/// use fastsession::store::Memo;
///
/// let memo = Memo::new(7_u32);
/// assert_eq!(memo.get::<u32>(), Some(&7));
/// // Another type's memo is not this store's.
/// assert_eq!(memo.get::<String>(), None);
/// ```
pub struct Memo(Box<dyn Any + Send + Sync>);

impl Memo {
    /// Returns a memo holding `value`.
    #[must_use]
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Memo(Box::new(value))
    }

    /// Returns the value, if it is a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::store::Memo;
    ///
    /// assert_eq!(Memo::new("key").get::<&str>(), Some(&"key"));
    /// ```
    #[must_use]
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Memo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Memo")
    }
}
