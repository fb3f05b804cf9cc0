//! Every board error names the file it is in, the line, and the key, exactly.

use super::{Board, ConfigError};
use std::path::Path;

/// Load `board` (and `overlay`, if given, as `device.toml` beside it) from a fresh directory;
/// the error's text with that directory written as `DIR`.
fn error(board: &[u8], overlay: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("board.toml"), board).unwrap();
    if let Some(overlay) = overlay {
        std::fs::write(dir.path().join("device.toml"), overlay).unwrap();
    }
    let err: ConfigError = Board::load(&dir.path().join("board.toml")).unwrap_err();
    let dir_text = std::path::absolute(dir.path()).unwrap();
    err.to_string()
        .replace(&*dir_text.to_string_lossy(), "DIR")
        .replace(&*Path::new(dir.path()).to_string_lossy(), "DIR")
}

const CLIMATE: &str = "[[sensor]]\nid = \"T1\"\nkind = \"simulated_climate\"\n";

#[test]
fn a_sensor_without_kind_is_reported_at_its_table_as_key_kind() {
    let board = format!("{CLIMATE}[[sensor]]\nid = \"T2\"\ninterval = \"1s\"\n");
    assert_eq!(
        error(board.as_bytes(), None),
        "DIR/board.toml:4: key `sensor.kind`: missing field `kind`"
    );
}

#[test]
fn a_sensor_written_as_a_table_says_to_write_an_array_of_tables() {
    let board = "[sensor]\nid = \"T1\"\nkind = \"simulated_climate\"\n";
    assert_eq!(
        error(board.as_bytes(), None),
        "DIR/board.toml:1: key `sensor`: invalid type: map, expected a sequence; \
         write `[[sensor]]`, one table per entry"
    );
}

#[test]
fn a_bad_tag_names_the_tag() {
    let board = format!("[tags]\nfloor = \"1\"\nzone = 'cold\\'\n{CLIMATE}");
    assert_eq!(
        error(board.as_bytes(), None),
        "DIR/board.toml:3: key `tags.zone`: tag `zone` = `cold\\`: a backslash at the end, two \
         in a row, or before a space, comma or `=`, cannot round-trip through InfluxDB"
    );
}

#[test]
fn a_bad_sensor_tag_names_the_sensor_and_the_tag() {
    let board = format!("{CLIMATE}tags = {{ placement = 'a\\ b' }}\n");
    assert_eq!(
        error(board.as_bytes(), None),
        "DIR/board.toml:4: key `sensor[0].tags.placement`: tag `placement` = `a\\ b`: a \
         backslash at the end, two in a row, or before a space, comma or `=`, cannot round-trip \
         through InfluxDB"
    );
}

#[test]
fn a_bad_tag_in_the_overlay_is_reported_against_the_overlay() {
    let board = format!("[device]\noverlay = \"device.toml\"\n[tags]\nfloor = \"1\"\n{CLIMATE}");
    let overlay = "[device]\nid = \"pi-7\"\n\n[tags]\nzone = 'cold\\'\n";
    assert_eq!(
        error(board.as_bytes(), Some(overlay)),
        "DIR/device.toml:5: key `tags.zone`: tag `zone` = `cold\\`: a backslash at the end, two \
         in a row, or before a space, comma or `=`, cannot round-trip through InfluxDB"
    );
}

#[test]
fn a_duplicate_table_names_the_table() {
    let board = format!("[queue]\nmax_age = \"1d\"\n[queue]\nmax_age = \"2d\"\n{CLIMATE}");
    assert_eq!(
        error(board.as_bytes(), None),
        "DIR/board.toml:3: key `queue`: duplicate key"
    );
}

#[test]
fn a_file_that_is_not_utf8_names_the_line() {
    let mut board = CLIMATE.as_bytes().to_vec();
    board.extend_from_slice(b"[tags]\nzone = \"k\xfchlhaus\"\n");
    assert_eq!(
        error(&board, None),
        "DIR/board.toml:5: not UTF-8 text; a board file must be saved as UTF-8"
    );
}

#[test]
fn an_overlay_checked_as_a_board_says_it_is_an_overlay() {
    let overlay = "[device]\nid = \"pi-7\"\n\n[tags]\nzone = \"cold\"\n";
    assert_eq!(
        error(overlay.as_bytes(), None),
        "DIR/board.toml: this is a per-device overlay ([device] id and [tags] only), not a \
         board; check the board file that names it in [device] overlay"
    );
}
