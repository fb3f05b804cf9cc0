//! The operator's commands on a queue that is not there, or holds nothing to act on: a clear
//! message and a non-zero exit, and no file created, moved or repaired.

mod emulator;

fn fieldlink(args: &[&str]) -> (Option<i32>, String) {
    let output = emulator::fieldlink_command()
        .args(args)
        .env_remove("FIELDLINK_BOARD")
        .env_remove("JOURNAL_STREAM")
        .env_remove("STATE_DIRECTORY")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text.into_owned())
}

/// A board whose queue lives in `dir`, written into `dir`.
fn board_in(dir: &std::path::Path) -> String {
    let queue = dir.join("queue.db");
    let text = format!(
        "[device]\nid = \"q-1\"\n[[sensor]]\nid = \"t1\"\nkind = \"simulated_climate\"\n\
         [queue]\npath = \"{}\"\n[upload]\nurl = \"http://127.0.0.1:9\"\napi = \"v1\"\ndatabase = \"iot\"\n",
        queue.display()
    );
    let board = dir.join("board.toml");
    std::fs::write(&board, text).expect("board written");
    board.to_string_lossy().into_owned()
}

#[test]
fn read_and_drain_commands_on_a_missing_queue_fail_and_create_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = board_in(dir.path());
    let commands: [&[&str]; 6] = [
        &["status"],
        &["status", "--format", "json"],
        &["sync"],
        &["dead-letter", "list"],
        &["dead-letter", "retry", "--all"],
        &["dead-letter", "purge", "--older-than", "1d"],
    ];
    for args in commands {
        let mut args = args.to_vec();
        args.extend(["--board", board.as_str()]);
        let (code, text) = fieldlink(&args);
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert_eq!(text.matches("no queue at").count(), 1, "{args:?}: {text}");
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(files, ["board.toml"], "{args:?} created files");
    }
}

#[test]
fn retrying_a_dead_letter_that_is_not_there_exits_1_saying_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let board = board_in(dir.path());
    fieldlink::queue::Queue::open(&dir.path().join("queue.db")).expect("queue created");
    let (code, text) = fieldlink(&["dead-letter", "retry", "--id", "999999", "--board", &board]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("no dead letter #999999: nothing moved"),
        "{text}"
    );
    let (code, text) = fieldlink(&["dead-letter", "list", "--board", &board]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("0 dead letter(s)"), "{text}");
}
