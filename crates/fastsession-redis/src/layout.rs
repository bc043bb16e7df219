//! How a [`Record`] maps to the fields of a Redis hash, and back.

use std::borrow::Cow;

use fastsession_core::session::Record;
use fastsession_core::time::UnixTime;
use serde_json::value::RawValue;

/// A hash as Redis returns it (`HGETALL`, a script's `HGETALL`, or read from a `DUMP`): field,
/// value, field, ...
pub(crate) type Fields = Vec<Vec<u8>>;

const VALUE: &str = "v:";
const FLASH: &str = "f:";

/// The field of the value named `name`.
pub(crate) fn value_field(name: &str) -> String {
    format!("{VALUE}{name}")
}

/// The field of the flash list named `name`.
pub(crate) fn flash_field(name: &str) -> String {
    format!("{FLASH}{name}")
}

/// A flash list as one JSON array.
pub(crate) fn flash_json(list: &[Box<RawValue>]) -> String {
    let mut out = String::from("[");
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.get());
    }
    out.push(']');
    out
}

/// The `version` a session starts at: each update adds one. A merge that writes into a hash a
/// logout emptied meanwhile finds no `version` there, and its `HINCRBY` answers a number far
/// below this, so the answer alone says whether the session was there (see the plain merge).
/// Hashes written before sessions started here (absent, or counted from 0) are checked the
/// old way once and then moved past it.
pub(crate) const VERSION_BASE: i64 = 1 << 32;

/// Calls `field(name, value)` for each field of a new `record`, the name in two parts (a
/// prefix and the rest). Its id is never stored: the key is its hash. What a field's absence
/// already says is not written: `persistent` only when "1". Every load parses each field sent
/// back.
fn each_field(record: &Record, mut field: impl FnMut([&str; 2], &[u8])) {
    let mut digits = itoa::Buffer::new();
    field(
        ["", "created"],
        digits.format(record.created().as_secs()).as_bytes(),
    );
    field(["", "version"], digits.format(VERSION_BASE).as_bytes());
    field(
        ["", "last_active"],
        digits.format(record.last_active().as_secs()).as_bytes(),
    );
    if record.is_persistent() {
        field(["", "persistent"], b"1");
    }
    if let Some(user) = record.user_id() {
        field(["", "user"], user.as_bytes());
    }
    if let Some(at) = record.expires_at() {
        field(["", "expires_at"], digits.format(at.as_secs()).as_bytes());
    }
    for (name, value) in record.values() {
        field([VALUE, name], value.get().as_bytes());
    }
    for (name, list) in record.flashes() {
        field([FLASH, name], flash_json(list).as_bytes());
    }
}

/// Appends the fields of a new `record` to `cmd` as field, value pairs, each written once,
/// straight into the command.
pub(crate) fn write_fields(record: &Record, cmd: &mut redis::Cmd) {
    let mut name = String::new();
    each_field(record, |[prefix, rest], value| {
        name.clear();
        name.push_str(prefix);
        name.push_str(rest);
        cmd.arg(&name).arg(value);
    });
}

/// The RDB format version written with a plain hash: any server since Redis 3.2 reads it (a
/// server refuses only versions newer than its own), and a plain hash (type 4) is read the
/// same way by every version.
const RDB_VERSION: u16 = 7;
/// The RDB format version written with a listpack hash: Redis 7.0's, the first with the type.
const RDB_VERSION_LISTPACK: u16 = 10;
/// RDB's type of a hash as field, value strings.
const RDB_TYPE_HASH: u8 = 4;
/// RDB's type of a hash kept as one listpack (Redis 7.0 and later).
const RDB_TYPE_HASH_LISTPACK: u8 = 16;
/// Redis's defaults for a hash kept as a listpack (`hash-max-listpack-entries`,
/// `hash-max-listpack-value`): a hash within them is restored in that form.
const LISTPACK_MAX_PAIRS: usize = 128;
const LISTPACK_MAX_LEN: usize = 64;

