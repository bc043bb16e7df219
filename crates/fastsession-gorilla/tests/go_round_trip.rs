//! Cookies this crate writes, read by the real gorilla/securecookie and encoding/gob: every
//! value of the vectors is sealed again here (new random IVs), gob values are also written
//! again by this crate's encoder, and Go decodes them through `interop/gorilla/run.sh
//! -decode`, next to Go's own cookie for the same value; all must give the same Go value. Needs Go and Debian's gorilla packages: `bash .ci/go-deps`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use fastsession_core::time::UnixTime;
use fastsession_gorilla::{SecureCookie, gob};

use crate::tools;
use crate::vectors::{all as vectors, codec, hex};
use serde_json::{Value, json};

fn interop() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop/gorilla")
}

/// What Go decodes a vector's cookie into: the target type of `-decode`.
fn target(v: &Value) -> Option<&'static str> {
    let serializer = v["codec"]["serializer"].as_str().unwrap_or_default();
    let value = v["value"].as_object()?;
    match serializer {
        "json" => Some("value"),
        "nop" => Some("bytes"),
        // Gob needs the concrete type: sessions' map, or a string.
        _ if value.contains_key("map") => Some("session"),
        _ if value.contains_key("string") => Some("string"),
        _ => None,
    }
}

/// Runs the Go program's decode mode on `requests`; one answer per request.
pub(crate) fn go_decode(requests: &[Value]) -> Vec<Value> {
    let script = interop().join("run.sh");
    let child = Command::new("bash")
        .arg(&script)
        .arg("-decode")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut stdin = child.stdin.take().unwrap();
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Go decoder failed ({}); Go and the gorilla packages come from `bash .ci/go-deps`:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn go_reads_every_cookie_this_crate_writes() {
    if !tools::go_present() {
        return;
    }
    let mut requests = Vec::new();
    for v in vectors() {
        let Some(target) = target(&v) else { continue };
        if v["kind"] != "encode" || v.get("decode_error").is_some() {
            continue;
        }
        let spec = &v["codec"];
        let now = UnixTime::from_secs(spec["now"].as_u64().unwrap());
        let payload = hex(v["payload_hex"].as_str().unwrap());
        let ours = codec(spec).encode_bytes("session", &payload, now).unwrap();
        let mut cookies = vec![("go", v["cookie"].clone()), ("rust", json!(ours))];
        if matches!(target, "session" | "string") {
            // The value written as gob by this crate, sealed by this crate.
            let (ty, value) = gob::decode(&payload).unwrap();
            let gob = gob::encode(&ty, &value).unwrap();
            cookies.push((
                "rust-gob",
                json!(codec(spec).encode_bytes("session", &gob, now).unwrap()),
            ));
        }
        for (which, cookie) in cookies {
            requests.push(json!({
                "id": format!("{}/{which}", v["id"].as_str().unwrap()),
                "codec": spec,
                "cookie_name": "session",
                "cookie": cookie,
                "target": target,
            }));
        }
    }
    // A gorilla CookieStore session (values and flashes) re-sealed under its key pairs, and
    // written again as gob by this crate, as the Go store reads it.
    for v in vectors()
        .into_iter()
        .filter(|v| v["kind"] == "cookie_store")
    {
        let pairs: Vec<&str> = v["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let now = UnixTime::from_secs(v["now"].as_u64().unwrap());
        let name = v["cookie_name"].as_str().unwrap();
        let first =
            SecureCookie::new(pairs[0].as_bytes(), pairs.get(1).map(|k| k.as_bytes())).unwrap();
        let payload = first
            .decode_bytes(name, v["cookie_value"].as_str().unwrap(), now)
            .unwrap();
        let ours = first.encode_bytes(name, &payload, now).unwrap();
        let (ty, value) = gob::decode(&payload).unwrap();
        let gob = gob::encode(&ty, &value).unwrap();
        let ours_gob = first.encode_bytes(name, &gob, now).unwrap();
        for (which, cookie) in [
            ("go", v["cookie_value"].clone()),
            ("rust", json!(ours)),
            ("rust-gob", json!(ours_gob)),
        ] {
            requests.push(json!({
                "id": format!("{}/{which}", v["id"].as_str().unwrap()),
                "pairs": pairs,
                "codec": {"now": v["now"]},
                "cookie_name": name,
                "cookie": cookie,
                "target": "session",
            }));
        }
    }
    assert!(requests.len() >= 100, "{} requests", requests.len());
    let answers = go_decode(&requests);
    assert_eq!(answers.len(), requests.len());
    let by_id: std::collections::HashMap<&str, &Value> = answers
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a))
        .collect();
    for answer in &answers {
        let id = answer["id"].as_str().unwrap();
        let (vector, which) = id.rsplit_once('/').unwrap();
        let go = by_id[format!("{vector}/go").as_str()];
        assert!(go.get("error").is_none(), "Go's own cookie: {go}");
        if which != "go" {
            assert_eq!(answer["value"], go["value"], "{id}");
        }
    }
    // And a tampered one is refused by Go as by us.
    let v = &requests[1];
    assert!(v["id"].as_str().unwrap().ends_with("/rust"));
    let mut tampered = v.clone();
    let cookie = v["cookie"].as_str().unwrap();
    let swapped = if &cookie[10..11] == "B" { "C" } else { "B" };
    tampered["cookie"] = json!(format!("{}{swapped}{}", &cookie[..10], &cookie[11..]));
    let answer = &go_decode(&[tampered])[0];
    assert!(answer.get("error").is_some(), "{answer}");
}

