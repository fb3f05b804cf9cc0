//! The uploader: takes batches from the queue and delivers them. Each job has its module:
//! - `policy`: from an answer, what happens to which lines (ack, split on 413, bisect and
//!   dead-letter on 400/422, keep and back off on 401/403/404/429/5xx/network errors);
//! - `schedule`: what goes next (fresh readings first after an outage, then the backlog) and
//!   pacing to `max_points_per_second`;
//! - `output`: the wire, behind a trait; `influx_http` is InfluxDB over HTTP (with `endpoint`
//!   for URLs and tokens, `transport` for the connection);
//! - `pack`: rendering a batch from SQLite straight into its gzip body.
//!
//! Nothing is removed without an acknowledgement; a bad line is isolated and dead-lettered
//! without blocking the rest; any failure the server or network can recover from keeps
//! everything and backs off. Every time the uploader measures or records comes from the
//! time keeper's clock, so tests drive it by hand.

mod answer;
mod backoff;
mod board_output;
pub mod endpoint;
pub mod influx_http;
pub mod mqtt;
pub mod output;
mod pack;
mod policy;
mod schedule;
pub mod secret;
pub mod transport;

pub use answer::Answer;
pub use backoff::Backoff;
pub use board_output::BoardOutput;
pub use influx_http::{parse_retry_after, InfluxHttp};
pub use output::Output;
pub use policy::{Pause, MAX_RETRY_AFTER};

use crate::clock::TimeKeeper;
use crate::config::UploadConfig;
use crate::queue::{Queue, QueueError, RecordedAt, Run};
use flate2::{write::GzEncoder, Compression};
use policy::{Delivery, Halt, Policy};
use schedule::Schedule;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

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

pub struct Uploader<O: Output> {
    queue: Queue,
    output: O,
    batch_lines: usize,
    policy: Policy,
    /// What goes next among segments (fresh first after an outage), and pacing.
    schedule: Schedule,
    /// What goes next among the rows (the rare cases), which drain before the backlog of
    /// segments but after fresh ones.
    row_schedule: Schedule,
    /// The clock for pacing, `Retry-After` dates and the times recorded in the queue.
    time: Arc<TimeKeeper>,
    /// The reason of the current failure streak, so it is logged once, not every retry.
    streak: Option<String>,
    requests: u64,
    /// Runs the server acknowledged that are not yet deleted from the queue: while a backlog
    /// drains, several batches share one delete transaction (one fsync). A crash before the
    /// flush re-sends them with the same timestamps, which InfluxDB merges.
    unacked: Vec<Run>,
    /// A second connection that reads and packs the next batch while a helper thread commits
    /// the previous batches' deletes on this one, so SQLite's writing hides behind gzip.
    reader: Option<Queue>,
}

impl<O: Output> Uploader<O> {
    pub fn new(
        mut queue: Queue,
        output: O,
        cfg: &UploadConfig,
        seed: &str,
        time: Arc<TimeKeeper>,
    ) -> Uploader<O> {
        queue.commit_lazily();
        Uploader {
            queue,
            output,
            batch_lines: cfg.batch_lines,
            policy: Policy::new(cfg.batch_bytes as usize, seed),
            schedule: Schedule::new(cfg.max_points_per_second),
            row_schedule: Schedule::new(0),
            time,
            streak: None,
            requests: 0,
            unacked: Vec::new(),
            reader: None,
        }
    }

