#!/bin/sh
# run-bench.sh DIR - run weft's micro benchmarks and their anchors, then
# print one table of figures and ratios.
#
# DIR holds the built C benchmarks (bench_*; `make bench` passes
# $(B)/bench).  Each one measures weft beside its C anchor (pthreads) in
# the same process and prints "result <key> <impl> <value> <unit> <better>"
# lines (bench/micro/bench.h).  Then, if they can run here, the reference
# anchors print the same lines for the same keys:
#   Boost   bench/anchors/boost_context.cpp (boost::context::fiber and the
#           raw jump_fcontext), built with g++ -O2 -lboost_context into the
#           temp dir
#   Go      bench/anchors/anchors.go (GOMAXPROCS=2), bench/anchors/green.go
#           (goroutines, GOMAXPROCS=1) and bench/anchors/executor.go (a
#           worker pool over channels, GOMAXPROCS=2), each built with
#           `go build` into the temp dir
#   Python  bench/anchors/anchors.py, bench/anchors/executor.py
#           (ThreadPoolExecutor) and, if present, bench/anchors/process_pool.py
#           (ProcessPoolExecutor), run with python3
# Then the echo benchmarks: bench/net/run-echo.sh runs weft's green echo
# server, Go's (bench/anchors/echo.go, built here with `go build` like the
# other Go anchors) and a plain epoll loop (DIR/net/echo_epoll) under one
# load client (DIR/net/echo_load); its median lines join the same table,
# the epoll loop as the C anchor.  WEFT_BENCH_ECHO=0 leaves them out.
# A missing toolchain or header is skipped with a note; this script installs
# nothing.  A figure may have several C/C++ anchors (the yield switch has
# boost_fiber and boost_fcontext): each gets its own row.  So may weft: a
# figure measured for several weft implementations (impls named weft_<x>,
# e.g. the executors' weft_threads and weft_green) gets a row for each, and
# each row has its own ratios to the C, Go and Python anchors.
#
# The table's ratios are weft's figure divided by the anchor's.  Where the
# better direction is "lower" (a time), below 1 means weft is faster; where it
# is "higher" (a rate), above 1 means weft is faster.
#
# Environment: WEFT_BENCH_SCALE (work per run, default 1) and
# WEFT_BENCH_REPS (repetitions, default 5; Python uses at most 5, default 3)
# are passed through; WEFT_SPIN_NS and WEFT_LOCK_SPIN_NS set weft's spin
# budgets (nanoseconds before an OS thread sleeps, before a lock contender
# parks); WEFT_BENCH_GREEN_1M=0 leaves out the 1,000,000-green-thread
# point of bench_green and green.go (default: on at scale >= 1).
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

# Boost.Context: needs g++ and Debian's libboost-context-dev.
if ! command -v g++ >/dev/null 2>&1; then
    echo "Boost.Context anchors: no g++ here, skipped" | tee -a "$notes"
elif ! echo '#include <boost/context/fiber.hpp>' |
     g++ -x c++ -E - >/dev/null 2>&1; then
    echo "Boost.Context anchors: no boost/context/fiber.hpp (libboost-context-dev), skipped" |
        tee -a "$notes"
elif g++ -O2 "$root/bench/anchors/boost_context.cpp" -o "$tmp/boost-context" \
     -lboost_context >"$tmp/boostbuild" 2>&1; then
    run "Boost.Context anchors" "$tmp/boost-context"
else
    cat "$tmp/boostbuild"
    echo "Boost.Context anchors: build failed, skipped" | tee -a "$notes"
fi

if command -v go >/dev/null 2>&1; then
    # A build cache is needed; use the user's if it is writable.
    gocache=$(go env GOCACHE 2>/dev/null)
    if [ -z "$gocache" ] || ! mkdir -p "$gocache" 2>/dev/null ||
       [ ! -w "$gocache" ]; then
        gocache=$tmp/gocache
    fi
    for prog in anchors green executor; do
        if GOCACHE=$gocache GOFLAGS= GO111MODULE=auto \
            go build -o "$tmp/$prog-go" "$root/bench/anchors/$prog.go" \
            >"$tmp/gobuild" 2>&1; then
            run "Go $prog ($(go version | cut -d' ' -f3))" "$tmp/$prog-go"
        else
            cat "$tmp/gobuild"
            echo "Go $prog: build failed, skipped" | tee -a "$notes"
        fi
    done
    # The Go echo server is run by bench/net/run-echo.sh below.
    if ! GOCACHE=$gocache GOFLAGS= GO111MODULE=auto \
        go build -o "$tmp/echo-go" "$root/bench/anchors/echo.go" \
        >"$tmp/gobuild" 2>&1; then
        cat "$tmp/gobuild"
        echo "Go echo: build failed, skipped" | tee -a "$notes"
    fi
