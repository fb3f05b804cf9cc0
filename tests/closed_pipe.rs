//! A command that prints ends quietly when its reader has gone (`fieldlink check | head -1`),
//! as any Unix tool does, instead of panicking.

mod emulator;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

#[test]
fn printing_into_a_closed_pipe_ends_the_command_without_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    // The reader is gone before the command prints its first line.
    drop(reader);
    let board = concat!(env!("CARGO_MANIFEST_DIR"), "/boards/simulated.toml");
    let out = emulator::fieldlink_command()
        .args(["check", "--board", board])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "status {:?}, stderr: {stderr}",
        out.status
    );
}
