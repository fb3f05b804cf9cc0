//! The command line: `run`, `check`, `read`, `scan`, `status`, `sync` and `dead-letter`.
//! Exit codes: 0 done, 1 the work failed, 2 the command line or board file is wrong.

use crate::agent;
use crate::clock::{Clock, SystemClock};
use crate::config::{Board, ConfigError};
use crate::queue::{counter, Queue, Selection};
use crate::reading::Value;
use crate::sensors::{self, Opener};
use crate::upload::endpoint::Endpoint;
use crate::upload::Step;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "fieldlink — offline-first sensor agent for Raspberry Pi fleets

usage:
  fieldlink run --board FILE            sample and upload until SIGTERM/SIGINT
  fieldlink check --board FILE          validate the board file and print the resolved config
  fieldlink read --board FILE [--format json]
                                        read every sensor once and print the values
  fieldlink scan [--bus /dev/i2c-1]     probe an I2C bus and name the known chips found
  fieldlink status --board FILE [--format json]
                                        queue depth and age, counters, last upload, clock
  fieldlink sync --board FILE [--timeout 60s]
                                        upload everything queued now; exit 0 when empty
  fieldlink dead-letter list|retry|purge --board FILE [--all | --id N] [--older-than 7d]
                                        inspect, re-queue or delete lines the server refused
  fieldlink --help | --version

environment: FIELDLINK_LOG=error|warn|info|debug (default info)";

/// A parsed command line.
#[derive(Debug, Default)]
struct Args {
    command: String,
    action: Option<String>,
    board: Option<PathBuf>,
    json: bool,
    bus: Option<PathBuf>,
    timeout: Option<Duration>,
    all: bool,
    id: Option<i64>,
    older_than: Option<Duration>,
}

/// Why the command line could not be understood.
#[derive(Debug)]
struct UsageError(String);

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, UsageError> {
    let mut args = Args::default();
    let value = |argv: &mut dyn Iterator<Item = String>, flag: &str| {
        argv.next()
            .ok_or_else(|| UsageError(format!("{flag} needs a value")))
    };
    let duration = |text: String, flag: &str| {
        crate::config::units::parse_duration(&text).map_err(|e| UsageError(format!("{flag}: {e}")))
    };
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--board" | "-b" => args.board = Some(value(&mut argv, &arg)?.into()),
            "--format" => match value(&mut argv, &arg)?.as_str() {
                "json" => args.json = true,
                "table" | "text" => args.json = false,
                other => {
                    return Err(UsageError(format!(
                        "--format {other}: expected json or table"
                    )))
                }
            },
            "--json" => args.json = true,
            "--bus" => args.bus = Some(value(&mut argv, &arg)?.into()),
            "--timeout" => args.timeout = Some(duration(value(&mut argv, &arg)?, "--timeout")?),
            "--older-than" => {
                args.older_than = Some(duration(value(&mut argv, &arg)?, "--older-than")?)
            }
            "--all" => args.all = true,
            "--id" => {
                let text = value(&mut argv, &arg)?;
                args.id = Some(
                    text.parse()
                        .map_err(|_| UsageError(format!("--id {text}: expected a number")))?,
                );
            }
            "--help" | "-h" => args.command = "help".into(),
            "--version" | "-V" => args.command = "version".into(),
            flag if flag.starts_with('-') => {
                return Err(UsageError(format!("unknown option {flag}")))
            }
            word if args.command.is_empty() => args.command = word.into(),
            word if args.command == "dead-letter" && args.action.is_none() => {
                args.action = Some(word.into())
            }
            word if args.command == "dead-letter"
                && args.action.as_deref() == Some("retry")
                && args.id.is_none() =>
            {
                args.id = Some(
                    word.parse()
                        .map_err(|_| UsageError(format!("{word}: expected a dead-letter id")))?,
                );
            }
            word => return Err(UsageError(format!("unexpected argument {word}"))),
        }
    }
    Ok(args)
}

