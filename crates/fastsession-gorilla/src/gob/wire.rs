//! The wire's primitives: Go's predefined type ids, gob's unsigned and signed integers,
//! floats, byte strings and messages.

use super::bad;
use crate::error::Result;

// Go's predefined type ids.
pub(super) const BOOL: i64 = 1;
pub(super) const INT: i64 = 2;
pub(super) const UINT: i64 = 3;
pub(super) const FLOAT: i64 = 4;
pub(super) const BYTES: i64 = 5;
pub(super) const STRING: i64 = 6;
pub(super) const COMPLEX: i64 = 7;
pub(super) const INTERFACE: i64 = 8;
/// The first id a stream may define.
pub(super) const FIRST_ID: i64 = 65;

/// gob's unsigned integer: one byte below 128, else the negated byte count and big-endian
/// bytes.
pub(super) fn read_uint(input: &mut &[u8]) -> Result<u64> {
    let (&first, rest) = input.split_first().ok_or_else(bad)?;
    if first < 0x80 {
        *input = rest;
        return Ok(u64::from(first));
    }
    let n = usize::from(first.wrapping_neg());
    if n == 0 || n > 8 || n > rest.len() {
        return Err(bad());
    }
    let mut v = 0u64;
    for &b in &rest[..n] {
        v = (v << 8) | u64::from(b);
    }
    *input = &rest[n..];
    Ok(v)
}

pub(super) fn put_uint(out: &mut Vec<u8>, v: u64) {
    match u8::try_from(v) {
        Ok(small) if small < 0x80 => out.push(small),
        _ => {
            let bytes = v.to_be_bytes();
            let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
            // The negated byte count (1 to 8) says how many big-endian bytes follow.
            let count = u8::try_from(significant.len()).unwrap_or(8);
            out.push(count.wrapping_neg());
            out.extend_from_slice(significant);
        }
    }
}

pub(super) fn put_int(out: &mut Vec<u8>, i: i64) {
    let u = if i < 0 {
        (!(i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    };
    put_uint(out, u);
}

pub(super) fn put_float(out: &mut Vec<u8>, f: f64) {
    put_uint(out, f.to_bits().swap_bytes());
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub(super) fn put_message(out: &mut Vec<u8>, message: &[u8]) {
    put_bytes(out, message);
}
