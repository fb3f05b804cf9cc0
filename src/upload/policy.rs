//! The delivery policy: from an answer, what happens to which lines. Every output (InfluxDB
//! over HTTP today, MQTT next) translates its wire's replies into an `Answer`; this module alone
//! decides what each one does:
//!
//! - `Accepted`: the lines are acknowledged (deleted from the queue with the next flush).
//! - `TooLarge` (HTTP 413): the batch is split in halves, each retried; the batch size is
//!   halved for the session. A single line over the limit is dead-lettered.
//! - `Lines` (v3 names the rejected lines): exactly those are dead-lettered, the rest acked.
//! - `Partial` / `Rejected` (400/422): the batch is bisected to isolate the bad lines, which
//!   are dead-lettered with the server's message; the rest is acknowledged.
//! - `Unauthorized` (401/403), `NotFound` (404): everything is kept, long backoff (30 s to
//!   15 min, growing).
//! - `Misconfigured` (no token yet): everything is kept; retried every 5 s to 1 min, since
//!   nothing reaches the server and a token that appears should be used soon.
//! - `Unavailable` (429/503 with `Retry-After`, other 5xx, network errors): everything is
//!   kept; wait as the server asked (capped), else exponential backoff with full jitter.

use super::answer::Answer;
use super::backoff::Backoff;
use super::output::Output;
use crate::queue::{Batch, Queue, QueueError, RecordedAt, Run};
use crate::rng::Rng;
use std::borrow::Cow;
use std::time::Duration;

/// Longest we honour a server's `Retry-After`, so a wrong header cannot park a device for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Why the uploader stopped for now. The batch's rows are still in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub delay: Duration,
    pub reason: String,
}

/// Why settling a batch stopped: a pause (everything not yet settled stays queued) or a queue
/// failure.
pub(super) enum Halt {
    Pause(Pause),
    Queue(QueueError),
}

impl From<QueueError> for Halt {
    fn from(e: QueueError) -> Halt {
        Halt::Queue(e)
    }
}

/// What the policy keeps between batches: how long to wait after failures, and the batch
/// size the server taught us.
pub(super) struct Policy {
    backoff: Backoff,
    long_backoff: Backoff,
    /// While the output waits for its settings (a token file to appear).
    settings_backoff: Backoff,
    /// Starts at `batch_bytes`; halved for the session when the server answers 413.
    batch_bytes: usize,
}

impl Policy {
    pub fn new(batch_bytes: usize, seed: &str) -> Policy {
        Policy {
            backoff: Backoff::new(
                Duration::from_secs(1),
                Duration::from_secs(300),
                Duration::ZERO,
                Rng::from_text(seed),
            ),
            long_backoff: Backoff::new(
                Duration::from_secs(60),
                Duration::from_secs(900),
                Duration::from_secs(30),
                Rng::from_text(&format!("{seed}/long")),
            ),
            settings_backoff: Backoff::new(
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(5),
                Rng::from_text(&format!("{seed}/settings")),
            ),
            batch_bytes,
        }
    }

    /// The most uncompressed bytes a batch may hold now.
    pub fn batch_bytes(&self) -> usize {
        self.batch_bytes
    }

    /// A delivery succeeded: the next failure starts its backoff from the beginning.
    pub fn recovered(&mut self) {
        self.backoff.reset();
        self.long_backoff.reset();
        self.settings_backoff.reset();
    }

    /// Answers that keep everything become a pause; the others are settled line by line.
    fn pause_on(&mut self, answer: Answer) -> Result<Answer, Pause> {
        match answer {
            Answer::Unauthorized { message } => Err(self.pause_long(format!(
                "the server refused the credentials ({message}); fix upload.token_env / upload.token_file"
            ))),
            Answer::NotFound { message } => Err(self.pause_long(format!(
                "the database or bucket does not exist ({message}); create it or fix upload.database / upload.bucket"
            ))),
            Answer::Misconfigured { reason } => Err(Pause {
                delay: self.settings_backoff.next_delay(),
                reason,
            }),
            Answer::Unavailable { reason, retry_after } => {
                let jittered = self.backoff.next_delay();
                let delay = match retry_after {
                    Some(asked) => asked
                        .min(MAX_RETRY_AFTER)
                        .max(jittered.min(Duration::from_secs(1))),
                    None => jittered,
                };
                Err(Pause { delay, reason })
            }
            other => Ok(other),
        }
    }

    fn pause_long(&mut self, reason: String) -> Pause {
        Pause {
            delay: self.long_backoff.next_delay(),
            reason,
        }
    }
}

/// One batch being settled: the output it goes to, the queue its lines live in, and where
/// acknowledged runs wait for their grouped delete.
pub(super) struct Delivery<'a, O: Output> {
    pub output: &'a mut O,
    pub queue: &'a mut Queue,
    pub policy: &'a mut Policy,
    /// Runs the server acknowledged, deleted later in one transaction.
    pub acked: &'a mut Vec<Run>,
    pub requests: &'a mut u64,
    /// The wall clock now, for answers that name a time (an HTTP `Retry-After` date).
    pub wall_ns: i64,
    /// When dead letters of this delivery are recorded.
    pub at: RecordedAt,
}

