#!/usr/bin/env bash
# Run fieldlink's library and end-to-end tests for a Raspberry Pi target on this machine, under
# qemu user-mode emulation: the test binaries and the `fieldlink` binary they start run
# emulated, InfluxDB (`influxd`) and the loopback test servers run natively on the host.
#
#   scripts/test-arm.sh aarch64-unknown-linux-gnu           every test that runs under qemu
#   scripts/test-arm.sh armv7-unknown-linux-gnueabihf       the same for 32-bit ARM
#   scripts/test-arm.sh TARGET end_to_end                   arguments go to the test binaries
#
# The few tests that cannot run under emulation are skipped (the list below, with reasons).
#
# Needs the cross gcc, qemu-user-static and the rustup target (`.ci/run` installs them; see
# README.md, "Raspberry Pi builds"). `.cargo/config.toml` names the linker and the qemu runner
# for each target; the tests that spawn `fieldlink` themselves get the same runner through
# FIELDLINK_RUNNER, because binfmt_misc may not hand ARM binaries to qemu on its own.
#
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)

target=${1:?usage: scripts/test-arm.sh TARGET [test-binary arguments...]}
shift
case "$target" in
    aarch64-unknown-linux-gnu) runner="qemu-aarch64-static -L /usr/aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf) runner="qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
    *)
        echo "error: unknown target $target (aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf)" >&2
        exit 2
        ;;
esac
emulator=${runner%% *}
command -v "$emulator" >/dev/null 2>&1 || {
    echo "error: $emulator is not on PATH (apt-get install qemu-user-static)" >&2
    exit 1
}
command -v influxd >/dev/null 2>&1 || [ -n "${FIELDLINK_INFLUXD:-}" ] || {
    echo "error: influxd is not on PATH (apt-get install influxdb), and the end-to-end tests need it" >&2
    exit 1
}

# Tests that do not run under emulation here, and why (README.md, "Tests on ARM, under qemu"):
skips=(
    # CPU-bound: a week of readings through SQLite; over 15 minutes under qemu for armv7.
    --skip a_week_offline_stays_in_budget
    # SIGHUP restarts the agent in place by execve(2) of /proc/self/exe, an ARM binary that
    # the host kernel cannot start without binfmt_misc.
    --skip a_valid_board_takes_over_on_sighup
    # Its kill windows (150-550 ms) are sized for a native start-up; under qemu the start-up
    # takes most of each, too few readings get committed for the drill to mean anything.
    # The HTTP crash drill (crash_drill) covers kill -9 under emulation.
    --skip sigkill_at_random_moments_while_draining
    # Waits for the broker's refusal and a backlog of over 20 readings, then delivers them with
    # `sync --timeout 20s`: its limits are sized for native speed. Until its wait took both
    # conditions it failed under qemu (the refusal came after about 8 readings); not yet retried.
    --skip an_acl_that_denies_the_topic_keeps_everything
)
# A week at full resolution in the default budget: CPU-bound too (about 6 minutes under qemu
# for armv7). It runs on armv7, where sizes and counts are 32-bit; on aarch64 it would only
# repeat the native run.
if [ "$target" != armv7-unknown-linux-gnueabihf ]; then
    skips+=(--skip a_week_offline_fits_the_default_budget_at_full_resolution)
fi

export FIELDLINK_RUNNER=$runner

say() { printf '\n==> %s\n' "$*"; }

say "cargo test --target $target --no-run"
cargo test --target "$target" --lib --bins --tests --no-run --quiet

say "cargo test --target $target (under $emulator)"
log=$(mktemp "${TMPDIR:-/tmp}/fieldlink-test-arm.XXXXXX")
trap 'rm -f "$log"' EXIT
status=0
cargo test --target "$target" --lib --bins --tests --no-fail-fast -- "${skips[@]}" "$@" 2>&1 | tee "$log" || status=$?

say "summary ($target)"
awk -f scripts/test-summary.awk "$log"
echo "  wall time: $(( $(date +%s) - started )) s ($target build and tests)"
exit "$status"
