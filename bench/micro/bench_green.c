/* bench_green.c - green threads against their anchors: the yield switch,
 * spawn+join, resident memory per parked green thread, a message ping-pong
 * through weft queues, and how spawn+join and memory grow from 1,000 to
 * 1,000,000 green threads.
 *
 * Design.  The in-process figures (yield, spawn+join, queue ping-pong) run
 * on one worker (weft_runtime_start(1)), the green counterpart of Go with
 * GOMAXPROCS=1 (bench/anchors/green.go) and of Boost.Context, which has no
 * scheduler at all (bench/anchors/boost_context.cpp).  Each is timed inside
 * a driver green thread that the main OS thread spawns and joins, so the
 * driver's own start-up is not timed.  The C anchor for spawn+join is
 * pthread_create/pthread_join, run from the main thread and interleaved with
 * weft's repetitions (bench.h).  spawn+join is also measured with two
 * workers against two-thread pthreads and Go at GOMAXPROCS=2.
 *
 * Memory and the scaling series need a fresh process each: a process that
 * already ran green threads keeps up to 256 MiB of pooled, resident stacks,
 * which a second measurement would reuse and so under-count.  So the parent
 * re-executes itself (`--child mem weft N`, `--child spawn weft N`,
 * `--child mem pthread N`) and reads one line back.  A child reads VmRSS from
 * /proc/self/status with the runtime started and one green thread already
 * spawned and joined (slabs and pools initialised), then again with N green
 * threads parked on one weft_event; the difference over N is the cost of a
 * parked green thread: its struct, its stack's touched pages, its entry in
 * the event's wait queue.
 *   (Rejected: measuring memory in the main process after the timing runs -
 *   the pooled stacks are already resident there.)
 *
 * The 1,000,000 point needs ~5 GB of RSS.  It runs unless
 * WEFT_BENCH_GREEN_1M=0 (default: on at scale >= 1, off below), each child
 * under `timeout 60`; a child that does not finish in 60 s is reported as
 * skipped.
 *
 * Locking: the green threads of a measurement share only atomics, weft
 * primitives, and globals written before they start and read after the
 * join that ends them (the join orders them).
 */
#include <errno.h>
#include <unistd.h>

#include "bench.h"
#include "weft.h"

/* ---- small helpers ------------------------------------------------------- */

/* VmRSS of this process in KiB. */
static long rss_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        bench_fail("cannot open /proc/self/status");
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    fclose(f);
    if (v < 0)
        bench_fail("no VmRSS in /proc/self/status");
    return v;
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench: %s: %s\n", what, weft_strerror(rc));
        exit(1);
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Run fn(arg) in a driver green thread and wait for it. */
static void drive(weft_green_fn fn, void *arg)
{
    weft_green *g;
    int res;

    check(weft_green_spawn(&g, fn, arg, NULL), "spawn driver");
    check(weft_green_join(g, &res, WEFT_FOREVER), "join driver");
    if (res != 0)
        bench_fail("a driver green thread failed");
}

static void runtime_restart(int workers)
{
    if (weft_runtime_workers() > 0)
        check(weft_runtime_shutdown(WEFT_FOREVER), "runtime shutdown");
    check(weft_runtime_start(workers), "runtime start");
}

/* ---- yield ping-pong ----------------------------------------------------- */

static _Atomic int y_arrived, y_done;
static long y_n;
static int64_t y_t0, y_t1;

/* Two of these run on one worker.  Both arrive before either counts, so the
 * timed part is nothing but yields handing the worker back and forth. */
static int yield_fn(void *arg)
{
    atomic_fetch_add(&y_arrived, 1);
    while (atomic_load(&y_arrived) < 2)
        weft_green_yield();
    if (arg != NULL)
        y_t0 = bench_now();
    for (long i = 0; i < y_n; i++)
        weft_green_yield();
    if (atomic_fetch_add(&y_done, 1) == 1)
        y_t1 = bench_now();
    return 0;
}

static double yield_res;

