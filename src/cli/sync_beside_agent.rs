//! `sync` while `fieldlink run` holds the queue: two drainers of one queue send the same lines
//! twice, so `sync` asks the agent to drain now (SIGUSR1) and reports progress from a read-only
//! look at the queue, until what waited when it began has left it.

use super::sync::Tally;
use super::CliError;
use crate::queue::{counter, Access, Queue, QueueError};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the queue is looked at.
const POLL: Duration = Duration::from_millis(200);
/// With no progress for this long, the agent is asked again (it may have paused anew).
const ASK_AGAIN: Duration = Duration::from_secs(5);

/// Ask the agent `pid` to drain and watch the queue at `path` until the readings waiting now
/// have left it, or `timeout` has passed.
pub fn sync_beside_agent(path: &Path, pid: Option<i32>, timeout: Duration) -> Result<(), CliError> {
    let queue = Queue::open_existing(path, Access::ReadOnly)?;
    let agent = pid.map_or("the running agent".into(), |p| {
        format!("the running agent (pid {p})")
    });
    let Some(mark) = queue.backlog_mark()? else {
        println!("queue drained: nothing waits; {agent} uploads readings as they come");
        return Ok(());
    };
    let total = queue.waiting_through(mark)?;
    let before = queue.counters()?;
    eprintln!("{agent} holds the queue: asking it to upload now; {total} reading(s) waiting");
    let deadline = Instant::now() + timeout;
    let mut progress = Progress::new(total);
    let mut asked: Option<Instant> = None;
    let mut left = total;
    let mut seen = before.clone();
    loop {
        // Counting the stored pieces reads their pages: only when the counters moved.
        let now = queue.counters()?;
        if now != seen {
            left = queue.waiting_through(mark)?;
            seen = now;
        }
        progress.show(total - left);
        if left == 0 {
            break;
        }
        let stalled = progress.since_change() >= ASK_AGAIN;
        if asked.is_none_or(|at| at.elapsed() >= ASK_AGAIN && stalled) {
            ask_to_drain(pid);
            asked = Some(Instant::now());
        }
        if Instant::now() > deadline {
            progress.end();
            let tally = tally_since(&queue, &before)?;
            return Err(CliError::SyncTimedOut { timeout, tally });
        }
        std::thread::sleep(POLL);
    }
    progress.end();
    let tally = tally_since(&queue, &before)?;
    println!("queue drained by {agent}: {tally}");
    Ok(())
}

/// What the agent did since `before` (its counters then): it also uploads what is sampled
/// meanwhile, so these may be more than what waited when `sync` began.
fn tally_since(queue: &Queue, before: &BTreeMap<String, i64>) -> Result<Tally, QueueError> {
    let now = queue.counters()?;
    let grew = |name: &str| now.get(name).unwrap_or(&0) - before.get(name).unwrap_or(&0);
    Ok(Tally {
        uploaded: grew(counter::UPLOADED),
        dead_lettered: grew(counter::REJECTED) + grew(counter::UNKNOWN_TIME),
        queued: queue.stats()?.depth,
    })
}

fn ask_to_drain(pid: Option<i32>) {
    let Some(pid) = pid else {
        log::warn!("the queue's lock names no process: cannot ask the agent to drain; watching");
        return;
    };
    if let Err(e) = crate::os::signals::request_drain(pid) {
        log::warn!("{e}; watching the queue anyway");
    }
}

/// Progress on stderr: one rewritten line on a terminal, else a line per change, at most one
/// a second.
struct Progress {
    total: i64,
    done: i64,
    changed: Instant,
    printed: Option<Instant>,
    terminal: bool,
}

impl Progress {
    fn new(total: i64) -> Progress {
        Progress {
            total,
            done: 0,
            changed: Instant::now(),
            printed: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, done: i64) {
        if done == self.done && self.printed.is_some() {
            return;
        }
        if done != self.done {
            self.changed = Instant::now();
        }
        self.done = done;
        let due = self
            .printed
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        let line = format!("sent {done} of {} reading(s)", self.total);
        if self.terminal {
            eprint!("\r{line}");
        } else if due || done == self.total {
            eprintln!("{line}");
        } else {
            return;
        }
        self.printed = Some(Instant::now());
    }

    fn since_change(&self) -> Duration {
        self.changed.elapsed()
    }

    fn end(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
