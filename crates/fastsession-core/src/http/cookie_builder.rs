//! The builder of [`CookieConfig`]: the cookie's attributes, checked together.

use std::time::Duration;

use cookie::Cookie;

use super::cookie_config::{CookieConfig, MAX_COOKIE_AGE, Prefix, SameSite};
use crate::error::{Error, ErrorKind, Result};

/// Builds a [`CookieConfig`]; see there for the defaults.
#[derive(Clone, Debug)]
#[must_use]
pub struct CookieConfigBuilder {
    pub(super) name: String,
    pub(super) prefix: Option<Prefix>,
    pub(super) path: String,
    pub(super) domain: Option<String>,
    pub(super) secure: bool,
    pub(super) http_only: bool,
    pub(super) same_site: SameSite,
    pub(super) partitioned: bool,
    pub(super) max_age: Duration,
    pub(super) persistent_by_default: bool,
}

impl CookieConfigBuilder {
    /// Sets the name prefix (default `__Host-`, or `__Secure-` with a `Domain` or a `Path`
    /// other than `/`; [`Prefix::None`] in development mode).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// use fastsession::http::Prefix;
    ///
    /// // A cookie shared by the subdomains needs `__Secure-` (or no prefix).
    /// let cookie = CookieConfig::builder("id")
    ///     .with_domain("example.com")
    ///     .with_prefix(Prefix::Secure)
    ///     .build()?;
    /// assert_eq!(cookie.name(), "__Secure-id");
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_prefix(mut self, prefix: Prefix) -> Self {
        self.prefix = Some(prefix);
        self
    }

    /// Sets `Path` (default `/`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::builder("id").with_path("/app").build()?;
    /// assert!(cookie.cookie_line("v").contains("Path=/app"));
    /// assert_eq!(cookie.name(), "__Secure-id"); // __Host- needs Path=/
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.path);
        self
    }

    /// Sets `Domain` (default none: the cookie goes to this host only).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// let cookie = CookieConfig::builder("id").with_domain("example.com").build()?;
    /// assert!(cookie.cookie_line("v").contains("Domain=example.com"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_owned());
        self
    }

    /// Sets `HttpOnly` (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// // Only if page scripts must read the cookie: HttpOnly keeps it from XSS.
    /// let cookie = CookieConfig::builder("id").with_http_only(false).build()?;
    /// assert!(!cookie.cookie_line("v").contains("HttpOnly"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets `SameSite` (default `Lax`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// use fastsession::http::SameSite;
    ///
    /// let cookie = CookieConfig::builder("id").with_same_site(SameSite::Strict).build()?;
    /// assert!(cookie.cookie_line("v").contains("SameSite=Strict"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Sets `Partitioned` (CHIPS; default off; requires `Secure`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// // An embedded (third-party) widget keeps its session in a partitioned cookie.
    /// use fastsession::http::SameSite;
    ///
    /// let cookie = CookieConfig::builder("id")
    ///     .with_same_site(SameSite::None)
    ///     .with_partitioned(true)
    ///     .build()?;
    /// assert!(cookie.cookie_line("v").contains("Partitioned"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// Sets the `Max-Age` of persistent ("remember me") cookies (default 30 days, at most
    /// [`MAX_COOKIE_AGE`]). Browser-session cookies never carry one.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// use std::time::Duration;
    ///
    /// // "Remember me" for a week.
    /// let cookie = CookieConfig::builder("id").with_max_age(Duration::from_secs(7 * 86_400)).build()?;
    /// assert!(cookie.persistent_cookie_line("v").contains("Max-Age=604800"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Makes new sessions persistent until [`Session::set_persistent`](crate::Session::set_persistent)
    /// says otherwise (default off).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// // Every new session is "remembered" unless the app says otherwise.
    /// let cookie = CookieConfig::builder("id").with_persistent_by_default(true).build()?;
    /// assert!(cookie.is_persistent_by_default());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_persistent_by_default(mut self, persistent: bool) -> Self {
        self.persistent_by_default = persistent;
        self
    }

    /// Drops `Secure` (and, unless set, the prefix) so that the cookie works over plain HTTP.
    ///
    /// # Security
    ///
    /// For local development only: without `Secure` the cookie travels in clear text.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// // `cargo run` on http://localhost only.
    /// let cookie = CookieConfig::builder("id").with_insecure_development_mode().build()?;
    /// assert_eq!(cookie.name(), "id");
    /// assert!(!cookie.cookie_line("v").contains("Secure"));
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn with_insecure_development_mode(mut self) -> Self {
        self.secure = false;
        self
    }

    /// Checks the combination and builds the configuration.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a name that is not an RFC 6265 token (or already
    /// starts with a prefix), a `Path` or `Domain` with characters that could inject
    /// attributes, `SameSite=None` or `Partitioned` or a prefix without `Secure`, `__Host-`
    /// with a `Domain` or a `Path` other than `/`, or a `Max-Age` outside 1 second to 400 days.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::CookieConfig;
    ///
    /// use fastsession::http::SameSite;
    ///
    /// // SameSite=None without Secure is refused.
    /// let refused = CookieConfig::builder("id")
    ///     .with_insecure_development_mode()
    ///     .with_same_site(SameSite::None)
    ///     .build();
    /// assert!(refused.is_err());
    /// assert!(CookieConfig::builder("id").build().is_ok());
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn build(self) -> Result<CookieConfig> {
        let invalid = |why: &'static str| Err(Error::new(ErrorKind::InvalidConfig, why));
        if self.name.is_empty() || self.name.len() > 128 || !self.name.bytes().all(is_token_byte) {
            return invalid("cookie name must be 1 to 128 RFC 6265 token characters");
        }
        let lower = self.name.to_ascii_lowercase();
        if lower.starts_with("__host-") || lower.starts_with("__secure-") {
            return invalid(
                "give the cookie name without its prefix and set the prefix with with_prefix",
            );
        }
        if !self.path.starts_with('/')
            || self.path.len() > 1024
            || !self.path.bytes().all(is_path_byte)
        {
            return invalid(
                "cookie path must start with '/' and hold no control characters or ';'",
            );
        }
        if let Some(domain) = &self.domain {
            let ok = !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return invalid(
                    "cookie domain must be a host name of letters, digits, '.' and '-'",
                );
            }
        }
        let prefix = self.prefix.unwrap_or(if !self.secure {
            Prefix::None
        } else if self.domain.is_some() || self.path != "/" {
            Prefix::Secure
        } else {
            Prefix::Host
        });
        if !self.secure {
            if prefix != Prefix::None {
                return invalid("the __Host- and __Secure- prefixes require Secure");
            }
            if self.same_site == SameSite::None {
                return invalid("SameSite=None requires Secure");
            }
            if self.partitioned {
                return invalid("Partitioned requires Secure");
            }
        }
        if prefix == Prefix::Host && (self.domain.is_some() || self.path != "/") {
            return invalid("the __Host- prefix forbids Domain and requires Path=/");
        }
        if self.max_age < Duration::from_secs(1) || self.max_age > MAX_COOKIE_AGE {
            return invalid("Max-Age must be between 1 second and 400 days");
        }

        let name = format!("{}{}", prefix.as_str(), self.name);
        let render = |max_age: Option<cookie::time::Duration>, removal: bool| {
            let mut c = Cookie::new(name.clone(), "");
            c.set_path(self.path.clone());
            if let Some(domain) = &self.domain {
                c.set_domain(domain.clone());
            }
            c.set_secure(self.secure);
            c.set_http_only(self.http_only);
            c.set_same_site(match self.same_site {
                SameSite::Strict => cookie::SameSite::Strict,
                SameSite::Lax => cookie::SameSite::Lax,
                SameSite::None => cookie::SameSite::None,
            });
            if self.partitioned {
                c.set_partitioned(true);
            }
            if let Some(age) = max_age {
                c.set_max_age(age);
            }
            if removal {
                c.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
            }
            c.to_string()
        };
        let max_age_secs = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        let suffix_of = |line: String| line[name.len() + 1..].into();
        Ok(CookieConfig {
            session_suffix: suffix_of(render(None, false)),
            persistent_suffix: suffix_of(render(
                Some(cookie::time::Duration::seconds(max_age_secs)),
                false,
            )),
            removal: render(Some(cookie::time::Duration::ZERO), true).into(),
            name: name.into(),
            max_age: self.max_age,
            persistent_by_default: self.persistent_by_default,
            http_only: self.http_only,
            secure: self.secure,
        })
    }
}