/// A Go value description (`interop/gorilla/main.go`) as comparable text, map entries in any
/// order.
fn entries(desc: &Value) -> std::collections::BTreeSet<String> {
    desc["map"]
        .as_array()
        .unwrap_or_else(|| panic!("not a map: {desc}"))
        .iter()
        .map(Value::to_string)
        .collect()
}

/// Go's `sessions.CookieStore.Get` on a request with every gorilla session vector's cookie,
/// after this crate's `GorillaCookieStore` read it, changed it and saved it: the values keep
/// their Go types, the flashes are `[]interface{}` as `session.Flashes()` asserts.
#[tokio::test]
async fn a_go_cookie_store_reads_the_sessions_this_crate_saved() {
    if !tools::go_present() {
        return;
    }
    use fastsession_core::http::{CookieConfig, Prefix, SessionConfig};
    use fastsession_core::time::ManualClock;
    use fastsession_gorilla::GorillaCookieStore;

    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for v in vectors() {
        if v["kind"] != "encode" || !v["id"].as_str().unwrap().starts_with("gob_map_") {
            continue;
        }
        let spec = &v["codec"];
        let now = UnixTime::from_secs(spec["now"].as_u64().unwrap());
        let store = GorillaCookieStore::new(vec![codec(spec)]).unwrap();
        let cookie = CookieConfig::builder("session")
            .with_prefix(Prefix::None)
            .build()
            .unwrap();
        let config = SessionConfig::new(store, cookie).with_clock(ManualClock::new(now));
        let types = v["id"].as_str().unwrap().starts_with("gob_map_types");
        let saved = crate::support::visit(&config, v["cookie"].as_str(), |session| {
            assert!(!session.is_new(), "{} opens", v["id"]);
            session.insert("rust_added", 7).unwrap();
            session.add_flash("from rust").unwrap();
            if types {
                session.insert("i16", 300).unwrap();
                session.insert("u8", 7).unwrap();
                session.insert("raw", "AQI=").unwrap();
            }
        })
        .await;
        let mut values = entries(&v["value"]);
        let flash_key = json!({"string": "_flash"});
        let mut flashes: Vec<Value> = v["value"]["map"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == flash_key)
            .map(|pair| pair[1]["list"].as_array().unwrap().clone())
            .unwrap_or_default();
        values.retain(|pair| !pair.starts_with(&format!("[{flash_key}")));
        flashes.push(json!({"string": "from rust"}));
        values.insert(json!([{"string": "rust_added"}, {"int": 7}]).to_string());
        // What Go's format has no place for rides in one string entry, which Go keeps.
        let meta = json!({"c": now.as_secs(), "p": true}).to_string();
        values.insert(json!([{"string": "_fastsession"}, {"string": meta}]).to_string());
        if types {
            // Changed values keep the Go type of the value they replace.
            for (key, old, new) in [
                ("i16", json!({"int16": -1234}), json!({"int16": 300})),
                ("u8", json!({"uint8": 200}), json!({"uint8": 7})),
                (
                    "raw",
                    json!({"bytes": "3q2+7w=="}),
                    json!({"bytes": "AQI="}),
                ),
            ] {
                assert!(values.remove(&json!([{"string": key}, old]).to_string()));
                values.insert(json!([{"string": key}, new]).to_string());
            }
        }
        requests.push(json!({
            "id": v["id"],
            "pairs": [spec["hash_key"], spec["block_key"]],
            "codec": {"now": spec["now"]},
            "cookie_name": "session",
            "cookie": saved.value(),
            "target": "cookie_store",
        }));
        expected.push((values, flashes));
    }
    assert!(requests.len() >= 20, "{} sessions", requests.len());
    let answers = go_decode(&requests);
    for ((answer, (values, flashes)), request) in answers.iter().zip(&expected).zip(&requests) {
        let id = &request["id"];
        assert!(answer.get("error").is_none(), "{id}: {answer}");
        let got: std::collections::HashMap<String, &Value> = answer["value"]["map"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| (pair[0]["string"].as_str().unwrap().to_owned(), &pair[1]))
            .collect();
        assert_eq!(&entries(got["values"]), values, "{id}");
        assert_eq!(got["flashes"]["list"].as_array().unwrap(), flashes, "{id}");
    }
}

