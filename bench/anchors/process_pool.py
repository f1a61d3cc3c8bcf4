"""process_pool.py - the CPython anchor of bench/micro/bench_process.c:
process-pool tasks per second on a trivial task (echo 8 bytes back) with
concurrent.futures.ProcessPoolExecutor, as many workers as cores (the C
benchmark's count), one at a time (submit, result, repeat) and in a batch
(submit 10,000 then await all; WEFT_BENCH_SCALE scales both).  The pool is
created and warmed up outside the timing.

Prints, with the median of WEFT_BENCH_REPS runs (default 3):
    result process_pool_one python <tasks/s> tasks/s higher
    result process_pool_batch python <tasks/s> tasks/s higher

Run: python3 bench/anchors/process_pool.py
"""
import concurrent.futures
import os
import time

import benchenv
from benchenv import reps, scaled


def report(key, values):
    benchenv.report(key, values, "tasks/s", "higher")


def echo(b):
    return b


def one_at_a_time(pool, n):
    t0 = time.perf_counter()
    for _ in range(n):
        pool.submit(echo, b"12345678").result()
    return n / (time.perf_counter() - t0)


def batch(pool, n):
    t0 = time.perf_counter()
    fs = [pool.submit(echo, b"12345678") for _ in range(n)]
    for f in fs:
        f.result()
    return n / (time.perf_counter() - t0)


def main():
    workers = os.cpu_count() or 1
    n_one = scaled(2000, 100)
    n_batch = scaled(10000, 500)
    print(f"# ProcessPoolExecutor, {workers} workers: echo 8 bytes; "
          f"{n_one} one at a time, {n_batch} in a batch")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        batch(pool, 200)  # start the workers
        one, bat = [], []
        for _ in range(reps()):
            one.append(one_at_a_time(pool, n_one))
            bat.append(batch(pool, n_batch))
    report("process_pool_one", one)
    report("process_pool_batch", bat)


if __name__ == "__main__":
    main()
