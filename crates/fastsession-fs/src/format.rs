//! The bytes of one session file.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "FSSN"
//!      4     1  format version (1)
//!      5     3  reserved, zero
//!      8     8  expires: Unix seconds, big endian (when the reaper may delete the file)
//!     16     4  body length, big endian
//!     20    16  checksum: SHA-256(storage key ‖ bytes 0..20 ‖ body), first 16 bytes
//!     36     …  body: Record::to_bytes(), without the session id
//! ```
//!
//! The record's own flags say which optional fields its body holds (its own deadline,
//! `Record::expires_at`, came later as one), so files of format version 1 written before it
//! still read, and the version stays 1.
//!
//! The fixed header lets the reaper decide from 36 bytes whether a file is due. The checksum
//! is not a security boundary (whoever can write the directory can recompute it): it catches
//! torn writes a lying disk cache left behind, bit rot, truncation and files copied under
//! another session's name, so that none of them is ever returned as a session.

use std::io;

use fastsession_core::session::Record;
use fastsession_core::store::StorageKey;
use fastsession_core::time::UnixTime;
use sha2::{Digest as _, Sha256};

const MAGIC: [u8; 4] = *b"FSSN";
const VERSION: u8 = 1;
/// Bytes before the body; the reaper reads only these.
pub(crate) const HEADER_LEN: usize = 36;
const CHECKSUM_AT: usize = 20;
const CHECKSUM_LEN: usize = 16;

/// Why a file is not a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Corrupt {
    /// Shorter than its header or than the body length it announces (torn or truncated).
    Truncated,
    /// Does not start with the magic bytes.
    Magic,
    /// A format version this build does not read.
    Version,
    /// Longer than its header announces.
    TrailingBytes,
    /// The checksum does not match.
    Checksum,
    /// The checksum matches but the body is not a record.
    Record,
    /// Larger than the backend's size limit.
    Oversized,
}

impl Corrupt {
    /// The `detail` field of the event.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Corrupt::Truncated => "truncated",
            Corrupt::Magic => "not a session file",
            Corrupt::Version => "unknown format version",
            Corrupt::TrailingBytes => "trailing bytes",
            Corrupt::Checksum => "checksum mismatch",
            Corrupt::Record => "undecodable record",
            Corrupt::Oversized => "oversized",
        }
    }
}

/// The fixed header of a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    /// When the reaper may delete the file.
    pub(crate) expires: UnixTime,
    /// The first 8 bytes of the checksum: tells one version of a file from another, so that
    /// a scan need not read again a file whose header it has seen.
    pub(crate) version: u64,
    body_len: usize,
}

/// The file content for `record` under `key`, deletable after `expires`.
///
/// The session id is left out: the file name is a keyed hash of it and the raw id must appear
/// nowhere at rest (the server store puts it back after a load).
///
/// # Errors
///
/// [`io::ErrorKind::FileTooLarge`] if the file would exceed `max_len` bytes.
pub(crate) fn encode(
    key: &StorageKey,
    record: &Record,
    expires: UnixTime,
    max_len: usize,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + 256);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&expires.as_secs().to_be_bytes());
    out.extend_from_slice(&[0; 4 + CHECKSUM_LEN]);
    if record.id().is_some() {
        let mut anonymous = record.clone();
        anonymous.set_id(None);
        anonymous.write_to(&mut out);
    } else {
        record.write_to(&mut out);
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            "session record exceeds the filesystem store's size limit",
        )
    };
    if out.len() > max_len {
        return Err(too_large());
    }
    let body_len = u32::try_from(out.len() - HEADER_LEN).map_err(|_| too_large())?;
    out[16..CHECKSUM_AT].copy_from_slice(&body_len.to_be_bytes());
    let sum = checksum(key, &out[..CHECKSUM_AT], &out[HEADER_LEN..]);
    out[CHECKSUM_AT..HEADER_LEN].copy_from_slice(&sum);
    Ok(out)
}

/// The [`Header::version`] of a file [`encode`] made.
pub(crate) fn version_of(bytes: &[u8]) -> u64 {
    let mut version = [0; 8];
    if let Some(sum) = bytes.get(CHECKSUM_AT..CHECKSUM_AT + 8) {
        version.copy_from_slice(sum);
    }
    u64::from_be_bytes(version)
}

