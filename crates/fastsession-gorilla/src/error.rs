//! The error type of this crate.

use std::fmt;

/// What went wrong, by gorilla/securecookie's error of the same meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The hash key is empty (securecookie v1.1.2: `hash key is not set`). A usage error.
    HashKeyNotSet,
    /// The block key is not 16, 24 or 32 bytes long. A usage error.
    InvalidBlockKey,
    /// `encode_multi` / `decode_multi` were given no codec (`no codecs provided`). A usage
    /// error.
    NoCodecs,
    /// The encoded value would be longer than the maximum length. A usage error.
    EncodeTooLong,
    /// The value could not be serialized (JSON cannot hold NaN or infinities). A usage error.
    Serialize,
    /// The cookie is longer than the maximum length. A decode error.
    DecodeTooLong,
    /// The cookie, or its inner value, is not padded base64url. A decode error.
    Base64,
    /// The cookie is not signed by this codec under this name: tampered, another key or
    /// name, or too few parts (`the value is not valid`). A decode error; nothing more is
    /// said on purpose.
    MacInvalid,
    /// The signed timestamp is not a decimal integer. A decode error.
    InvalidTimestamp,
    /// The cookie is younger than the minimum age. A decode error.
    TimestampTooNew,
    /// The cookie is older than the maximum age. A decode error.
    TimestampExpired,
    /// The encrypted value is too short to hold an IV and data. A decode error.
    Decrypt,
    /// The decoded bytes are not a value of the serializer's format. A decode error.
    Deserialize,
    /// A value does not fit the Go type declared for its key
    /// ([`GorillaFormat::with_go_type`](crate::GorillaFormat::with_go_type)); the source
    /// names both. A usage error.
    NotGoType,
    /// A declared Go type is not built from Go's built-in types. A usage error.
    UnknownGoType,
}

impl ErrorKind {
    /// Returns `true` for what securecookie calls a usage error (a mistake of the caller).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::SecureCookie;
    ///
    /// // A 20-byte block key: a mistake in the configuration, not a bad cookie.
    /// let error = SecureCookie::new(b"0123456789abcdef0123456789abcdef", Some(b"twenty bytes of key!")).unwrap_err();
    /// assert!(error.kind().is_usage());
    /// ```
    #[must_use]
    pub fn is_usage(self) -> bool {
        matches!(
            self,
            ErrorKind::HashKeyNotSet
                | ErrorKind::InvalidBlockKey
                | ErrorKind::NoCodecs
                | ErrorKind::EncodeTooLong
                | ErrorKind::Serialize
                | ErrorKind::NotGoType
                | ErrorKind::UnknownGoType
        )
    }

    /// Returns `true` for what securecookie calls a decode error (a cookie it will not accept).
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::SecureCookie;
    /// use fastsession::time::UnixTime;
    ///
    /// let codec = SecureCookie::new(b"0123456789abcdef0123456789abcdef", None)?;
    /// match codec.decode_bytes("session", "not a cookie of ours", UnixTime::now()) {
    ///     // A cookie we do not accept: start a fresh session, as Go does.
    ///     Err(error) if error.kind().is_decode() => {}
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), fastsession::gorilla::Error>(())
    /// ```
    #[must_use]
    pub fn is_decode(self) -> bool {
        !self.is_usage()
    }

    fn text(self) -> &'static str {
        match self {
            ErrorKind::HashKeyNotSet => "hash key is not set",
            ErrorKind::InvalidBlockKey => "block key must be 16, 24 or 32 bytes",
            ErrorKind::NoCodecs => "no codecs provided",
            ErrorKind::EncodeTooLong | ErrorKind::DecodeTooLong => "the value is too long",
            ErrorKind::Serialize => "the value could not be serialized",
            ErrorKind::Base64 => "base64 decode failed",
            ErrorKind::MacInvalid => "the value is not valid",
            ErrorKind::InvalidTimestamp => "invalid timestamp",
            ErrorKind::TimestampTooNew => "timestamp is too new",
            ErrorKind::TimestampExpired => "expired timestamp",
            ErrorKind::Decrypt => "the value could not be decrypted",
            ErrorKind::Deserialize => "the value could not be deserialized",
            ErrorKind::NotGoType => "a value does not fit the Go type declared for its key",
            ErrorKind::UnknownGoType => "not a type built from Go's built-in types",
        }
    }
}

/// An error of the gorilla codec: its [`ErrorKind`], and the underlying error if any.
///
/// # Examples
///
/// ```
/// use fastsession::gorilla::{ErrorKind, SecureCookie};
///
/// let error = SecureCookie::new(b"", None).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::HashKeyNotSet);
/// assert!(error.kind().is_usage());
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind, source: None }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind,
            source: Some(Box::new(source)),
        }
    }

    /// Returns what went wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use fastsession::gorilla::{ErrorKind, decode_multi};
    /// use fastsession::time::UnixTime;
    ///
    /// let error = decode_multi(&[], "session", "value", UnixTime::now()).unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::NoCodecs);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "securecookie: {}", self.kind.text())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