/// The checksum that ends a `DUMP` payload: CRC-64 with Jones's polynomial, as Redis computes it.
pub(crate) const RDB_CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// A `RESTORE` payload, and whether it holds a listpack (which a server before Redis 7.0
/// cannot read).
pub(crate) struct Payload {
    pub(crate) bytes: Vec<u8>,
    pub(crate) listpack: bool,
}

/// A new `record` as the payload `RESTORE` takes (the format of `DUMP`): the hash, the RDB
/// version and a CRC-64 of all that. `RESTORE key ttl payload` without `REPLACE` creates the
/// hash with its TTL only if the key is absent, in one command (Redis 7 has no other).
///
/// With `listpack`, a hash within Redis's default listpack limits is written as the listpack
/// `HSET` would have built (RDB type 16, Redis 7.0 and later), which the server keeps as it
/// is: a `RESTORE` of it costs Redis about 40% less than the plain form. Otherwise a plain hash
/// (RDB type 4: its length, then each field and value as a length-prefixed string), which
/// every server reads and stores in its own encoding.
pub(crate) fn restore_payload(record: &Record, listpack: bool) -> Payload {
    let lp = if listpack { listpack_of(record) } else { None };
    let listpack = lp.is_some();
    let mut out;
    let version = if let Some(lp) = lp {
        out = Vec::with_capacity(lp.len() + 16);
        out.push(RDB_TYPE_HASH_LISTPACK);
        rdb_length(&mut out, lp.len());
        out.extend_from_slice(&lp);
        RDB_VERSION_LISTPACK
    } else {
        let mut count = 0;
        let mut bytes = 0;
        each_field(record, |[prefix, rest], value| {
            count += 1;
            bytes += prefix.len() + rest.len() + value.len() + 10;
        });
        out = Vec::with_capacity(bytes + 20);
        out.push(RDB_TYPE_HASH);
        rdb_length(&mut out, count);
        each_field(record, |[prefix, rest], value| {
            rdb_length(&mut out, prefix.len() + rest.len());
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(rest.as_bytes());
            rdb_length(&mut out, value.len());
            out.extend_from_slice(value);
        });
        RDB_VERSION
    };
    out.extend_from_slice(&version.to_le_bytes());
    let crc = RDB_CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Payload {
        bytes: out,
        listpack,
    }
}

/// The hash of a new `record` as the listpack `HSET` would build, field by field in the
/// same order; `None` if it is beyond Redis's default listpack limits (the server would keep
/// it as a hash table).
fn listpack_of(record: &Record) -> Option<Vec<u8>> {
    let mut pairs = 0;
    let mut bytes = 0;
    let mut fits = true;
    each_field(record, |[prefix, rest], value| {
        pairs += 1;
        bytes += prefix.len() + rest.len() + value.len() + 6;
        fits &= prefix.len() + rest.len() <= LISTPACK_MAX_LEN && value.len() <= LISTPACK_MAX_LEN;
    });
    if !fits || pairs > LISTPACK_MAX_PAIRS {
        return None;
    }
    // Header: total bytes (u32) and number of entries (u16), little-endian, filled in last.
    let mut lp = Vec::with_capacity(bytes + 7);
    lp.extend_from_slice(&[0; 6]);
    each_field(record, |[prefix, rest], value| {
        listpack_entry(&mut lp, [prefix.as_bytes(), rest.as_bytes()]);
        listpack_entry(&mut lp, [b"", value]);
    });
    lp.push(0xFF);
    let total = u32::try_from(lp.len()).ok()?;
    let entries = u16::try_from(pairs * 2).ok()?;
    lp[..4].copy_from_slice(&total.to_le_bytes());
    lp[4..6].copy_from_slice(&entries.to_le_bytes());
    Some(lp)
}

