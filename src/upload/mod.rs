//! The uploader: takes batches from the queue, sends them as gzip-compressed line protocol and
//! decides, from the server's answer, what leaves the queue. Nothing is removed without an
//! acknowledgement; a bad line is isolated and dead-lettered without blocking the rest; any
//! failure the server or network can recover from keeps everything and backs off.

mod answer;
mod backoff;
pub mod endpoint;
mod pack;
pub mod transport;

pub use answer::{parse_retry_after, Answer};
pub use backoff::Backoff;

use crate::config::UploadConfig;
use crate::queue::{Batch, Queue, QueueError};
use crate::rng::Rng;
use endpoint::Endpoint;
use flate2::{write::GzEncoder, Compression};
use std::borrow::Cow;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};
use transport::Transport;

/// Deleted rows between WAL checkpoints while a backlog drains: about 2,000 WAL pages of
/// 1 KiB, so the WAL stays within its first 32 KiB of shared-memory index.
const CHECKPOINT_ROWS: usize = 32 * 1024;

/// Longest we honour a server's `Retry-After`, so a wrong header cannot park a device for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Why the uploader stopped for now. The batch's rows are still in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub delay: Duration,
    pub reason: String,
}

/// What one step of the upload loop did.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Nothing waits in the queue.
    Idle,
    /// This many readings left the queue (acked or dead-lettered).
    Sent(usize),
    /// The server or network failed; try again after the delay.
    Paused(Pause),
}

enum Halt {
    Pause(Pause),
    Queue(QueueError),
}

impl From<QueueError> for Halt {
    fn from(e: QueueError) -> Halt {
        Halt::Queue(e)
    }
}

pub struct Uploader<T: Transport> {
    queue: Queue,
    endpoint: Endpoint,
    transport: T,
    batch_lines: usize,
    /// Starts at `batch_bytes`; halved for the session when the server answers 413.
    batch_bytes: usize,
    backoff: Backoff,
    long_backoff: Backoff,
    pacer: Pacer,
    /// Readings with an id above this were sampled after the last outage: they go first.
    fresh_after: Option<i64>,
    /// The reason of the current failure streak, so it is logged once, not every retry.
    streak: Option<String>,
    requests: u64,
    /// Runs the server acknowledged that are not yet deleted from the queue: while a backlog
    /// drains, several batches share one delete transaction (one fsync). A crash before the
    /// flush re-sends them with the same timestamps, which InfluxDB merges.
    unacked: Vec<(i64, i64)>,
    /// A second connection that reads and packs the next batch while a helper thread commits
    /// the previous batches' deletes on this one, so SQLite's writing hides behind gzip.
    reader: Option<Queue>,
    /// Rows deleted since this uploader last checkpointed the WAL.
    deleted_since_checkpoint: usize,
}

impl<T: Transport> Uploader<T> {
    pub fn new(
        mut queue: Queue,
        endpoint: Endpoint,
        transport: T,
        cfg: &UploadConfig,
        seed: &str,
    ) -> Uploader<T> {
        queue.commit_lazily();
        Uploader {
            queue,
            endpoint,
            transport,
            batch_lines: cfg.batch_lines,
            batch_bytes: cfg.batch_bytes as usize,
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
            pacer: Pacer::new(cfg.max_points_per_second),
            fresh_after: None,
            streak: None,
            requests: 0,
            unacked: Vec::new(),
            reader: None,
            deleted_since_checkpoint: 0,
        }
    }