static int yield_driver(void *arg)
{
    weft_green *a, *b;
    long n = *(long *)arg;

    atomic_store(&y_arrived, 0);
    atomic_store(&y_done, 0);
    y_n = n;
    check(weft_green_spawn(&a, yield_fn, &y_n, NULL), "spawn");
    check(weft_green_spawn(&b, yield_fn, NULL, NULL), "spawn");
    check(weft_green_join(a, NULL, WEFT_FOREVER), "join");
    check(weft_green_join(b, NULL, WEFT_FOREVER), "join");
    yield_res = (double)(y_t1 - y_t0) / (double)(2 * n);
    return 0;
}

static void bench_yield(void)
{
    int reps = bench_reps();
    long n = bench_scaled(2000000, 1000);
    double v[64];

    if (reps > 64)
        reps = 64;
    drive(yield_driver, &(long){n / 10}); /* warm-up */
    for (int r = 0; r < reps; r++) {
        drive(yield_driver, &n);
        v[r] = yield_res;
    }
    printf("# yield ping-pong, two green threads on one worker, %ld yields "
           "each per run\n", n);
    bench_report("green_yield_switch", "weft", v, reps, "ns", "lower");
}

/* ---- spawn + join ---------------------------------------------------------- */

static int nop_fn(void *arg)
{
    (void)arg;
    return 0;
}

static void *nop_pthread(void *arg)
{
    return arg;
}

static weft_green **handles;
static double spawn_res;

/* Spawn n green threads, then join them all: ns per green thread. */
static int batch_driver(void *arg)
{
    long n = *(long *)arg;
    int64_t t0 = bench_now();

    for (long i = 0; i < n; i++)
        check(weft_green_spawn(&handles[i], nop_fn, NULL, NULL), "spawn");
    for (long i = 0; i < n; i++)
        check(weft_green_join(handles[i], NULL, WEFT_FOREVER), "join");
    spawn_res = (double)(bench_now() - t0) / (double)n;
    return 0;
}

/* Spawn one green thread and join it, n times: ns per green thread. */
static int one_driver(void *arg)
{
    long n = *(long *)arg;
    weft_green *g;
    int64_t t0 = bench_now();

    for (long i = 0; i < n; i++) {
        check(weft_green_spawn(&g, nop_fn, NULL, NULL), "spawn");
        check(weft_green_join(g, NULL, WEFT_FOREVER), "join");
    }
    spawn_res = (double)(bench_now() - t0) / (double)n;
    return 0;
}

static double pthread_batch(long n)
{
    pthread_t *t = malloc((size_t)n * sizeof *t);
    int64_t t0 = bench_now();

    if (t == NULL)
        bench_fail("out of memory");
    for (long i = 0; i < n; i++)
        t[i] = bench_start(nop_pthread, NULL);
    for (long i = 0; i < n; i++)
        bench_join(t[i]);
    double res = (double)(bench_now() - t0) / (double)n;
    free(t);
    return res;
}

static double pthread_one(long n)
{
    int64_t t0 = bench_now();

    for (long i = 0; i < n; i++)
        bench_join(bench_start(nop_pthread, NULL));
    return (double)(bench_now() - t0) / (double)n;
}

/* One spawn+join figure: weft (driver green) interleaved with pthreads. */
static void spawn_pair(const char *key, const char *what, weft_green_fn drv,
                       long n, long pn, double (*anchor)(long))
{
    int reps = bench_reps();
    double vw[64], vp[64];

    if (reps > 64)
        reps = 64;
    drive(drv, &n); /* warm-up: fills the stack and struct pools */
    anchor(pn / 10 + 1);
    for (int r = 0; r < reps; r++) {
        if (r % 2 == 0) {
            drive(drv, &n);
            vw[r] = spawn_res;
            vp[r] = anchor(pn);
        } else {
            vp[r] = anchor(pn);
            drive(drv, &n);
            vw[r] = spawn_res;
        }
    }
    printf("# %s: weft %ld green threads, pthread %ld threads per run\n",
           what, n, pn);
    bench_report(key, "weft", vw, reps, "ns", "lower");
    bench_report(key, "pthread", vp, reps, "ns", "lower");
}

