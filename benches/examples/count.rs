//! Runs one operation of the `codec` bench `n` times, for instruction counts that machine noise
//! does not move: `valgrind --tool=callgrind` this with `n` and with 0, subtract, divide by `n`.
//! `bash benches/instructions.sh` does that for every operation.
//!
//! Usage: `count <seal_open|seal|open>/<fastsession|sketch|cookie_private_jar> <n>`

use std::hint::black_box;

use cookie::{Cookie, CookieJar};
use fastsession_benches::{PAYLOAD, PURPOSE, Sketch};
use fastsession_core::codec::{Codec, Key, KeyRing};

const NAME: &str = "id";

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(op), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: count <op>/<impl> <n>");
        std::process::exit(2);
    };
    let n: u32 = n.parse().expect("a count");

    let ours = Codec::new(
        &KeyRing::new(Key::from_secret(&(1..=32).collect::<Vec<u8>>()).expect("key")),
        PURPOSE,
    );
    let sketch = Sketch::new();
    let theirs = cookie::Key::from(&[7u8; 64]);
    let our_sealed = ours.seal(NAME, PAYLOAD.as_bytes()).expect("seal");
    let sketch_sealed = sketch.seal(NAME, PAYLOAD.as_bytes());
    let mut jar = CookieJar::new();
    jar.private_mut(&theirs).add(Cookie::new(NAME, PAYLOAD));
    let their_sealed: &'static str = jar.get(NAME).expect("added").value().to_owned().leak();

    for _ in 0..n {
        match op.as_str() {
            "seal_open/fastsession" => {
                let sealed = ours
                    .seal(NAME, black_box(PAYLOAD.as_bytes()))
                    .expect("seal");
                black_box(ours.open(NAME, &sealed).expect("open").plaintext().len());
            }
            "seal_open/sketch" => {
                let sealed = sketch.seal(NAME, black_box(PAYLOAD.as_bytes()));
                black_box(sketch.open(NAME, &sealed).expect("open").len());
            }
            "seal_open/cookie_private_jar" => {
                jar.private_mut(&theirs)
                    .add(Cookie::new(NAME, black_box(PAYLOAD)));
                let sealed = jar.get(NAME).expect("added").clone();
                black_box(
                    jar.private(&theirs)
                        .decrypt(sealed)
                        .expect("decrypt")
                        .value()
                        .len(),
                );
            }
            "seal/fastsession" => {
                black_box(
                    ours.seal(NAME, black_box(PAYLOAD.as_bytes()))
                        .expect("seal"),
                );
            }
            "seal/sketch" => {
                black_box(sketch.seal(NAME, black_box(PAYLOAD.as_bytes())));
            }
            "seal/cookie_private_jar" => {
                jar.private_mut(&theirs)
                    .add(Cookie::new(NAME, black_box(PAYLOAD)));
            }
            "open/fastsession" => {
                black_box(ours.open(NAME, black_box(&our_sealed)).expect("open"));
            }
            "open/sketch" => {
                black_box(sketch.open(NAME, black_box(&sketch_sealed)).expect("open"));
            }
            "open/cookie_private_jar" => {
                black_box(
                    jar.private(&theirs)
                        .decrypt(Cookie::new(NAME, black_box(their_sealed)))
                        .expect("decrypt"),
                );
            }
            other => panic!("unknown operation {other}"),
        }
    }
}
