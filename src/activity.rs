//! What the agent is doing, as the one line systemd shows in `systemctl status` (`STATUS=`):
//! sampling, uploading or offline with a backlog, the disk full, the clock untrusted. The
//! workers set what they know; the main thread reads it at every watchdog tick.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};

/// Where uploads stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Upload {
    /// No `[upload]` section: readings stay in the queue.
    Off = 0,
    /// Nothing waiting, or waiting before the first upload.
    Idle = 1,
    /// The last batch went through.
    Uploading = 2,
    /// The server or the network failed; readings wait on disk.
    Offline = 3,
}

/// Shared between the workers (writers) and the main thread (reader).
#[derive(Debug, Default)]
pub struct Activity {
    disk_full: AtomicBool,
    upload: AtomicU8,
    queued: AtomicI64,
}

impl Activity {
    /// The recorder cannot write the queue: readings wait in memory.
    pub fn set_disk_full(&self, full: bool) {
        self.disk_full.store(full, Ordering::Relaxed);
    }

    /// The uploader's state and the queue depth it last saw.
    pub fn set_upload(&self, state: Upload, queued: i64) {
        self.upload.store(state as u8, Ordering::Relaxed);
        self.queued.store(queued, Ordering::Relaxed);
    }

    /// The `STATUS=` text, e.g. `sampling; offline with 1200 queued; clock untrusted`.
    pub fn status_line(&self, clock_trusted: bool) -> String {
        let mut parts = vec!["sampling".to_string()];
        if self.disk_full.load(Ordering::Relaxed) {
            parts.push("disk full: readings wait in memory".into());
        }
        let queued = self.queued.load(Ordering::Relaxed);
        match self.upload.load(Ordering::Relaxed) {
            x if x == Upload::Uploading as u8 => parts.push("uploading".into()),
            x if x == Upload::Offline as u8 => parts.push(format!("offline with {queued} queued")),
            x if x == Upload::Idle as u8 => parts.push("upload idle".into()),
            _ => {}
        }
        if !clock_trusted {
            parts.push("clock untrusted: readings held until it is".into());
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_what_the_agent_is_doing() {
        let activity = Activity::default();
        assert_eq!(activity.status_line(true), "sampling");
        activity.set_upload(Upload::Offline, 1200);
        activity.set_disk_full(true);
        assert_eq!(
            activity.status_line(false),
            "sampling; disk full: readings wait in memory; offline with 1200 queued; clock untrusted: readings held until it is"
        );
        activity.set_upload(Upload::Uploading, 0);
        activity.set_disk_full(false);
        assert_eq!(activity.status_line(true), "sampling; uploading");
    }
}
