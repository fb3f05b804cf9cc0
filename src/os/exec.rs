//! Starting afresh in place: execve(2) of this same binary with the same arguments and
//! environment. The PID stays, so systemd keeps watching the same main process; every thread,
//! file and connection is built anew by the fresh start.

use std::io;
use std::os::unix::process::CommandExt;

/// The binary of this process, even if its file was replaced or removed since it started.
const THIS_BINARY: &str = "/proc/self/exe";

/// The exec failed; the process goes on as it was.
#[derive(Debug, thiserror::Error)]
#[error("cannot execute {THIS_BINARY} again")]
pub struct ExecError(#[source] io::Error);

/// Replace this process with a fresh start of the same binary and arguments. Returns only
/// when that fails.
pub fn restart_in_place() -> ExecError {
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(THIS_BINARY);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    ExecError(command.args(args).exec())
}
