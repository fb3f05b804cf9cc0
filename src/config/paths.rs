//! Relative paths in a board file are taken from the board file's directory, not from the
//! working directory, so `fieldlink status` finds the queue wherever it is run from and a board
//! means the same under systemd (working directory `/`) as in a shell.

use super::{Board, SensorKind, SysfsSettings};
use std::path::{Path, PathBuf};

impl Board {
    /// Make every relative path of the board absolute against `board_dir`: the queue, the token
    /// and password files, the CA bundle and client certificate, and the sysfs roots. (The overlay is resolved the same way when it is
    /// read.)
    pub(super) fn resolve_paths(&mut self, board_dir: &Path) {
        let resolve = |path: &mut Option<PathBuf>| {
            if let Some(p) = path {
                if p.is_relative() && !p.as_os_str().is_empty() {
                    *p = board_dir.join(&*p);
                }
            }
        };
        resolve(&mut self.queue.path);
        if let Some(upload) = &mut self.upload {
            resolve(&mut upload.token_file);
            resolve(&mut upload.ca_file);
            resolve(&mut upload.password_file);
            resolve(&mut upload.client_cert);
            resolve(&mut upload.client_key);
        }
        for sensor in &mut self.sensors {
            if let SensorKind::Sysfs(settings) = &mut sensor.kind {
                match settings {
                    SysfsSettings::Ds18b20 { w1_root, .. } => resolve(w1_root),
                    SysfsSettings::Dht22 { iio_root, .. } => resolve(iio_root),
                    SysfsSettings::SocTemp { path } => resolve(path),
                }
            }
        }
    }
}

/// The directory of a board file, absolute, for resolving the paths in it.
pub(super) fn board_dir(board: &Path) -> PathBuf {
    let dir = match board.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}
