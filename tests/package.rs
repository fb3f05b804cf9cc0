//! The Debian package, installed into a throwaway root: the files an operator relies on are
//! there, the control data names every dependency, the installed binary accepts the installed
//! board, and systemd finds nothing wrong with the installed unit.
//!
//! The package is `FIELDLINK_DEB` when set (CI points it at the release package that
//! `scripts/package.sh` built), else one that `cargo deb --no-build` makes here from the test
//! build of the binary (same layout, quicker). Without `cargo deb`, `dpkg-deb` or
//! `systemd-analyze` the test says so and passes, unless `FIELDLINK_REQUIRE_PACKAGE_TOOLS=1`
//! (CI sets it), which makes a missing tool a failure. Under emulation (`FIELDLINK_RUNNER`, see
//! `scripts/test-arm.sh`) it is skipped: it packages the host's build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = "usr/lib/systemd/system/fieldlink.service";
const BOARD: &str = "etc/fieldlink/board.toml";

fn run(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The tools this test needs, or why it cannot run here.
fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = [
        ("cargo-deb", "--version"),
        ("dpkg-deb", "--version"),
        ("systemd-analyze", "--version"),
    ]
    .into_iter()
    .filter(|(program, arg)| !have(program, arg))
    .map(|(program, _)| program)
    .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The package under test: `FIELDLINK_DEB`, or one made now from the test build.
fn package(dir: &Path) -> PathBuf {
    if let Some(deb) = std::env::var_os("FIELDLINK_DEB") {
        return PathBuf::from(deb);
    }
    let deb = dir.join("fieldlink.deb");
    run(Command::new("cargo")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "deb",
            "--no-build",
            "--offline",
            "--profile",
            "dev",
            "--output",
        ])
        .arg(&deb));
    deb
}

#[test]
fn the_package_installs_a_working_agent_with_a_valid_unit_and_a_fleet_ready_board() {
    if std::env::var("FIELDLINK_RUNNER").is_ok_and(|r| !r.trim().is_empty()) {
        eprintln!("skipped under emulation: the package test packages the host's build");
        return;
    }
    if let Some(missing) = missing_tools() {
        assert!(
            std::env::var("FIELDLINK_REQUIRE_PACKAGE_TOOLS").as_deref() != Ok("1"),
            "missing {missing}, which FIELDLINK_REQUIRE_PACKAGE_TOOLS=1 requires"
        );
        eprintln!(
            "skipped: missing {missing} (cargo install cargo-deb; apt-get install dpkg systemd)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = package(dir.path());
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));

    for file in [
        "usr/bin/fieldlink",
        UNIT,
        "usr/lib/sysusers.d/fieldlink.conf",
        BOARD,
        "usr/share/fieldlink/boards/simulated.toml",
        "usr/share/doc/fieldlink/README.md",
        "usr/share/doc/fieldlink/copyright",
        "usr/share/doc/fieldlink/changelog.Debian.gz",
    ] {
        assert!(root.join(file).is_file(), "{file} is not in the package");
    }

    let control = |field: &str| {
        let out = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(field));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let depends = control("Depends");
    for needed in [
        "libc6 (>= 2.34)",
        "libgcc-s1",
        "systemd | systemd-standalone-sysusers",
    ] {
        assert!(
            depends.contains(needed),
            "Depends lacks {needed}: {depends}"
        );
    }
    let scripts = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&scripts));
    let conffiles = std::fs::read_to_string(scripts.join("conffiles")).unwrap();
    assert!(
        conffiles.lines().any(|l| l == "/etc/fieldlink/board.toml"),
        "{conffiles}"
    );
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(
        postinst.contains("systemd-sysusers"),
        "postinst:\n{postinst}"
    );

    check_installed_board(&root);
    verify_installed_unit(&root, dir.path());
}

/// One image for a fleet: the id comes from the device, and the queue path does not depend on
/// the directory a CLI command is started from.
fn check_installed_board(root: &Path) {
    let board_path = root.join(BOARD);
    let text = std::fs::read_to_string(&board_path).unwrap();
    let board: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(board["device"]["id"].as_str(), Some("auto"), "{text}");
    let queue = board["queue"]["path"].as_str().unwrap_or_default();
    assert!(
        queue.starts_with("/var/lib/fieldlink/"),
        "queue.path {queue:?}"
    );

    // From another directory, as an operator's shell would be.
    let out = run(Command::new(root.join("usr/bin/fieldlink"))
        .current_dir(root)
        .args(["check", "--board"])
        .arg(&board_path));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(queue),
        "check does not show {queue}:\n{stdout}"
    );
}

/// `systemd-analyze verify` with the unit's binary path pointed into the root: it checks the
/// unit's syntax and that the `ExecStart=` binary exists and is executable; a warning (an
/// unknown key, a bad value) fails the test too.
fn verify_installed_unit(root: &Path, dir: &Path) {
    let unit = std::fs::read_to_string(root.join(UNIT)).unwrap();
    let installed = root.join("usr/bin/fieldlink");
    assert!(unit.contains("ExecStart=/usr/bin/fieldlink "), "{unit}");
    let rooted = unit.replace(
        "ExecStart=/usr/bin/fieldlink ",
        &format!("ExecStart={} ", installed.display()),
    );
    let copy = dir.join("fieldlink.service");
    std::fs::write(&copy, rooted).unwrap();
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warns:\n{stderr}"
    );
}
