//! systemd's notify protocol, spoken directly: one datagram to $NOTIFY_SOCKET per message
//! (READY=1, WATCHDOG=1, STATUS=…). Outside systemd every call is a no-op.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A notification systemd did not get.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot open a datagram socket")]
    Socket(#[source] io::Error),
    #[error("cannot send to $NOTIFY_SOCKET {socket}")]
    Send {
        socket: String,
        #[source]
        source: io::Error,
    },
}

/// Send one message; `Ok(false)` when not under systemd (no $NOTIFY_SOCKET).
pub fn try_send(message: &str) -> Result<bool, NotifyError> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let socket = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
    let path = path.to_string_lossy().into_owned();
    // An abstract socket is written with a leading '@'.
    let result = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| socket.send_to_addr(message.as_bytes(), &addr))
    } else {
        socket.send_to(message.as_bytes(), &path)
    };
    result.map(|_| true).map_err(|source| NotifyError::Send {
        socket: path,
        source,
    })
}

/// [`try_send`], best effort: systemd going away must not stop the agent.
pub fn send(message: &str) {
    if let Err(e) = try_send(message) {
        log::debug!("sd_notify {message}: {e}");
    }
}

/// How often to ping the watchdog: half of WatchdogSec, as sd_watchdog_enabled(3) advises.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}
