//! The real `EdgeSource`: one input line on the GPIO character device (`/dev/gpiochipN`),
//! requested with edge detection on both edges. The kernel applies `active_low`, `bias` and
//! `debounce`, and timestamps edges on CLOCK_MONOTONIC. Kept thin: nothing here can be tested
//! without GPIO hardware.

use super::{Edge, EdgeSource};
use crate::config::{Bias, GpioLine, GpioSettings};
use crate::sensors::SensorError;
use gpiocdev::line::{self, EdgeDetection, EdgeKind, Offset};
use gpiocdev::Request;
use std::path::PathBuf;
use std::time::Duration;

/// On a Pi 1–4 the 40-pin header is gpiochip0; on a Pi 5 it is gpiochip0 on current kernels
/// and gpiochip4 on older ones, which is why `line_name = "GPIO17"` is the portable choice.
pub const DEFAULT_CHIP: &str = "gpiochip0";

pub struct CdevLine {
    request: Request,
    offset: Offset,
    /// Chip and line, for error messages.
    label: String,
}

impl CdevLine {
    /// Request the line the settings name: `chip` (default gpiochip0) + `line`, or `line_name`.
    pub fn open(id: &str, settings: &GpioSettings) -> Result<Self, SensorError> {
        let (chip, offset, label) = match &settings.line {
            GpioLine::Offset { chip, line } => {
                let chip = chip_path(chip.as_deref().unwrap_or(DEFAULT_CHIP));
                let label = format!("{} line {line}", chip.display());
                (chip, *line, label)
            }
            GpioLine::Named(name) => {
                let found = gpiocdev::find_named_line(name).ok_or_else(|| {
                    SensorError::NotFound(format!("no GPIO line named `{name}` on any chip"))
                })?;
                let label = format!(
                    "{} line {} (`{name}`)",
                    found.chip.display(),
                    found.info.offset
                );
                (found.chip, found.info.offset, label)
            }
        };
        if !chip.exists() {
            return Err(SensorError::NotFound(format!(
                "GPIO chip {}",
                chip.display()
            )));
        }
        let mut builder = Request::builder();
        builder
            .on_chip(&chip)
            .with_consumer(format!("fieldlink:{id}"))
            .with_line(offset)
            .as_input()
            .with_edge_detection(EdgeDetection::BothEdges);
        if settings.active_low {
            builder.as_active_low();
        }
        if let Some(bias) = settings.bias {
            builder.with_bias(match bias {
                Bias::PullUp => line::Bias::PullUp,
                Bias::PullDown => line::Bias::PullDown,
                Bias::Disabled => line::Bias::Disabled,
            });
        }
        if let Some(period) = settings.debounce.filter(|d| !d.is_zero()) {
            builder.with_debounce_period(period);
        }
        let request = builder.request().map_err(|e| error(&label, e))?;
        Ok(CdevLine {
            request,
            offset,
            label,
        })
    }
}

impl EdgeSource for CdevLine {
    fn wait_edge(&mut self, timeout: Duration) -> Result<Option<Edge>, SensorError> {
        let ready = self
            .request
            .wait_edge_event(timeout)
            .map_err(|e| error(&self.label, e))?;
        if !ready {
            return Ok(None);
        }
        let event = self
            .request
            .read_edge_event()
            .map_err(|e| error(&self.label, e))?;
        Ok(Some(Edge {
            active: event.kind == EdgeKind::Rising,
            at: Duration::from_nanos(event.timestamp_ns),
        }))
    }

    fn level(&mut self) -> Result<bool, SensorError> {
        let value = self
            .request
            .value(self.offset)
            .map_err(|e| error(&self.label, e))?;
        Ok(value == line::Value::Active)
    }
}

/// `gpiochip0` means `/dev/gpiochip0`; anything with a slash is already a path.
fn chip_path(chip: &str) -> PathBuf {
    if chip.contains('/') {
        PathBuf::from(chip)
    } else {
        PathBuf::from("/dev").join(chip)
    }
}

/// Request and read failures (line busy, permission denied, chip gone) as `Io`, naming the line.
fn error(label: &str, err: gpiocdev::Error) -> SensorError {
    SensorError::Io {
        path: label.to_string(),
        source: std::io::Error::other(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chip_name_means_its_device_node() {
        assert_eq!(chip_path("gpiochip4"), PathBuf::from("/dev/gpiochip4"));
        assert_eq!(chip_path("/dev/gpiochip1"), PathBuf::from("/dev/gpiochip1"));
    }

    #[test]
    fn a_missing_chip_is_not_found_and_named() {
        let settings = GpioSettings {
            line: GpioLine::Offset {
                chip: Some("/nonexistent/gpiochip9".into()),
                line: 17,
            },
            active_low: false,
            bias: None,
            debounce: None,
        };
        let err = CdevLine::open("door", &settings).err().unwrap();
        assert_eq!(err.reason(), "not_found");
        assert!(err.to_string().contains("/nonexistent/gpiochip9"), "{err}");
    }
}
