//! Numbers too big to be meant are refused up front with exit 2, naming where they were
//! written (file:line:key, or the option), instead of panicking later in clock arithmetic.

mod emulator;

const HUGE: &str = "99999999999999999999999ms";

/// A board with every duration and size key on a line of its own; `key` gets `value`.
fn board_with(key: &str, value: &str) -> String {
    let lines = [
        ("", "[device]\nid = \"big-1\"\n"),
        (
            "",
            "[[sensor]]\nid = \"t1\"\nkind = \"simulated_climate\"\n",
        ),
        ("sensor.interval", "interval = \"10s\"\n"),
        ("", "[queue]\npath = \"q/queue.db\"\n"),
        ("queue.max_bytes", "max_bytes = \"64MiB\"\n"),
        ("queue.max_age", "max_age = \"30d\"\n"),
        ("queue.commit_interval", "commit_interval = \"10s\"\n"),
        (
            "",
            "[upload]\nurl = \"http://127.0.0.1:9\"\napi = \"v1\"\ndatabase = \"iot\"\n",
        ),
        ("upload.batch_bytes", "batch_bytes = \"1MiB\"\n"),
        ("upload.timeout", "timeout = \"10s\"\n"),
        ("upload.start_delay_max", "start_delay_max = \"5s\"\n"),
    ];
    lines
        .iter()
        .map(|(name, line)| match name.rsplit('.').next() {
            Some(last) if *name == key => format!("{last} = \"{value}\"\n"),
            _ => line.to_string(),
        })
        .collect()
}

fn fieldlink(args: &[&str]) -> (Option<i32>, String) {
    let output = emulator::fieldlink_command()
        .args(args)
        .env_remove("FIELDLINK_BOARD")
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (output.status.code(), text.into_owned())
}

#[test]
fn a_huge_duration_or_size_in_any_key_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = [
        ("sensor.interval", HUGE, 6),
        ("queue.max_age", HUGE, 10),
        ("queue.commit_interval", HUGE, 11),
        ("upload.timeout", HUGE, 17),
        ("upload.start_delay_max", HUGE, 18),
        ("queue.max_bytes", "99999999999999999999999GiB", 9),
        ("upload.batch_bytes", "99999999999999999999999GiB", 16),
    ];
    for (key, value, line) in keys {
        let path = dir.path().join("board.toml");
        std::fs::write(&path, board_with(key, value)).expect("board written");
        let board = path.to_str().expect("UTF-8 path");
        for command in ["check", "run"] {
            let (code, text) = fieldlink(&[command, "--board", board]);
            assert_eq!(code, Some(2), "{command} with {key}: {text}");
            assert!(
                text.contains(&format!("board.toml:{line}: key `{key}`")),
                "{command} with {key}: {text}"
            );
            assert!(text.contains("at most"), "{key}: {text}");
            assert!(!text.contains("panicked"), "{key}: {text}");
        }
    }
}

#[test]
fn a_huge_duration_on_the_command_line_exits_2_naming_the_option() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("board.toml");
    std::fs::write(&path, board_with("", "")).expect("board written");
    let board = path.to_str().expect("UTF-8 path");
    let cases = [
        (vec!["sync", "--timeout", HUGE], "--timeout"),
        (
            vec!["dead-letter", "purge", "--older-than", HUGE],
            "--older-than",
        ),
    ];
    for (mut args, option) in cases {
        args.extend(["--board", board]);
        let (code, text) = fieldlink(&args);
        assert_eq!(code, Some(2), "{args:?}: {text}");
        assert!(text.contains(option), "{args:?}: {text}");
        assert!(text.contains("at most 100 years"), "{args:?}: {text}");
    }
}
