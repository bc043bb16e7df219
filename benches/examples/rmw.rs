//! Runs `n` cookie-store read-modify-write requests through the `Sessions` registry, for
//! profiling with callgrind:
//!
//! ```text
//! cargo build --release -p fastsession-benches --example rmw
//! valgrind --tool=callgrind target/release/examples/rmw 20000
//! callgrind_annotate --inclusive=yes callgrind.out.* | head -60
//! ```

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use fastsession_core::codec::{Key, KeyRing};
use fastsession_core::http::{CookieConfig, SessionConfig, Sessions};
use fastsession_core::store::CookieStore;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};

fn block_on<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("cookie-store futures are ready at once"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).ok_or("usage: rmw <n>")?.parse()?;
    let keys = KeyRing::new(Key::from_secret(&(1..=32).collect::<Vec<u8>>())?);
    let config = SessionConfig::new(CookieStore::new(&keys), CookieConfig::new("id")?);
    let mut cookie = String::new();
    for i in 0..n {
        let mut request = HeaderMap::new();
        if !cookie.is_empty() {
            request.insert(COOKIE, cookie.parse()?);
        }
        let sessions = Sessions::new(&request);
        let mut response = HeaderMap::new();
        block_on(async {
            let session = sessions.get(&config).await?;
            let count = session.get::<u64>("n")?.unwrap_or(0);
            session.insert("n", count + 1)?;
            sessions.save_all(&mut response).await
        })?;
        if let Some(line) = response.get(SET_COOKIE) {
            cookie = line
                .to_str()?
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        black_box(i);
    }
    println!("{cookie}");
    Ok(())
}