/// Appends one listpack entry holding the text `head ‖ tail` (at most [`LISTPACK_MAX_LEN`]
/// bytes), encoded as Redis encodes it: a decimal integer in its canonical form as the
/// smallest integer encoding that holds it, anything else as a string; then the entry's
/// length, for walking back. (A field's name comes in two parts; its prefix starts with a
/// letter, so only a text with no prefix can be an integer.)
fn listpack_entry(lp: &mut Vec<u8>, [head, tail]: [&[u8]; 2]) {
    let start = lp.len();
    let integer = if head.is_empty() {
        canonical_integer(tail)
    } else {
        None
    };
    if let Some(n) = integer {
        let le = n.to_le_bytes();
        match n {
            0..=127 => lp.push(le[0]),
            -4096..=4095 => lp.extend_from_slice(&[0xC0 | (le[1] & 0x1F), le[0]]),
            -32_768..=32_767 => {
                lp.push(0xF1);
                lp.extend_from_slice(&le[..2]);
            }
            -8_388_608..=8_388_607 => {
                lp.push(0xF2);
                lp.extend_from_slice(&le[..3]);
            }
            -2_147_483_648..=2_147_483_647 => {
                lp.push(0xF3);
                lp.extend_from_slice(&le[..4]);
            }
            _ => {
                lp.push(0xF4);
                lp.extend_from_slice(&le);
            }
        }
    } else {
        let text_len = head.len() + tail.len();
        let len = text_len.to_le_bytes();
        if text_len < 64 {
            lp.push(0x80 | len[0]);
        } else {
            lp.extend_from_slice(&[0xE0 | (len[1] & 0x0F), len[0]]);
        }
        lp.extend_from_slice(head);
        lp.extend_from_slice(tail);
    }
    // At most 2 + 64 bytes: the length fits the one-byte form (up to 127).
    let size = (lp.len() - start).to_le_bytes();
    lp.push(size[0]);
}

/// `text` as an integer if it is one in the form Redis keeps as an integer: decimal, no sign
/// but a minus, no leading zero, within 64 bits.
fn canonical_integer(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (itoa::Buffer::new().format(n).as_bytes() == text).then_some(n)
}

/// Appends `len` in RDB's length encoding: 6 bits, 14 bits, 32 or 64 bits (big-endian).
fn rdb_length(out: &mut Vec<u8>, len: usize) {
    match (u8::try_from(len), u16::try_from(len), u32::try_from(len)) {
        (Ok(short), _, _) if short < 1 << 6 => out.push(short),
        (_, Ok(medium), _) if medium < 1 << 14 => {
            out.extend_from_slice(&(0x4000 | medium).to_be_bytes());
        }
        (_, _, Ok(long)) => {
            out.push(0x80);
            out.extend_from_slice(&long.to_be_bytes());
        }
        _ => {
            out.push(0x81);
            out.extend_from_slice(&u64::try_from(len).unwrap_or(u64::MAX).to_be_bytes());
        }
    }
}

/// The record a hash holds, without its version.
#[cfg(test)]
pub(crate) fn decode(fields: Fields) -> Result<Record, &'static str> {
    decode_versioned(fields).map(|(record, _)| record)
}

/// The record a hash holds and the hash's `version`, if it has one; `Err` names what is
/// wrong (never a value).
pub(crate) fn decode_versioned(fields: Fields) -> Result<(Record, Option<u64>), &'static str> {
    if !fields.len().is_multiple_of(2) {
        return Err("odd reply");
    }
    let mut reader = RecordReader::new();
    let mut pairs = fields.into_iter();
    while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
        reader.field(&field, Text::Bytes(Cow::Owned(value)))?;
    }
    reader.finish_versioned()
}

/// A field's value as a hash holds it: its bytes, or an integer (a `DUMP` keeps a value that
/// reads as a canonical integer as one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text<'a> {
    Bytes(Cow<'a, [u8]>),
    Int(i64),
}

