#!/usr/bin/env bash
# Build fieldlink's Debian packages with cargo-deb and check each with lintian.
#
#   scripts/package.sh                  amd64, arm64 and armhf
#   scripts/package.sh arm64 armhf      only these architectures
#
# The packages land in target/debian/ (amd64; arm64: Pi 3/4/5 and Zero 2 W on 64-bit Pi OS;
# armhf: ARMv7 Pis on 32-bit Pi OS). Each is built from a release build of that target, then lintian runs on it: an error fails the script, warnings
# and infos are printed (see README.md, "Debian package", for the ones that remain and why).
#
# Needs cargo-deb (`cargo install cargo-deb --locked`), lintian, and for arm64/armhf the cross
# toolchain of README.md, "Raspberry Pi builds". FIELDLINK_SKIP_LINTIAN=1 skips lintian.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo-deb >/dev/null 2>&1 || {
    echo "error: cargo-deb is missing: cargo install cargo-deb --locked" >&2
    exit 1
}
if [ "${FIELDLINK_SKIP_LINTIAN:-}" != 1 ] && ! command -v lintian >/dev/null 2>&1; then
    echo "error: lintian is missing: apt-get install lintian (or FIELDLINK_SKIP_LINTIAN=1)" >&2
    exit 1
fi

arches=("$@")
[ "${#arches[@]}" -gt 0 ] || arches=(amd64 arm64 armhf)

say() { printf '\n==> %s\n' "$*"; }

summary=()
for arch in "${arches[@]}"; do
    case "$arch" in
        amd64) target=() binary=target/release/fieldlink ;;
        arm64) target=(--target aarch64-unknown-linux-gnu) binary=target/aarch64-unknown-linux-gnu/release/fieldlink ;;
        armhf) target=(--target armv7-unknown-linux-gnueabihf) binary=target/armv7-unknown-linux-gnueabihf/release/fieldlink ;;
        *) echo "error: unknown architecture $arch (amd64, arm64 or armhf)" >&2; exit 2 ;;
    esac

    say "$arch: cargo build --release ${target[*]}"
    cargo build --release --locked --quiet "${target[@]}"

    say "$arch: cargo deb"
    # --no-build: the release build above is the one packaged. cargo-deb prints the path.
    deb=$(cargo deb --no-build --locked "${target[@]}" | tail -n1)
    [ -f "$deb" ] || { echo "error: cargo deb printed no package path (got: $deb)" >&2; exit 1; }
    echo "$deb"

    if [ "${FIELDLINK_SKIP_LINTIAN:-}" != 1 ]; then
        say "$arch: lintian"
        # Errors fail (exit 2 would be a lintian crash, also a failure); the rest is shown.
        lintian --info --display-info --fail-on error "$deb"
    fi
    summary+=("$(printf '  %-6s %-58s %8d bytes  (binary %d bytes)' \
        "$arch" "$deb" "$(stat -c %s "$deb")" "$(stat -c %s "$binary")")")
done

say "packages"
printf '%s\n' "${summary[@]}"