    /// HTTP requests sent so far (for tests and metrics).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn queue(&mut self) -> &mut Queue {
        &mut self.queue
    }

    /// How long to wait before the next send to keep to `max_points_per_second`.
    pub fn pace_delay(&self) -> Duration {
        self.pacer.delay(Instant::now())
    }

    /// Take one batch (fresh readings first, then the backlog, oldest first) and deliver it.
    pub fn step(&mut self) -> Result<Step, QueueError> {
        let after = self.next_after()?;
        let Some(packed) = self.pack_while_flushing(after)? else {
            return Ok(Step::Idle);
        };
        let full = packed.lines >= self.batch_lines || packed.plain_len + 512 >= self.batch_bytes;
        let delivered = self.post(&packed.body).and_then(|answer| match answer {
            // Acked runs are deleted while the next batch is packed; once caught up, at once.
            Answer::Accepted => {
                self.unacked.push(packed.run);
                Ok(())
            }
            other => {
                let (first, last) = packed.run;
                let plain = self.queue.batch_between(first, last)?;
                let answer = match other {
                    // Line numbers name lines of what was sent; if retention removed rows of
                    // this run meanwhile they no longer line up, so find the bad lines anew.
                    Answer::Lines { message, .. } if plain.len() != packed.lines => {
                        Answer::Rejected { message }
                    }
                    other => other,
                };
                self.settle(plain, answer)
            }
        });
        match delivered {
            Ok(()) => {
                if let Some(reason) = self.streak.take() {
                    log::info!("upload recovered after: {reason}");
                    // What was sampled during the outage waits behind what comes next.
                    self.fresh_after = self.queue.last_id()?;
                }
                self.backoff.reset();
                self.long_backoff.reset();
                self.pacer.spend(packed.lines, Instant::now());
                if !full {
                    self.flush()?;
                }
                Ok(Step::Sent(packed.lines))
            }
            Err(Halt::Queue(e)) => Err(e),
            Err(Halt::Pause(pause)) => {
                self.flush()?;
                if self.streak.as_deref() != Some(pause.reason.as_str()) {
                    log::warn!(
                        "upload paused: {} (retrying in {:.0?})",
                        pause.reason,
                        pause.delay
                    );
                    self.streak = Some(pause.reason.clone());
                }
                let state = format!("paused {}s: {}", pause.delay.as_secs(), pause.reason);
                self.queue.set_meta("last_upload", &state)?;
                Ok(Step::Paused(pause))
            }
        }
    }

    /// Where the next batch starts: fresh readings first (ids above the mark set after an
    /// outage), then the backlog, each lane read past its acknowledged-but-not-yet-deleted
    /// rows. `None`: from the oldest row. Switching lanes commits those deletes first.
    fn next_after(&mut self) -> Result<Option<i64>, QueueError> {
        let cursor = self.unacked.iter().map(|(_, last)| *last).max();
        if let Some(mark) = self.fresh_after {
            // Fresh rows have ids above the mark, so deferred fresh runs move the cursor past it.
            let from = cursor.filter(|c| *c > mark).unwrap_or(mark);
            if self.queue.has_after(from)? {
                if cursor.is_some_and(|c| c <= mark) {
                    self.flush()?; // leaving the backlog lane
                }
                return Ok(Some(from));
            }
            if cursor.is_some_and(|c| c > mark) {
                self.flush()?; // the fresh lane is done: back to the oldest backlog
                return Ok(None);
            }
        }
        Ok(cursor)
    }

    /// Pack the batch after `after` with the reader connection while a helper thread commits
    /// the deletes of the batches already acknowledged.
    ///
    /// The helper runs on idle CPU time only: on a two-core Pi the compressor is what limits a
    /// drain, and the deletes can wait for the time it leaves; an even share would slow it.
    /// (On a CPU saturated by other programs the deletes, and so the drain, slow down; the
    /// sampler keeps its normal priority and nothing is lost.)
    fn pack_while_flushing(
        &mut self,
        after: Option<i64>,
    ) -> Result<Option<pack::Packed>, QueueError> {
        let mut reader = match self.reader.take() {
            Some(reader) => reader,
            None => self.queue.reader()?,
        };
        let (lines, bytes, gzip) = (self.batch_lines, self.batch_bytes, self.endpoint.gzip);
        let (queue, unacked) = (&mut self.queue, &mut self.unacked);
        let (packed, flushed) = std::thread::scope(|scope| {
            // No helper thread (and no wake-up) when there is nothing to delete.
            let flushing = (!unacked.is_empty()).then(|| {
                scope.spawn(|| {
                    crate::os::sched::idle_this_thread();
                    flush_runs(queue, unacked)
                })
            });
            let packed = pack::pack(&mut reader, after, lines, bytes, gzip);
            (packed, flushing.map_or(Ok(Ok(0)), |f| f.join()))
        });
        self.reader = Some(reader);
        let deleted = match flushed {
            Ok(deleted) => deleted?,
            // A panic while deleting is a bug: let it be the panic it is.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        self.checkpoint_now_and_then(deleted);
        packed
    }

    /// Checkpoint the WAL after every `CHECKPOINT_ROWS` deleted rows, here where no read is
    /// open: otherwise the reader, busy nearly all of a drain, keeps the WAL from starting over,
    /// and it (and SQLite's shared-memory index of it, counted in RSS) grows without bound.
    fn checkpoint_now_and_then(&mut self, deleted: usize) {
        self.deleted_since_checkpoint += deleted;
        if self.deleted_since_checkpoint < CHECKPOINT_ROWS {
            return;
        }
        self.deleted_since_checkpoint = 0;
        if let Err(e) = self.queue.checkpoint() {
            log::warn!("{e}");
        }
    }

    /// Commit the deletes of every acknowledged batch.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        flush_runs(&mut self.queue, &mut self.unacked).map(|_| ())
    }

    /// Compress (if configured) and post a plain batch: the path of split and bisected halves.
    fn send(&mut self, batch: &Batch) -> Result<Answer, Halt> {
        let body: Cow<[u8]> = if self.endpoint.gzip {
            Cow::Owned(gzip(batch.body()))
        } else {
            Cow::Borrowed(batch.body())
        };
        self.post(&body)
    }

    /// One request; answers the uploader cannot act on line by line become a pause.
    fn post(&mut self, body: &[u8]) -> Result<Answer, Halt> {
        let headers = self
            .endpoint
            .headers()
            .map_err(|e| self.pause_long(e.to_string()))?;
        self.requests += 1;
        let answer = match self.transport.post(&self.endpoint.url, &headers, body) {
            Ok(reply) => Answer::from_reply(&reply, SystemTime::now()),
            Err(e) => Answer::Unavailable {
                reason: e.to_string(),
                retry_after: None,
            },
        };
        match answer {
            Answer::Unauthorized { message } => Err(self.pause_long(format!(
                "the server refused the credentials ({message}); fix upload.token_env / upload.token_file"
            ))),
            Answer::NotFound { message } => Err(self.pause_long(format!(
                "the database or bucket does not exist ({message}); create it or fix upload.database / upload.bucket"
            ))),
            Answer::Unavailable { reason, retry_after } => {
                let jittered = self.backoff.next_delay();
                let delay = match retry_after {
                    Some(asked) => asked.min(MAX_RETRY_AFTER).max(jittered.min(Duration::from_secs(1))),
                    None => jittered,
                };
                Err(Halt::Pause(Pause { delay, reason }))
            }
            other => Ok(other),
        }
    }

    fn pause_long(&mut self, reason: String) -> Halt {
        Halt::Pause(Pause {
            delay: self.long_backoff.next_delay(),
            reason,
        })
    }

    /// Send a batch and settle every line of it, splitting on 413 and isolating rejected lines.
    fn deliver(&mut self, batch: Batch) -> Result<(), Halt> {
        let answer = self.send(&batch)?;
        self.settle(batch, answer)
    }

    /// Act on a server's answer to `batch`.
    fn settle(&mut self, batch: Batch, answer: Answer) -> Result<(), Halt> {
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
        if learned < self.batch_bytes {
            log::warn!(
                "server answered 413; sending batches of at most {learned} bytes from now on"
            );
            self.batch_bytes = learned;
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
            .reject(&bad, &messages.join("; "), &acked, now_ns())?;
        Ok(())
    }

    fn ack(&mut self, batch: &Batch) -> Result<(), Halt> {
        if let Some(run) = batch.run() {
            self.unacked.push(run);
        }
        Ok(())
    }

    fn dead_letter(&mut self, batch: &Batch, message: &str) -> Result<(), Halt> {
        log::warn!("dead-lettering a line the server rejects: {message}");
        let line = String::from_utf8_lossy(batch.line(0)).into_owned();
        self.queue
            .reject(&[(batch.ids()[0], line)], message, &[], now_ns())?;
        Ok(())
    }
}

