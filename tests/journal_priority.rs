//! Under systemd, stderr is the journal and each line's `<N>` prefix is its priority, so
//! `journalctl -p err` finds every error. The binary believes `JOURNAL_STREAM` only when it
//! names stderr's own device and inode.

mod emulator;

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

/// Run `args` with stderr in a file; `stream` builds JOURNAL_STREAM from that file's dev and
/// inode. Returns the exit code and what went to stderr.
fn run_logged(args: &[&str], stream: impl Fn(u64, u64) -> String) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let meta = log.metadata().expect("log metadata");
    let status = emulator::fieldlink_command()
        .args(args)
        .env_remove("FIELDLINK_BOARD")
        .env_remove("STATE_DIRECTORY")
        .env("JOURNAL_STREAM", stream(meta.dev(), meta.ino()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .status()
        .expect("the binary runs");
    let text = std::fs::read_to_string(&log_path).expect("log read");
    (status.code(), text)
}

fn write_board(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("board.toml");
    std::fs::write(&path, text).expect("board written");
    path.to_string_lossy().into_owned()
}

#[test]
fn errors_carry_the_error_priority_once_when_stderr_is_the_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad_board = write_board(dir.path(), "[device]\nid = 3\n");
    let (code, text) = run_logged(&["check", "--board", &bad_board], |d, i| format!("{d}:{i}"));
    assert_eq!(code, Some(2), "{text}");
    assert!(text.starts_with("<3>"), "{text}");
    assert!(text.contains("key `device.id`"), "{text}");
    assert_eq!(text.lines().count(), 1, "said once: {text}");

    let no_dir = write_board(
        dir.path(),
        "[device]\nid = \"j\"\n[[sensor]]\nid = \"t\"\nkind = \"simulated_climate\"\n\
         [queue]\npath = \"/nonexistent/a/b/queue.db\"\n",
    );
    let (code, text) = run_logged(&["run", "--board", &no_dir], |d, i| format!("{d}:{i}"));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.starts_with("<3>queue directory"), "{text}");
    assert_eq!(
        text.matches("does not exist").count(),
        1,
        "said once: {text}"
    );
}

#[test]
fn a_journal_stream_naming_another_file_is_not_believed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad_board = write_board(dir.path(), "[device]\nid = 3\n");
    let (code, text) = run_logged(&["check", "--board", &bad_board], |d, i| {
        format!("{d}:{}", i + 1)
    });
    assert_eq!(code, Some(2), "{text}");
    assert!(text.starts_with("fieldlink: "), "{text}");
    assert!(!text.contains("<3>"), "{text}");
}
