//! The Go service's store settings ([`GoOptions`]), and what they make on the Rust side: the
//! codecs, the cookie and the expiry that accept exactly what Go accepts.

use std::time::Duration;

use fastsession_core::http::{CookieConfig, MAX_COOKIE_AGE, Prefix, SameSite};
use fastsession_core::session::Expiry;
use fastsession_core::{Error as CoreError, ErrorKind as CoreErrorKind};

use crate::codec::SecureCookie;
use crate::error::{Error, ErrorKind};

/// gorilla/sessions' default `MaxAge` (`NewCookieStore`, `NewFilesystemStore`): 30 days.
const GO_DEFAULT_MAX_AGE: u64 = 86_400 * 30;
/// securecookie's default `MaxLength`.
const GO_DEFAULT_MAX_LENGTH: usize = 4096;
/// No limit: what Go has where these are set (and what saturating time arithmetic keeps at
/// "never").
const NO_LIMIT: Duration = Duration::MAX;

/// The settings of the Go service's gorilla/sessions store, as Go spells them, starting from
/// the defaults `sessions.NewCookieStore` and `sessions.NewFilesystemStore` set: `Path: "/"`,
/// `MaxAge: 86400 * 30` (on the options and, through `store.MaxAge`, on every codec), nothing
/// else (no `Domain`, `Secure`, `HttpOnly` or `SameSite`), and securecookie's own codec
/// defaults (`MinAge` 0, `MaxLength` 4096).
///
/// [`GorillaCookieStore::from_go`](crate::GorillaCookieStore::from_go) and
/// [`GorillaFilesystem::from_go`](crate::GorillaFilesystem::from_go) build the codecs from
/// them, and the stores' `session_config` the cookie and the [`Expiry`] that accept every
/// cookie Go accepts and none that Go refuses:
///
/// | Go | here |
/// | --- | --- |
/// | `store.MaxAge(n)` | [`with_max_age(n)`](Self::with_max_age): the cookie's `Max-Age` and every codec's |
/// | `store.Options.MaxAge = n` (or a new `Options`) | [`with_options_max_age(n)`](Self::with_options_max_age): the cookie's `Max-Age` only |
/// | `codec.MaxAge(n)` on each codec | [`with_codec_max_age(n)`](Self::with_codec_max_age) |
/// | `codec.MinAge(n)` on each codec | [`with_min_age(n)`](Self::with_min_age) |
/// | `codec.MaxLength(n)` on each codec, `FilesystemStore.MaxLength(n)` | [`with_max_length(n)`](Self::with_max_length) |
/// | `Options.Path`, `Domain`, `Secure`, `HttpOnly`, `SameSite` | [`with_path`](Self::with_path), [`with_domain`](Self::with_domain), [`with_secure`](Self::with_secure), [`with_http_only`](Self::with_http_only), [`with_same_site`](Self::with_same_site) |
///
/// A Go service that assigns a whole new `store.Options = &sessions.Options{...}` gets Go's
/// zero values for the fields it leaves out (`Path: ""`, `MaxAge: 0`): say every field here.
///
/// # Examples
///
/// ```
/// use fastsession::http::SameSite;
/// use fastsession::gorilla::GoOptions;
///
/// // store := sessions.NewCookieStore(hashKey, blockKey)
/// // store.MaxAge(7 * 86400)
/// // store.Options.HttpOnly = true
/// // store.Options.Secure = true
/// // store.Options.SameSite = http.SameSiteStrictMode
/// let options = GoOptions::new()
///     .with_max_age(7 * 86_400)
///     .with_http_only(true)
///     .with_secure(true)
///     .with_same_site(SameSite::Strict);
/// assert_eq!(options.max_age(), 7 * 86_400);
/// assert_eq!(options.codec_max_age(), 7 * 86_400);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoOptions {
    path: String,
    domain: String,
    max_age: u64,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
    codec_max_age: u64,
    min_age: u64,
    max_length: usize,
}

impl Default for GoOptions {
    fn default() -> Self {
        GoOptions {
            path: "/".to_owned(),
            domain: String::new(),
            max_age: GO_DEFAULT_MAX_AGE,
            secure: false,
            http_only: false,
            same_site: None,
            codec_max_age: GO_DEFAULT_MAX_AGE,
            min_age: 0,
            max_length: GO_DEFAULT_MAX_LENGTH,
        }
    }
}

