//! A hash read back from its `DUMP` payload: one reply element for the whole session, where
//! `HGETALL` answers two per field (and the client parses each, about 1 200 instructions).
//!
//! The payload is what `RESTORE` takes (see [`layout::restore_payload`](crate::layout)): an
//! RDB object, the RDB version (2 bytes) and a CRC-64 (8 bytes). Two encodings of a hash are
//! read, the ones every Redis since 7.0 writes: a listpack (RDB type 16, small hashes) and a
//! plain hash (type 4, large ones), with their strings raw, as integers or LZF-compressed.
//! Anything else (a ziplist from Redis 6, an encoding a later server adds, another type) is
//! `None`, and the caller reads the hash with `HGETALL` instead. Nothing here trusts a length:
//! a payload that does not parse is `None` too, never a panic.

use std::borrow::Cow;

use fastsession_core::session::Record;

use crate::layout::{RDB_CRC, RecordReader, Text};

/// RDB's object types read here.
const TYPE_HASH: u8 = 4;
const TYPE_HASH_LISTPACK: u8 = 16;

/// The record the hash in `payload` holds, without its version.
#[cfg(test)]
pub(crate) fn read_record(payload: &[u8]) -> Option<Result<Record, &'static str>> {
    read_versioned(payload).map(|read| read.map(|(record, _)| record))
}

/// The record the hash in `payload` holds, and the hash's `version`: `None` if the payload is
/// not a hash in an encoding read here, or does not parse; `Some(Err)` if it is a hash but not
/// a session (as [`layout::decode`](crate::layout::decode) says).
pub(crate) fn read_versioned(
    payload: &[u8],
) -> Option<Result<(Record, Option<u64>), &'static str>> {
    with_entries(payload, |entries| {
        if !entries.len().is_multiple_of(2) {
            return Err("odd reply");
        }
        let mut reader = RecordReader::new();
        let mut entries = entries.into_iter();
        while let (Some(name), Some(value)) = (entries.next(), entries.next()) {
            // A name that reads as an integer is none of this store's fields.
            let Text::Bytes(name) = name else {
                return Err("unknown field");
            };
            reader.field(&name, value)?;
        }
        reader.finish_versioned()
    })
}

/// `then` of the fields and values, in order, of the hash in `payload`, each borrowed from it
/// where it can be; `None` if it is not a hash in an encoding read here, or does not parse.
fn with_entries<R>(payload: &[u8], then: impl FnOnce(Vec<Text<'_>>) -> R) -> Option<R> {
    let covered = payload.len().checked_sub(8)?;
    let (covered, crc) = payload.split_at(covered);
    if RDB_CRC.checksum(covered) != u64::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    // The RDB version (2 bytes) ends what is covered.
    let body = &covered[..covered.len().checked_sub(2)?];
    let mut input = Input(body);
    match input.byte()? {
        TYPE_HASH_LISTPACK => {
            let Text::Bytes(blob) = input.string()? else {
                return None;
            };
            if !input.0.is_empty() {
                return None;
            }
            Some(then(listpack(&blob)?))
        }
        TYPE_HASH => {
            let count = input.length()?;
            // Each pair takes at least two bytes: a count beyond that is not believed.
            if count > body.len() {
                return None;
            }
            let mut entries = Vec::with_capacity(count * 2);
            for _ in 0..count * 2 {
                entries.push(input.string()?);
            }
            input.0.is_empty().then(|| then(entries))
        }
        _ => None,
    }
}

/// What is left of the payload.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// An RDB length, or `Err` with the special encoding a string starts with instead.
    fn length_or_special(&mut self) -> Option<Result<usize, u8>> {
        let first = self.byte()?;
        Some(match first >> 6 {
            0 => Ok(usize::from(first & 0x3f)),
            1 => Ok(usize::from(first & 0x3f) << 8 | usize::from(self.byte()?)),
            2 if first == 0x80 => Ok(u32::from_be_bytes(self.array()?) as usize),
            2 if first == 0x81 => Ok(usize::try_from(u64::from_be_bytes(self.array()?)).ok()?),
            2 => return None,
            _ => Err(first & 0x3f),
        })
    }

    fn length(&mut self) -> Option<usize> {
        self.length_or_special()?.ok()
    }

    /// An RDB string: raw (borrowed), an integer, or LZF-compressed.
    fn string(&mut self) -> Option<Text<'a>> {
        Some(match self.length_or_special()? {
            Ok(len) => Text::Bytes(Cow::Borrowed(self.take(len)?)),
            Err(0) => Text::Int(i64::from(i8::from_le_bytes(self.array()?))),
            Err(1) => Text::Int(i64::from(i16::from_le_bytes(self.array()?))),
            Err(2) => Text::Int(i64::from(i32::from_le_bytes(self.array()?))),
            Err(3) => {
                let compressed = self.length()?;
                let len = self.length()?;
                Text::Bytes(Cow::Owned(lzf_decompress(self.take(compressed)?, len)?))
            }
            Err(_) => return None,
        })
    }
}

