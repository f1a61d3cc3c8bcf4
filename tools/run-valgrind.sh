#!/bin/sh
# run-valgrind.sh BUILD_DIR - run the examples and the park-layer and lock
# unit tests under Valgrind's memcheck, and print "N passed, N failed".
#
# Valgrind does not know membarrier(2), so under it weft takes its
# full-fence fallback (src/platform/fence.c): this run also exercises that
# path.  A memcheck error (invalid access, uninitialised value, a definite
# leak) makes the program exit with status 9 and counts as a failure; in the
# unit tests it fails the forked test it happened in.
set -u
b=${1:-build/release}
if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind not installed: skipped"
    echo "0 passed, 0 failed"
    exit 0
fi
vg="valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite"
passed=0
failed=0
check() {
    label=$1
    shift
    out=$($vg "$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "valgrind $label: ok"
    else
        failed=$((failed + 1))
        printf '%s\n' "$out" | tail -n 30
        echo "valgrind $label: FAILED (exit $rc)"
    fi
}
e=$b/examples
check counter "$e/counter" 4 2000
check hasher "$e/hasher" 1
check producer_consumer "$e/producer_consumer" 50
check barrier "$e/barrier" 4
check connection_pool "$e/connection_pool" 6 2
check logging_threads "$e/logging_threads"
check quickstart "$e/quickstart"
check executor_pipeline "$e/executor_pipeline"
for t in test_park test_lock test_event test_future; do
    # Check's own summary line is parsed too, so a test failing only
    # under Valgrind is counted by name.
    # Valgrind runs one thread at a time, so tests that race two spinning
    # threads for a long time (tagged "race") are left to the other runs, as
    # are tests that re-execute /proc/self/exe (tagged "reexec": under
    # Valgrind that is Valgrind's own tool).
    out=$(CK_EXCLUDE_TAGS="race reexec" CK_TIMEOUT_MULTIPLIER=10 WEFT_TEST_SLOW=10 \
        $vg "$b/tests/$t" 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
    if [ $rc -eq 0 ] && [ -n "$line" ] && echo "$line" | grep -q 'Failures: 0, Errors: 0'; then
        passed=$((passed + 1))
        echo "valgrind $t: ok ($line)"
    else
        failed=$((failed + 1))
        printf '%s\n' "$out" | tail -n 30
        echo "valgrind $t: FAILED (exit $rc)"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