impl Text<'_> {
    fn into_string(self) -> Result<String, &'static str> {
        match self {
            Text::Bytes(bytes) => {
                String::from_utf8(bytes.into_owned()).map_err(|_| "field value is not UTF-8")
            }
            Text::Int(n) => Ok(itoa::Buffer::new().format(n).to_owned()),
        }
    }

    fn secs(&self) -> Option<UnixTime> {
        let secs = match self {
            Text::Bytes(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok()?,
            Text::Int(n) => u64::try_from(*n).ok()?,
        };
        Some(UnixTime::from_secs(secs))
    }
}

/// A record read field by field from its hash.
pub(crate) struct RecordReader {
    record: Record,
    created: Option<UnixTime>,
    last_active: Option<UnixTime>,
    /// Values and flash lists as the hash lists them (its own order, not the keys'): sorted
    /// once at the end, as a record keeps them, rather than inserted one by one.
    values: Vec<(String, Box<RawValue>)>,
    flashes: Vec<(String, Vec<Box<RawValue>>)>,
    /// The `version` every write bumps, if the hash has one.
    version: Option<u64>,
}

impl RecordReader {
    pub(crate) fn new() -> Self {
        RecordReader {
            record: Record::new(UnixTime::EPOCH),
            created: None,
            last_active: None,
            values: Vec::new(),
            flashes: Vec::new(),
            version: None,
        }
    }

    /// Takes the field `name` and its `value`; `Err` names what is wrong (never a value).
    pub(crate) fn field(&mut self, name: &[u8], value: Text<'_>) -> Result<(), &'static str> {
        let name = std::str::from_utf8(name).map_err(|_| "field name is not UTF-8")?;
        let record = &mut self.record;
        if let Some(name) = name.strip_prefix(VALUE) {
            let value =
                RawValue::from_string(value.into_string()?).map_err(|_| "value is not JSON")?;
            self.values.push((name.to_owned(), value));
        } else if let Some(name) = name.strip_prefix(FLASH) {
            let list: Vec<Box<RawValue>> = serde_json::from_str(&value.into_string()?)
                .map_err(|_| "flash list is not a JSON array")?;
            self.flashes.push((name.to_owned(), list));
        } else {
            match name {
                "created" => self.created = Some(value.secs().ok_or("bad created")?),
                "last_active" => self.last_active = Some(value.secs().ok_or("bad last_active")?),
                "persistent" => record.set_persistent(value.into_string()? == "1"),
                "user" => record.set_user_id(Some(value.into_string()?)),
                // Absent from hashes written before sessions had their own deadline: none.
                "expires_at" => {
                    record.set_expires_at(Some(value.secs().ok_or("bad expires_at")?));
                }
                "version" => {
                    self.version = match value {
                        Text::Int(n) => u64::try_from(n).ok(),
                        Text::Bytes(bytes) => std::str::from_utf8(&bytes)
                            .ok()
                            .and_then(|t| t.parse().ok()),
                    };
                }
                _ => return Err("unknown field"),
            }
        }
        Ok(())
    }

    /// The record, and the `version` of the hash it was read from, if it had one.
    pub(crate) fn finish_versioned(mut self) -> Result<(Record, Option<u64>), &'static str> {
        let version = self.version;
        // A hash's field names are unique, and so are the keys they carry.
        self.values.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in self.values {
            self.record.insert_value(key, value);
        }
        self.flashes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, list) in self.flashes {
            self.record.set_flash_list(key, list);
        }
        self.record
            .set_created(self.created.ok_or("no created time")?);
        self.record
            .set_last_active(self.last_active.ok_or("no last activity time")?);
        Ok((self.record, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    fn flatten(fields: Vec<(String, String)>) -> Fields {
        fields
            .into_iter()
            .flat_map(|(f, v)| [f.into_bytes(), v.into_bytes()])
            .collect()
    }

    /// The fields `write_fields` appends, as pairs.
    fn encode(record: &Record) -> Vec<(String, String)> {
        let mut cmd = redis::Cmd::new();
        write_fields(record, &mut cmd);
        let args: Vec<String> = cmd
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
                _ => unreachable!("only plain arguments"),
            })
            .collect();
        args.chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect()
    }