impl GoOptions {
    /// Returns the settings of a store fresh from `NewCookieStore` or `NewFilesystemStore` (see
    /// [`GoOptions`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // store := sessions.NewCookieStore(hashKey, blockKey), left as it is.
    /// let options = GoOptions::new();
    /// assert_eq!((options.path(), options.max_age()), ("/", 30 * 86_400));
    /// ```
    #[must_use]
    pub fn new() -> Self {
        GoOptions::default()
    }

    /// Sets Go's `store.MaxAge(secs)`: the cookie's `Max-Age` and every codec's maximum age. 0
    /// makes the cookie a browser-session cookie and lets cookies of any age open.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // store.MaxAge(86400 * 7)
    /// let options = GoOptions::new().with_max_age(86_400 * 7);
    /// assert_eq!((options.max_age(), options.codec_max_age()), (86_400 * 7, 86_400 * 7));
    /// ```
    #[must_use]
    pub fn with_max_age(mut self, secs: u64) -> Self {
        self.max_age = secs;
        self.codec_max_age = secs;
        self
    }

    /// Sets Go's `store.Options.MaxAge = secs` alone: the cookie's `Max-Age` (0: a browser-session
    /// cookie, no `Max-Age`); the codecs keep their maximum age.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // store.Options.MaxAge = 0: a browser-session cookie, while the codecs still refuse
    /// // cookies older than their own 30 days.
    /// let options = GoOptions::new().with_options_max_age(0);
    /// assert_eq!((options.max_age(), options.codec_max_age()), (0, 30 * 86_400));
    /// ```
    #[must_use]
    pub fn with_options_max_age(mut self, secs: u64) -> Self {
        self.max_age = secs;
        self
    }

    /// Sets Go's `MaxAge(secs)` on every codec alone (securecookie's own setting, reached through
    /// `store.Codecs`): the oldest cookie timestamp accepted (0: any).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // for _, c := range store.Codecs { c.(*securecookie.SecureCookie).MaxAge(3600) }
    /// let options = GoOptions::new().with_codec_max_age(3600);
    /// assert_eq!((options.max_age(), options.codec_max_age()), (30 * 86_400, 3600));
    /// ```
    #[must_use]
    pub fn with_codec_max_age(mut self, secs: u64) -> Self {
        self.codec_max_age = secs;
        self
    }

    /// Sets Go's `MinAge(secs)` on every codec: a cookie younger than this, or from the future, is
    /// refused (0, the default: any timestamp from the future is accepted).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // for _, c := range store.Codecs { c.(*securecookie.SecureCookie).MinAge(1) }
    /// let options = GoOptions::new().with_min_age(1);
    /// assert_eq!(options.min_age(), 1);
    /// ```
    #[must_use]
    pub fn with_min_age(mut self, secs: u64) -> Self {
        self.min_age = secs;
        self
    }

    /// Sets Go's `MaxLength(len)` on every codec (`FilesystemStore.MaxLength` sets it for the
    /// session files too; 0: no limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // fsStore.MaxLength(64 * 1024): session files larger than the 4096-byte default.
    /// let options = GoOptions::new().with_max_length(64 * 1024);
    /// assert_eq!(options.max_length(), 64 * 1024);
    /// ```
    #[must_use]
    pub fn with_max_length(mut self, len: usize) -> Self {
        self.max_length = len;
        self
    }