/// The entries of a listpack: its total bytes (4, little-endian), its count (2), the entries
/// (each an encoding, its data, and its length backwards in 1 to 5 bytes), then 0xFF.
fn listpack(blob: &[u8]) -> Option<Vec<Text<'_>>> {
    let mut input = Input(blob);
    if u32::from_le_bytes(input.array()?) as usize != blob.len() {
        return None;
    }
    let mut entries = Vec::with_capacity(usize::from(u16::from_le_bytes(input.array()?)));
    loop {
        let before = input.0.len();
        let first = input.byte()?;
        let entry = match first {
            0xff => break,
            0x00..=0x7f => Text::Int(i64::from(first)),
            0x80..=0xbf => Text::Bytes(Cow::Borrowed(input.take(usize::from(first & 0x3f))?)),
            0xc0..=0xdf => {
                // 13-bit two's complement.
                let raw = i64::from(first & 0x1f) << 8 | i64::from(input.byte()?);
                Text::Int(if raw >= 1 << 12 { raw - (1 << 13) } else { raw })
            }
            0xe0..=0xef => {
                let len = usize::from(first & 0x0f) << 8 | usize::from(input.byte()?);
                Text::Bytes(Cow::Borrowed(input.take(len)?))
            }
            0xf0 => {
                let len = u32::from_le_bytes(input.array()?) as usize;
                Text::Bytes(Cow::Borrowed(input.take(len)?))
            }
            0xf1 => Text::Int(i64::from(i16::from_le_bytes(input.array()?))),
            0xf2 => {
                let [a, b, c] = input.array()?;
                // 24-bit two's complement, sign-extended.
                Text::Int(i64::from(i32::from_le_bytes([0, a, b, c]) >> 8))
            }
            0xf3 => Text::Int(i64::from(i32::from_le_bytes(input.array()?))),
            0xf4 => Text::Int(i64::from_le_bytes(input.array()?)),
            _ => return None,
        };
        let backlen = match before - input.0.len() {
            0..128 => 1,
            128..16_384 => 2,
            16_384..2_097_152 => 3,
            2_097_152..268_435_456 => 4,
            _ => 5,
        };
        input.take(backlen)?;
        entries.push(entry);
    }
    input.0.is_empty().then_some(entries)
}

