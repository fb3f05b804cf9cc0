//! Signals: SIGTERM and SIGINT ask the agent to stop; SIGPIPE ends commands that print.

use std::io;

/// A signal disposition the kernel or signal-hook refused.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Installing the SIGTERM/SIGINT handlers failed.
    #[error("cannot install the SIGTERM/SIGINT handlers")]
    Register(#[source] io::Error),
    /// The thread that waits for the signals could not start.
    #[error("cannot start the signal thread")]
    Thread(#[source] io::Error),
    /// signal(2) refused to reset SIGPIPE.
    #[error("cannot reset SIGPIPE to its default")]
    Sigpipe(#[source] io::Error),
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

/// Watches for SIGTERM and SIGINT from a small thread blocked on signal-hook's pipe; dropping
/// it stops watching.
pub struct TerminationWatch {
    handle: signal_hook::iterator::Handle,
}

impl TerminationWatch {
    /// Call `on_signal` once, from the watching thread, when SIGTERM or SIGINT arrives.
    pub fn start(on_signal: impl FnOnce() + Send + 'static) -> Result<Self, SignalError> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
            .map_err(SignalError::Register)?;
        let handle = signals.handle();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    on_signal();
                }
            })
            .map_err(SignalError::Thread)?;
        Ok(TerminationWatch { handle })
    }
}

impl Drop for TerminationWatch {
    fn drop(&mut self) {
        self.handle.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn sigterm_calls_the_watcher_instead_of_ending_the_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let watch = TerminationWatch::start(move || {
            let _ = tx.send(());
        })
        .unwrap();
        // SAFETY: raise only sends a signal to this process, whose handler signal-hook installed.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the watcher saw SIGTERM");
        drop(watch);
    }
}
