//! Every server of the matrix whose store needs no other server (cookie, memory, files; the
//! libraries and the floors) answers its four paths as the benchmark expects: a session made
//! by `/new` counts on `/hot`, `/read` repeats it without a new cookie, `/untouched` answers 1.
//! `load-gen` checks the same under load; this catches a broken server before a run does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use fastsession_bench_matrix::{SERVERS, Server, Store};

/// A `matrix-server` child, killed when dropped.
struct Running(Child, String);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(server: Server, dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_matrix-server"))
        .arg(server.to_string())
        .arg("127.0.0.1:0")
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("matrix-server starts");
    let mut addr = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut addr)
        .expect("matrix-server prints its address");
    assert!(!addr.trim().is_empty(), "{server} printed no address");
    Running(child, addr.trim().to_owned())
}

/// One request on its own connection: the status, the `Set-Cookie` pair (`name=value`) if
/// any, and the body.
fn get(addr: &str, path: &str, cookie: Option<&str>) -> (u16, Option<String>, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: _ga=1; {c}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let set_cookie = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("set-cookie").then(|| {
            value
                .trim()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    });
    (status, set_cookie, body.to_owned())
}

#[test]
fn every_local_server_answers_its_paths() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let local = SERVERS
        .iter()
        .filter(|s| matches!(s.store, Store::Cookie | Store::Memory | Store::Filesystem));
    let mut checked = 0;
    for &server in local {
        let running = start(server, dir.path());
        let addr = running.1.as_str();
        let (status, cookie, body) = get(addr, "/new", None);
        assert_eq!((status, body.as_str()), (200, "1"), "{server} /new");
        let cookie = cookie.unwrap_or_else(|| panic!("{server}: /new set no cookie"));
        let (status, renewed, body) = get(addr, "/hot", Some(&cookie));
        assert_eq!((status, body.as_str()), (200, "2"), "{server} /hot");
        // A store whose cookie holds the session sends a new one with each write.
        let cookie = renewed.unwrap_or(cookie);
        let (status, renewed, body) = get(addr, "/read", Some(&cookie));
        assert_eq!((status, body.as_str()), (200, "2"), "{server} /read");
        assert_eq!(renewed, None, "{server}: /read set a cookie");
        let (status, renewed, body) = get(addr, "/untouched", Some(&cookie));
        assert_eq!((status, body.as_str()), (200, "1"), "{server} /untouched");
        assert_eq!(renewed, None, "{server}: /untouched set a cookie");
        checked += 1;
    }
    // fastsession over three stores in each of the three frameworks, tower-sessions' memory
    // store on hyper and axum, actix-session's cookie store, and the three floors.
    assert_eq!(checked, 15, "local servers checked");
}
