# Sums up `cargo test` output (read from a log): one line per test target, the total, and the
# name of every failed test. Used by scripts/test.sh and scripts/test-arm.sh.
/^     Running / { target = ($2 == "unittests") ? $3 : $2 }
/^test result:/ {
    printf "  %-28s %-7s %4d passed, %d failed, %d ignored, in %s\n", target, $3, $4, $6, $8, $NF
    passed += $4; failed += $6; ignored += $8
}
/^failures:$/ { in_failures = 1; next }
in_failures && /^    [a-z_0-9:]+$/ { failing[++n] = target ": " $1 }
/^test result:/ { in_failures = 0 }
END {
    printf "\n  total: %d passed, %d failed, %d ignored\n", passed, failed, ignored
    for (i = 1; i <= n; i++) printf "  FAILED %s\n", failing[i]
}
