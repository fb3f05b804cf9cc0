//! One device on disk for one test: a temp directory with its board file, queue and the agent's
//! logs, and the `fieldlink` commands run against that board.

use super::agent::{fieldlink, Agent};
use super::board::{Board, Sensor};
use super::process::{describe, die_with_parent, output_within};
use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

/// A temp directory holding one device: its board file, queue and the agent's logs. Set
/// `FIELDLINK_KEEP_TMP=1` to keep it for a post-mortem.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub board_path: PathBuf,
    pub queue: PathBuf,
}

impl Site {
    pub fn new(test: &str) -> Site {
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("fieldlink-{test}-"))
            .tempdir()
            .expect("create a temp dir");
        if std::env::var_os("FIELDLINK_KEEP_TMP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        let board_path = dir.path().join("board.toml");
        let queue = dir.path().join("queue.db");
        Site {
            dir,
            board_path,
            queue,
        }
    }

    /// Three simulated sensors at 50 ms, a 200 ms commit window, no upload.
    pub fn board(&self) -> Board {
        Board {
            device_id: "e2e-device".into(),
            tags: vec![("site".into(), "lab".into())],
            sensors: vec![
                Sensor::new("climate-1", "simulated_climate").tag("room", "cold store"),
                Sensor::new("motion-1", "simulated_motion"),
                Sensor::new("door-1", "simulated_door"),
            ],
            queue: self.queue.clone(),
            commit_interval: "200ms".into(),
            upload: None,
        }
    }

    pub fn write(&self, board: &Board) -> &Path {
        std::fs::write(&self.board_path, board.to_toml()).expect("write the board file");
        &self.board_path
    }

    /// Start `fieldlink run` on this site's board; its stderr goes to `run-<n>.log` here.
    pub fn run(&self) -> Agent {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("run-"))
                    .count()
            })
            .unwrap_or(0);
        let log = self.dir.path().join(format!("run-{n}.log"));
        let stderr = File::create(&log).expect("create the agent log");
        let mut command = fieldlink();
        command
            .args(["run", "--board"])
            .arg(&self.board_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        die_with_parent(&mut command);
        let child = command.spawn().expect("start fieldlink run");
        let mut agent = Agent {
            child: Some(child),
            log,
        };
        agent.wait_until_started();
        agent
    }

    /// Run a one-shot subcommand (`status`, `sync`, …) on this site's board.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = fieldlink();
        command.args(args).arg("--board").arg(&self.board_path);
        output_within(command, Duration::from_secs(90))
    }

    /// `fieldlink status --format json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.cli(&["status", "--format", "json"]);
        assert!(
            out.status.success(),
            "fieldlink status failed: {}",
            describe(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", describe(&out)))
    }

    /// `fieldlink sync`, which must succeed.
    pub fn sync(&self) -> Output {
        let out = self.cli(&["sync", "--timeout", "30s"]);
        assert!(
            out.status.success(),
            "fieldlink sync failed: {}",
            describe(&out)
        );
        out
    }
}
