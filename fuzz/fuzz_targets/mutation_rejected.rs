//! Any change to a sealed value is rejected: a mutated value either is byte-identical to the
//! original or does not open, for the codec and for a cookie-store session alike. Mutations
//! apply to the base64url text or to the decoded bytes (re-encoded canonically), and the name
//! it is opened for may change too.

#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fastsession_core::http::Sessions;
use fastsession_fuzz::{COOKIE_NAME, block_on, codec, config, sealed_session};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[derive(Arbitrary, Debug)]
enum Mutation {
    FlipBit {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: u8,
    },
    Truncate {
        len: usize,
    },
    Append {
        bytes: Vec<u8>,
    },
    Swap {
        a: usize,
        b: usize,
    },
    /// Copy a slice over another place (moves nonce, tag or header bytes around).
    CopyWithin {
        from: usize,
        len: u8,
        to: usize,
    },
}

impl Mutation {
    fn apply(&self, v: &mut Vec<u8>) {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match *self {
            Mutation::FlipBit { at: i, bit } if !v.is_empty() => {
                let i = at(i, v.len());
                v[i] ^= 1 << (bit % 8);
            }
            Mutation::Set { at: i, byte } if !v.is_empty() => {
                let i = at(i, v.len());
                v[i] = byte;
            }
            Mutation::Insert { at: i, ref bytes } => {
                let i = at(i, v.len() + 1);
                v.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove { at: i, len } if !v.is_empty() => {
                let i = at(i, v.len());
                let end = (i + usize::from(len) + 1).min(v.len());
                v.drain(i..end);
            }
            Mutation::Truncate { len } => v.truncate(at(len, v.len() + 1)),
            Mutation::Append { ref bytes } => v.extend_from_slice(bytes),
            Mutation::Swap { a, b } if !v.is_empty() => {
                let (a, b) = (at(a, v.len()), at(b, v.len()));
                v.swap(a, b);
            }
            Mutation::CopyWithin { from, len, to } if !v.is_empty() => {
                let from = at(from, v.len());
                let end = (from + usize::from(len) + 1).min(v.len());
                let to = at(to, v.len() - (end - from) + 1);
                v.copy_within(from..end, to);
            }
            _ => {}
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Mutate the decoded bytes (and re-encode) rather than the text.
    raw: bool,
    /// Open the cookie-store session rather than the codec's own value.
    session: bool,
    mutations: Vec<Mutation>,
    /// Open for another name instead (`None` keeps the name).
    rename: Option<String>,
}

fn codec_sealed() -> &'static str {
    static SEALED: OnceLock<String> = OnceLock::new();
    SEALED.get_or_init(|| {
        codec()
            .seal("id", br#"{"user":"gopher","admin":false}"#)
            .expect("seal")
    })
}

fuzz_target!(|input: Input| {
    let original = if input.session {
        sealed_session()
    } else {
        codec_sealed()
    };
    let mutated: Vec<u8> = if input.raw {
        let mut raw = URL_SAFE_NO_PAD.decode(original).expect("canonical");
        for m in &input.mutations {
            m.apply(&mut raw);
        }
        URL_SAFE_NO_PAD.encode(&raw).into_bytes()
    } else {
        let mut text = original.as_bytes().to_vec();
        for m in &input.mutations {
            m.apply(&mut text);
        }
        text
    };
    let text = String::from_utf8_lossy(&mutated);

    if !input.session {
        let name = input.rename.as_deref().unwrap_or("id");
        let unchanged = mutated == original.as_bytes() && name == "id";
        let opened = codec().open(name, &text);
        assert_eq!(opened.is_ok(), unchanged, "a changed value never opens");
        return;
    }

    // Through the registry: a `Cookie` header that does not carry the original cookie exactly
    // once (by the cookie-pair rules of RFC 6265) yields a fresh, empty session.
    let name = input.rename.as_deref().unwrap_or(COOKIE_NAME);
    let mut line = format!("{name}=").into_bytes();
    line.extend_from_slice(&mutated);
    let Ok(value) = HeaderValue::from_bytes(&line) else {
        return;
    };
    let ours: Vec<&[u8]> = line
        .split(|&b| b == b';')
        .filter_map(|pair| {
            pair.trim_ascii()
                .strip_prefix(COOKIE_NAME.as_bytes())?
                .strip_prefix(b"=")
        })
        .collect();
    let unchanged = ours == [original.as_bytes()];
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, value);
    let sessions = Sessions::new(&headers);
    let session = block_on(sessions.get(config())).expect("a cookie store never fails to load");
    assert_eq!(!session.is_new(), unchanged, "only the original opens");
    if unchanged {
        let user = session.get::<String>("user").expect("JSON");
        assert_eq!(user.as_deref(), Some("gopher"));
    } else {
        assert!(session.is_empty());
    }
});
