//! The `fieldlink` binary under test: a command with a quiet, predictable environment, and a
//! running agent that a test stops with the signal it chooses (SIGTERM for a clean exit,
//! kill -9 for a power cut).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The binary under test, with a quiet, predictable environment.
pub fn fieldlink() -> Command {
    let mut command = super::emulator::fieldlink_command();
    command
        .env("FIELDLINK_LOG", "info")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("JOURNAL_STREAM");
    command
}

/// A running `fieldlink run`; killed with SIGKILL if the test lets go of it.
pub struct Agent {
    pub(super) child: Option<Child>,
    pub log: PathBuf,
}

impl Agent {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the agent says it runs (its signal handlers are in place by then) or has
    /// exited, so what a test times or signals next is the agent, not its start-up, which is
    /// slow under emulation (see tests/emulator).
    pub(super) fn wait_until_started(&mut self) {
        super::wait_until(Duration::from_secs(30), "fieldlink run to start", || {
            let started = self.log_text().contains(" running: device ");
            let exited = !matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)));
            (started || exited).then_some(())
        });
    }

    /// Send `signal` and wait up to `limit`; the exit status and how long it took. Panics (with
    /// the agent's log) if it is still running after `limit`.
    pub fn stop(mut self, signal: i32, limit: Duration) -> (ExitStatus, Duration) {
        let mut child = self.child.take().expect("a running agent");
        let start = Instant::now();
        // SAFETY: kill(2) on our own child's pid, not reaped yet.
        unsafe { libc::kill(child.id() as i32, signal) };
        loop {
            if let Some(status) = child.try_wait().expect("wait for the agent") {
                return (status, start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "fieldlink run did not exit within {limit:?} of signal {signal}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then insist on a clean exit 0 within 5 s.
    pub fn terminate(self) -> Duration {
        let log = self.log.clone();
        let (status, took) = self.stop(libc::SIGTERM, Duration::from_secs(5));
        assert!(
            status.success(),
            "fieldlink run exited with {status} after SIGTERM; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        took
    }

    /// kill -9: no chance to flush anything.
    pub fn kill9(self) {
        let (status, _) = self.stop(libc::SIGKILL, Duration::from_secs(5));
        assert!(!status.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