static void bench_spawn(int workers, const char *suffix)
{
    long n = bench_scaled(100000, 1000);
    long pn = bench_scaled(2000, 100);
    char key[64], what[96];

    handles = malloc((size_t)n * sizeof *handles);
    if (handles == NULL)
        bench_fail("out of memory");
    snprintf(key, sizeof key, "green_spawn_join_batch%s", suffix);
    snprintf(what, sizeof what, "spawn N then join N, %d worker(s)", workers);
    spawn_pair(key, what, batch_driver, n, pn, pthread_batch);
    if (workers == 1) {
        spawn_pair("green_spawn_join_one", "spawn one, join it, 1 worker",
                   one_driver, n, pn, pthread_one);
    }
    free(handles);
    handles = NULL;
}

/* ---- queue ping-pong ------------------------------------------------------- */

static weft_queue *q_ping, *q_pong;
static size_t q_maxsize = 1; /* argv: `bench_green pingpong [maxsize]` */
static long q_n;
static double q_res;

static int pong_fn(void *arg)
{
    void *item;

    (void)arg;
    for (long i = 0; i < q_n; i++) {
        check(weft_queue_get(q_ping, &item, WEFT_FOREVER), "get");
        check(weft_queue_put(q_pong, item, WEFT_FOREVER), "put");
    }
    return 0;
}

static int ping_driver(void *arg)
{
    weft_green *b;
    void *item;
    long n = *(long *)arg;

    q_n = n;
    check(weft_green_spawn(&b, pong_fn, NULL, NULL), "spawn");
    /* Let the partner reach its first get, so both are in the loop. */
    weft_green_yield();
    int64_t t0 = bench_now();
    for (long i = 0; i < n; i++) {
        check(weft_queue_put(q_ping, (void *)(i + 1), WEFT_FOREVER), "put");
        check(weft_queue_get(q_pong, &item, WEFT_FOREVER), "get");
        if (item != (void *)(i + 1))
            bench_fail("queue ping-pong: wrong item came back");
    }
    q_res = (double)(bench_now() - t0) / (double)(2 * n);
    check(weft_green_join(b, NULL, WEFT_FOREVER), "join");
    return 0;
}

static void bench_queue_pingpong(void)
{
    int reps = bench_reps();
    long n = bench_scaled(1000000, 1000);
    double v[64];

    if (reps > 64)
        reps = 64;
    check(weft_queue_create(&q_ping, WEFT_QUEUE_FIFO, q_maxsize),
          "queue create");
    check(weft_queue_create(&q_pong, WEFT_QUEUE_FIFO, q_maxsize),
          "queue create");
    drive(ping_driver, &(long){n / 10});
    for (int r = 0; r < reps; r++) {
        drive(ping_driver, &n);
        v[r] = q_res;
    }
    printf("# message ping-pong through two weft_queues (FIFO, maxsize %zu), "
           "two green threads on one worker, %ld round trips per run\n",
           q_maxsize, n);
    bench_report("green_queue_pingpong", "weft", v, reps, "ns", "lower");
    check(weft_queue_destroy(q_ping, NULL), "queue destroy");
    check(weft_queue_destroy(q_pong, NULL), "queue destroy");
}

/* ---- children: memory and scale --------------------------------------------- */

static weft_event park_ev = WEFT_EVENT_INIT;
static _Atomic long parked;

static int park_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&parked, 1);
    return weft_event_wait(&park_ev, WEFT_FOREVER);
}

static int park_driver(void *arg)
{
    long n = *(long *)arg;

    for (long i = 0; i < n; i++)
        check(weft_green_spawn(&handles[i], park_fn, NULL, NULL), "spawn");
    for (long i = 0; i < n; i++)
        check(weft_green_join(handles[i], NULL, WEFT_FOREVER), "join");
    return 0;
}

