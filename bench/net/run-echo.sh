#!/bin/sh
# run-echo.sh DIR - the echo benchmarks: weft's green thread per connection
# (DIR/echo_weft), Go's goroutine per connection (bench/anchors/echo.go) and
# a plain single-threaded epoll loop (DIR/echo_epoll), all driven by the one
# load client DIR/echo_load.
#
# DIR holds the built bench/net programs (`make bench` passes $(B)/bench/net).
# Go: $ECHO_GO if set (tools/run-bench.sh builds it into its temp dir;
# set but not executable: Go is skipped), else `go build` of bench/anchors/echo.go into this script's temp dir, else
# skipped with a note.  A server missing from DIR is skipped with a note.
#
# Method.  Each server is started once on port 0 (it prints "port N") and
# serves every load run; the load client then runs at 1, 100, 1,000 and
# 10,000 connections, each point WEFT_BENCH_REPS times (default 5), the
# servers taking turns in an order that rotates with each repetition, so
# that a busy minute of the shared machine falls on all of them.  A load run
# is a warm-up of 300 ms and a measured window of 1000 ms, both times
# WEFT_BENCH_SCALE (default 1), after its connections are open.  Then, for
# the resident memory, each server is started afresh, the client opens
# WEFT_ECHO_IDLE_CONNS (default 10000) connections, makes one round trip on
# each and reads the server's VmRSS before and after.
#
# Output: the client's commentary, then for each figure the median over the
# repetitions (echo_64b_<N>c: responses per second; echo_cpu_<N>c: the
# server's CPU time per response, which the host's other load disturbs
# less; echo_idle_rss_per_conn and echo_idle_rss_total) as "result <key> <impl> <value> <unit> <better>" lines
# (bench/micro/bench.h), with the min and max as "#" lines above them.
# Exit status 1 if any run failed (a wrong byte, a lost connection, a
# server that died).
#
# Environment: WEFT_BENCH_SCALE, WEFT_BENCH_REPS, WEFT_ECHO_CONNS (the
# connection counts, default "1 100 1000 10000"), WEFT_ECHO_IDLE_CONNS,
# ECHO_GO, WEFT_ECHO_EXTRA ("name:path ..." : more servers to run beside
# the others, e.g. a patched echo_weft, for an A/B comparison); WEFT_WORKERS and GOMAXPROCS reach the servers unchanged (both
# default to the CPU count).
set -u

dir=${1:-build/release/bench/net}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-echo.XXXXXX") || exit 1
pids=
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
status=0

scale=${WEFT_BENCH_SCALE:-1}
reps=${WEFT_BENCH_REPS:-5}
conns=${WEFT_ECHO_CONNS:-1 100 1000 10000}
idle=${WEFT_ECHO_IDLE_CONNS:-10000}
warm_ms=$(awk -v s="$scale" 'BEGIN { v = int(300 * s); print v < 50 ? 50 : v }')
measure_ms=$(awk -v s="$scale" 'BEGIN { v = int(1000 * s); print v < 100 ? 100 : v }')
load=$dir/echo_load

if [ ! -x "$load" ]; then
    echo "echo: no load client $load (build it with make bench)" >&2
    exit 1
fi

# The servers: name and command.
impls=
if [ -x "$dir/echo_weft" ]; then
    impls="$impls weft"
else
    echo "# echo: no $dir/echo_weft, weft skipped"
fi
if [ -n "${ECHO_GO:-}" ]; then
    go_bin=$ECHO_GO
    if [ ! -x "$go_bin" ]; then
        echo "# echo: no Go server ($go_bin), Go skipped"
        go_bin=
    fi
elif command -v go >/dev/null 2>&1; then
    gocache=$(go env GOCACHE 2>/dev/null)
    if [ -z "$gocache" ] || ! mkdir -p "$gocache" 2>/dev/null ||
       [ ! -w "$gocache" ]; then
        gocache=$tmp/gocache
    fi
    if GOCACHE=$gocache GOFLAGS= GO111MODULE=auto \
        go build -o "$tmp/echo-go" "$root/bench/anchors/echo.go" \
        >"$tmp/gobuild" 2>&1; then
        go_bin=$tmp/echo-go
    else
        cat "$tmp/gobuild"
        echo "# echo: the Go server did not build, skipped"
        go_bin=
    fi
else
    echo "# echo: no go toolchain here, Go skipped"
    go_bin=
fi
[ -n "$go_bin" ] && impls="$impls go"
[ -x "$dir/echo_epoll" ] && impls="$impls epoll"
# Extra servers for an A/B comparison (a patched weft, say): each
# "name:path" joins the run under its name.
for x in ${WEFT_ECHO_EXTRA:-}; do
    name=${x%%:*}
    eval "extra_$name=\${x#*:}"
    impls="$impls $name"