    /// Sets Go's `Options.Path` (default `"/"`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // store.Options.Path = "/app"
    /// let options = GoOptions::new().with_path("/app");
    /// assert_eq!(options.path(), "/app");
    /// ```
    #[must_use]
    pub fn with_path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.path);
        self
    }

    /// Sets Go's `Options.Domain` (default `""`: none, the cookie goes to this host only).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // store.Options.Domain = "example.com": the cookie also goes to its subdomains.
    /// let options = GoOptions::new().with_domain("example.com");
    /// assert_eq!(options.domain(), "example.com");
    /// ```
    #[must_use]
    pub fn with_domain(mut self, domain: &str) -> Self {
        domain.clone_into(&mut self.domain);
        self
    }

    /// Sets Go's `Options.Secure` (default `false`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // store.Options.Secure = true
    /// let options = GoOptions::new().with_secure(true);
    /// assert!(options.secure());
    /// ```
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets Go's `Options.HttpOnly` (default `false`).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // store.Options.HttpOnly = true
    /// let options = GoOptions::new().with_http_only(true);
    /// assert!(options.http_only());
    /// ```
    #[must_use]
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// Sets Go's `Options.SameSite` (`http.SameSiteLaxMode`, `StrictMode`, `NoneMode`). Go's
    /// default (zero, or `SameSiteDefaultMode`) writes no attribute; fastsession always writes one,
    /// and [`cookie_config`](Self::cookie_config) picks `Lax`, what Chrome and Edge apply to a
    /// cookie without one.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    /// use fastsession::http::SameSite;
    ///
    /// // store.Options.SameSite = http.SameSiteStrictMode
    /// let options = GoOptions::new().with_same_site(SameSite::Strict);
    /// assert_eq!(options.same_site(), Some(SameSite::Strict));
    /// ```
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = Some(same_site);
        self
    }

    /// Returns the cookie's `Path`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// assert_eq!(GoOptions::new().path(), "/");
    /// ```
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Returns the cookie's `Domain` (`""`: none).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// assert_eq!(GoOptions::new().domain(), "");
    /// ```
    #[must_use]
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Returns the cookie's `Max-Age` in seconds (`Options.MaxAge`; 0: a browser-session cookie).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// assert_eq!(GoOptions::new().with_max_age(3600).max_age(), 3600);
    /// ```
    #[must_use]
    pub fn max_age(&self) -> u64 {
        self.max_age
    }

    /// Returns whether the cookie carries `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // Go's default: the cookie also travels over plain HTTP.
    /// assert!(!GoOptions::new().secure());
    /// ```
    #[must_use]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns whether the cookie carries `HttpOnly`.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// assert!(!GoOptions::new().http_only());
    /// ```
    #[must_use]
    pub fn http_only(&self) -> bool {
        self.http_only
    }

    /// Returns the `SameSite` the Go service sets, `None` for Go's default (no attribute).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// // Go's default writes no attribute; the cookie config then writes `SameSite=Lax`.
    /// assert_eq!(GoOptions::new().same_site(), None);
    /// ```
    #[must_use]
    pub fn same_site(&self) -> Option<SameSite> {
        self.same_site
    }

    /// Returns every codec's maximum age in seconds (0: none).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// assert_eq!(GoOptions::new().with_codec_max_age(0).codec_max_age(), 0);
    /// ```
    #[must_use]
    pub fn codec_max_age(&self) -> u64 {
        self.codec_max_age
    }

    /// Returns every codec's minimum age in seconds (0: none).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// assert_eq!(GoOptions::new().min_age(), 0);
    /// ```
    #[must_use]
    pub fn min_age(&self) -> u64 {
        self.min_age
    }

    /// Returns every codec's maximum length (0: none).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// assert_eq!(GoOptions::new().max_length(), 4096);
    /// ```
    #[must_use]
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Returns the codecs of Go's `CodecsFromPairs(key_pairs...)` with these codec settings: hash
    /// key, block key, hash key, block key, ..., newest pair first; a missing last block key, or an
    /// empty one, means no encryption.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoCodecs`] for no keys, [`ErrorKind::HashKeyNotSet`] for an empty hash key,
    /// [`ErrorKind::InvalidBlockKey`] for a block key that is not 16, 24 or 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// let (hash, block): (&[u8], &[u8]) = (b"a 32-byte hash key shared with Go", b"a 16-byte AES ke");
    /// let old_hash: &[u8] = b"the hash key before the rotation";
    /// let codecs = GoOptions::new().codecs(&[hash, block, old_hash])?;
    /// assert_eq!(codecs.len(), 2);
    /// assert_eq!(codecs[1].max_age(), 30 * 86_400);
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    pub fn codecs(&self, key_pairs: &[&[u8]]) -> Result<Vec<SecureCookie>, Error> {
        if key_pairs.is_empty() {
            return Err(Error::new(ErrorKind::NoCodecs));
        }
        key_pairs
            .chunks(2)
            .map(|pair| {
                let block = pair.get(1).copied().filter(|key| !key.is_empty());
                Ok(SecureCookie::new(pair[0], block)?
                    .with_max_age(self.codec_max_age)
                    .with_min_age(self.min_age)
                    .with_max_length(self.max_length))
            })
            .collect()
    }

    /// Returns the session cookie of a Go service with these options, named `name` (no prefix:
    /// gorilla signs the name, so it must stay the Go service's). The attributes are Go's, except:
    /// Go's default `SameSite` (no attribute) becomes `Lax`; a `Max-Age` beyond
    /// [`MAX_COOKIE_AGE`] (400 days, where browsers cap it anyway) is cut to it; Go's
    /// `Expires` beside `Max-Age` is not written (browsers use `Max-Age`). `MaxAge` 0 makes a
    /// browser-session cookie; above 0, new sessions are persistent.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`](CoreErrorKind::InvalidConfig) for an empty `Path` (Go then sends none and
    /// the browser scopes the cookie to the directory of the page that set it, which
    /// fastsession cannot mirror: set the same `Path` in Go and here), a name or attribute a
    /// browser would refuse (`SameSite=None` without `Secure`, characters that are not allowed).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    ///
    /// let cookie = GoOptions::new().with_http_only(true).cookie_config("session-name")?;
    /// assert_eq!(
    ///     cookie.persistent_cookie_line("v"),
    ///     "session-name=v; HttpOnly; SameSite=Lax; Path=/; Max-Age=2592000"
    /// );
    /// # Ok::<(), fastsession::Error>(())
    /// ```
    pub fn cookie_config(&self, name: &str) -> Result<CookieConfig, CoreError> {
        if self.path.is_empty() {
            return Err(CoreError::new(
                CoreErrorKind::InvalidConfig,
                "Go's Options.Path is empty: the browser then scopes the cookie to the page \
                 that set it; set the same Path (usually \"/\") in the Go service and here",
            ));
        }
        let mut cookie = CookieConfig::builder(name)
            .with_prefix(Prefix::None)
            .with_path(&self.path)
            .with_http_only(self.http_only)
            .with_same_site(self.same_site.unwrap_or(SameSite::Lax))
            .with_persistent_by_default(self.max_age > 0);
        if self.max_age > 0 {
            cookie = cookie.with_max_age(Duration::from_secs(self.max_age).min(MAX_COOKIE_AGE));
        }
        // Go drops a leading dot of the domain, as RFC 6265 browsers ignore it.
        let domain = self.domain.strip_prefix('.').unwrap_or(&self.domain);
        if !domain.is_empty() {
            cookie = cookie.with_domain(domain);
        }
        if !self.secure {
            // Go's default; the cookie then also travels over plain HTTP, as Go's does.
            cookie = cookie.with_insecure_development_mode();
        }
        cookie.build()
    }

    /// Returns the [`Expiry`] that refuses nothing the codecs of these options accept (they refuse
    /// what Go's refuse: older than their maximum age, younger than their minimum age):
    ///
    /// * idle timeout: the codecs' maximum age, plus the second Go counts in (a cookie exactly
    ///   `MaxAge` old still opens in Go); none for 0;
    /// * no absolute lifetime: Go has none (a session saved now and then lives on);
    /// * any timestamp from the future (Go's `MinAge` 0 accepts them);
    /// * no shorter idle timeout for sessions without a user id, and no longer one for
    ///   remembered sessions (Go has one maximum age for all).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::GoOptions;
    /// use std::time::Duration;
    ///
    /// let expiry = GoOptions::new().with_max_age(3600).expiry();
    /// assert_eq!(expiry.idle_timeout(), Duration::from_secs(3601));
    /// assert_eq!(expiry.clock_skew(), Duration::MAX);
    /// ```
    #[must_use]
    pub fn expiry(&self) -> Expiry {
        expiry_of(self.codec_max_age)
    }
}

