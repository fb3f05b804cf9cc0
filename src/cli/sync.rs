//! `sync`: drain the queue now, with progress on a terminal, within a time limit.

use super::CliError;
use crate::agent;
use crate::clock::SystemClock;
use crate::config::Board;
use crate::upload::Step;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn sync(board: &Board, timeout: Duration) -> Result<(), CliError> {
    let Some(cfg) = &board.upload else {
        return Err(CliError::NoUpload);
    };
    let (queue, time) = agent::open_queue(board, Arc::new(SystemClock::default()))?;
    let total = queue.stats()?.depth;
    let mut uploader = crate::upload::connect(queue, cfg, "sync", time)?;
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
                    let reason = pause.reason.to_string();
                    return Err(CliError::SyncGaveUp { reason, sent });
                }
                std::thread::sleep(pause.delay);
            }
        }
        if Instant::now() > deadline {
            return Err(CliError::SyncTimedOut { timeout, sent });
        }
    }
    end_progress_line();
    println!("queue empty: {sent} reading(s) uploaded");
    Ok(())
}
