//! The session handle's flash messages: added, read once, or peeked at.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Change, DEFAULT_FLASH_KEY, Session, from_raw, to_raw};
use crate::error::Result;

impl Session {
    /// Adds a flash message under the default key, [`DEFAULT_FLASH_KEY`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialize`](crate::ErrorKind::Serialize) if `value` cannot be represented as
    /// JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// // Before a redirect:
    /// session.add_flash("Profile saved.")?;
    /// // On the page after it:
    /// assert_eq!(session.take_flashes::<String>()?, ["Profile saved."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn add_flash(&self, value: impl Serialize) -> Result<()> {
        self.add_flash_under(DEFAULT_FLASH_KEY, value)
    }

    /// Adds a flash message under `key`, after any already there.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Serialize`](crate::ErrorKind::Serialize) if `value` cannot be represented as
    /// JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash_under("errors", "Name is required.")?;
    /// assert!(session.take_flashes::<String>()?.is_empty());
    /// assert_eq!(session.take_flashes_under::<String>("errors")?, ["Name is required."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn add_flash_under(&self, key: &str, value: impl Serialize) -> Result<()> {
        let raw = to_raw(&value)?;
        let mut state = self.lock();
        state
            .record
            .flashes_mut()
            .entry(key.to_owned())
            .or_default()
            .push(raw);
        state.changes.flashes.insert(key.to_owned(), Change::Set);
        Ok(())
    }

    /// Reads and removes the flash messages under the default key, oldest first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`](crate::ErrorKind::Deserialize) if a message is not a `T`; the
    /// messages then stay.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash("one")?;
    /// session.add_flash("two")?;
    /// assert_eq!(session.take_flashes::<String>()?, ["one", "two"]);
    /// assert!(session.take_flashes::<String>()?.is_empty());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn take_flashes<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.take_flashes_under(DEFAULT_FLASH_KEY)
    }

    /// Reads and removes the flash messages under `key`, oldest first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`](crate::ErrorKind::Deserialize) if a message is not a `T`; the
    /// messages then stay.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Notice { level: String, text: String }
    ///
    /// session.add_flash_under("notices", Notice { level: "info".into(), text: "Welcome".into()
    /// })?;
    /// let notices: Vec<Notice> = session.take_flashes_under("notices")?;
    /// assert_eq!(notices[0].text, "Welcome");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn take_flashes_under<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        let mut state = self.lock();
        let Some(list) = state.record.flash_list(key) else {
            return Ok(Vec::new());
        };
        let taken = list
            .iter()
            .map(|raw| from_raw(raw))
            .collect::<Result<Vec<T>>>()?;
        state.record.flashes_mut().remove(key);
        state
            .changes
            .flashes
            .insert(key.to_owned(), Change::Removed);
        Ok(taken)
    }

    /// Reads the flash messages under the default key, oldest first, leaving them in place:
    /// the session is not modified, and a later request (or [`take_flashes`](Self::take_flashes))
    /// still gets them.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`](crate::ErrorKind::Deserialize) if a message is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash("Saved.")?;
    /// let before = session.changes();
    /// assert_eq!(session.peek_flashes::<String>()?, ["Saved."]);
    /// assert_eq!(session.changes(), before); // peeking records nothing
    /// assert_eq!(session.take_flashes::<String>()?, ["Saved."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn peek_flashes<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.peek_flashes_under(DEFAULT_FLASH_KEY)
    }

    /// Reads the flash messages under `key`, oldest first, leaving them in place (see
    /// [`peek_flashes`](Self::peek_flashes)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Deserialize`](crate::ErrorKind::Deserialize) if a message is not a `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Session;
    ///
    /// let session = Session::new_detached();
    /// session.add_flash_under("errors", "Name is required.")?;
    /// // A layout shows how many errors there are; the page itself takes them.
    /// assert_eq!(session.peek_flashes_under::<String>("errors")?.len(), 1);
    /// assert_eq!(session.take_flashes_under::<String>("errors")?, ["Name is required."]);
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn peek_flashes_under<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>> {
        let state = self.lock();
        state.record.flash_list(key).map_or(Ok(Vec::new()), |list| {
            list.iter().map(|raw| from_raw(raw)).collect()
        })
    }
}
