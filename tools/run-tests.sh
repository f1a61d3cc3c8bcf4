#!/bin/sh
# run-tests.sh BIN... - run each test binary and print the totals.
#
# Each binary is a Check suite: every test runs in its own forked process
# with a timeout, so a crash or a deadlock fails that test alone.  Check
# prints "NN%: Checks: C, Failures: F, Errors: E" per binary; we add them up
# and end with the line "N passed, N failed" (a binary that crashes outside
# any test, or prints no summary, counts as one failure).
# CK_TIMEOUT_MULTIPLIER stretches every test's timeout (sanitizer builds).
# WEFT_TEST_SLOW stretches the tests' own timing bounds the same way.
# WEFT_TEST_EXEC, if set, runs each binary through it (the cross build sets
# it to qemu-user).
case "$VARIANT" in
thread|address)
    : "${CK_TIMEOUT_MULTIPLIER:=4}"
    : "${WEFT_TEST_SLOW:=4}"
    ;;
*)
    : "${CK_TIMEOUT_MULTIPLIER:=1}"
    : "${WEFT_TEST_SLOW:=1}"
    ;;
esac
export CK_TIMEOUT_MULTIPLIER WEFT_TEST_SLOW
# A sanitizer report fails the test it happened in (Check sees the forked
# child exit abnormally).
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1 detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1 print_stacktrace=1}"
passed=0
failed=0
for bin in "$@"; do
    out=$($WEFT_TEST_EXEC "$bin" 2>&1)
    status=$?
    printf '%s\n' "$out" | grep -v '^Running suite' | grep -v '^[0-9]*%: Checks' | sed "s|^|$(basename "$bin"): |"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$(basename "$bin"): no Check summary (exit status $status)"
        failed=$((failed + 1))
        continue
    fi
    c=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    bad=$((f + e))
    echo "$(basename "$bin"): $((c - bad)) passed, $bad failed"
    passed=$((passed + c - bad))
    failed=$((failed + bad))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