    /// Requests sent so far (for tests and metrics).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn queue(&mut self) -> &mut Queue {
        &mut self.queue
    }

    /// How long to wait before the next send to keep to `max_points_per_second`.
    pub fn pace_delay(&self) -> Duration {
        self.schedule.pace_delay(self.time.clock().mono_ns())
    }

    /// Take one batch (fresh readings first, then the backlog, oldest first) and deliver it.
    /// A queue file found corrupt is set aside and salvaged (see `queue::recovery`), and one
    /// moved aside meanwhile is followed, so the uploader always drains the live queue.
    pub fn step(&mut self) -> Result<Step, QueueError> {
        if self.queue.replaced() {
            self.follow_new_file(None)?;
        }
        let result = self.try_step();
        if let Err(e) = &result {
            if e.is_corruption() {
                self.follow_new_file(Some(e))?;
            }
        }
        result
    }

    /// Continue on the file the queue's path names now (after setting this one aside when
    /// `corrupt`). Acknowledged runs not yet deleted are forgotten: row ids of a salvaged file
    /// may be reused, and re-sending a few lines is harmless where deleting unsent ones is not.
    fn follow_new_file(&mut self, corrupt: Option<&QueueError>) -> Result<(), QueueError> {
        match corrupt {
            Some(cause) => self.queue.recover(cause)?,
            None => self.queue.reconnect()?,
        }
        self.reader = None;
        self.unacked.clear();
        self.schedule.recovered(None);
        self.row_schedule.recovered(None);
        Ok(())
    }

    fn try_step(&mut self) -> Result<Step, QueueError> {
        let lane = self.next_lane()?;
        let Some(packed) = self.pack_while_flushing(lane)? else {
            return Ok(Step::Idle);
        };
        // Full: more waits behind this batch, so its delete can wait for the next one's.
        let full = match packed.run {
            Run::Rows(..) => {
                packed.lines >= self.batch_lines
                    || packed.plain_len + 512 >= self.policy.batch_bytes()
            }
            Run::Pieces(_, last) => self.queue.has_pieces_after(last)?,
        };
        let delivered = self.deliver_packed(&packed);
        match delivered {
            Ok(()) => {
                if let Some(reason) = self.streak.take() {
                    log::info!("upload recovered after: {reason}");
                    // What was sampled during the outage waits behind what comes next; the
                    // open segment is sealed so fresh pieces start a segment of their own.
                    self.schedule.recovered(self.queue.seal()?);
                    self.row_schedule.recovered(self.queue.last_id()?);
                }
                self.policy.recovered();
                self.schedule
                    .spent(packed.lines, self.time.clock().mono_ns());
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

    /// Post a packed batch and settle it: acked runs are deleted while the next batch is
    /// packed (once caught up, at once); any other answer re-reads the run as plain lines.
    fn deliver_packed(&mut self, packed: &pack::Packed) -> Result<(), Halt> {
        let mut delivery = self.delivery();
        match delivery.post(&packed.body)? {
            Answer::Accepted => {
                delivery.acked.push(packed.run);
                Ok(())
            }
            other => {
                // Segments are taken apart into rows (same lines, same order) to be split
                // or bisected; if retention removed them meanwhile, nothing is left to settle.
                let (first, last) = match packed.run {
                    Run::Rows(first, last) => (first, last),
                    Run::Pieces(first, last) => match delivery.queue.unpack(first, last)? {
                        Some(rows) => rows,
                        None => return Ok(()),
                    },
                };
                let plain = delivery.queue.batch_between(first, last)?;
                let answer = match other {
                    // Line numbers name lines of what was sent; if retention removed rows of
                    // this run meanwhile they no longer line up, so find the bad lines anew.
                    Answer::Lines { message, .. } if plain.len() != packed.lines => {
                        Answer::Rejected { message }
                    }
                    other => other,
                };
                delivery.settle(plain, answer)
            }
        }
    }

    /// The policy at work on this uploader's output, queue and deferred deletes.
    fn delivery(&mut self) -> Delivery<'_, O> {
        Delivery {
            wall_ns: self.time.clock().wall_ns(),
            at: recorded_at(&self.time),
            output: &mut self.output,
            queue: &mut self.queue,
            policy: &mut self.policy,
            acked: &mut self.unacked,
            requests: &mut self.requests,
        }
    }

    /// Which lane and where the next batch starts: fresh segments after an outage first, then
    /// rows (the rare cases, fresh ones first), then the backlog of segments, oldest first
    /// (see `Schedule::next`). Switching lanes within one id space commits the deferred
    /// deletes first.
    fn next_lane(&mut self) -> Result<Lane, QueueError> {
        let cursor_of = |rows: bool| {
            self.unacked
                .iter()
                .filter(|run| matches!(run, Run::Rows(..)) == rows)
                .map(Run::last)
                .max()
        };
        let (row_cursor, piece_cursor) = (cursor_of(true), cursor_of(false));
        let queue = &self.queue;
        let pieces = self
            .schedule
            .next(piece_cursor, |from| queue.has_pieces_after(from))?;
        let fresh_pieces = pieces
            .after
            .is_some_and(|after| self.schedule.fresh_mark().is_some_and(|mark| after >= mark))
            && queue.has_pieces_after(pieces.after.unwrap_or(i64::MIN))?;
        if !fresh_pieces {
            let rows = self
                .row_schedule
                .next(row_cursor, |from| queue.has_after(from))?;
            if queue.has_after(rows.after.unwrap_or(i64::MIN))? {
                if rows.flush_first {
                    self.flush()?;
                }
                return Ok(Lane::Rows(rows.after));
            }
        }
        if pieces.flush_first {
            self.flush()?;
        }
        Ok(Lane::Pieces(pieces.after))
    }

    /// Pack the next batch of `lane` with the reader connection while a helper thread commits
    /// the deletes of the batches already acknowledged.
    ///
    /// The helper runs on idle CPU time only: on a two-core Pi the compressor is what limits a
    /// drain, and the deletes can wait for the time it leaves; an even share would slow it.
    /// (On a CPU saturated by other programs the deletes, and so the drain, slow down; the
    /// sampler keeps its normal priority and nothing is lost.)
    fn pack_while_flushing(&mut self, lane: Lane) -> Result<Option<pack::Packed>, QueueError> {
        let mut reader = match self.reader.take() {
            Some(reader) => reader,
            None => self.queue.reader()?,
        };
        let (lines, bytes) = (self.batch_lines, self.policy.batch_bytes());
        let gzip = self.output.gzip();
        let note = upload_note(recorded_at(&self.time));
        let (queue, unacked) = (&mut self.queue, &mut self.unacked);
        let (packed, flushed) = std::thread::scope(|scope| {
            // No helper thread (and no wake-up) when there is nothing to delete.
            let flushing = (!unacked.is_empty()).then(|| {
                scope.spawn(|| {
                    crate::os::sched::idle_this_thread();
                    flush_runs(queue, unacked, &note)
                })
            });
            let packed = match lane {
                Lane::Rows(after) => pack::pack(&mut reader, after, lines, bytes, gzip),
                Lane::Pieces(after) => pack::pack_segments(&mut reader, after, lines, bytes, gzip),
            };
            (packed, flushing.map_or(Ok(Ok(0)), |f| f.join()))
        });
        self.reader = Some(reader);
        let deleted = match flushed {
            Ok(deleted) => deleted?,
            // A panic while deleting is a bug: let it be the panic it is.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // Here no read is open: the packer is done and the helper has joined.
        self.queue.checkpoint_after_deletes(deleted);
        packed
    }

    /// Commit the deletes of every acknowledged batch.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        let note = upload_note(recorded_at(&self.time));
        flush_runs(&mut self.queue, &mut self.unacked, &note).map(|_| ())
    }
}

impl<O: Output> Drop for Uploader<O> {
    /// Whatever the server acknowledged is deleted on the way out (SIGTERM, end of `sync`).
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            log::warn!(
                "could not commit the last acknowledgements ({e}); those readings will be re-sent"
            );
        }
    }
}