    #[test]
    fn records_round_trip_through_fields() {
        let mut r = Record::new(UnixTime::from_secs(100));
        r.set_last_active(UnixTime::from_secs(150));
        r.set_persistent(true);
        r.set_user_id(Some("alice".into()));
        r.insert_value("name".into(), raw("\"gopher\""));
        r.insert_value("v:tricky".into(), raw("{\"a\":[1,2]}"));
        r.set_flash_list("_flash".into(), vec![raw("1"), raw("\"two\"")]);
        assert_eq!(decode(flatten(encode(&r))).unwrap(), r);
        r.set_expires_at(Some(UnixTime::from_secs(900)));
        let fields = encode(&r);
        assert!(fields.contains(&("expires_at".to_owned(), "900".to_owned())));
        assert_eq!(decode(flatten(fields)).unwrap(), r);
    }

    #[test]
    fn fields_in_any_order_read_as_the_same_record() {
        let mut r = Record::new(UnixTime::from_secs(100));
        r.set_last_active(UnixTime::from_secs(150));
        for key in ["b", "c", "a", "e", "d"] {
            r.insert_value(key.into(), raw("1"));
            r.set_flash_list(format!("_{key}"), vec![raw("2")]);
        }
        let mut fields = encode(&r);
        fields.reverse();
        assert_eq!(decode(flatten(fields)).unwrap(), r);
    }

