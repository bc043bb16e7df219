//! Any change to a sealed value is rejected: a mutated value either is byte-identical to the
//! original or does not open, for the codec and for a cookie-store session alike. Mutations
//! apply to the base64url text or to the decoded bytes (re-encoded canonically), and the name
//! it is opened for may change too.

#![no_main]

use arbitrary::Arbitrary;
use fastsession_fuzz::{
    COOKIE_NAME, Mutation, assert_only_the_original_opens, codec, config, mutate, sealed_session,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

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
    let mutated = mutate(original, input.raw, &input.mutations);

    if !input.session {
        let text = String::from_utf8_lossy(&mutated);
        let name = input.rename.as_deref().unwrap_or("id");
        let unchanged = mutated == original.as_bytes() && name == "id";
        let opened = codec().open(name, &text);
        assert_eq!(opened.is_ok(), unchanged, "a changed value never opens");
        return;
    }

    // Through the registry: a `Cookie` header that does not carry the original cookie exactly
    // once yields a fresh, empty session.
    let name = input.rename.as_deref().unwrap_or(COOKIE_NAME);
    assert_only_the_original_opens(config(), original, name, &mutated);
});