/* KiB of RSS per green thread parked on an event, n of them at once. */
static void child_mem_weft(long n)
{
    weft_green *d;

    handles = malloc((size_t)n * sizeof *handles);
    if (handles == NULL)
        bench_fail("out of memory");
    check(weft_runtime_start(1), "runtime start");
    drive(nop_fn, NULL);
    long before = rss_kib();
    check(weft_green_spawn(&d, park_driver, &n, NULL), "spawn driver");
    while (atomic_load(&parked) < n)
        sleep_ms(1);
    sleep_ms(20); /* the last one has counted itself; let it park */
    long after = rss_kib();
    weft_event_set(&park_ev);
    check(weft_green_join(d, NULL, WEFT_FOREVER), "join driver");
    printf("child %.4f %ld %ld\n", (double)(after - before) / (double)n,
           before, after);
}

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
static int pgo;

static void *park_pthread(void *arg)
{
    pthread_mutex_lock(&pm);
    atomic_fetch_add(&parked, 1);
    while (!pgo)
        pthread_cond_wait(&pc, &pm);
    pthread_mutex_unlock(&pm);
    return arg;
}

/* KiB of RSS per pthread (default attributes) parked on a condition. */
static void child_mem_pthread(long n)
{
    pthread_t *t = malloc((size_t)n * sizeof *t);

    if (t == NULL)
        bench_fail("out of memory");
    bench_join(bench_start(nop_pthread, NULL));
    long before = rss_kib();
    for (long i = 0; i < n; i++)
        t[i] = bench_start(park_pthread, NULL);
    while (atomic_load(&parked) < n)
        sleep_ms(1);
    sleep_ms(20);
    long after = rss_kib();
    pthread_mutex_lock(&pm);
    pgo = 1;
    pthread_cond_broadcast(&pc);
    pthread_mutex_unlock(&pm);
    for (long i = 0; i < n; i++)
        bench_join(t[i]);
    printf("child %.4f %ld %ld\n", (double)(after - before) / (double)n,
           before, after);
}

/* ns per green thread for spawn n then join n: the first (cold: fresh
 * stacks) run and the median of the next ones. */
static void child_spawn_weft(long n)
{
    int reps = n >= 1000000 ? 3 : 5;
    double v[8], cold;

    handles = malloc((size_t)n * sizeof *handles);
    if (handles == NULL)
        bench_fail("out of memory");
    check(weft_runtime_start(1), "runtime start");
    drive(batch_driver, &n);
    cold = spawn_res;
    for (int r = 0; r < reps; r++) {
        drive(batch_driver, &n);
        v[r] = spawn_res;
    }
    printf("child %.4f %.4f\n", bench_median(v, reps), cold);
}

static int child_main(int argc, char **argv)
{
    if (argc != 5)
        bench_fail("usage: --child mem|spawn weft|pthread N");
    long n = strtol(argv[4], NULL, 10);
    if (n < 1)
        bench_fail("bad N");
    if (strcmp(argv[2], "mem") == 0 && strcmp(argv[3], "weft") == 0)
        child_mem_weft(n);
    else if (strcmp(argv[2], "mem") == 0 && strcmp(argv[3], "pthread") == 0)
        child_mem_pthread(n);
    else if (strcmp(argv[2], "spawn") == 0 && strcmp(argv[3], "weft") == 0)
        child_spawn_weft(n);
    else
        bench_fail("unknown child mode");
    fflush(stdout);
    _exit(0); /* parked-forever state is torn down by the kernel */
}

static char self_exe[4096];

/* Run a child measurement; fill v[0..nv) from its "child" line.  Returns
 * false if it failed or timed out (the reason is printed). */