    /// A known answer, computed apart (another CRC-64 implementation, checked against the
    /// catalogue's check value) and accepted by Redis 7.0's `RESTORE`.
    #[test]
    fn restore_payloads_are_dump_payloads_of_a_hash() {
        let mut r = Record::new(UnixTime::from_secs(100));
        r.set_last_active(UnixTime::from_secs(150));
        r.set_user_id(Some("ada".into()));
        r.insert_value("n".into(), raw("1"));
        let payload = restore_payload(&r, false);
        assert!(!payload.listpack);
        assert_eq!(
            hex(&payload.bytes),
            "04050763726561746564033130300776657273696f6e0a343239343936373239360b6c6173745f61\
             63746976650331353004757365720361646103763a6e01310700ac60787840ee1b81"
        );
        assert_eq!(RDB_CRC.checksum(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A known answer from Redis itself: what Redis 7.0.15 answered to `DUMP` of the hash
    /// that `HSET` made of these fields in this order (`created` 1765000000, `version`
    /// 4294967296, `last_active` 1765000000, `v:n` 1), its integers in three widths.
    #[test]
    fn listpack_payloads_are_what_redis_dumps() {
        let mut r = Record::new(UnixTime::from_secs(1_765_000_000));
        r.insert_value("n".into(), raw("1"));
        let payload = restore_payload(&r, true);
        assert!(payload.listpack);
        assert_eq!(
            hex(&payload.bytes),
            "104043430000000800876372656174656408f340c33369058776657273696f6e08f4000000000100\
             0000098b6c6173745f6163746976650cf340c333690583763a6e040101ff0a00aee3db419ca64591"
        );
    }

    /// Each integer width Redis uses, at both ends, and the strings beside them, checked
    /// against Redis's own `lpEncodeIntegerGetType` and `lpEncodeString` choices.
    #[test]
    fn listpack_entries_take_redis_encodings() {
        let entry = |text: &str| {
            let mut lp = Vec::new();
            listpack_entry(&mut lp, [b"", text.as_bytes()]);
            hex(&lp)
        };
        assert_eq!(entry("0"), "0001");
        assert_eq!(entry("127"), "7f01");
        assert_eq!(entry("128"), "c08002");
        assert_eq!(entry("-1"), "dfff02");
        assert_eq!(entry("-4096"), "d00002");
        assert_eq!(entry("4095"), "cfff02");
        assert_eq!(entry("4096"), "f1001003");
        assert_eq!(entry("-32768"), "f1008003");
        assert_eq!(entry("32768"), "f200800004");
        assert_eq!(entry("-8388608"), "f200008004");
        assert_eq!(entry("8388608"), "f30000800005");
        assert_eq!(entry("-2147483648"), "f30000008005");
        assert_eq!(entry("2147483648"), "f4000000800000000009");
        assert_eq!(entry("-9223372036854775808"), "f4000000000000008009");
        // Not canonical, so strings: a plus, a leading zero, minus zero, too large.
        assert_eq!(entry("+1"), "822b3103");
        assert_eq!(entry("01"), "82303103");
        assert_eq!(entry("-0"), "822d3003");
        assert_eq!(
            entry("9223372036854775808"),
            format!("93{}14", hex(b"9223372036854775808"))
        );
        assert_eq!(entry(""), "8001");
        let long = "x".repeat(64);
        assert_eq!(entry(&long), format!("e040{}42", hex(long.as_bytes())));
    }

    /// Beyond Redis's default listpack limits, the plain form: the server chooses.
    #[test]
    fn large_hashes_are_restored_plain() {
        let mut r = Record::new(UnixTime::from_secs(100));
        r.insert_value("a".into(), raw(&format!("\"{}\"", "q".repeat(62))));
        assert!(restore_payload(&r, true).listpack, "64 bytes fit");
        r.insert_value("a".into(), raw(&format!("\"{}\"", "q".repeat(63))));
        assert!(!restore_payload(&r, true).listpack, "65 bytes do not");
        let mut r = Record::new(UnixTime::from_secs(100));
        for i in 0..125 {
            r.insert_value(format!("k{i}"), raw("1"));
        }
        assert!(restore_payload(&r, true).listpack, "128 fields fit");
        r.insert_value("k125".into(), raw("1"));
        assert!(!restore_payload(&r, true).listpack, "129 do not");
    }

    #[test]
    fn rdb_lengths_take_the_shortest_encoding() {
        let encoded = |len| {
            let mut out = Vec::new();
            rdb_length(&mut out, len);
            out
        };
        assert_eq!(encoded(0), [0]);
        assert_eq!(encoded(63), [63]);
        assert_eq!(encoded(64), [0x40, 64]);
        assert_eq!(encoded(16_383), [0x7f, 0xff]);
        assert_eq!(encoded(16_384), [0x80, 0, 0, 0x40, 0]);
        assert_eq!(encoded(1 << 32), [0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    /// A hash written before sessions had their own deadline has no `expires_at`: none.
    #[test]
    fn hashes_without_expires_at_still_load() {
        let old = [
            ("created", "100"),
            ("last_active", "150"),
            ("persistent", "1"),
            ("version", "7"),
            ("user", "ada"),
            ("v:n", "1"),
        ];
        let record = decode(flatten(
            old.iter()
                .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                .collect(),
        ))
        .unwrap();
        assert_eq!(record.expires_at(), None);
        assert!(record.is_persistent());
        assert_eq!(record.user_id(), Some("ada"));
        assert!(
            decode(flatten(vec![
                ("created".to_owned(), "1".to_owned()),
                ("last_active".to_owned(), "1".to_owned()),
                ("expires_at".to_owned(), "soon".to_owned()),
            ]))
            .is_err()
        );
    }

    #[test]
    fn foreign_hashes_are_refused() {
        let bad = |pairs: &[(&str, &str)]| {
            decode(flatten(
                pairs
                    .iter()
                    .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                    .collect(),
            ))
            .is_err()
        };
        assert!(bad(&[("created", "1")]), "no last_active");
        assert!(bad(&[("created", "x"), ("last_active", "1")]));
        assert!(bad(&[("created", "1"), ("last_active", "1"), ("v:a", "{")]));
        assert!(bad(&[("created", "1"), ("last_active", "1"), ("f:a", "1")]));
        assert!(bad(&[
            ("created", "1"),
            ("last_active", "1"),
            ("other", "1")
        ]));
    }
}