/// LZF decompression into exactly `len` bytes: each control byte starts a literal run (below
/// 32: that many bytes plus one follow) or a back reference (its top 3 bits the length less
/// 2, 7 meaning a length byte follows; the rest and the next byte the distance less 1).
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    // A reference of 3 bytes writes at most 264: a longer `len` is a lie.
    if len > input.len().saturating_mul(88) {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    let mut input = Input(input);
    while let Some(ctrl) = input.0.first().copied() {
        input.take(1)?;
        if ctrl < 32 {
            out.extend_from_slice(input.take(usize::from(ctrl) + 1)?);
        } else {
            let mut run = usize::from(ctrl >> 5);
            if run == 7 {
                run += usize::from(input.byte()?);
            }
            let distance = (usize::from(ctrl & 0x1f) << 8 | usize::from(input.byte()?)) + 1;
            let from = out.len().checked_sub(distance)?;
            // The reference may overlap what it writes: byte by byte.
            for i in 0..run + 2 {
                out.push(out[from + i]);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use fastsession_core::session::Record;
    use fastsession_core::time::UnixTime;
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use super::*;
    use crate::layout::{Fields, restore_payload, write_fields};

    /// The fields and values of the hash in `payload`, integers as Redis writes them.
    fn hash_fields(payload: &[u8]) -> Option<Fields> {
        with_entries(payload, |entries| {
            entries
                .into_iter()
                .map(|entry| match entry {
                    Text::Bytes(bytes) => bytes.into_owned(),
                    Text::Int(n) => n.to_string().into_bytes(),
                })
                .collect()
        })
    }

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The pairs of `fields`, sorted (a large hash's order is its table's).
    fn pairs(fields: &Fields) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = fields
            .chunks(2)
            .map(|p| {
                (
                    String::from_utf8(p[0].clone()).unwrap(),
                    String::from_utf8(p[1].clone()).unwrap(),
                )
            })
            .collect();
        pairs.sort();
        pairs
    }

    fn expect(hex: &str, want: &[(&str, &str)]) {
        let fields = hash_fields(&bytes(hex)).expect("a hash");
        let mut want: Vec<_> = want
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        assert_eq!(pairs(&fields), want);
    }

    /// Known answers: `DUMP` payloads from Redis 7.0.15 of hashes written by `HSET`, and
    /// what `HGETALL` answered for each.
    #[test]
    fn dumps_of_redis_read_as_hgetall_answers() {
        // A listpack; integers of 7, 16 and 32 bits.
        expect(
            "103d3d0000000800876372656174656408f3a03c3269058b6c6173745f6163746976650cf3a03c32\
             69058776657273696f6e080c0183763a6e04f1393003ff0a005e8deb90f7f59e18",
            &[
                ("created", "1764900000"),
                ("last_active", "1764900000"),
                ("version", "12"),
                ("v:n", "12345"),
            ],
        );
        // Every integer width of a listpack, negative ones among them, and a string.
        expect(
            "104048480000001000816102dfff02816202f178ec03816302f2ffff7f04816402f2000080048165\
             02f4000000000001000009816602872268656c6c6f22088167027f01816802d00002ff0a00fe255a\
             79cca5cfeb",
            &[
                ("a", "-1"),
                ("b", "-5000"),
                ("c", "8388607"),
                ("d", "-8388608"),
                ("e", "1099511627776"),
                ("f", "\"hello\""),
                ("g", "127"),
                ("h", "-4096"),
            ],
        );
        // A listpack Redis compressed with LZF.
        let repeated = format!("\"{}\"", "ab".repeat(28));
        expect(
            "10c33240621f62000000060087637265617465640801018b6c6173745f6163746976650c02010883\
             763a7304ba226162e02d0102223bff0a007b2cf63e4cf80929",
            &[("created", "1"), ("last_active", "2"), ("v:s", &repeated)],
        );
        // A plain hash: strings raw, as 8-, 16- and 32-bit integers, and LZF-compressed.
        let long = format!("\"{}\"", "xyz".repeat(40));
        let plain = "\"AHOVCJQXELSZGNUBIPWDKRYFMTAHOVCJQXELSZGNUBIPWDKRYFMTAHOVCJQXELSZGNUBIP\"";
        expect(
            "040607763a706c61696ec32240481a2241484f56434a5158454c535a474e5542495057444b525946\
             4d54e0221901502206763a6c6f6e67c30b407a032278797ae06b02017a2203763a69c00c07637265\
             61746564c2a03c326903763a6ac1d4fe03763a6bc2701101000a0043dd02b0e48cc923",
            &[
                ("created", "1764900000"),
                ("v:i", "12"),
                ("v:j", "-300"),
                ("v:k", "70000"),
                ("v:long", &long),
                ("v:plain", plain),
            ],
        );
    }

    #[test]
    fn damaged_or_foreign_payloads_are_not_read() {
        let good = bytes(
            "103d3d0000000800876372656174656408f3a03c3269058b6c6173745f6163746976650cf3a03c32\
             69058776657273696f6e080c0183763a6e04f1393003ff0a005e8deb90f7f59e18",
        );
        assert!(hash_fields(&good).is_some());
        let mut flipped = good.clone();
        flipped[20] ^= 1;
        assert_eq!(hash_fields(&flipped), None, "the checksum");
        assert_eq!(hash_fields(&good[..good.len() - 1]), None);
        assert_eq!(hash_fields(&[]), None);
        // A string (RDB type 0): not a hash.
        let mut string = vec![0, 3, b'a', b'b', b'c', 10, 0];
        string.extend_from_slice(&RDB_CRC.checksum(&string).to_le_bytes());
        assert_eq!(hash_fields(&string), None);
    }

    /// What `RESTORE` is sent reads back as the fields it was made of.
    #[test]
    fn restore_payloads_read_back() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let mut r = Record::new(UnixTime::from_secs(100));
        r.set_user_id(Some("ünï".into()));
        r.insert_value("short".into(), raw("1"));
        r.insert_value("long".into(), raw(&format!("\"{}\"", "q".repeat(20_000))));
        r.set_flash_list("_flash".into(), vec![raw("\"hi\"")]);
        let mut cmd = redis::Cmd::new();
        write_fields(&r, &mut cmd);
        let sent: Fields = cmd
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => unreachable!("only plain arguments"),
            })
            .collect();
        for listpack in [false, true] {
            let payload = restore_payload(&r, listpack);
            assert_eq!(hash_fields(&payload.bytes), Some(sent.clone()));
            assert_eq!(read_record(&payload.bytes), Some(Ok(r.clone())));
        }
        // Small enough for a listpack, integers of each width among its values.
        let mut r = Record::new(UnixTime::from_secs(100));
        for (k, v) in [
            ("a", "1"),
            ("b", "-300"),
            ("c", "70000"),
            ("d", "1e3"),
            ("e", "\"x\""),
        ] {
            r.insert_value(k.into(), raw(v));
        }
        let payload = restore_payload(&r, true);
        assert!(payload.listpack);
        assert_eq!(read_record(&payload.bytes), Some(Ok(r)));
    }

    /// A hash that is not a session is read, and refused as one.
    #[test]
    fn hashes_that_are_not_sessions_are_refused() {
        let payload = bytes(
            "104048480000001000816102dfff02816202f178ec03816302f2ffff7f04816402f2000080048165\
             02f4000000000001000009816602872268656c6c6f22088167027f01816802d00002ff0a00fe255a\
             79cca5cfeb",
        );
        assert_eq!(read_record(&payload), Some(Err("unknown field")));
    }

    #[test]
    fn lzf_references_may_overlap_what_they_write() {
        // "a", then a reference of 5 bytes at distance 1.
        assert_eq!(
            lzf_decompress(&[0, b'a', 0x60, 0], 6).as_deref(),
            Some(&b"aaaaaa"[..])
        );
        assert_eq!(
            lzf_decompress(&[0, b'a', 0x60, 1], 6),
            None,
            "before the start"
        );
        assert_eq!(lzf_decompress(&[0, b'a'], 2), None, "short");
    }

    proptest! {
        #[test]
        fn no_input_panics(payload in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read_record(&payload);
            let _ = listpack(&payload);
            let _ = Input(&payload).string();
            let _ = lzf_decompress(&payload, payload.len() * 3);
        }

        /// The checksum aside, any byte of a real payload changed or cut still never panics.
        #[test]
        fn damaged_listpacks_never_panic(at in 0usize..61, to in any::<u8>(), cut in 0usize..62) {
            let good = bytes(
                "3d0000000800876372656174656408f3a03c3269058b6c6173745f6163746976650cf3a03c3269\
                 058776657273696f6e080c0183763a6e04f1393003ff",
            );
            let mut damaged = good.clone();
            damaged[at] = to;
            let _ = listpack(&damaged);
            let _ = listpack(&good[..cut]);
        }
    }
}
