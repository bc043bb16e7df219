//! How a [`Record`] maps to the fields of a Redis hash, and back.

use fastsession_core::session::Record;
use fastsession_core::time::UnixTime;
use serde_json::value::RawValue;

/// A hash as Redis returns it (`HGETALL`, or a script's `HGETALL`): field, value, field, ...
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

/// Appends the fields of a new `record` to `cmd` as field, value pairs (its id is never
/// stored: the key is its hash), each written once, straight into the command. What a field's
/// absence already says is not written: `persistent` only when "1", and no `version` (the
/// number of updates, none yet). Every load parses each field sent back, about 1 200
/// instructions a pair in redis-rs.
pub(crate) fn write_fields(record: &Record, cmd: &mut redis::Cmd) {
    cmd.arg("created")
        .arg(record.created().as_secs())
        .arg("last_active")
        .arg(record.last_active().as_secs());
    if record.is_persistent() {
        cmd.arg("persistent").arg("1");
    }
    if let Some(user) = record.user_id() {
        cmd.arg("user").arg(user);
    }
    if let Some(at) = record.expires_at() {
        cmd.arg("expires_at").arg(at.as_secs());
    }
    let mut field = String::new();
    for (name, value) in record.values() {
        field.clear();
        field.push_str(VALUE);
        field.push_str(name);
        cmd.arg(&field).arg(value.get());
    }
    for (name, list) in record.flashes() {
        cmd.arg(flash_field(name)).arg(flash_json(list));
    }
}

/// The record a hash holds; `Err` names what is wrong (never a value).
pub(crate) fn decode(fields: Fields) -> Result<Record, &'static str> {
    if !fields.len().is_multiple_of(2) {
        return Err("odd reply");
    }
    let mut created = None;
    let mut last_active = None;
    let mut record = Record::new(UnixTime::EPOCH);
    let mut pairs = fields.into_iter();
    while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
        let field = String::from_utf8(field).map_err(|_| "field name is not UTF-8")?;
        let text = String::from_utf8(value).map_err(|_| "field value is not UTF-8")?;
        let secs = |t: &str| t.parse::<u64>().map(UnixTime::from_secs);
        if let Some(name) = field.strip_prefix(VALUE) {
            let value = RawValue::from_string(text).map_err(|_| "value is not JSON")?;
            record.insert_value(name.to_owned(), value);
        } else if let Some(name) = field.strip_prefix(FLASH) {
            let list: Vec<Box<RawValue>> =
                serde_json::from_str(&text).map_err(|_| "flash list is not a JSON array")?;
            record.set_flash_list(name.to_owned(), list);
        } else {
            match field.as_str() {
                "created" => created = Some(secs(&text).map_err(|_| "bad created")?),
                "last_active" => last_active = Some(secs(&text).map_err(|_| "bad last_active")?),
                "persistent" => record.set_persistent(text == "1"),
                "user" => record.set_user_id(Some(text)),
                // Absent from hashes written before sessions had their own deadline: none.
                "expires_at" => {
                    record.set_expires_at(Some(secs(&text).map_err(|_| "bad expires_at")?));
                }
                "version" => {}
                _ => return Err("unknown field"),
            }
        }
    }
    record.set_created(created.ok_or("no created time")?);
    record.set_last_active(last_active.ok_or("no last activity time")?);
    Ok(record)
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