/// [`GoOptions::expiry`] for codecs whose longest maximum age is `max_age` seconds (0: none).
pub(crate) fn expiry_of(max_age: u64) -> Expiry {
    let idle = match max_age {
        0 => NO_LIMIT,
        secs => Duration::from_secs(secs.saturating_add(1)),
    };
    Expiry::default()
        .with_idle_timeout(idle)
        .and_then(|e| e.with_absolute_lifetime(NO_LIMIT))
        .unwrap_or_default()
        .with_anonymous_idle_timeout(idle)
        .with_remembered_idle_timeout(idle)
        .with_clock_skew(NO_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastsession_core::session::Record;
    use fastsession_core::store::RejectReason;
    use fastsession_core::time::UnixTime;

    const T: u64 = 1_700_000_000;

    fn saved_at(secs: u64) -> Record {
        Record::new(UnixTime::from_secs(secs))
    }

    #[test]
    fn the_expiry_accepts_up_to_max_age_and_any_future_time() {
        let expiry = expiry_of(3600);
        let now = UnixTime::from_secs(T);
        for age in [0, 1, 1800, 3600] {
            assert_eq!(expiry.check(&saved_at(T - age), now), Ok(()), "{age}");
        }
        assert_eq!(
            expiry.check(&saved_at(T - 3601), now),
            Err(RejectReason::IdleTimeout)
        );
        for ahead in [1, 300, 86_400 * 365] {
            assert_eq!(expiry.check(&saved_at(T + ahead), now), Ok(()), "{ahead}");
        }
        // Created long ago, saved recently: no absolute lifetime.
        let mut old = saved_at(0);
        old.set_last_active(now);
        assert_eq!(expiry.check(&old, now), Ok(()));
    }

    #[test]
    fn max_age_zero_never_expires_and_never_refreshes() {
        let expiry = expiry_of(0);
        let now = UnixTime::from_secs(T);
        assert_eq!(expiry.check(&saved_at(0), now), Ok(()));
        assert_eq!(expiry.check(&saved_at(u64::MAX), now), Ok(()));
        assert!(!expiry.needs_refresh(&saved_at(0), now));
    }

    #[test]
    fn anonymous_and_remembered_sessions_get_the_same_idle_timeout() {
        for max_age in [3600, 30 * 86_400, 0] {
            let expiry = expiry_of(max_age);
            assert_eq!(expiry.anonymous_idle_timeout(), expiry.idle_timeout());
            assert_eq!(expiry.remembered_idle_timeout(), expiry.idle_timeout());
        }
    }

    #[test]
    fn codecs_follow_go_s_pairs_and_settings() {
        let hash: &[u8] = b"0123456789abcdef0123456789abcdef";
        let options = GoOptions::new().with_codec_max_age(60).with_max_length(100);
        let codecs = options.codecs(&[hash, b"", hash]).unwrap();
        assert_eq!(codecs.len(), 2);
        assert!(
            codecs
                .iter()
                .all(|c| c.max_age() == 60 && c.max_length() == 100)
        );
        assert_eq!(options.codecs(&[]).unwrap_err().kind(), ErrorKind::NoCodecs);
        assert_eq!(
            options.codecs(&[hash, b"short"]).unwrap_err().kind(),
            ErrorKind::InvalidBlockKey
        );
        assert_eq!(
            options.codecs(&[b""]).unwrap_err().kind(),
            ErrorKind::HashKeyNotSet
        );
    }

    #[test]
    fn the_cookie_has_go_s_attributes() {
        let line = |options: GoOptions| {
            let cookie = options.cookie_config("s").unwrap();
            // Go's MaxAge: a persistent cookie, or a browser-session one for MaxAge 0.
            if cookie.is_persistent_by_default() {
                cookie.persistent_cookie_line("v")
            } else {
                cookie.cookie_line("v")
            }
        };
        assert_eq!(
            line(GoOptions::new()),
            "s=v; SameSite=Lax; Path=/; Max-Age=2592000"
        );
        assert_eq!(
            line(
                GoOptions::new()
                    .with_max_age(0)
                    .with_path("/app")
                    .with_domain(".example.com")
                    .with_secure(true)
                    .with_http_only(true)
                    .with_same_site(SameSite::None)
            ),
            "s=v; HttpOnly; SameSite=None; Secure; Path=/app; Domain=example.com"
        );
        assert_eq!(
            line(GoOptions::new().with_options_max_age(1000 * 86_400)),
            format!(
                "s=v; SameSite=Lax; Path=/; Max-Age={}",
                MAX_COOKIE_AGE.as_secs()
            )
        );
        assert_eq!(
            GoOptions::new()
                .with_path("")
                .cookie_config("s")
                .unwrap_err()
                .kind(),
            CoreErrorKind::InvalidConfig
        );
    }
}
