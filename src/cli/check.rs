//! `check`: the board as fieldlink understood it, printed without touching any sensor.

use super::CliError;
use crate::config::{Board, UploadConfig};
use crate::upload::endpoint::Endpoint;
use crate::upload::ConnectError;

pub fn check(board: &Board) -> Result<(), CliError> {
    let device_id = crate::device::resolve_id(&board.device.id);
    let plan = crate::device::series_plan(board, &device_id);
    println!("board OK");
    let auto = if board.device.id == "auto" {
        " (auto)"
    } else {
        ""
    };
    println!("device id: {device_id}{auto}");
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
        Some(upload) if upload.is_mqtt() => print_mqtt(upload, &device_id)?,
        Some(upload) => print_upload(upload)?,
    }
    println!("clock: require_sync = {}", board.clock.require_sync);
    Ok(())
}

/// Where readings go and where the token comes from (never the token itself); fails when
/// the token cannot be had.
fn print_upload(u: &UploadConfig) -> Result<(), CliError> {
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
        u.batch_lines, u.batch_bytes, u.gzip(), u.timeout, u.max_points_per_second, u.start_delay_max
    );
    Endpoint::new(u)?;
    Ok(())
}

/// The broker, topic, presence topic and credentials' source; fails when the password file or
/// the TLS files cannot be used, as the agent would.
fn print_mqtt(u: &UploadConfig, device_id: &str) -> Result<(), CliError> {
    for line in crate::upload::mqtt::settings::describe(u, device_id) {
        println!("{line}");
    }
    crate::upload::mqtt::settings::output(u, device_id).map_err(ConnectError::from)?;
    Ok(())
}
