#!/usr/bin/env bash
# Run fieldlink's checks the way CI does: rustfmt, clippy (warnings are errors), then every test,
# including the end-to-end suite against a real InfluxDB 1.x that the tests start themselves
# (on free loopback ports, from `influxd` on PATH; no system service is used or needed).
#
# As root on Debian/Ubuntu it installs a missing `influxd` (package `influxdb`) first.
#
#   scripts/test.sh                 everything
#   scripts/test.sh end_to_end      only tests whose name matches (passed to the test binaries)
#
# Environment: FIELDLINK_INFLUXD=/path/to/influxd to use another binary;
#              FIELDLINK_KEEP_TMP=1 keeps each end-to-end test's temp dir (board, queue, logs);
#              FIELDLINK_SKIP_LINT=1 skips fmt and clippy (local iteration only; CI never sets it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

say() { printf '\n==> %s\n' "$*"; }

install_influxd() {
    if [ -n "${FIELDLINK_INFLUXD:-}" ] || command -v influxd >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        cat >&2 <<'EOF'
error: `influxd` (InfluxDB 1.x) is not on PATH and the end-to-end tests need it.
       On Debian/Ubuntu run, as root:  apt-get install -y --no-install-recommends influxdb
       (or run this script as root and it will), or set FIELDLINK_INFLUXD=/path/to/influxd.
EOF
        exit 1
    fi
    say "installing influxdb (for influxd)"
    export DEBIAN_FRONTEND=noninteractive
    # Only refresh the package lists when they do not know the package (a fresh image has none).
    if ! apt-cache show influxdb >/dev/null 2>&1; then
        apt-get update -qq
    fi
    # The package's maintainer scripts try to start the service. There may be no init system
    # here, and the tests start their own server anyway: forbid service starts while installing
    # (policy-rc.d exit 101 = "action forbidden"), unless the machine already has a policy.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    local status=0
    apt-get install -y -qq --no-install-recommends influxdb >/dev/null || status=$?
    if [ "$own_policy" = 1 ]; then
        rm -f "$policy"
    fi
    if [ "$status" -ne 0 ] || ! command -v influxd >/dev/null 2>&1; then
        echo "error: installing influxdb failed (apt-get exit $status); influxd is still missing" >&2
        exit 1
    fi
}

install_influxd
command -v cargo >/dev/null 2>&1 || { echo "error: cargo is not on PATH (install Rust with rustup)" >&2; exit 1; }
influxd_bin=${FIELDLINK_INFLUXD:-$(command -v influxd)}
echo "influxd: $influxd_bin ($("$influxd_bin" version 2>/dev/null | head -n1 || echo 'version unknown'))"

if [ "${FIELDLINK_SKIP_LINT:-}" = 1 ]; then
    say "skipping fmt and clippy (FIELDLINK_SKIP_LINT=1)"
else
    say "cargo fmt --check"
    cargo fmt --all --check

    say "cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets --quiet -- -D warnings
fi

# Build every target (the benchmark included, so it cannot rot), but run only the test
# targets: `cargo test --all-targets` would also *run* benches/pipeline/, a harness-less
# benchmark that drains millions of readings and cross-builds a release binary.
say "cargo test --all-targets --no-run"
cargo test --all-targets --no-run --quiet

say "cargo test --lib --bins --tests"
log=$(mktemp "${TMPDIR:-/tmp}/fieldlink-test.XXXXXX")
trap 'rm -f "$log"' EXIT
status=0
cargo test --lib --bins --tests --no-fail-fast -- "$@" 2>&1 | tee "$log" || status=$?

say "summary"
awk -f scripts/test-summary.awk "$log"
echo "  wall time: $(( $(date +%s) - started )) s (lint, build and tests)"
exit "$status"