static bool run_child(const char *mode, const char *impl, long n,
                      double *v, int nv)
{
    char cmd[4300], line[256];
    bool ok = false;

    snprintf(cmd, sizeof cmd, "timeout 60 '%s' --child %s %s %ld", self_exe,
             mode, impl, n);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        bench_fail("popen failed");
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, "child ", 6) == 0) {
            char *s = line + 6;
            for (int i = 0; i < nv; i++)
                v[i] = strtod(s, &s);
            ok = true;
        }
    }
    int st = pclose(p);
    if (!ok || st != 0) {
        printf("#   child %s %s %ld: failed or did not finish in 60 s "
               "(status %d)\n", mode, impl, n, st);
        return false;
    }
    return true;
}

static bool want_1m(void)
{
    const char *s = getenv("WEFT_BENCH_GREEN_1M");

    if (s && *s)
        return strcmp(s, "0") != 0;
    return bench_scale() >= 1.0;
}

static void bench_memory(void)
{
    int reps = bench_reps() < 3 ? bench_reps() : 3;
    double vw[3], vp[3], m[3];
    int nw = 0, np = 0;

    for (int r = 0; r < reps; r++) {
        if (run_child("mem", "weft", 100000, m, 3))
            vw[nw++] = m[0];
        if (run_child("mem", "pthread", 1000, m, 3))
            vp[np++] = m[0];
    }
    printf("# resident memory per parked thread: weft 100,000 green threads "
           "on one weft_event, pthread 1,000 threads (default 8 MiB stacks) "
           "on one pthread_cond; VmRSS delta / N in a fresh process\n");
    if (nw)
        bench_report("green_parked_rss", "weft", vw, nw, "KiB", "lower");
    if (np)
        bench_report("green_parked_rss", "pthread", vp, np, "KiB", "lower");
}

static void bench_growth(void)
{
    static const long ns[] = {1000, 10000, 100000, 1000000};
    static const char *tag[] = {"1k", "10k", "100k", "1m"};
    char key[64];
    double m[3];

    printf("# growth: spawn N then join N (ns per green thread, warm median; "
           "cold = first run with fresh stacks) and RSS per parked green "
           "thread, each N in a fresh process, one worker\n");
    for (int i = 0; i < 4; i++) {
        if (ns[i] == 1000000 && !want_1m()) {
            printf("#   N=1m skipped (WEFT_BENCH_GREEN_1M=0 or scale < 1)\n");
            continue;
        }
        if (run_child("spawn", "weft", ns[i], m, 2)) {
            printf("#   N=%-8ld spawn+join %.1f ns (cold %.1f ns)\n", ns[i],
                   m[0], m[1]);
            snprintf(key, sizeof key, "green_spawn_join_%s", tag[i]);
            bench_result(key, "weft", m[0], "ns", "lower");
        }
        if (run_child("mem", "weft", ns[i], m, 3)) {
            printf("#   N=%-8ld parked %.3f KiB each (RSS %ld -> %ld KiB)\n",
                   ns[i], m[0], (long)m[1], (long)m[2]);
            snprintf(key, sizeof key, "green_parked_rss_%s", tag[i]);
            bench_result(key, "weft", m[0], "KiB", "lower");
        }
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);

    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (len <= 0)
        bench_fail("cannot read /proc/self/exe");
    self_exe[len] = '\0';
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* `bench_green pingpong [maxsize]`: the queue ping-pong alone (for
     * callgrind and for alternated A/B runs), through queues of maxsize 1
     * (the figure) or another bound (0: unbounded). */
    if (argc > 1 && strcmp(argv[1], "pingpong") == 0) {
        if (argc > 2)
            q_maxsize = (size_t)strtoul(argv[2], NULL, 10);
        check(weft_runtime_start(1), "runtime start");
        bench_queue_pingpong();
        check(weft_runtime_shutdown(WEFT_FOREVER), "runtime shutdown");
        return 0;
    }

    check(weft_runtime_start(1), "runtime start");
    bench_yield();
    bench_spawn(1, "");
    bench_queue_pingpong();
    runtime_restart(2);
    bench_spawn(2, "_2w");
    check(weft_runtime_shutdown(WEFT_FOREVER), "runtime shutdown");
    bench_memory();
    bench_growth();
    return 0;
}
