//! What a request's sessions give its response: the headers to write, and how the request
//! ended.

use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue};

// Only named by the docs' links.
#[cfg(doc)]
use super::Sessions;
use crate::error::Error;
use smallvec::SmallVec;

/// What a queued `Set-Cookie` line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// Gives the browser a session cookie.
    Sets,
    /// Clears the cookie of a session that ended.
    Clears,
}

/// How a request's handler ended, as an adapter tells [`Sessions::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// With a response the sessions are saved for.
    Succeeded,
    /// With an error or a server-error response: only what the handler saved itself persists.
    Failed,
}

/// What [`Sessions::finish`] leaves an adapter to write.
#[derive(Debug)]
#[must_use = "the Set-Cookie lines are lost unless written to the response"]
pub struct Finished {
    pub(super) headers: ResponseHeaders,
    pub(super) error: Option<Error>,
}

impl Finished {
    /// Returns the headers to write, and the error the response must become instead of the
    /// handler's, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::Sessions;
    /// use fastsession::http::{Handled, StoreErrorPolicy};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// let (headers, error) = sessions.finish(Handled::Failed, StoreErrorPolicy::Fail).await.into_parts();
    /// assert!(error.is_none() && !headers.vary_cookie());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_parts(self) -> (ResponseHeaders, Option<Error>) {
        (self.headers, self.error)
    }
}

/// The headers a response needs for its sessions, from
/// [`Sessions::take_response_headers`].
#[derive(Debug, Clone, Default)]
#[must_use = "the Set-Cookie lines are lost unless written to the response"]
pub struct ResponseHeaders {
    pub(super) vary_cookie: bool,
    /// Sorted by cookie name.
    pub(super) set_cookies: SmallVec<[(HeaderValue, Line); 1]>,
    pub(super) cache_control_no_store: bool,
}

impl ResponseHeaders {
    /// Returns the response depends on the request's cookies: add `Vary: Cookie`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?;
    /// // A framework with its own header types adds `Vary: Cookie` itself.
    /// assert!(sessions.take_response_headers().vary_cookie());
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn vary_cookie(&self) -> bool {
        self.vary_cookie
    }

    /// Returns the `Set-Cookie` lines, one per saved session, sorted by cookie name.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// sessions.save().await?;
    /// let headers = sessions.take_response_headers();
    /// // Each line goes into a `Set-Cookie` header of its own.
    /// for line in headers.set_cookies() {
    ///     assert!(line.to_str()?.starts_with("__Host-id="));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn set_cookies(&self) -> impl ExactSizeIterator<Item = &HeaderValue> {
        self.set_cookies.as_slice().iter().map(|(line, _)| line)
    }

    /// These headers for a response that failed: a server error from the handler, or a save
    /// that failed. Such a response gives the browser no session cookie, for any of its
    /// sessions, so that what failed does not stick halfway (one session's cookie set while
    /// another's save failed); lines that clear the cookie of a session that ended stay.
    pub(crate) fn for_failed_response(mut self) -> Self {
        self.set_cookies = std::mem::take(&mut self.set_cookies)
            .into_iter()
            .filter(|(_, kind)| *kind == Line::Clears)
            .collect();
        self.cache_control_no_store &= !self.set_cookies.is_empty();
        self
    }

    /// Sets `Cache-Control: no-store`, replacing any other `Cache-Control`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&http::HeaderMap::new());
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// sessions.save().await?;
    /// // A response that sets a session cookie must not be stored by a shared cache.
    /// assert!(sessions.take_response_headers().cache_control_no_store());
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cache_control_no_store(&self) -> bool {
        self.cache_control_no_store
    }

    /// Adds these headers to `headers`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::{CookieConfig, MemoryStore, SessionConfig, Sessions};
    /// use http::HeaderMap;
    ///
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// let config = SessionConfig::new(MemoryStore::new()?, CookieConfig::new("id")?);
    /// let sessions = Sessions::new(&HeaderMap::new());
    /// sessions.get(&config).await?.insert("n", 1)?;
    /// sessions.save().await?;
    /// let mut response = HeaderMap::new();
    /// sessions.take_response_headers().write_to(&mut response);
    /// assert!(response.contains_key("set-cookie"));
    /// assert_eq!(response["cache-control"], "no-store");
    /// # Ok::<(), fastsession::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_to(self, headers: &mut HeaderMap) {
        if self.vary_cookie {
            add_vary_cookie(headers);
        }
        for (line, _) in self.set_cookies {
            headers.append(SET_COOKIE, line);
        }
        if self.cache_control_no_store {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
}

fn add_vary_cookie(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("cookie") || t.trim() == "*")
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_added_once() {
        let mut h = HeaderMap::new();
        h.append(VARY, HeaderValue::from_static("Accept-Encoding, cookie"));
        add_vary_cookie(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        let mut h = HeaderMap::new();
        add_vary_cookie(&mut h);
        add_vary_cookie(&mut h);
        assert_eq!(h.get_all(VARY).iter().collect::<Vec<_>>(), ["Cookie"]);
    }
}
