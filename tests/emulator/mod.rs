//! Starting the binary under test on the architecture it was built for.
//!
//! `cargo test --target aarch64-unknown-linux-gnu` runs the test binaries through the runner in
//! `.cargo/config.toml` (qemu user-mode emulation), but a test that spawns `fieldlink` itself
//! execs an ARM binary directly, which only works where binfmt_misc hands it to qemu. So the
//! ARM test script names the emulator in `FIELDLINK_RUNNER` (a command line, split on
//! whitespace, e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`), and every spawn goes
//! through it. Unset or empty: the binary is started directly, as on a native build.

// Each test binary that includes this module uses only what it needs.
#![allow(dead_code)]

use std::process::Command;

/// The path of the `fieldlink` binary cargo built for these tests.
pub const FIELDLINK: &str = env!("CARGO_BIN_EXE_fieldlink");

/// A command that starts `FIELDLINK`, through `FIELDLINK_RUNNER` when one is set.
pub fn fieldlink_command() -> Command {
    let runner = std::env::var("FIELDLINK_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut command = Command::new(emulator);
            command.args(words).arg(FIELDLINK);
            command
        }
        None => Command::new(FIELDLINK),
    }
}

/// Whether the binary runs under an emulator: its process is then the emulator's, whose own
/// memory (translated code, its heap) counts in what `/proc` reports for it.
pub fn emulated() -> bool {
    std::env::var("FIELDLINK_RUNNER").is_ok_and(|runner| !runner.trim().is_empty())
}