done

server_cmd() {
    case $1 in
    weft) echo "$dir/echo_weft" ;;
    go) echo "$go_bin" ;;
    epoll) echo "$dir/echo_epoll" ;;
    *) eval "echo \$extra_$1" ;;
    esac
}

# start IMPL - start a server; sets srv_pid and srv_port (empty on failure).
start() {
    srv_pid=
    srv_port=
    : >"$tmp/port.$1" # exists before the server's shell opens it
    "$(server_cmd "$1")" >"$tmp/port.$1" 2>"$tmp/err.$1" &
    srv_pid=$!
    pids="$pids $srv_pid"
    i=0
    while [ $i -lt 100 ]; do
        srv_port=$(sed -n 's/^port \([0-9][0-9]*\)$/\1/p' "$tmp/port.$1")
        [ -n "$srv_port" ] && return 0
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "# echo: the $1 server did not start:"
    cat "$tmp/err.$1"
    status=1
    srv_pid=
    return 1
}

stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

: >"$tmp/results"

# ---- requests per second --------------------------------------------------
echo "# echo, 64-byte request/response; warm-up $warm_ms ms, window $measure_ms ms, $reps repetitions"
echo "# servers:$impls; workers: weft ${WEFT_WORKERS:-default}, Go GOMAXPROCS ${GOMAXPROCS:-default}, epoll 1 thread; client 1 thread"
live=
for impl in $impls; do
    if start "$impl"; then
        eval "pid_$impl=$srv_pid port_$impl=$srv_port"
        live="$live $impl"
    fi
done
for c in $conns; do
    r=0
    while [ $r -lt "$reps" ]; do
        # Rotate the order of the servers with each repetition.
        order=$(echo $live | awk -v r=$r '{ for (i = 0; i < NF; i++)
                    printf "%s ", $((i + r) % NF + 1) }')
        for impl in $order; do
            eval "p=\$port_$impl pid=\$pid_$impl"
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "# echo: the $impl server has died"
                cat "$tmp/err.$impl"
                status=1
                continue
            fi
            if "$load" -p "$p" -c "$c" -n "$impl" -w "$warm_ms" \
                -m "$measure_ms" -P "$pid" >"$tmp/out" 2>"$tmp/err"; then
                grep '^result ' "$tmp/out" >>"$tmp/results"
                # The server's CPU time per response, as a figure too.
                sed -n 's|^# [^,]*, [0-9]* connections:.*server CPU \([0-9.]*\) us/response.*|result echo_cpu_'"$c"'c '"$impl"' \1 us/resp lower|p' \
                    "$tmp/out" >>"$tmp/results"
            else
                cat "$tmp/out" "$tmp/err"
                echo "# echo: $impl at $c connections failed"
                status=1
            fi
        done
        r=$((r + 1))
    done
done
for impl in $live; do
    eval "stop \$pid_$impl"
done

# ---- resident memory per idle connection -----------------------------------
echo "# idle: $idle connections to a fresh server each, one round trip each, VmRSS before and after"
for impl in $impls; do
    start "$impl" || continue
    if "$load" -p "$srv_port" -c "$idle" -n "$impl" -I "$srv_pid" \
        >"$tmp/out" 2>"$tmp/err"; then
        grep -v '^result ' "$tmp/out" | grep -v 'connections in'
        grep '^result ' "$tmp/out" >>"$tmp/results"
    else
        cat "$tmp/out" "$tmp/err"
        echo "# echo: $impl idle connections failed"
        status=1
    fi
    stop "$srv_pid"
done

# ---- medians ---------------------------------------------------------------
awk '
$1 == "result" {
    k = $2 " " $3
    if (!(k in n)) { order[++m] = k; unit[k] = $5; better[k] = $6 }
    v[k, ++n[k]] = $4
}
END {
    for (i = 1; i <= m; i++) {
        k = order[i]; c = n[k]
        for (a = 1; a <= c; a++) s[a] = v[k, a] + 0
        for (a = 2; a <= c; a++)            # insertion sort: c is small
            for (b = a; b > 1 && s[b - 1] > s[b]; b--) {
                t = s[b]; s[b] = s[b - 1]; s[b - 1] = t
            }
        med = c % 2 ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
        split(k, kk, " ")
        printf "#   %-24s %-6s median %10.4g %-6s (min %.4g, max %.4g, %d runs)\n", \
            kk[1], kk[2], med, unit[k], s[1], s[c], c
        printf "result %s %s %.6g %s %s\n", kk[1], kk[2], med, unit[k], better[k]
    }
}' "$tmp/results"
exit $status