else
    echo "Go anchors: no go toolchain here, skipped" | tee -a "$notes"
fi

if command -v python3 >/dev/null 2>&1; then
    run "Python anchors ($(python3 -c 'import sys; print("CPython", sys.version.split()[0])'))" \
        python3 "$root/bench/anchors/anchors.py"
    run "Python executor anchor (ThreadPoolExecutor)" \
        python3 "$root/bench/anchors/executor.py"
    if [ -f "$root/bench/anchors/process_pool.py" ]; then
        run "Python process pool anchor (ProcessPoolExecutor)" \
            python3 "$root/bench/anchors/process_pool.py"
    fi
else
    echo "Python anchors: no python3 here, skipped" | tee -a "$notes"
fi

# The echo benchmarks: servers and load client in DIR/net.
if [ "${WEFT_BENCH_ECHO:-1}" = 0 ]; then
    echo "echo benchmarks: WEFT_BENCH_ECHO=0, skipped" | tee -a "$notes"
elif [ -x "$dir/net/echo_load" ]; then
    if [ -x "$tmp/echo-go" ]; then
        ECHO_GO=$tmp/echo-go
    else
        ECHO_GO=/nonexistent # run-echo.sh must not build it: no go here
    fi
    run "echo: weft green / Go goroutine / epoll loop, one load client" \
        env ECHO_GO="$ECHO_GO" sh "$root/bench/net/run-echo.sh" "$dir/net"
else
    echo "echo benchmarks: no $dir/net/echo_load (make bench builds it), skipped" |
        tee -a "$notes"
fi