/// Parses the fixed header (the first [`HEADER_LEN`] bytes suffice).
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header, Corrupt> {
    if bytes.len() < 5 {
        return Err(Corrupt::Truncated);
    }
    if bytes[..4] != MAGIC {
        return Err(Corrupt::Magic);
    }
    if bytes[4] != VERSION {
        return Err(Corrupt::Version);
    }
    if bytes.len() < HEADER_LEN {
        return Err(Corrupt::Truncated);
    }
    if bytes[5..8] != [0; 3] {
        return Err(Corrupt::Version);
    }
    let expires = u64::from_be_bytes(bytes[8..16].try_into().map_err(|_| Corrupt::Truncated)?);
    let body_len = u32::from_be_bytes(bytes[16..20].try_into().map_err(|_| Corrupt::Truncated)?);
    let version = u64::from_be_bytes(
        bytes[CHECKSUM_AT..CHECKSUM_AT + 8]
            .try_into()
            .map_err(|_| Corrupt::Truncated)?,
    );
    Ok(Header {
        expires: UnixTime::from_secs(expires),
        version,
        body_len: usize::try_from(body_len).map_err(|_| Corrupt::Oversized)?,
    })
}

/// Parses a whole file read from `key`'s path.
pub(crate) fn decode(key: &StorageKey, bytes: &[u8]) -> Result<(Header, Record), Corrupt> {
    let header = decode_header(bytes)?;
    let body = &bytes[HEADER_LEN..];
    if body.len() < header.body_len {
        return Err(Corrupt::Truncated);
    }
    if body.len() > header.body_len {
        return Err(Corrupt::TrailingBytes);
    }
    if checksum(key, &bytes[..CHECKSUM_AT], body)[..] != bytes[CHECKSUM_AT..HEADER_LEN] {
        return Err(Corrupt::Checksum);
    }
    let record = Record::from_bytes(body).map_err(|_| Corrupt::Record)?;
    Ok((header, record))
}

fn checksum(key: &StorageKey, head: &[u8], body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update(head)
        .chain_update(body)
        .finalize();
    let mut out = [0; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastsession_core::session::SessionId;

    fn key(b: u8) -> StorageKey {
        StorageKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trip_drops_the_id_and_keeps_the_rest() {
        let mut record = Record::new(UnixTime::from_secs(10));
        record.set_id(Some(SessionId::from_bytes([9; 32])));
        let bytes = encode(&key(1), &record, UnixTime::from_secs(99), 1 << 20).unwrap();
        let (header, back) = decode(&key(1), &bytes).unwrap();
        assert_eq!(header.expires, UnixTime::from_secs(99));
        assert_eq!(back.id(), None);
        record.set_id(None);
        assert_eq!(back, record);
        assert!(!bytes.windows(32).any(|w| w == [9; 32]), "raw id at rest");
    }

    #[test]
    fn the_sessions_own_deadline_is_kept() {
        let mut record = Record::new(UnixTime::from_secs(10));
        record.set_user_id(Some("ada".to_owned()));
        record.set_expires_at(Some(UnixTime::from_secs(70)));
        let bytes = encode(&key(1), &record, UnixTime::from_secs(70), 1 << 20).unwrap();
        let (header, back) = decode(&key(1), &bytes).unwrap();
        assert_eq!(header.expires, UnixTime::from_secs(70));
        assert_eq!(back.expires_at(), Some(UnixTime::from_secs(70)));
        assert_eq!(back, record);
    }

    /// A file as written before records had their own deadline, byte for byte: it reads, with
    /// none.
    #[test]
    fn files_written_before_expires_at_still_read() {
        let body = [
            &[1u8][..],           // flags: persistent
            &10u64.to_be_bytes(), // created
            &15u64.to_be_bytes(), // last active
            br#"{"v":{"n":1}}"#,
        ]
        .concat();
        let mut file = MAGIC.to_vec();
        file.push(1);
        file.extend_from_slice(&[0; 3]);
        file.extend_from_slice(&99u64.to_be_bytes());
        file.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        let sum = checksum(&key(1), &file, &body);
        file.extend_from_slice(&sum);
        file.extend_from_slice(&body);
        let (header, record) = decode(&key(1), &file).unwrap();
        assert_eq!(header.expires, UnixTime::from_secs(99));
        assert_eq!(record.expires_at(), None);
        assert!(record.is_persistent());
        assert_eq!(record.value("n").map(|v| v.get()), Some("1"));
        // Written again unchanged, it is the same file.
        let again = encode(&key(1), &record, UnixTime::from_secs(99), 1 << 20).unwrap();
        assert_eq!(again, file);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_refused() {
        let record = Record::new(UnixTime::from_secs(10));
        let bytes = encode(&key(1), &record, UnixTime::from_secs(99), 1 << 20).unwrap();
        for len in 0..bytes.len() {
            assert!(decode(&key(1), &bytes[..len]).is_err(), "prefix of {len}");
        }
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode(&key(1), &bad).is_err(), "bit {i}");
        }
        assert_eq!(decode(&key(2), &bytes).unwrap_err(), Corrupt::Checksum);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&key(1), &longer).unwrap_err(),
            Corrupt::TrailingBytes
        );
    }

    #[test]
    fn size_limit_is_enforced_on_write() {
        let record = Record::new(UnixTime::from_secs(10));
        let err = encode(&key(1), &record, UnixTime::EPOCH, HEADER_LEN).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }
}