impl<T: Transport> Drop for Uploader<T> {
    /// Whatever the server acknowledged is deleted on the way out (SIGTERM, end of `sync`).
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            log::warn!(
                "could not commit the last acknowledgements ({e}); those readings will be re-sent"
            );
        }
    }
}

fn unreachable_answer(answer: Answer) -> Result<(), Halt> {
    // `send` turns every pausing answer into Halt::Pause; reaching here is a logic error, and
    // pausing is the answer that loses nothing.
    Err(Halt::Pause(Pause {
        delay: Duration::from_secs(60),
        reason: format!("unexpected answer {answer:?}"),
    }))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Why the uploader for a board could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error("upload: {0}")]
    Transport(#[from] transport::TransportError),
}

/// The real uploader for a board's `[upload]` section, as `run` and `sync` both use it:
/// endpoint and token, TLS roots (loaded only for https), one kept-alive connection.
pub fn connect(
    queue: Queue,
    cfg: &UploadConfig,
    seed: &str,
) -> Result<Uploader<transport::HttpTransport>, ConnectError> {
    let endpoint = Endpoint::new(cfg)?;
    let tls = transport::TlsOptions {
        ca_file: cfg.ca_file.clone(),
        insecure_skip_verify: cfg.insecure_skip_verify,
    };
    let transport = transport::HttpTransport::for_url(&cfg.url, cfg.timeout, &tls)?;
    if cfg.insecure_skip_verify {
        log::warn!("upload.insecure_skip_verify = true: TLS certificates are NOT checked; anyone on the path can read and alter uploads");
    }
    Ok(Uploader::new(queue, endpoint, transport, cfg, seed))
}

/// gzip at the default level: line protocol shrinks about tenfold, which matters more on a
/// metered or flaky link than the Pi's CPU time does.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(body.len() / 6 + 64),
        Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Paces sends to a number of points per second (0: no limit).
struct Pacer {
    per_second: u32,
    next: Option<Instant>,
}

impl Pacer {
    fn new(per_second: u32) -> Pacer {
        Pacer {
            per_second,
            next: None,
        }
    }

    fn spend(&mut self, points: usize, now: Instant) {
        if self.per_second == 0 {
            return;
        }
        let start = self.next.map_or(now, |n| n.max(now));
        self.next = Some(start + Duration::from_secs_f64(points as f64 / self.per_second as f64));
    }

    fn delay(&self, now: Instant) -> Duration {
        self.next
            .map_or(Duration::ZERO, |n| n.saturating_duration_since(now))
    }
}

/// Delete the acknowledged `runs` in one transaction and forget them. Returns the rows deleted.
fn flush_runs(queue: &mut Queue, runs: &mut Vec<(i64, i64)>) -> Result<usize, QueueError> {
    if runs.is_empty() {
        return Ok(0);
    }
    let note = format!("ok at {}", now_ns());
    let deleted = queue.ack_runs(runs, &note)?;
    runs.clear();
    Ok(deleted)
}

#[cfg(test)]
mod tests;
