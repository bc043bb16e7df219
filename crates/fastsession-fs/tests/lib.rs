//! Integration tests of the filesystem store, in one binary.
//!
//! The numbers in doc comments are the security cases listed in SECURITY.md ("Security cases
//! by number"). Some tests re-run this binary as a child process (see
//! [`child_process_entry`]): to share a directory between processes, to set a process-wide
//! umask, or to meet kernel failures (`EFBIG`, `ENOSPC`, `EROFS`, `EACCES`) that a root test
//! process cannot provoke in itself.

// Helpers outside `#[test]` functions panic on purpose: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod basics;
mod budget;
mod conformance;
mod crash;
mod hostile;
mod processes;
mod support;

/// Does nothing in a normal run; in a child started by [`support::child`], runs the mode
/// named by the `FASTSESSION_FS_CHILD` variable.
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var(support::CHILD) else {
        return;
    };
    match mode.as_str() {
        "umask" => hostile::umask_child(),
        "fault" => crash::fault_child(),
        "writer" => processes::writer_child(),
        "ender" => processes::ender_child(),
        "flood" => budget::flood_child(),
        other => panic!("unknown child mode {other}"),
    }
}