/// Where the next batch comes from: rows or segments, after which id (`None`: the oldest).
#[derive(Debug, Clone, Copy)]
enum Lane {
    Rows(Option<i64>),
    Pieces(Option<i64>),
}

/// Why the uploader for a board could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Mqtt(#[from] mqtt::settings::SetupError),
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
}

/// The uploader `run` and `sync` build for a board: to InfluxDB over HTTP or to a broker.
pub type BoardUploader = Uploader<BoardOutput>;

/// The real uploader for a board's `[upload]` section, as `run` and `sync` both use it.
/// `device_id` names the device to a broker (client id, topic, presence); `seed` seeds the
/// backoff jitter.
pub fn connect(
    queue: Queue,
    cfg: &UploadConfig,
    device_id: &str,
    seed: &str,
    time: Arc<TimeKeeper>,
) -> Result<BoardUploader, ConnectError> {
    let output = BoardOutput::for_board(cfg, device_id)?;
    Ok(Uploader::new(queue, output, cfg, seed, time))
}

/// The uploader as the agent runs it: like [`connect`], but a token that is not there yet
/// only makes uploads wait (each attempt reads it again), so sampling never waits for it.
pub fn connect_waiting_for_token(
    queue: Queue,
    cfg: &UploadConfig,
    device_id: &str,
    seed: &str,
    time: Arc<TimeKeeper>,
) -> Result<BoardUploader, ConnectError> {
    let output = BoardOutput::waiting_for_token(cfg, device_id)?;
    Ok(Uploader::new(queue, output, cfg, seed, time))
}

/// gzip level of batches compressed at send time (rows, and the halves of split batches).
/// These are the rarer batches (routine readings go out as stored segments), so the level
/// favours the link: zlib-rs's level 9 sends about 5 % less than miniz_oxide's level 6 did,
/// for 15-30 % more CPU; zlib-rs's own level 6, a faster and looser strategy, sends 6-9 % more.
pub const GZIP_LEVEL: u32 = 9;

/// gzip at `GZIP_LEVEL`: line protocol shrinks about twentyfold, which matters more on a
/// metered or flaky link than the Pi's CPU time does.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(body.len() / 6 + 64),
        Compression::new(GZIP_LEVEL),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Delete the acknowledged `runs` in one transaction and forget them, noting `note` as the
/// last upload. Returns the rows deleted.
fn flush_runs(queue: &mut Queue, runs: &mut Vec<Run>, note: &str) -> Result<usize, QueueError> {
    if runs.is_empty() {
        return Ok(0);
    }
    let deleted = queue.ack_runs(runs, note)?;
    runs.clear();
    Ok(deleted)
}

/// Now, for what the uploader records (dead letters, the last upload): never 1970.
fn recorded_at(time: &TimeKeeper) -> RecordedAt {
    RecordedAt::now(time)
}

/// The `last_upload` note of a successful upload.
fn upload_note(at: RecordedAt) -> String {
    if at.trusted {
        format!("ok at {}", at.ns)
    } else {
        format!("ok at {} or later (clock not trusted)", at.ns)
    }
}

/// An error and its causes on one line, for log lines and pause reasons.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests;
