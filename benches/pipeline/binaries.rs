//! Figure 6: release binary sizes (aarch64, host), and finding or building the host release
//! binary that figure 3 runs.

use crate::report::{section, Budget, Report};
use crate::MIB;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The host release binary: the one cargo built for this bench, else next to the bench
/// executable, else built now.
pub fn host_binary() -> Option<PathBuf> {
    if let Some(path) = option_env!("CARGO_BIN_EXE_fieldlink").map(PathBuf::from) {
        if path.exists() {
            return Some(path);
        }
    }
    // <target>/release/deps/pipeline-<hash> -> <target>/release/fieldlink
    let exe = std::env::current_exe().ok()?;
    let release = exe.parent()?.parent()?.to_path_buf();
    let candidate = release.join("fieldlink");
    if candidate.exists() {
        return Some(candidate);
    }
    let target = release.parent()?.to_path_buf();
    println!("building the release binary: cargo build --release --bin fieldlink");
    let status = cargo()
        .args(["build", "--release", "--bin", "fieldlink"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status();
    match status {
        Ok(s) if s.success() && candidate.exists() => Some(candidate),
        other => {
            println!("could not build {}: {other:?}", candidate.display());
            None
        }
    }
}

pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// Where the aarch64 build goes: `FIELDLINK_CROSS_TARGET_DIR` when set (a directory kept for
/// cross builds), else `CARGO_TARGET_DIR`, else the target directory cargo resolved for this
/// bench (the parent of its `CARGO_TARGET_TMPDIR`). Cargo keeps the aarch64 artefacts under
/// `<dir>/aarch64-unknown-linux-gnu/`, apart from the host's.
fn cross_target_dir() -> PathBuf {
    ["FIELDLINK_CROSS_TARGET_DIR", "CARGO_TARGET_DIR"]
        .into_iter()
        .find_map(std::env::var_os)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            tmp.parent().unwrap_or(tmp).to_path_buf()
        })
}

pub fn binary_sizes(report: &mut Report, host: Option<&Path>, quick: bool) {
    section("6. release binary sizes");
    let cross_dir = cross_target_dir();
    let aarch64 = cross_dir.join(AARCH64).join("release/fieldlink");
    let command = format!(
        "CARGO_TARGET_DIR={} cargo build --release --target {AARCH64}",
        cross_dir.display()
    );
    if !quick {
        // A no-op when the binary is fresh; otherwise brings it up to date with the tree.
        println!("  {command}");
        let status = cargo()
            .args([
                "build",
                "--release",
                "--target",
                AARCH64,
                "--bin",
                "fieldlink",
            ])
            .env("CARGO_TARGET_DIR", &cross_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("  the aarch64 build failed ({status:?})");
        }
    }
    match stripped_size(&aarch64, "aarch64-linux-gnu-strip") {
        Some(bytes) => report.budget(
            "aarch64 release binary (stripped)",
            bytes as f64 / MIB,
            "MiB",
            2,
            Budget::AtMost(3.0),
        ),
        None => report.info(
            "aarch64 release binary (stripped)",
            format!("not built; build it with `{command}`"),
        ),
    }
    match host.and_then(|p| stripped_size(p, "strip")) {
        Some(bytes) => report.value(
            "host release binary (stripped)",
            bytes as f64 / MIB,
            "MiB",
            2,
        ),
        None => report.info("host release binary (stripped)", "not built".into()),
    }
}

/// Size after `strip` (the release profile already strips; this only makes sure), or the
/// file's size when the strip tool is missing.
pub fn stripped_size(binary: &Path, strip: &str) -> Option<u64> {
    let size = std::fs::metadata(binary).ok()?.len();
    let copy = std::env::temp_dir().join(format!("fieldlink-bench-strip-{}", std::process::id()));
    let stripped = Command::new(strip)
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    Some(stripped.unwrap_or(size).min(size))
}
