//! The session cookie's name and attributes.

use std::time::Duration;

use super::CookieConfigBuilder;
use crate::error::Result;

/// The longest browser lifetime a persistent cookie may ask for: 400 days, the cap of
/// RFC 6265bis that browsers apply anyway.
pub const MAX_COOKIE_AGE: Duration = Duration::from_secs(400 * 24 * 3600);

/// The `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent only on same-site requests.
    Strict,
    /// Also sent on top-level cross-site navigations (the default).
    #[default]
    Lax,
    /// Sent on every request; requires `Secure`.
    None,
}

/// A cookie name prefix that browsers enforce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    /// `__Host-`: `Secure`, `Path=/`, no `Domain`; the cookie is bound to one host.
    Host,
    /// `__Secure-`: `Secure`; a `Domain` and any `Path` are allowed.
    Secure,
    /// No prefix.
    None,
}

impl Prefix {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Prefix::Host => "__Host-",
            Prefix::Secure => "__Secure-",
            Prefix::None => "",
        }
    }
}

/// The session cookie's name and attributes, checked at construction.
///
/// Defaults: the `__Host-` prefix, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no
/// `Domain`, a browser-session cookie (no `Max-Age`) unless the session is persistent, in which
/// case `Max-Age` is 30 days. Setting a `Domain` or a narrower `Path` switches the default
/// prefix to `__Secure-`.
///
/// # Examples
///
/// ```
/// use fastsession::http::{CookieConfig, Prefix, SameSite};
/// use std::time::Duration;
///
/// let config = CookieConfig::new("id")?;
/// assert_eq!(config.name(), "__Host-id");
///
/// let shared = CookieConfig::builder("sid")
///     .with_domain("example.com")
///     .with_same_site(SameSite::Strict)
///     .with_max_age(Duration::from_secs(7 * 24 * 3600))
///     .build()?;
/// assert_eq!(shared.name(), "__Secure-sid");
///
/// // Invalid combinations are refused.
/// assert!(CookieConfig::builder("id").with_prefix(Prefix::Host).with_domain("example.com").build().is_err());
/// assert!(CookieConfig::builder("id").with_insecure_development_mode().with_same_site(SameSite::None).build().is_err());
/// assert!(CookieConfig::new("bad;name").is_err());
/// # Ok::<(), fastsession::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CookieConfig {
    pub(super) name: Box<str>,
    pub(super) max_age: Duration,
    pub(super) persistent_by_default: bool,
    // Precomputed at construction: everything after the value, for both lifetimes, and the
    // whole clearing header.
    pub(super) session_suffix: Box<str>,
    pub(super) persistent_suffix: Box<str>,
    pub(super) removal: Box<str>,
    pub(super) http_only: bool,
    pub(super) secure: bool,
}

