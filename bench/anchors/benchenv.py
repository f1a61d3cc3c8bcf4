"""benchenv.py - what every Python anchor shares: the work scale and the
repetitions from the environment (as the C benchmarks read them), and the
"result <key> python <value> <unit> <better>" line that tools/run-bench.sh
collects (bench/micro/bench.h prints the same for C).

WEFT_BENCH_SCALE scales the work (default 1); WEFT_BENCH_REPS sets the runs
(default 3, at most 5: CPython is slow, and these are references).
"""
import os
import statistics


def scale():
    try:
        v = float(os.environ.get("WEFT_BENCH_SCALE", "1"))
    except ValueError:
        v = 1.0
    return v if v > 0 else 1.0


def reps():
    try:
        v = int(os.environ.get("WEFT_BENCH_REPS", "3"))
    except ValueError:
        v = 3
    return max(1, min(v, 5))


def scaled(n, low):
    return max(low, int(n * scale()))


def report(key, values, unit, better):
    """Print the median of values (with its spread, as a comment) and the
    result line; return the median."""
    med = statistics.median(values)
    print(f"#   python     median {med:10.4g} {unit:<8} "
          f"(min {min(values):.4g}, max {max(values):.4g}, {len(values)} runs)")
    print(f"result {key} python {med:.6g} {unit} {better}")
    return med
