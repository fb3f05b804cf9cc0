//! `sync`: drain the queue now, with progress on a terminal, within a time limit, and say
//! what became of the readings: uploaded, dead-lettered or still queued. Beside a running
//! agent (which holds the queue's lock) it asks the agent to drain instead.

use super::existing_queue;
use super::CliError;
use crate::agent;
use crate::clock::SystemClock;
use crate::config::Board;
use crate::queue::{Access, Queue, QueueError, WriterLock};
use crate::upload::Step;
use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a sync did, counted from the queue itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub uploaded: i64,
    pub dead_lettered: i64,
    pub queued: i64,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} reading(s) uploaded, {} dead-lettered, {} still queued",
            self.uploaded, self.dead_lettered, self.queued
        )
    }
}

/// The queue's figures before the sync, to tell what the sync did from what it finds after.
struct Observer {
    queue: Queue,
    dead_letters_before: i64,
}

impl Observer {
    /// A connection of its own that only reads; not a read-only one, which would take a
    /// queue no agent has open as immutable and miss what this sync changes.
    fn new(board: &Board) -> Result<Observer, CliError> {
        let queue = existing_queue::open(board, Access::ReadWrite)?;
        let dead_letters_before = queue.stats()?.dead_letters;
        Ok(Observer {
            queue,
            dead_letters_before,
        })
    }

    /// `sent` readings left the queue: those now among the dead letters were refused.
    fn tally(&self, sent: usize) -> Result<Tally, QueueError> {
        let stats = self.queue.stats()?;
        let dead_lettered = (stats.dead_letters - self.dead_letters_before).max(0);
        Ok(Tally {
            uploaded: (sent as i64 - dead_lettered).max(0),
            dead_lettered,
            queued: stats.depth,
        })
    }
}

/// The seed of the retry jitter: the device's own, so a fleet's devices that fail together
/// do not retry together.
fn jitter_seed(board: &Board) -> String {
    format!("{}/sync", crate::device::resolve_id(&board.device.id))
}

pub fn sync(board: &Board, timeout: Duration) -> Result<(), CliError> {
    let Some(cfg) = &board.upload else {
        return Err(CliError::NoUpload);
    };
    let observer = Observer::new(board)?;
    let path = board.queue.resolved_path();
    let _lock = match crate::queue::take_writer_lock(&path)? {
        WriterLock::Ours(lock) => lock,
        WriterLock::HeldBy(pid) => {
            return super::sync_beside_agent::sync_beside_agent(&path, pid, timeout)
        }
    };
    let (queue, time) = agent::open_queue(board, Arc::new(SystemClock::default()))?;
    let total = queue.stats()?.depth;
    let device_id = crate::device::resolve_id(&board.device.id);
    let seed = jitter_seed(board);
    let mut uploader = crate::upload::connect(queue, cfg, &device_id, &seed, time)?;
    let deadline = Instant::now() + timeout;
    let terminal = std::io::stderr().is_terminal();
    let end_progress_line = || {
        if terminal {
            eprintln!();
        }
    };
    let mut sent = 0usize;
    loop {
        match uploader.step()? {
            Step::Idle => break,
            Step::Sent(n) => {
                sent += n;
                if terminal {
                    eprint!("\rsent {sent} of {total} reading(s)");
                }
                std::thread::sleep(uploader.pace_delay());
            }
            Step::Paused(pause) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || pause.delay > left {
                    end_progress_line();
                    drop(uploader);
                    let reason = pause.reason.to_string();
                    let tally = observer.tally(sent)?;
                    return Err(CliError::SyncGaveUp { reason, tally });
                }
                std::thread::sleep(pause.delay);
            }
        }
        if Instant::now() > deadline {
            end_progress_line();
            drop(uploader);
            let tally = observer.tally(sent)?;
            return Err(CliError::SyncTimedOut { timeout, tally });
        }
    }
    end_progress_line();
    drop(uploader);
    let tally = observer.tally(sent)?;
    println!("queue drained: {tally}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_says_uploaded_dead_lettered_and_queued_apart() {
        let tally = Tally {
            uploaded: 0,
            dead_lettered: 198,
            queued: 0,
        };
        assert_eq!(
            tally.to_string(),
            "0 reading(s) uploaded, 198 dead-lettered, 0 still queued"
        );
    }

    #[test]
    fn the_retry_jitter_is_seeded_by_the_device() {
        let dir = tempfile::tempdir().expect("temp dir");
        let board = |id: &str| {
            let path = dir.path().join(format!("{id}.toml"));
            let text = format!(
                "[device]\nid = \"{id}\"\n[[sensor]]\nid = \"t\"\nkind = \"simulated_climate\"\n"
            );
            std::fs::write(&path, text).expect("board written");
            Board::load(&path).expect("board")
        };
        assert_ne!(jitter_seed(&board("pi-1")), jitter_seed(&board("pi-2")));
        assert!(jitter_seed(&board("pi-1")).contains("pi-1"));
    }
}