impl CookieConfig {
    /// Returns the default configuration for a cookie called `name` (before its prefix).
    ///
    /// # Errors
    ///
    /// As [`CookieConfigBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::new("id")?;
    /// // Secure, HttpOnly, SameSite=Lax, and the `__Host-` prefix by default.
    /// assert_eq!(cookie.name(), "__Host-id");
    /// assert!(cookie.is_secure() && cookie.is_http_only());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn new(name: &str) -> Result<Self> {
        CookieConfig::builder(name).build()
    }

    /// Returns a builder starting from the defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// use std::time::Duration;
    ///
    /// let cookie = CookieConfig::builder("id")
    ///     .with_max_age(Duration::from_secs(14 * 86_400))
    ///     .build()?;
    /// assert_eq!(cookie.max_age(), Duration::from_secs(14 * 86_400));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn builder(name: &str) -> CookieConfigBuilder {
        CookieConfigBuilder {
            name: name.to_owned(),
            prefix: None,
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            max_age: Duration::from_secs(30 * 24 * 3600),
            persistent_by_default: false,
        }
    }

    /// Returns the full cookie name, prefix included.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// use fastsession::http::Prefix;
    ///
    /// let cookie = CookieConfig::builder("id").with_prefix(Prefix::None).build()?;
    /// assert_eq!(cookie.name(), "id");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the `Max-Age` of persistent ("remember me") cookies.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// use std::time::Duration;
    ///
    /// assert_eq!(CookieConfig::new("id")?.max_age(), Duration::from_secs(30 * 86_400));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Returns `true` if new sessions start persistent.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::builder("id").with_persistent_by_default(true).build()?;
    /// assert!(cookie.is_persistent_by_default());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_persistent_by_default(&self) -> bool {
        self.persistent_by_default
    }

    /// Returns `true` if the cookie carries `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// assert!(CookieConfig::new("id")?.is_secure());
    /// let dev = CookieConfig::builder("id").with_insecure_development_mode().build()?;
    /// assert!(!dev.is_secure());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Returns `true` if the cookie carries `HttpOnly`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::builder("id").with_http_only(false).build()?;
    /// assert!(!cookie.is_http_only());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn is_http_only(&self) -> bool {
        self.http_only
    }

    /// Returns the `Set-Cookie` value that sets a browser-session cookie (no `Max-Age`: the browser
    /// drops it when it closes) to `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::new("id")?;
    /// let header = cookie.cookie_line("abc");
    /// assert!(header.starts_with("__Host-id=abc"));
    /// assert!(header.contains("HttpOnly") && !header.contains("Max-Age"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn cookie_line(&self, value: &str) -> String {
        self.line(value, &self.session_suffix)
    }

    /// Returns the `Set-Cookie` value that sets a persistent cookie ("remember me": kept for the
    /// configured `Max-Age`) to `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::new("id")?;
    /// let header = cookie.persistent_cookie_line("abc");
    /// assert!(header.starts_with("__Host-id=abc"));
    /// assert!(header.contains("Max-Age=") && header.contains("HttpOnly"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn persistent_cookie_line(&self, value: &str) -> String {
        self.line(value, &self.persistent_suffix)
    }

    /// The line of a cookie that is persistent or not, as a session record says.
    pub(crate) fn line_for(&self, value: &str, persistent: bool) -> String {
        if persistent {
            self.persistent_cookie_line(value)
        } else {
            self.cookie_line(value)
        }
    }

    fn line(&self, value: &str, suffix: &str) -> String {
        let mut line = String::with_capacity(self.name.len() + 1 + value.len() + suffix.len());
        line.push_str(&self.name);
        line.push('=');
        line.push_str(value);
        line.push_str(suffix);
        line
    }

    /// [`persistent_cookie_line`](Self::persistent_cookie_line) kept `max_age` (at most the
    /// configured one): for a session with a deadline of its own, whose cookie must not
    /// outlive it.
    pub(crate) fn persistent_cookie_line_until(&self, value: &str, max_age: Duration) -> String {
        if max_age >= self.max_age {
            return self.persistent_cookie_line(value);
        }
        // Only the attributes change: the name and value are never searched.
        let configured = format!("Max-Age={}", self.max_age.as_secs());
        let shorter = format!("Max-Age={}", max_age.as_secs().max(1));
        let suffix = self.persistent_suffix.replacen(&configured, &shorter, 1);
        format!("{}={value}{suffix}", self.name)
    }

    /// Returns the `Set-Cookie` value that clears the cookie: same name, Path, Domain and
    /// attributes, an empty value, `Max-Age=0` and an `Expires` in the past.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::new("id")?;
    /// assert!(cookie.removal().starts_with("__Host-id=;"));
    /// assert!(cookie.removal().contains("Max-Age=0"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    #[must_use]
    pub fn removal(&self) -> &str {
        &self.removal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_header_lines() {
        let c = CookieConfig::new("id").unwrap();
        assert_eq!(
            c.cookie_line("v"),
            "__Host-id=v; HttpOnly; SameSite=Lax; Secure; Path=/"
        );
        assert_eq!(
            c.persistent_cookie_line("v"),
            "__Host-id=v; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=2592000"
        );
        assert_eq!(
            c.removal(),
            "__Host-id=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
