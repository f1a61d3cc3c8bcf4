#!/bin/sh
# weft.sh - the one entry point that does all the set-up on a fresh Debian 12
# machine: installs the Debian packages the build needs when they are
# missing (tools/install-deps.sh), then runs make.
#
#   ./weft.sh demo                 build and run the demonstration
#   ./weft.sh test                 build and run the whole test suite
#   ./weft.sh test SAN=thread      ... under ThreadSanitizer
#   ./weft.sh test SAN=address     ... under AddressSanitizer + UBSan
#   ./weft.sh bench                benchmarks beside their anchors
#   ./weft.sh <make target> [VAR=value ...]
set -e
cd "$(dirname "$0")"
target=${1:-test}
[ $# -gt 0 ] && shift
case "$target" in
bench) WEFT_DEPS_EXTRA="${WEFT_DEPS_EXTRA} golang-go python3" ;;
esac
export WEFT_DEPS_EXTRA
sh tools/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
# Build first in parallel, then run (the test runner prints its own totals).
case "$target" in
test) make -j"$jobs" "$@" tests && exec make "$@" test ;;
demo) make -j"$jobs" "$@" all && exec make "$@" demo ;;
*) exec make -j"$jobs" "$@" "$target" ;;
esac
