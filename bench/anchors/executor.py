"""executor.py - the CPython reference figures for weft's executor
benchmarks (bench/micro/bench_executor.c): concurrent.futures'
ThreadPoolExecutor running a trivial task (its argument + 1).

Figures, in tasks/s (higher is better):

    executor_one         submit one task, wait for its result, repeat;
                         max_workers=2 (the worker count the C benchmark
                         gives weft's executors and the Go pool)
    executor_batch       submit 100,000 tasks, then wait for each result in
                         submission order; max_workers=2
    executor_one_dflt    the same two with ThreadPoolExecutor's default
    executor_batch_dflt  max_workers, min(32, cores + 4), which weft's
                         thread pool copies

It prints the lines bench/micro/bench.h describes:

    result <key> python <value> tasks/s higher

with the median of the runs.  CPython is an interpreter with a global lock,
so the one-at-a-time runs are a tenth of the C benchmark's (the batch keeps
its 100,000 tasks: the issue's figure is for that size), and the runs are
WEFT_BENCH_REPS (default 3, at most 5).  WEFT_BENCH_SCALE scales the work as
it does for the C benchmarks.

Run: python3 bench/anchors/executor.py
"""
import concurrent.futures
import sys
import time

import benchenv
from benchenv import reps, scaled


def report(key, values):
    benchenv.report(key, values, "tasks/s", "higher")


def task(x):
    return x + 1


def one(ex, n):
    t0 = time.perf_counter()
    for i in range(n):
        if ex.submit(task, i).result() != i + 1:
            raise SystemExit("wrong result")
    return n / (time.perf_counter() - t0)


def batch(ex, n):
    t0 = time.perf_counter()
    fs = [ex.submit(task, i) for i in range(n)]
    for i, f in enumerate(fs):
        if f.result() != i + 1:
            raise SystemExit("wrong result")
    return n / (time.perf_counter() - t0)


def measure(suffix, max_workers):
    n_one = scaled(20000, 100)
    n_batch = scaled(100000, 1000)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max_workers) as ex:
        workers = ex._max_workers
        one(ex, n_one // 10)  # warm up: start the workers
        v = [one(ex, n_one) for _ in range(reps())]
        print(f"# submit -> result one at a time, max_workers={workers}, "
              f"{n_one} tasks per run")
        report("executor_one" + suffix, v)
        v = [batch(ex, n_batch) for _ in range(reps())]
        print(f"# {n_batch} tasks submitted then awaited in order, "
              f"max_workers={workers}")
        report("executor_batch" + suffix, v)


def main():
    sys.stdout.reconfigure(line_buffering=True)
    measure("", 2)
    measure("_dflt", None)


if __name__ == "__main__":
    main()
