//! The agent: wires the parts into threads. One sampler thread for periodic sensors, one
//! thread per event sensor, the recorder (the only writer of readings), the uploader, and the
//! main thread, which waits for SIGTERM/SIGINT (stop) or SIGHUP (reload) and keeps systemd
//! informed, pinging its watchdog only while the workers show progress.

mod reload;
mod uploading;
mod watchdog;

use crate::activity::Activity;
use crate::clock::{Clock, SystemClock, TimeKeeper};
use crate::config::Board;
use crate::liveness::Liveness;
use crate::os::signals::Request;
use crate::queue::segment::SegmentBounds;
use crate::queue::{Policy, Queue, QueueError};
use crate::recorder::Recorder;
use crate::sampler::{self, Slot};
use crate::sensors::{self, DriverFactory};
use crate::shutdown::Shutdown;
use crate::upload::ConnectError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Upload(#[from] ConnectError),
    #[error(transparent)]
    Signals(#[from] crate::os::signals::SignalError),
    /// A valid board file was accepted on SIGHUP but the fresh start failed.
    #[error("cannot start afresh with the reloaded board file")]
    Restart(#[from] crate::os::exec::ExecError),
    /// Another process holds the queue's lock: a second agent, or `sync` draining it.
    #[error("queue {} is in use by {}: another `fieldlink run`, or `fieldlink sync`; stop it first", path.display(), holder(*pid))]
    Busy { path: PathBuf, pid: Option<i32> },
    #[error("cannot start thread {name}")]
    Thread {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// How long the health reading waits between samples.
const METRICS_INTERVAL: Duration = Duration::from_secs(60);
/// How long a stopping agent waits for the uploader: it may be inside a request, and what it
/// was sending is still queued, so there is no need to wait for the server.
const UPLOADER_GRACE: Duration = Duration::from_secs(2);
/// How often a stopping agent looks whether a thread has finished.
const JOIN_POLL: Duration = Duration::from_millis(20);

/// Open the queue, settle readings held by past boots, and build the time keeper.
pub fn open_queue(
    board: &Board,
    clock: Arc<dyn Clock>,
) -> Result<(Queue, Arc<TimeKeeper>), AgentError> {
    let path = board.queue.resolved_path();
    let mut queue = Queue::open(&path)?;
    if let Some(upload) = &board.upload {
        queue.set_segment_bounds(SegmentBounds::for_batches(
            upload.batch_lines,
            upload.batch_bytes,
        ));
    }
    let last_trusted: i64 = queue
        .meta("last_trusted_ns")?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let boot = clock.boot_id();
    let time = Arc::new(TimeKeeper::new(
        clock,
        board.clock.require_sync,
        last_trusted,
    ));
    let now = crate::queue::RecordedAt::now(&time);
    let settled = queue.settle_past_boots(&boot, last_trusted, now)?;
    if settled.estimated + settled.unknown_time > 0 {
        log::warn!(
            "readings from a boot that ended before clock sync: {} uploaded with time_estimated=true, {} dead-lettered as unknown_time",
            settled.estimated,
            settled.unknown_time
        );
    }
    Ok((queue, time))
}

/// Run until SIGTERM or SIGINT; then stop sampling, commit what is pending and return. On
/// SIGHUP with a valid `board_path`, stop the same way and start afresh in place with it.
pub fn run(board_path: &Path, board: &Board) -> Result<(), AgentError> {
    let _lock = claim_queue(board)?;
    let device_id = crate::device::resolve_id(&board.device.id);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let (queue, time) = open_queue(board, clock.clone())?;
    let queue_path = queue.path().to_path_buf();
    let (tick, grace) = watchdog::tick_and_grace();
    let watch = watchdog::Watch {
        liveness: Liveness::new(clock.clone(), grace),
        activity: Arc::new(Activity::default()),
        time: time.clone(),
    };
    let recorder = recorder(board, queue, &device_id, time.clone())?
        .watched(watch.liveness.watch("recorder"), watch.activity.clone());
    let shutdown = Shutdown::new();
    let reload = Arc::new(reload::Reload::new(board_path));
    let drain = Arc::new(AtomicBool::new(false));
    let signals = {
        let (stop, reload, drain) = (shutdown.clone(), reload.clone(), drain.clone());
        crate::os::signals::SignalWatch::start(move |request| match request {
            Request::Stop => stop.trigger(),
            Request::Reload => reload.request(&stop, &mut crate::os::notify::send),
            Request::Drain => drain.store(true, Ordering::SeqCst),
        })?
    };
    let threads = start_threads(board, recorder, &device_id, &time, &shutdown, &watch, drain)?;
    log::info!(
        "fieldlink {} running: device {device_id}, {} sensor(s), queue {}",
        env!("CARGO_PKG_VERSION"),
        board.sensors.len(),
        queue_path.display()
    );
    let mut notify = crate::os::notify::send;
    watchdog::keep_systemd_informed(clock.as_ref(), &shutdown, &watch, tick, &mut notify);
    log::info!("stopping: committing pending readings");
    threads.join(clock.as_ref());
    drop(signals);
    if reload.accepted() {
        if let Err(e) = crate::os::signals::ignore_hangup() {
            log::warn!("{e}: a SIGHUP during the fresh start would end the agent");
        }
        log::info!("stopped; starting afresh with the reloaded board file");
        return Err(crate::os::exec::restart_in_place().into());
    }
    log::info!("stopped");
    Ok(())
}

/// The worker threads of a running agent.
struct Threads {
    sensors: Vec<JoinHandle<()>>,
    recorder: JoinHandle<()>,
    uploader: Option<JoinHandle<()>>,
}

impl Threads {
    /// Sensors first (their channel closing ends the recorder's last window), then the
    /// recorder's final commit; the uploader gets a short grace, as what it was sending is
    /// still queued.
    fn join(self, clock: &dyn Clock) {
        for handle in self.sensors {
            let _ = handle.join();
        }
        let _ = self.recorder.join();
        if let Some(handle) = self.uploader {
            wait_until(|| handle.is_finished(), clock, UPLOADER_GRACE);
        }
    }
}

/// Start the recorder, the sensor threads and (with an `[upload]` section) the uploader.
fn start_threads(
    board: &Board,
    mut recorder: Recorder,
    device_id: &str,
    time: &Arc<TimeKeeper>,
    shutdown: &Shutdown,
    watch: &watchdog::Watch,
    drain: Arc<AtomicBool>,
) -> Result<Threads, AgentError> {
    // The uploader's own connection; the file was checked when the recorder's opened.
    let upload_queue = board
        .upload
        .as_ref()
        .map(|_| recorder.queue().reopen())
        .transpose()?;
    let (tx, rx) = mpsc::channel();
    let recorder = spawn("recorder", move || recorder.run(rx))?;
    let sampler = watch.liveness.watch("sampler");
    let sensors = spawn_sensors(board, time, tx, shutdown, sampler)?;
    let uploader = match (&board.upload, upload_queue) {
        (Some(cfg), Some(queue)) => {
            let uploader = crate::upload::connect_waiting_for_token(
                queue,
                cfg,
                device_id,
                device_id,
                time.clone(),
            )?;
            let start_delay = cfg
                .start_delay_max
                .mul_f64(crate::rng::Rng::from_text(device_id).unit());
            let upload_watch = uploading::UploadWatch {
                heartbeat: watch.liveness.watch("uploader"),
                activity: watch.activity.clone(),
                step_bound: uploading::step_bound(cfg.timeout, cfg.batch_lines),
                drain,
            };
            let (stop, clock) = (shutdown.clone(), time.clock().clone());
            match cfg.is_mqtt() {
                true => log::info!("publishing to {} (MQTT)", cfg.url),
                false => log::info!("uploading to {} ({:?})", cfg.url, cfg.api()),
            }
            Some(spawn("uploader", move || {
                uploading::upload_loop(uploader, start_delay, clock.as_ref(), stop, upload_watch)
            })?)
        }
        _ => {
            log::info!("no [upload] section: readings are kept in the queue only");
            None
        }
    };
    Ok(Threads {
        sensors,
        recorder,
        uploader,
    })
}

/// Make the files the agent creates private to its user, and hold the queue's lock for the
/// agent's life, so `sync` asks this agent to drain (SIGUSR1, ignored until the signal watch
/// takes it) instead of draining the same queue beside it.
fn claim_queue(board: &Board) -> Result<crate::os::lock::FileLock, AgentError> {
    crate::os::fs::keep_new_files_private();
    crate::os::signals::ignore_drain_requests()?;
    let path = board.queue.resolved_path();
    match crate::queue::take_writer_lock(&path)? {
        crate::queue::WriterLock::Ours(lock) => Ok(lock),
        crate::queue::WriterLock::HeldBy(pid) => Err(AgentError::Busy { path, pid }),
    }
}

fn holder(pid: Option<i32>) -> String {
    pid.map_or("another process".into(), |pid| format!("process {pid}"))
}

/// The recorder for this board, bounded by the board's queue policy.
fn recorder(
    board: &Board,
    queue: Queue,
    device_id: &str,
    time: Arc<TimeKeeper>,
) -> Result<Recorder, AgentError> {
    let plan = crate::device::series_plan(board, device_id);
    let policy = Policy {
        max_bytes: board.queue.max_bytes,
        max_age: board.queue.max_age,
        window: board.queue.downsample_window,
    };
    let recorder = Recorder::new(
        queue,
        &plan,
        time,
        board.queue.commit_interval,
        METRICS_INTERVAL,
    )?;
    let aggregation: Vec<_> = board.sensors.iter().map(|s| s.aggregate.clone()).collect();
    Ok(recorder
        .with_retention(policy)
        .with_aggregation(&aggregation))
}

/// One thread per event sensor and one sampler thread for all periodic sensors.
fn spawn_sensors(
    board: &Board,
    time: &Arc<TimeKeeper>,
    tx: mpsc::Sender<sampler::Message>,
    shutdown: &Shutdown,
    heartbeat: crate::liveness::Heartbeat,
) -> Result<Vec<JoinHandle<()>>, AgentError> {
    let queue_path = board.queue.resolved_path();
    let state_dir = queue_path.parent().unwrap_or(Path::new(""));
    let mut sensor_threads = Vec::new();
    let mut periodic = Vec::new();
    for (index, cfg) in board.sensors.iter().enumerate() {
        match sensors::driver_factory(cfg, state_dir) {
            DriverFactory::Periodic(open) => {
                periodic.push(Slot::new(index, cfg.id.clone(), cfg.interval, open))
            }
            DriverFactory::Events(open) => {
                let slot = Slot::new(index, cfg.id.clone(), cfg.interval, open);
                let (time, tx, stop) = (time.clone(), tx.clone(), shutdown.clone());
                sensor_threads.push(spawn(&format!("events-{}", cfg.id), move || {
                    sampler::run_events(slot, time, tx, stop)
                })?);
            }
        }
    }
    let (time, stop) = (time.clone(), shutdown.clone());
    sensor_threads.push(spawn("sampler", move || {
        sampler::run_periodic(periodic, time, tx, stop, heartbeat)
    })?);
    Ok(sensor_threads)
}

/// Poll `done` on `clock` until it says yes or `timeout` has passed; true when done.
fn wait_until(done: impl Fn() -> bool, clock: &dyn Clock, timeout: Duration) -> bool {
    let deadline = clock.mono_ns().saturating_add(timeout.as_nanos() as i64);
    while !done() {
        if clock.mono_ns() >= deadline {
            return false;
        }
        clock.sleep(JOIN_POLL);
    }
    true
}

fn spawn<F: FnOnce() + Send + 'static>(name: &str, work: F) -> Result<JoinHandle<()>, AgentError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|source| AgentError::Thread {
            name: name.into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::cell::Cell;

    #[test]
    fn a_stopping_agent_gives_a_busy_uploader_two_seconds_of_its_clock_and_no_more() {
        let clock = ManualClock::new(0, true, "b");
        let start = clock.mono_ns();
        assert!(!wait_until(|| false, &clock, UPLOADER_GRACE));
        assert_eq!(clock.mono_ns() - start, 2_000_000_000);
    }

    #[test]
    fn a_thread_that_finishes_meanwhile_ends_the_wait_at_once() {
        let clock = ManualClock::new(0, true, "b");
        let start = clock.mono_ns();
        let polls = Cell::new(0);
        let done = || {
            polls.set(polls.get() + 1);
            polls.get() > 3
        };
        assert!(wait_until(done, &clock, UPLOADER_GRACE));
        assert_eq!(clock.mono_ns() - start, 3 * 20_000_000);
    }
}