/// RFC 6265 `token` characters: visible ASCII except separators.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// RFC 6265 `path-value`: any CHAR except CTLs or ';'.
fn is_path_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b';'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute() {
        let c = CookieConfig::builder("s")
            .with_prefix(Prefix::Secure)
            .with_domain("example.com")
            .with_path("/app")
            .with_same_site(SameSite::None)
            .with_partitioned(true)
            .with_http_only(false)
            .build()
            .unwrap();
        let line = c.cookie_line("v");
        assert_eq!(
            line,
            "__Secure-s=v; SameSite=None; Partitioned; Secure; Path=/app; Domain=example.com"
        );
        assert!(c.removal().contains("Domain=example.com") && c.removal().contains("Path=/app"));
    }

    #[test]
    fn injection_and_bad_combinations_are_refused() {
        let bad = [
            CookieConfig::builder("a b"),
            CookieConfig::builder("a;b"),
            CookieConfig::builder("a\r\nSet-Cookie: x"),
            CookieConfig::builder(""),
            CookieConfig::builder("é"),
            CookieConfig::builder("__Host-id"),
            CookieConfig::builder("id").with_path("/; Domain=evil.com"),
            CookieConfig::builder("id").with_path("/\n"),
            CookieConfig::builder("id").with_path("relative"),
            CookieConfig::builder("id").with_domain("evil.com; SameSite=None"),
            CookieConfig::builder("id").with_domain(""),
            CookieConfig::builder("id")
                .with_prefix(Prefix::Host)
                .with_path("/app"),
            CookieConfig::builder("id")
                .with_insecure_development_mode()
                .with_prefix(Prefix::Secure),
            CookieConfig::builder("id")
                .with_insecure_development_mode()
                .with_partitioned(true),
            CookieConfig::builder("id").with_max_age(Duration::ZERO),
            CookieConfig::builder("id").with_max_age(MAX_COOKIE_AGE + Duration::from_secs(1)),
        ];
        for builder in bad {
            let debug = format!("{builder:?}");
            assert_eq!(
                builder.build().unwrap_err().kind(),
                ErrorKind::InvalidConfig,
                "{debug}"
            );
        }
    }

    #[test]
    fn development_mode_drops_secure_and_prefix() {
        let c = CookieConfig::builder("GOSESSION")
            .with_insecure_development_mode()
            .build()
            .unwrap();
        assert_eq!(
            c.cookie_line("v"),
            "GOSESSION=v; HttpOnly; SameSite=Lax; Path=/"
        );
    }
}
