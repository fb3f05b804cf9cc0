//! `read` and `scan`: what the sensors say right now, for an installer at the Pi.

use super::args::Format;
use super::CliError;
use crate::aggregate::EdgeWindow;
use crate::clock::{Clock, Stamp, SystemClock};
use crate::config::{Board, SensorConfig};
use crate::line_protocol;
use crate::reading::{Fields, Value};
use crate::sensors::{self, DriverFactory, SensorError};
use std::path::Path;

/// Every sensor read once: its values, or why it could not be read.
type Readout<'a> = Vec<(&'a SensorConfig, Result<Fields, SensorError>)>;

pub fn read(board: &Board, format: Format) -> Result<(), CliError> {
    let state_dir = board
        .queue
        .resolved_path()
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let readout: Readout = board
        .sensors
        .iter()
        .map(|cfg| {
            let result = match sensors::driver_factory(cfg, &state_dir) {
                DriverFactory::Periodic(mut open) => open().and_then(|mut s| s.read()),
                DriverFactory::Events(mut open) => open().and_then(|mut s| s.read()),
            };
            (cfg, result)
        })
        .collect();
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&readout_json(&readout)).unwrap_or_default()
        ),
        Format::Text => print!("{}", readout_table(&readout)),
        Format::LineProtocol => {
            for (cfg, result) in &readout {
                if let Err(e) = result {
                    eprintln!("sensor {}: {e}", cfg.id);
                }
            }
            print!("{}", readout_lines(board, &readout));
        }
    }
    let failed = readout.iter().filter(|(_, r)| r.is_err()).count();
    if failed > 0 {
        return Err(CliError::Unreadable {
            failed,
            total: readout.len(),
        });
    }
    Ok(())
}

fn readout_json(readout: &Readout) -> serde_json::Value {
    readout
        .iter()
        .map(|(cfg, result)| match result {
            Ok(fields) => serde_json::json!({
                "sensor": cfg.id, "kind": cfg.kind.name(),
                "fields": fields.iter().map(|(k, v)| (k.to_string(), json_value(v))).collect::<serde_json::Map<_, _>>(),
            }),
            Err(e) => serde_json::json!({"sensor": cfg.id, "kind": cfg.kind.name(), "error": e.to_string(), "reason": e.reason()}),
        })
        .collect()
}

/// The lines the recorder would queue for this readout: the same series keys (device and
/// sensor tags, sorted and escaped) and field sets, stamped now. An aggregated sensor shows the
/// line its window would give if this were its only sample (and the raw line with `keep_raw`).
fn readout_lines(board: &Board, readout: &Readout) -> String {
    let device_id = crate::device::resolve_id(&board.device.id);
    let plan = crate::device::series_plan(board, &device_id);
    let clock = SystemClock::default();
    let now = Stamp {
        wall_ns: clock.wall_ns(),
        mono_ns: clock.mono_ns(),
        trusted: true,
    };
    let mut out = Vec::new();
    for ((cfg, result), key) in readout.iter().zip(&plan.sensor_keys) {
        let Ok(fields) = result else { continue };
        let mut line = |set: &str, time_ns| {
            line_protocol::push_line(&mut out, key, set, time_ns);
            out.push(b'\n');
        };
        if let Some(aggregate) = &cfg.aggregate {
            let mut window = EdgeWindow::new(aggregate.window, aggregate.fields.clone());
            window.add(fields, now);
            if let Some(closed) = window.close() {
                line(&closed.field_set, closed.stamp.wall_ns);
            }
            if !aggregate.keep_raw {
                continue;
            }
        }
        if let (Some(set), _) = line_protocol::field_set(fields) {
            line(&set, now.wall_ns);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn readout_table(readout: &Readout) -> String {
    let mut out = format!("{:<16} {:<18} VALUES\n", "SENSOR", "KIND");
    for (cfg, result) in readout {
        let text = match result {
            Ok(fields) => fields
                .iter()
                .map(|(k, v)| format!("{k}={}{}", show(v), unit_of(k)))
                .collect::<Vec<_>>()
                .join("  "),
            Err(e) => format!("ERROR: {e}"),
        };
        out.push_str(&format!("{:<16} {:<18} {text}\n", cfg.id, cfg.kind.name()));
    }
    out
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

pub fn scan(bus: &Path) -> Result<(), CliError> {
    let mut i2c = linux_embedded_hal::I2cdev::new(bus).map_err(|source| CliError::Bus {
        bus: bus.to_path_buf(),
        source,
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
