#!/bin/sh
# run-bench.sh DIR - run weft's micro benchmarks and their anchors, then
# print one table of figures and ratios.
#
# DIR holds the built C benchmarks (bench_*; `make bench` passes
# $(B)/bench).  Each one measures weft beside its C anchor (pthreads) in
# the same process and prints "result <key> <impl> <value> <unit> <better>"
# lines (bench/micro/bench.h).  Then, if they can run here, the reference
# anchors print the same lines for the same keys:
#   Go      bench/anchors/anchors.go, built with `go build` into a temp dir
#   Python  bench/anchors/anchors.py, run with python3
# A missing toolchain is skipped with a note; this script installs nothing.
#
# The table's ratios are weft's figure divided by the anchor's.  Where the
# better direction is "lower" (a time), below 1 means weft is faster; where it
# is "higher" (a rate), above 1 means weft is faster.
#
# Environment: WEFT_BENCH_SCALE (work per run, default 1) and
# WEFT_BENCH_REPS (repetitions, default 5; Python uses at most 5, default 3)
# are passed through; WEFT_SPIN_NS and WEFT_LOCK_SPIN_NS set weft's spin
# budgets (nanoseconds before an OS thread sleeps, before a lock contender
# parks).
set -u

dir=${1:-build/release/bench}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
results=$tmp/results
notes=$tmp/notes
: >"$results"
: >"$notes"
status=0

echo "weft benchmarks - $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc 2>/dev/null) CPUs, $(uname -srm)"
echo "scale ${WEFT_BENCH_SCALE:-1}, repetitions ${WEFT_BENCH_REPS:-5}"
echo

# run LABEL CMD... - run one program, show its commentary, keep its results.
run() {
    label=$1
    shift
    echo "== $label"
    if "$@" >"$tmp/out" 2>"$tmp/err"; then
        grep -v '^result ' "$tmp/out"
        grep '^result ' "$tmp/out" >>"$results"
    else
        rc=$?
        cat "$tmp/out" "$tmp/err"
        echo "$label: failed (exit status $rc)" | tee -a "$notes"
        status=1
    fi
    echo
}

# The foundation's benchmarks first, in the order of the issue, then any
# others.
found=0
done_list=
for bin in "$dir/bench_lock" "$dir/bench_event" "$dir/bench_cond" \
           "$dir/bench_queue" "$dir"/bench_*; do
    [ -x "$bin" ] || continue
    case " $done_list " in *" $bin "*) continue ;; esac
    done_list="$done_list $bin"
    found=1
    run "$(basename "$bin")" "$bin"
done
if [ "$found" = 0 ]; then
    echo "no benchmarks in $dir (build them with make bench)" | tee -a "$notes"
    status=1
fi

if command -v go >/dev/null 2>&1; then
    # A build cache is needed; use the user's if it is writable.
    gocache=$(go env GOCACHE 2>/dev/null)
    if [ -z "$gocache" ] || ! mkdir -p "$gocache" 2>/dev/null ||
       [ ! -w "$gocache" ]; then
        gocache=$tmp/gocache
    fi
    if GOCACHE=$gocache GOFLAGS= GO111MODULE=auto \
        go build -o "$tmp/anchors-go" "$root/bench/anchors/anchors.go" \
        >"$tmp/gobuild" 2>&1; then
        run "Go anchors ($(go version | cut -d' ' -f3))" "$tmp/anchors-go"
    else
        cat "$tmp/gobuild"
        echo "Go anchors: build failed, skipped" | tee -a "$notes"
    fi
else
    echo "Go anchors: no go toolchain here, skipped" | tee -a "$notes"
fi

if command -v python3 >/dev/null 2>&1; then
    run "Python anchors ($(python3 -c 'import sys; print("CPython", sys.version.split()[0])'))" \
        python3 "$root/bench/anchors/anchors.py"
else
    echo "Python anchors: no python3 here, skipped" | tee -a "$notes"
fi

echo "== summary (ratio = weft / anchor; 'lower': < 1 is weft faster, 'higher': > 1 is weft faster)"
awk '
$1 == "result" {
    key = $2; impl = $3
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    val[key, impl] = $4; unit[key] = $5; better[key] = $6
    if (impl != "weft" && impl != "go" && impl != "python") canchor[key] = impl
}
function fmt(v) {
    if (v == "") return "-"
    if (v >= 1000) return sprintf("%.0f", v)
    if (v >= 100) return sprintf("%.1f", v)
    if (v >= 10) return sprintf("%.2f", v)
    return sprintf("%.3f", v)
}
function ratio(w, a) {
    if (w == "" || a == "" || a + 0 == 0) return "-"
    return sprintf("%.2f", w / a)
}
END {
    # Targets from the foundation issue: key, test on the ratio to the C
    # anchor (or on weft alone for the wait).
    tgt["lock_uncontended"] = "<=0.70"
    tgt["lock_2t_rate"] = ">=2.00"
    tgt["lock_2t_wait_max"] = "<=1000us"
    tgt["queue_1p1c_bounded"] = ">=2.00"
    tgt["queue_1p1c_unbounded"] = ">=2.00"
    printf "%-26s %-8s %-6s %9s  %-18s %6s %9s %6s %9s %6s  %s\n", \
        "figure", "unit", "better", "weft", "C anchor", "w/C", "go", "w/go", \
        "python", "w/py", "target"
    for (i = 1; i <= n; i++) {
        k = order[i]; w = val[k, "weft"]; c = canchor[k]
        cv = (c != "") ? val[k, c] : ""
        t = ""
        if (k in tgt) {
            r = (cv != "" && w != "") ? w / cv : ""
            if (k == "lock_2t_wait_max")
                ok = (w != "" && w <= 1000)
            else if (substr(tgt[k], 1, 2) == "<=")
                ok = (r != "" && r <= substr(tgt[k], 3) + 0)
            else
                ok = (r != "" && r >= substr(tgt[k], 3) + 0)
            t = tgt[k] (ok ? " met" : " MISSED")
        }
        printf "%-26s %-8s %-6s %9s  %-18s %6s %9s %6s %9s %6s  %s\n", \
            k, unit[k], better[k], fmt(w), \
            (c != "" ? c " " fmt(cv) : "-"), ratio(w, cv), \
            fmt(val[k, "go"]), ratio(w, val[k, "go"]), \
            fmt(val[k, "python"]), ratio(w, val[k, "python"]), t
    }
}' "$results"
if [ -s "$notes" ]; then
    echo
    echo "notes:"
    sed 's/^/  /' "$notes"
fi
exit $status
