"""anchors.py - the CPython reference figures for weft's micro benchmarks:
the same work as bench/micro/bench_*.c with threading.Lock,
threading.Condition, threading.Event and queue.Queue, the API weft mirrors.

It prints the lines bench/micro/bench.h describes:

    result <key> python <value> <unit> <lower|higher>

with the median of the runs.  CPython is an interpreter with a global lock,
so these figures are references for what the Python programmer weft is
written for gets today, not rivals for C; the work per run is therefore a
tenth of the C benchmarks', and the runs WEFT_BENCH_REPS (default 3 here).
WEFT_BENCH_SCALE scales the work as it does for the C benchmarks.

Run: python3 bench/anchors/anchors.py
"""
import queue
import sys
import threading
import time

from benchenv import report, reps, scale, scaled


def result(key, value, unit, better):
    print(f"result {key} python {value:.6g} {unit} {better}")


def quantile(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0


def lock_uncontended():
    n = scaled(1000000, 1000)
    lock = threading.Lock()
    acquire, release = lock.acquire, lock.release
    vals = []
    for _ in range(reps()):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            acquire()
            release()
        vals.append((time.perf_counter_ns() - t0) / n)
    print(f"# uncontended acquire+release (threading.Lock), {n} pairs per run")
    report("lock_uncontended", vals, "ns/op", "lower")


def lock_contended_run(dur, timed):
    lock = threading.Lock()
    state = {"counter": 0, "stop": False}
    ops = [0, 0]
    waits = [[], []]
    start, end = [0, 0], [0, 0]
    barrier = threading.Barrier(2)
    now = time.monotonic_ns

    def work(t):
        barrier.wait()
        start[t] = now()
        n = 0
        w = waits[t]
        while not state["stop"]:
            for _ in range(64):
                if timed:
                    t0 = now()
                    lock.acquire()
                    t1 = now()
                    state["counter"] += 1
                    lock.release()
                    w.append(t1 - t0)
                else:
                    lock.acquire()
                    state["counter"] += 1
                    lock.release()
            n += 64
        ops[t] = n
        end[t] = now()

    th = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for t in th:
        t.start()
    time.sleep(dur)
    state["stop"] = True
    for t in th:
        t.join()
    total = sum(ops)
    if state["counter"] != total:
        raise SystemExit("counter is wrong")
    mops = total / (max(end) - min(start)) * 1e3
    return mops, 100.0 * min(ops) / total, waits


def lock_contended():
    dur = max(0.01, 0.2 * scale())
    rate, share, trate, wmax = [], [], [], []
    allw = [[], []]
    for _ in range(reps()):
        r, s, _ = lock_contended_run(dur, False)
        rate.append(r)
        share.append(s)
        r, _, w = lock_contended_run(dur, True)
        trate.append(r)
        wmax.append(max(max(w[0] or [0]), max(w[1] or [0])) / 1e3)
        allw[0] += w[0]
        allw[1] += w[1]
    print(f"# contended counter, 2 threads, {dur * 1e3:.0f} ms per run")
    report("lock_2t_rate", rate, "Mops/s", "higher")
    report("lock_2t_share_min", share, "%", "higher")
    report("lock_2t_timed_rate", trate, "Mops/s", "higher")
    p99 = max(quantile(w, 0.99) for w in allw) / 1e3
    p999 = max(quantile(w, 0.999) for w in allw) / 1e3
    mx = max(max(w or [0]) for w in allw) / 1e3
    print(f"#   python wait p99 {p99:.2f} us, p99.9 {p999:.2f} us, max {mx:.1f} us")
    result("lock_2t_wait_p99", p99, "us", "lower")
    result("lock_2t_wait_p999", p999, "us", "lower")
    result("lock_2t_wait_max", mx, "us", "lower")
    report("lock_2t_wait_max_median", wmax, "us", "lower")


def cond_pingpong():
    n = scaled(10000, 100)
    vals = []
    for _ in range(reps()):
        cond = threading.Condition(threading.Lock())
        state = {"turn": 0}

        def play(me):
            for _ in range(n):
                with cond:
                    while state["turn"] != me:
                        cond.wait()
                    state["turn"] = 1 - me
                    cond.notify()

        th = [threading.Thread(target=play, args=(i,)) for i in range(2)]
        t0 = time.perf_counter()
        for t in th:
            t.start()
        for t in th:
            t.join()
        vals.append(n / (time.perf_counter() - t0) / 1e3)
    print(f"# condition ping-pong (threading.Condition), {n} round trips per run")
    report("cond_pingpong", vals, "k-rt/s", "higher")


def queue_run(np_, nc, maxsize, n):
    q = queue.Queue(maxsize)
    per = n // np_
    sums = [0] * nc

    def prod(p):
        put = q.put
        base = p * per
        for i in range(1, per + 1):
            put(base + i)

    def cons(c):
        get = q.get
        s = 0
        for _ in range(n // nc):
            s += get()
        sums[c] = s

    th = [threading.Thread(target=cons, args=(c,)) for c in range(nc)]
    th += [threading.Thread(target=prod, args=(p,)) for p in range(np_)]
    t0 = time.perf_counter()
    for t in th:
        t.start()
    for t in th:
        t.join()
    el = time.perf_counter() - t0
    want = sum(per * p * per + per * (per + 1) // 2 for p in range(np_))
    if sum(sums) != want:
        raise SystemExit("queue lost an item")
    return n / el / 1e6


def queues():
    n = scaled(200000, 1000) // 4 * 4
    for np_, nc, maxsize, key in ((1, 1, 1024, "queue_1p1c_bounded"),
                                  (2, 2, 1024, "queue_2p2c_bounded"),
                                  (1, 1, 0, "queue_1p1c_unbounded"),
                                  (2, 2, 0, "queue_2p2c_unbounded")):
        vals = [queue_run(np_, nc, maxsize, n) for _ in range(reps())]
        cap = f"maxsize {maxsize}" if maxsize else "unbounded"
        print(f"# queue.Queue {np_}P/{nc}C, {cap}, {n} items per run")
        report(key, vals, "Mitems/s", "higher")


def wakeup():
    for delay_us, samples in ((0, 2000), (50, 500), (500, 100)):
        n = scaled(samples, 20)
        ev = threading.Event()
        box = {"ready": 0, "done": 0, "woke": 0}
        now = time.monotonic_ns

        def waiter():
            for i in range(1, n + 1):
                box["ready"] = i
                ev.wait()
                box["woke"] = now()
                ev.clear()
                box["done"] = i

        th = threading.Thread(target=waiter)
        th.start()
        lat = []
        for i in range(1, n + 1):
            while box["ready"] != i:
                time.sleep(0)
            t0 = now()
            while now() - t0 < delay_us * 1000:
                pass
            t0 = now()
            ev.set()
            while box["done"] != i:
                time.sleep(0)
            lat.append(box["woke"] - t0)
        th.join()
        p50, p99 = quantile(lat, 0.5) / 1e3, quantile(lat, 0.99) / 1e3
        print(f"# wake-up latency (threading.Event), set {delay_us} us after, "
              f"{n} samples: p50 {p50:.2f} us, p99 {p99:.2f} us")
        result(f"wakeup_{delay_us}us_p50", p50, "us", "lower")
        result(f"wakeup_{delay_us}us_p99", p99, "us", "lower")


def main():
    sys.stdout.reconfigure(line_buffering=True)
    lock_uncontended()
    lock_contended()
    cond_pingpong()
    queues()
    wakeup()


if __name__ == "__main__":
    main()