echo "== summary (ratio = weft / anchor; 'lower': < 1 is weft faster, 'higher': > 1 is weft faster)"
awk '
$1 == "result" {
    key = $2; impl = $3
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    val[key, impl] = $4; unit[key] = $5; better[key] = $6
    if (impl ~ /^weft/) {
        # weft itself, or one of several weft implementations: a row each.
        if (!((key, impl) in isw)) {
            isw[key, impl] = 1
            wimpl[key, ++nw[key]] = impl
        }
    } else if (impl != "go" && impl != "python" &&
        !((key, impl) in isc)) {
        isc[key, impl] = 1
        canchor[key, ++nc[key]] = impl
    }
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
# The verdict of target t ("<=x" or ">=x"; x may carry a unit) for value v.
function verdict(t, v,    x) {
    if (v == "") return t " -"
    x = substr(t, 3) + 0
    if (substr(t, 1, 2) == "<=") return t ((v + 0 <= x) ? " met" : " MISSED")
    return t ((v + 0 >= x) ? " met" : " MISSED")
}
END {
    # Targets from the foundation and green-thread issues: key, the test,
    # and what it is taken against: "" the first C anchor (a ratio), an
    # anchor name, "go" or "python" (a ratio to it), "abs" weft alone.
    tgt["lock_uncontended"] = "<=0.70"
    tgt["lock_2t_rate"] = ">=2.00"
    tgt["lock_2t_wait_max"] = "<=1000us"; tref["lock_2t_wait_max"] = "abs"
    tgt["queue_1p1c_bounded"] = ">=2.00"
    tgt["queue_1p1c_unbounded"] = ">=2.00"
    tgt["green_yield_switch"] = "<=1.00"
    tref["green_yield_switch"] = "boost_fiber"
    tgt["green_spawn_join_batch"] = "<=0.20"
    tref["green_spawn_join_batch"] = "go"
    tgt["green_parked_rss"] = "<=4.5KiB"; tref["green_parked_rss"] = "abs"
    tgt["green_queue_pingpong"] = "<=0.25"
    tref["green_queue_pingpong"] = "go"
    # Green I/O (issue 4): the echo server at every connection count
    # against Go (first target) and the epoll loop (second), and the whole
    # server holding 10,000 idle connections.
    split("1 100 1000 10000", ec, " ")
    for (e in ec) {
        tgt["echo_64b_" ec[e] "c"] = ">=1.00"
        tref["echo_64b_" ec[e] "c"] = "go"
        tgt2["echo_64b_" ec[e] "c"] = ">=0.90"
        tref2["echo_64b_" ec[e] "c"] = "epoll"
    }
    tgt["echo_idle_rss_total"] = "<=100MB"; tref["echo_idle_rss_total"] = "abs"
    # Executors (issue 5): the thread pool against the Go worker pool and
    # against the ThreadPoolExecutor of CPython (100x), one at a time and in a
    # batch; timpl limits a target to the rows of one weft implementation.
    split("executor_one executor_batch", xk, " ")
    for (e in xk) {
        tgt[xk[e]] = ">=1.00"; tref[xk[e]] = "go"
        tgt2[xk[e]] = ">=100"; tref2[xk[e]] = "python"
        timpl[xk[e]] = "weft_threads"
    }
    # The process pool against the ProcessPoolExecutor of CPython.
    tgt["process_pool_one"] = ">=5.00"; tref["process_pool_one"] = "python"
    tgt["process_pool_batch"] = ">=5.00"; tref["process_pool_batch"] = "python"
    printf "%-32s %-8s %-6s %9s  %-20s %6s %9s %6s %9s %6s  %s\n", \
        "figure", "unit", "better", "weft", "C anchor", "w/C", "go", "w/go", \
        "python", "w/py", "target"
    for (i = 1; i <= n; i++) {
      k = order[i]
      wrows = nw[k] > 0 ? nw[k] : 1
      for (wi = 1; wi <= wrows; wi++) {
        wname = nw[k] > 0 ? wimpl[k, wi] : "weft"
        w = val[k, wname]
        # A weft_<x> row is labelled "<key> <x>".
        label = (wname == "weft") ? k : k " " substr(wname, 6)
        totarget = !(k in timpl) || timpl[k] == wname
        rows = nc[k] > 0 ? nc[k] : 1
        for (j = 1; j <= rows; j++) {
            c = (nc[k] > 0) ? canchor[k, j] : ""
            cv = (c != "") ? val[k, c] : ""
            t = ""
            if ((k in tgt) && totarget) {
                ref = (k in tref) ? tref[k] : ""
                if (ref == "abs" && j == 1)
                    t = verdict(tgt[k], w)
                else if ((ref == "go" || ref == "python") && j == 1)
                    t = verdict(tgt[k], ratio(w, val[k, ref]) == "-" ? "" : \
                                w / val[k, ref])
                else if ((ref == "" && j == 1) || (ref != "" && ref == c))
                    t = verdict(tgt[k], ratio(w, cv) == "-" ? "" : w / cv)
            }
            # A second target against a named C anchor, on that row.
            if ((k in tgt2) && totarget && tref2[k] == c)
                t = (t == "" ? "" : t ", ") \
                    verdict(tgt2[k], ratio(w, cv) == "-" ? "" : w / cv) \
                    " vs " c
            gv = (j == 1) ? val[k, "go"] : ""
            pv = (j == 1) ? val[k, "python"] : ""
            # ... or against Python, on the first row.
            if ((k in tgt2) && totarget && tref2[k] == "python" && j == 1)
                t = (t == "" ? "" : t ", ") \
                    verdict(tgt2[k], ratio(w, pv) == "-" ? "" : w / pv) \
                    " vs python"
            printf "%-32s %-8s %-6s %9s  %-20s %6s %9s %6s %9s %6s  %s\n", \
                label, unit[k], better[k], fmt(w), \
                (c != "" ? c " " fmt(cv) : "-"), ratio(w, cv), \
                fmt(gv), ratio(w, gv), fmt(pv), ratio(w, pv), t
        }
      }
    }
}' "$results"
if [ -s "$notes" ]; then
    echo
    echo "notes:"
    sed 's/^/  /' "$notes"
fi
exit $status
