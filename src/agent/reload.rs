//! SIGHUP reloads the board file, as Telegraf and Vector do. The new file is read and checked
//! first: an invalid one is logged with file, line and key, and the running board stays. A valid
//! one stops the agent the way SIGTERM does (sampling stops, the pending window is committed,
//! the uploader stops), then the same binary starts afresh in place with the same arguments:
//! same PID for systemd, every thread built from the new board, nothing pending lost.

use crate::config::Board;
use crate::shutdown::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The board file to read again, and whether a reload was accepted.
#[derive(Debug)]
pub struct Reload {
    path: PathBuf,
    accepted: AtomicBool,
}

impl Reload {
    pub fn new(path: &Path) -> Reload {
        Reload {
            path: path.to_path_buf(),
            accepted: AtomicBool::new(false),
        }
    }

    /// SIGHUP arrived: check the board file again; if it is valid, tell systemd we are
    /// reloading and stop the agent so that [`Reload::accepted`] restarts it.
    pub fn request(&self, shutdown: &Shutdown, notify: &mut dyn FnMut(&str)) {
        if shutdown.is_triggered() {
            log::info!("SIGHUP while stopping: ignored");
            return;
        }
        if let Err(e) = Board::load(&self.path) {
            log::error!("reload refused, the running board stays: {e}");
            return;
        }
        log::info!(
            "reloading {}: committing pending readings, then starting afresh with it",
            self.path.display()
        );
        let usec = crate::os::time::monotonic_usec().unwrap_or(0);
        notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading the board file"
        ));
        self.accepted.store(true, Ordering::SeqCst);
        shutdown.trigger();
    }

    /// A valid board file is waiting to take over once everything has stopped.
    pub fn accepted(&self) -> bool {
        self.accepted.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_board_keeps_the_agent_running_and_a_valid_one_stops_it_for_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("board.toml");
        std::fs::write(
            &path,
            "[device]\nid = \"d\"\n\n[[sensor]]\nid = \"t\"\nkind = \"nope\"\n",
        )
        .unwrap();
        let reload = Reload::new(&path);
        let shutdown = Shutdown::new();
        let mut sent = Vec::new();
        reload.request(&shutdown, &mut |m| sent.push(m.to_string()));
        assert!(!shutdown.is_triggered() && !reload.accepted() && sent.is_empty());
        std::fs::write(
            &path,
            "[device]\nid = \"d\"\n\n[[sensor]]\nid = \"t\"\nkind = \"simulated_climate\"\n",
        )
        .unwrap();
        reload.request(&shutdown, &mut |m| sent.push(m.to_string()));
        assert!(shutdown.is_triggered() && reload.accepted());
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{sent:?}"
        );
    }
}