/// A JSON value from the Go program's description of what `encoding/json` decoded into an
/// `interface{}` (objects, lists, strings, `float64`, bools, nil).
fn json_from_go(desc: &Value) -> Value {
    let (kind, v) = desc.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "nil" => Value::Null,
        "string" | "bool" | "float64" => v.clone(),
        "list" => Value::Array(v.as_array().unwrap().iter().map(json_from_go).collect()),
        "object" => Value::Object(
            v.as_array()
                .unwrap()
                .iter()
                .map(|pair| (pair[0].as_str().unwrap().to_owned(), json_from_go(&pair[1])))
                .collect(),
        ),
        other => panic!("not a JSON value from Go: {other}"),
    }
}

/// Go's `DecodeMulti` over `CodecsFromPairs(new..., old...)` with `JSONEncoder` reads what
/// `encode_multi_json` wrote under the same pairs, and under the old pair alone (a cookie
/// from before the rotation); a list without the old pair refuses the latter, in Go as here.
#[test]
fn go_decode_multi_with_json_reads_encode_multi_json_across_a_rotation() {
    if !tools::go_present() {
        return;
    }
    use fastsession_gorilla::{decode_multi_json, encode_multi_json};

    let pairs = [
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210",
        "fedcba9876543210fedcba9876543210",
        "fedcba9876543210fedcba9876543210",
    ];
    let both = crate::vectors::pairs(&json!(pairs));
    let now = UnixTime::from_secs(1_700_000_000);
    let values = [
        json!({"user": "ada", "n": 3, "f": 0.1, "tags": ["<a>", "b & c"], "none": null}),
        json!("line\u{2028}para"),
        json!([1e21, -2.5, true]),
    ];
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let new = encode_multi_json(&both, "prefs", value, now).unwrap();
        let old = encode_multi_json(&both[1..], "prefs", value, now).unwrap();
        // And this crate reads its own under the rotation list.
        assert_eq!(
            &decode_multi_json(&both, "prefs", &old, now).unwrap(),
            value
        );
        for (which, cookie, keys) in [
            ("new", &new, &pairs[..]),
            ("old", &old, &pairs[..]),
            ("old-without-old-pair", &old, &pairs[..2]),
        ] {
            requests.push(json!({
                "id": format!("{i}/{which}"),
                "pairs": keys,
                "codec": {"serializer": "json", "now": now.as_secs()},
                "cookie_name": "prefs",
                "cookie": cookie,
                "target": "value",
            }));
            expected.push((which != "old-without-old-pair").then_some(value));
        }
        let error = decode_multi_json(&both[..1], "prefs", &old, now).unwrap_err();
        assert!(error.kind().is_decode());
    }
    let answers = go_decode(&requests);
    assert_eq!(answers.len(), requests.len());
    for ((answer, expected), request) in answers.iter().zip(&expected).zip(&requests) {
        let id = &request["id"];
        match expected {
            Some(value) => assert_eq!(&json_from_go(&answer["value"]), *value, "{id}: {answer}"),
            None => assert!(answer.get("error").is_some(), "{id}: {answer}"),
        }
    }
}
