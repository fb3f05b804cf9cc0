//! Signals: SIGTERM and SIGINT ask the agent to stop, SIGHUP to reload its board file, SIGUSR1
//! to drain its queue now (what `sync` sends a running agent); SIGPIPE ends commands that print.

use std::io;

/// A signal disposition the kernel or signal-hook refused.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Installing the SIGTERM/SIGINT/SIGHUP (or SIGUSR1) handlers failed.
    #[error("cannot install the signal handlers")]
    Register(#[source] io::Error),
    /// The thread that waits for the signals could not start.
    #[error("cannot start the signal thread")]
    Thread(#[source] io::Error),
    /// signal(2) refused to ignore SIGHUP.
    #[error("cannot ignore SIGHUP")]
    IgnoreHangup(#[source] io::Error),
    /// signal(2) refused to ignore SIGUSR1.
    #[error("cannot ignore SIGUSR1")]
    IgnoreDrain(#[source] io::Error),
    /// signal(2) refused to reset SIGPIPE.
    #[error("cannot reset SIGPIPE to its default")]
    Sigpipe(#[source] io::Error),
    /// kill(2) could not deliver the drain request (no such process, not ours).
    #[error("cannot signal process {pid}")]
    Send {
        pid: i32,
        #[source]
        source: io::Error,
    },
}

/// Ask the agent with process id `pid` to drain its queue now (SIGUSR1).
#[allow(unsafe_code)]
pub fn request_drain(pid: i32) -> Result<(), SignalError> {
    // SAFETY: kill(2) sends a signal; it touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
        return Err(SignalError::Send {
            pid,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Commands that print and end behave like any Unix tool when their reader goes away
/// (`fieldlink status | head -3`): SIGPIPE ends them, where Rust's default (SIGPIPE ignored)
/// makes the next print panic. `run` and `sync` keep it ignored: the agent must never die of
/// a log reader that went away.
#[allow(unsafe_code)]
pub fn end_on_a_closed_pipe() -> Result<(), SignalError> {
    // SAFETY: resetting a signal to its default disposition; no handler is involved.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if previous == libc::SIG_ERR {
        return Err(SignalError::Sigpipe(io::Error::last_os_error()));
    }
    Ok(())
}

/// Ignore SIGHUP from now on, and across execve(2), which keeps ignored signals ignored: a
/// SIGHUP that arrives while the agent starts afresh must not end it (the default action) before
/// the fresh start watches for it again.
#[allow(unsafe_code)]
pub fn ignore_hangup() -> Result<(), SignalError> {
    // SAFETY: setting a signal to be ignored; no handler is involved.
    let previous = unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    if previous == libc::SIG_ERR {
        return Err(SignalError::IgnoreHangup(io::Error::last_os_error()));
    }
    Ok(())
}

/// Ignore SIGUSR1 until the agent watches for it: a `sync` that finds the queue locked asks
/// the agent to drain at once, and SIGUSR1's default action would end an agent still starting.
#[allow(unsafe_code)]
pub fn ignore_drain_requests() -> Result<(), SignalError> {
    // SAFETY: setting a signal to be ignored; no handler is involved.
    let previous = unsafe { libc::signal(libc::SIGUSR1, libc::SIG_IGN) };
    if previous == libc::SIG_ERR {
        return Err(SignalError::IgnoreDrain(io::Error::last_os_error()));
    }
    Ok(())
}

/// What a signal asks of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: commit and exit.
    Stop,
    /// SIGHUP: read the board file again.
    Reload,
    /// SIGUSR1 (from `sync`): upload now, ending any pause.
    Drain,
}

/// Watches for SIGTERM, SIGINT, SIGHUP and SIGUSR1 from a small thread blocked on signal-hook's pipe;
/// dropping it stops watching.
pub struct SignalWatch {
    handle: signal_hook::iterator::Handle,
}

impl SignalWatch {
    /// Call `on_signal`, from the watching thread, for every signal that arrives.
    pub fn start(mut on_signal: impl FnMut(Request) + Send + 'static) -> Result<Self, SignalError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])
            .map_err(SignalError::Register)?;
        let handle = signals.handle();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    on_signal(match signal {
                        SIGHUP => Request::Reload,
                        SIGUSR1 => Request::Drain,
                        _ => Request::Stop,
                    });
                }
            })
            .map_err(SignalError::Thread)?;
        Ok(SignalWatch { handle })
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        self.handle.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn sigterm_sighup_and_sigusr1_call_the_watcher_instead_of_ending_the_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let watch = SignalWatch::start(move |request| {
            let _ = tx.send(request);
        })
        .unwrap();
        let wait = std::time::Duration::from_secs(5);
        // SAFETY: raise only sends a signal to this process, whose handler signal-hook installed.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        assert_eq!(rx.recv_timeout(wait), Ok(Request::Reload));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        assert_eq!(rx.recv_timeout(wait), Ok(Request::Drain));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        assert_eq!(rx.recv_timeout(wait), Ok(Request::Stop));
        drop(watch);
    }
}