/// Run the command line and return the process exit code.
pub fn main(argv: impl Iterator<Item = String>) -> ExitCode {
    crate::logging::init();
    let args = match parse(argv) {
        Ok(args) => args,
        Err(UsageError(message)) => {
            eprintln!("fieldlink: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if !matches!(args.command.as_str(), "run" | "sync") {
        end_quietly_on_a_closed_pipe();
    }
    let result = match args.command.as_str() {
        "" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        "version" => {
            println!("fieldlink {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "scan" => scan(&args),
        command => {
            let board = match load_board(&args) {
                Ok(board) => board,
                Err(code) => return code,
            };
            match command {
                "run" => agent::run(&board).map_err(|e| e.to_string()),
                "check" => check(&board),
                "read" => read(&board, args.json),
                "status" => status(&board, args.json),
                "sync" => sync(&board, args.timeout.unwrap_or(Duration::from_secs(60))),
                "dead-letter" => dead_letter(&board, &args),
                other => {
                    eprintln!("fieldlink: unknown command {other}\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            eprintln!("fieldlink: {message}");
            ExitCode::from(1)
        }
    }
}

/// Commands that print and end behave like any Unix tool when their reader goes away
/// (`fieldlink status | head -3`): SIGPIPE ends them, where Rust's default (SIGPIPE ignored)
/// makes the next print panic. `run` and `sync` keep it ignored: the agent must never die of
/// a log reader that went away.
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: resetting a signal to its default disposition; no handler is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn load_board(args: &Args) -> Result<Board, ExitCode> {
    let Some(path) = &args.board else {
        eprintln!(
            "fieldlink {}: --board FILE is required\n\n{USAGE}",
            args.command
        );
        return Err(ExitCode::from(2));
    };
    Board::load(path).map_err(|e: ConfigError| {
        eprintln!("fieldlink: {e}");
        ExitCode::from(2)
    })
}

fn check(board: &Board) -> Result<(), String> {
    let device_id = crate::device::resolve_id(&board.device.id);
    let plan = crate::device::series_plan(board, &device_id);
    println!("board OK");
    println!(
        "device id: {device_id}{}",
        if board.device.id == "auto" {
            " (auto)"
        } else {
            ""
        }
    );
    println!("sensors:");
    for (sensor, key) in board.sensors.iter().zip(&plan.sensor_keys) {
        println!(
            "  {:<16} {:<18} every {:?}  series {key}",
            sensor.id,
            sensor.kind.name(),
            sensor.interval
        );
    }
    let q = &board.queue;
    println!(
        "queue: {} (max {} bytes, max age {:?}, commit every {:?}, downsample window {:?})",
        q.resolved_path().display(),
        q.max_bytes,
        q.max_age,
        q.commit_interval,
        q.downsample_window
    );
    match &board.upload {
        None => println!("upload: none (queue only)"),
        Some(u) => {
            println!("upload: {}", crate::upload::endpoint::write_url(u));
            let auth = match (&u.token_env, &u.token_file) {
                (Some(var), _) => format!(
                    "token from ${var} ({})",
                    if std::env::var_os(var).is_some() {
                        "set, redacted"
                    } else {
                        "NOT SET"
                    }
                ),
                (None, Some(file)) => format!("token from {} (redacted)", file.display()),
                (None, None) => "none".into(),
            };
            println!("  auth: {auth}");
            println!(
                "  batches: {} lines / {} bytes, gzip {}, timeout {:?}, pace {} points/s, start delay up to {:?}",
                u.batch_lines, u.batch_bytes, u.gzip, u.timeout, u.max_points_per_second, u.start_delay_max
            );
            Endpoint::new(u).map_err(|e| e.to_string())?;
        }
    }
    println!("clock: require_sync = {}", board.clock.require_sync);
    Ok(())
}

fn unit_of(field: &str) -> &'static str {
    match field {
        "temperature" => " °C",
        "humidity" => " %RH",
        "pressure" => " hPa",
        "open_seconds" => " s",
        "signal_strength" => " dBm",
        "battery_level" => " %",
        _ => "",
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::Float(v) => format!("{v:.2}"),
        Value::Int(v) => v.to_string(),
        Value::UInt(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        Value::Str(s) => s.clone(),
    }
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Float(v) => serde_json::json!(v),
        Value::Int(v) => serde_json::json!(v),
        Value::UInt(v) => serde_json::json!(v),
        Value::Bool(v) => serde_json::json!(v),
        Value::Str(s) => serde_json::json!(s),
    }
}

fn read(board: &Board, json: bool) -> Result<(), String> {
    let state_dir = board
        .queue
        .resolved_path()
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let mut failed = 0;
    let mut out = Vec::new();
    for cfg in &board.sensors {
        let result = match sensors::opener(cfg, &state_dir) {
            Opener::Periodic(mut open) => open().and_then(|mut s| s.read()),
            Opener::Events(mut open) => open().and_then(|mut s| s.read()),
        };
        if result.is_err() {
            failed += 1;
        }
        out.push((cfg, result));
    }
    if json {
        let items: Vec<serde_json::Value> = out
            .iter()
            .map(|(cfg, result)| match result {
                Ok(fields) => serde_json::json!({
                    "sensor": cfg.id, "kind": cfg.kind.name(),
                    "fields": fields.iter().map(|(k, v)| (k.to_string(), json_value(v))).collect::<serde_json::Map<_, _>>(),
                }),
                Err(e) => serde_json::json!({"sensor": cfg.id, "kind": cfg.kind.name(), "error": e.to_string(), "reason": e.reason()}),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
    } else {
        println!("{:<16} {:<18} VALUES", "SENSOR", "KIND");
        for (cfg, result) in &out {
            let text = match result {
                Ok(fields) => fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}{}", show(v), unit_of(k)))
                    .collect::<Vec<_>>()
                    .join("  "),
                Err(e) => format!("ERROR: {e}"),
            };
            println!("{:<16} {:<18} {text}", cfg.id, cfg.kind.name());
        }
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {} sensor(s) could not be read",
            board.sensors.len()
        ));
    }
    Ok(())
}

fn scan(args: &Args) -> Result<(), String> {
    let bus = args
        .bus
        .clone()
        .unwrap_or_else(|| PathBuf::from("/dev/i2c-1"));
    let mut i2c = linux_embedded_hal::I2cdev::new(&bus).map_err(|e| {
        format!(
            "{}: {e} (is I2C enabled? dtparam=i2c_arm=on, and are you in the i2c group?)",
            bus.display()
        )
    })?;
    let found = sensors::i2c::scan(&mut i2c);
    if found.is_empty() {
        println!("{}: no devices answered", bus.display());
    }
    for (address, chips) in found {
        let names = if chips.is_empty() {
            "unknown device".to_string()
        } else {
            chips.join(" or ")
        };
        println!("{address:#04x}  {names}");
    }
    Ok(())
}

fn age(ns: i64) -> String {
    let s = (ns.max(0) / 1_000_000_000) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

fn status(board: &Board, json: bool) -> Result<(), String> {
    let path = board.queue.resolved_path();
    if !path.exists() {
        return Err(format!(
            "no queue at {} yet: has `fieldlink run` started with this board?",
            path.display()
        ));
    }
    let queue = Queue::open(&path).map_err(|e| e.to_string())?;
    let stats = queue.stats().map_err(|e| e.to_string())?;
    let counters = queue.counters().map_err(|e| e.to_string())?;
    let last_upload = queue.meta("last_upload").map_err(|e| e.to_string())?;
    let last_trusted: i64 = queue
        .meta("last_trusted_ns")
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let clock = std::sync::Arc::new(SystemClock::default());
    let now = clock.wall_ns();
    let keeper =
        crate::clock::TimeKeeper::new(clock.clone(), board.clock.require_sync, last_trusted);
    let clock_state = match (clock.synchronised(), keeper.trusts(now)) {
        (_, true) => "trusted",
        (true, false) => "synchronised but implausible (earlier than a time already seen)",
        (false, false) => "not synchronised: new readings are held",
    };
    let free = crate::queue::free_bytes(&path);
    let disk_full = free.is_some_and(|b| b < crate::queue::DISK_NEARLY_FULL);
    let oldest_age_s = stats.oldest_ns.map(|t| (now - t) as f64 / 1e9);
    let held_age_s = stats.oldest_held_wall_ns.map(|t| (now - t) as f64 / 1e9);
    if json {
        // Every named counter appears, zero or not, so scripts need no special cases.
        let mut counters = counters;
        for name in [
            counter::SAMPLED,
            counter::UPLOADED,
            counter::EXPIRED,
            counter::THINNED,
            counter::DROPPED_FULL,
            counter::REJECTED,
            counter::UNKNOWN_TIME,
            counter::AGGREGATES,
            counter::FIELDS_NONFINITE,
            counter::QUEUED,
            counter::HELD,
        ] {
            counters.entry(name.to_string()).or_insert(0);
        }
        let value = serde_json::json!({
            "queue": path.display().to_string(),
            "depth": stats.depth,
            "oldest_age_s": oldest_age_s,
            "held": stats.held,
            "oldest_held_age_s": held_age_s,
            "dead_letters": stats.dead_letters,
            "bytes": stats.bytes,
            "max_bytes": board.queue.max_bytes,
            "last_upload": last_upload,
            "clock": clock_state,
            "disk_free_bytes": free,
            "disk_full": disk_full,
            "counters": counters,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "queue        {} ({:.1} of {:.1} MiB)",
        path.display(),
        stats.bytes as f64 / 1048576.0,
        board.queue.max_bytes as f64 / 1048576.0
    );
    println!(
        "waiting      {} reading(s){}",
        stats.depth,
        stats
            .oldest_ns
            .map(|t| format!(", oldest sampled {} ago", age(now - t)))
            .unwrap_or_default()
    );
    println!(
        "held         {} reading(s) waiting for a trusted clock{}",
        stats.held,
        stats
            .oldest_held_wall_ns
            .map(|t| format!(", oldest {} ago by its own clock", age(now - t)))
            .unwrap_or_default()
    );
    println!("dead letters {}", stats.dead_letters);
    match free {
        Some(bytes) if disk_full => println!(
            "disk         FULL ({bytes} bytes free): new readings wait in memory (up to {}) and are written when space returns",
            crate::recorder::SPILL_LIMIT
        ),
        Some(bytes) => println!("disk         {:.1} MiB free", bytes as f64 / 1048576.0),
        None => println!("disk         free space unknown"),
    }
    println!("clock        {clock_state}");
    println!("last upload  {}", last_upload.as_deref().unwrap_or("never"));
    let get = |name: &str| counters.get(name).copied().unwrap_or(0);
    println!(
        "sampled      {}    uploaded {}",
        get(counter::SAMPLED),
        get(counter::UPLOADED)
    );
    println!(
        "dropped      expired {}  thinned {}  dropped_full {}  rejected {}  unknown_time {}",
        get(counter::EXPIRED),
        get(counter::THINNED),
        get(counter::DROPPED_FULL),
        get(counter::REJECTED),
        get(counter::UNKNOWN_TIME)
    );
    for (name, value) in counters
        .iter()
        .filter(|(k, _)| k.starts_with(counter::SENSOR_ERROR_PREFIX))
    {
        println!(
            "sensor error {} = {value}",
            &name[counter::SENSOR_ERROR_PREFIX.len()..]
        );
    }
    Ok(())
}

fn sync(board: &Board, timeout: Duration) -> Result<(), String> {
    let Some(cfg) = &board.upload else {
        return Err("the board has no [upload] section".into());
    };
    let (queue, _time) = agent::open_queue(board, std::sync::Arc::new(SystemClock::default()))
        .map_err(|e| e.to_string())?;
    let total = queue.stats().map_err(|e| e.to_string())?.depth;
    let mut uploader = crate::upload::connect(queue, cfg, "sync").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let terminal = std::io::stderr().is_terminal();
    let mut sent = 0usize;
    loop {
        match uploader.step().map_err(|e| e.to_string())? {
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
                    if terminal {
                        eprintln!();
                    }
                    return Err(format!(
                        "sync gave up: {} ({} reading(s) sent, the rest stay queued)",
                        pause.reason, sent
                    ));
                }
                std::thread::sleep(pause.delay);
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "sync timed out after {timeout:?}: {sent} reading(s) sent, the rest stay queued"
            ));
        }
    }
    if terminal {
        eprintln!();
    }
    println!("queue empty: {sent} reading(s) uploaded");
    Ok(())
}

fn dead_letter(board: &Board, args: &Args) -> Result<(), String> {
    let mut queue = Queue::open(&board.queue.resolved_path()).map_err(|e| e.to_string())?;
    match args.action.as_deref() {
        Some("list") => {
            let letters = queue.dead_letters(1000).map_err(|e| e.to_string())?;
            if args.json {
                let items: Vec<_> = letters
                    .iter()
                    .map(|d| serde_json::json!({"id": d.id, "reason": d.reason, "message": d.message, "at_ns": d.at_ns, "line": d.line}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&items).unwrap_or_default()
                );
            } else {
                for d in &letters {
                    println!("#{} [{}] {}\n    {}", d.id, d.reason, d.message, d.line);
                }
                println!("{} dead letter(s)", letters.len());
            }
            Ok(())
        }
        Some("retry") => {
            let which = match (args.all, args.id) {
                (true, _) => Selection::All,
                (false, Some(id)) => Selection::One(id),
                (false, None) => return Err("dead-letter retry needs --all or an id".into()),
            };
            let n = queue.retry_dead_letters(which).map_err(|e| e.to_string())?;
            println!("{n} dead letter(s) moved back to the queue");
            Ok(())
        }
        Some("purge") => {
            let older = args.older_than.unwrap_or(Duration::ZERO);
            let before = SystemClock::default().wall_ns() - older.as_nanos() as i64;
            let n = queue
                .purge_dead_letters(before)
                .map_err(|e| e.to_string())?;
            println!("{n} dead letter(s) purged");
            Ok(())
        }
        _ => Err("dead-letter needs an action: list, retry or purge".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Result<Args, UsageError> {
        parse(words.iter().map(|s| s.to_string()))
    }

    #[test]
    fn commands_and_options_parse() {
        let a = args(&["status", "--board", "b.toml", "--format", "json"]).unwrap();
        assert_eq!((a.command.as_str(), a.json), ("status", true));
        assert_eq!(a.board, Some(PathBuf::from("b.toml")));
        let a = args(&["dead-letter", "retry", "7", "--board", "b"]).unwrap();
        assert_eq!((a.action.as_deref(), a.id), (Some("retry"), Some(7)));
        let a = args(&["dead-letter", "purge", "--older-than", "7d", "--board", "b"]).unwrap();
        assert_eq!(a.older_than, Some(Duration::from_secs(7 * 86400)));
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert!(args(&["run", "--frobnicate"]).is_err());
        assert!(args(&["sync", "--timeout", "soon"]).is_err());
        assert!(args(&["run", "extra", "words"]).is_err());
    }
}