impl<O: Output> Delivery<'_, O> {
    /// One request; answers that keep everything become a pause.
    pub fn post(&mut self, body: &[u8]) -> Result<Answer, Halt> {
        *self.requests += 1;
        let answer = self.output.send(body, self.wall_ns);
        self.policy.pause_on(answer).map_err(Halt::Pause)
    }

    /// Compress (if the output wants it) and post a plain batch: split and bisected halves.
    fn send(&mut self, batch: &Batch) -> Result<Answer, Halt> {
        let body: Cow<[u8]> = if self.output.gzip() {
            Cow::Owned(super::gzip(batch.body()))
        } else {
            Cow::Borrowed(batch.body())
        };
        self.post(&body)
    }

    /// Send a batch and settle every line of it.
    fn deliver(&mut self, batch: Batch) -> Result<(), Halt> {
        let answer = self.send(&batch)?;
        self.settle(batch, answer)
    }

    /// Act on an answer to `batch`.
    pub fn settle(&mut self, batch: Batch, answer: Answer) -> Result<(), Halt> {
        match answer {
            Answer::Accepted => self.ack(&batch),
            Answer::TooLarge => self.split_too_large(batch),
            Answer::Lines { rejected, .. } => self.settle_lines(&batch, &rejected),
            Answer::Partial { dropped, message } => self.isolate(batch, true, dropped, message),
            Answer::Rejected { message } => self.isolate(batch, false, None, message),
            other => unreachable_answer(other),
        }
    }

    fn split_too_large(&mut self, batch: Batch) -> Result<(), Halt> {
        if batch.len() == 1 {
            let message = format!(
                "line of {} bytes is over the server's request size limit",
                batch.body_len()
            );
            return self.dead_letter(&batch, &message);
        }
        let learned = (batch.body_len() / 2).max(1024);
        if learned < self.policy.batch_bytes {
            log::warn!(
                "server answered 413; sending batches of at most {learned} bytes from now on"
            );
            self.policy.batch_bytes = learned;
        }
        let (left, right) = batch.halves();
        self.deliver(left)?;
        self.deliver(right)
    }

    /// `batch` holds at least one line the server refuses. `written`: the server stored the
    /// good lines of the request that failed (a partial write), so they need not be re-sent
    /// once every bad line is found; `dropped`: how many bad lines it reported.
    ///
    /// Only the left half is sent at each level: if it is accepted, the bad line is on the right
    /// and the right half needs no request of its own. So one bad line costs log2(n)+1 requests
    /// on servers that write partially (1.x, 2.x, 3.x `write_lp`); servers that reject whole
    /// requests (3.x `/api/v2/write`) also need the good halves re-sent.
    fn isolate(
        &mut self,
        batch: Batch,
        written: bool,
        dropped: Option<usize>,
        message: String,
    ) -> Result<(), Halt> {
        if batch.len() == 1 {
            return self.dead_letter(&batch, &message);
        }
        let (left, right) = batch.halves();
        match self.send(&left)? {
            Answer::Accepted => {
                self.ack(&left)?;
                self.isolate(right, written, dropped, message)
            }
            Answer::Lines { rejected, .. } => {
                self.settle_lines(&left, &rejected)?;
                let remaining = dropped.map(|d| d.saturating_sub(rejected.len()));
                self.settle_rest(right, written, remaining, message)
            }
            Answer::Partial {
                dropped: in_left,
                message: left_message,
            } => {
                self.isolate(left, true, in_left, left_message)?;
                let remaining = dropped
                    .zip(in_left)
                    .map(|(all, left)| all.saturating_sub(left));
                self.settle_rest(right, written, remaining, message)
            }
            Answer::Rejected {
                message: left_message,
            } => {
                self.isolate(left, false, None, left_message)?;
                self.deliver(right)
            }
            Answer::TooLarge => {
                self.split_too_large(left)?;
                self.deliver(right)
            }
            other => unreachable_answer(other),
        }
    }

    /// The right half after its left sibling was settled: if the original partial write already
    /// stored it and no bad line can be left in it, ack without sending; otherwise send it.
    fn settle_rest(
        &mut self,
        right: Batch,
        written: bool,
        remaining: Option<usize>,
        message: String,
    ) -> Result<(), Halt> {
        match (written, remaining) {
            (true, Some(0)) => self.ack(&right),
            (_, Some(n)) if n > 0 => self.isolate(right, written, remaining, message),
            _ => self.deliver(right),
        }
    }

    fn settle_lines(&mut self, batch: &Batch, rejected: &[(usize, String)]) -> Result<(), Halt> {
        let bad: Vec<(i64, String)> = rejected
            .iter()
            .filter(|(i, _)| *i < batch.len())
            .map(|(i, _)| {
                (
                    batch.ids()[*i],
                    String::from_utf8_lossy(batch.line(*i)).into_owned(),
                )
            })
            .collect();
        let acked: Vec<i64> = (0..batch.len())
            .filter(|i| !rejected.iter().any(|(r, _)| r == i))
            .map(|i| batch.ids()[i])
            .collect();
        let messages: Vec<&str> = rejected.iter().map(|(_, m)| m.as_str()).collect();
        log::warn!(
            "server rejected {} line(s): {}",
            bad.len(),
            messages.join("; ")
        );
        self.queue
            .reject(&bad, &messages.join("; "), &acked, self.at)?;
        Ok(())
    }

    fn ack(&mut self, batch: &Batch) -> Result<(), Halt> {
        if let Some((first, last)) = batch.run() {
            self.acked.push(Run::Rows(first, last));
        }
        Ok(())
    }

    fn dead_letter(&mut self, batch: &Batch, message: &str) -> Result<(), Halt> {
        log::warn!("dead-lettering a line the server rejects: {message}");
        let line = String::from_utf8_lossy(batch.line(0)).into_owned();
        self.queue
            .reject(&[(batch.ids()[0], line)], message, &[], self.at)?;
        Ok(())
    }
}

fn unreachable_answer(answer: Answer) -> Result<(), Halt> {
    // `post` turns every pausing answer into Halt::Pause; reaching here is a logic error, and
    // pausing is the answer that loses nothing.
    Err(Halt::Pause(Pause {
        delay: Duration::from_secs(60),
        reason: format!("unexpected answer {answer:?}"),
    }))
}
