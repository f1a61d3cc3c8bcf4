/* bench_executor.c - executor throughput: weft's thread pool and green
 * executor against a plain pthread worker pool, running a trivial task (its
 * argument + 1), one task at a time and 100,000 at once.
 *
 * Figures, in tasks/s (higher is better):
 *   executor_one    submit one task, wait for its result, release its
 *                   future, repeat: the submit -> result round trip
 *   executor_batch  submit 100,000 tasks keeping their futures, then wait
 *                   for each result in submission order
 * both with 2 workers (the machine's cores; bench/anchors/executor.go runs
 * 2 workers at GOMAXPROCS=2 and bench/anchors/executor.py gives
 * ThreadPoolExecutor max_workers=2), and the same two as *_dflt with each
 * executor's default max_workers (threads: min(32, cores + 4), as Python's;
 * green: the cores).
 *
 * Implementations (the <impl> of the result lines):
 *   weft_threads   weft_thread_pool_create; the submitter is the main OS
 *                  thread, as in Python
 *   weft_green     weft_green_executor_create on a 2-worker runtime; the
 *                  submitter is a green thread too, as in Go, where the
 *                  submitter is a goroutine beside the workers
 *   weft_green_os  the same green executor with the main OS thread as the
 *                  submitter (a program that hands work to green threads
 *                  from outside the runtime)
 *   pthread        the C anchor: what a C programmer writes first, a linked
 *                  FIFO of malloc'ed tasks under one pthread_mutex, a
 *                  "work" condvar the workers wait on, and a "done" condvar
 *                  the submitter waits on for its task's done flag
 *                  (broadcast when someone waits)
 *
 * Method (bench.h): every executor is created once and warmed up (its
 * workers started) before timing, as the anchors' pools are; each
 * repetition runs every implementation, rotating which goes first, and the
 * medians are reported.  A one-at-a-time run stops early after 2 s (the
 * rate is then taken over the tasks done), so a slow implementation cannot
 * make the run unbounded.  Every result is checked (arg + 1), so a lost or
 * wrong result fails the run.
 *
 * Locking: the pthread pool's queue, flags and counts are guarded by its
 * mutex; a task's done flag and result too.  The weft side shares only
 * futures and the globals written before a driver green thread starts and
 * read after it is joined.
 *
 * Usage: bench_executor [impl [key]] - with arguments, only that
 * implementation (and only the figure named key), for profiling one of
 * them under perf or strace.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "bench.h"
#include "weft.h"

#define ONE_CAP_NS (2LL * 1000000000)

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "bench: %s: %s\n", what, weft_strerror(rc));
        exit(1);
    }
}

/* The task: its argument + 1. */
static int inc(void *arg, void **result)
{
    *result = (void *)((intptr_t)arg + 1);
    return 0;
}

/* ---- the anchor: the obvious pthread pool ------------------------------- */

typedef struct ptask {
    struct ptask *next;  /* guarded by the pool's m */
    intptr_t arg;        /* constant */
    intptr_t result;     /* guarded by m */
    int done;            /* guarded by m */
} ptask;

typedef struct ppool {
    pthread_mutex_t m;
    pthread_cond_t work, done;
    ptask *head, *tail;  /* guarded by m */
    int stop;            /* guarded by m */
    int waiting;         /* submitters waiting on done; guarded by m */
    int nworkers;        /* constant */
    pthread_t th[64];
} ppool;

static void *ppool_worker(void *arg)
{
    ppool *p = arg;

    pthread_mutex_lock(&p->m);
    for (;;) {
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->work, &p->m);
        if (p->head == NULL)
            break;
        ptask *t = p->head;
        p->head = t->next;
        if (p->head == NULL)
            p->tail = NULL;
        pthread_mutex_unlock(&p->m);
        intptr_t r = t->arg + 1;
        pthread_mutex_lock(&p->m);
        t->result = r;
        t->done = 1;
        if (p->waiting)
            pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->m);
    return NULL;
}

static void ppool_start(ppool *p, int n)
{
    pthread_mutex_init(&p->m, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->head = p->tail = NULL;
    p->stop = 0;
    p->waiting = 0;
    p->nworkers = n;
    for (int i = 0; i < n; i++)
        p->th[i] = bench_start(ppool_worker, p);
}

static void ppool_stop(ppool *p)
{
    pthread_mutex_lock(&p->m);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->m);
    for (int i = 0; i < p->nworkers; i++)
        bench_join(p->th[i]);
    pthread_mutex_destroy(&p->m);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
}

static ptask *ppool_submit(ppool *p, intptr_t arg)
{
    ptask *t = malloc(sizeof *t);

    if (t == NULL)
        bench_fail("out of memory");
    t->next = NULL;
    t->arg = arg;
    t->done = 0;
    pthread_mutex_lock(&p->m);
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->m);
    return t;
}

/* Wait for t, free it, return its result. */
static intptr_t ppool_result(ppool *p, ptask *t)
{
    pthread_mutex_lock(&p->m);
    while (!t->done) {
        p->waiting++;
        pthread_cond_wait(&p->done, &p->m);
        p->waiting--;
    }
    intptr_t r = t->result;
    pthread_mutex_unlock(&p->m);
    free(t);
    return r;
}

/* ---- the runs ------------------------------------------------------------ */

enum { IMPL_THREADS, IMPL_GREEN, IMPL_GREEN_OS, IMPL_PTHREAD, NIMPL };
static const char *const impl_name[NIMPL] = {
    "weft_threads", "weft_green", "weft_green_os", "pthread"};
static const char *only_impl, *only_key; /* from the command line */

static bool selected(int impl)
{
    return only_impl == NULL || strcmp(only_impl, impl_name[impl]) == 0;
}

/* One run's parameters and outcome; written before a driver green thread
 * starts, read after it is joined. */
typedef struct run {
    int impl;
    weft_executor *ex;
    ppool *pool;
    long n;
    int batch;
    weft_future **fs;  /* batch: n futures */
    ptask **ts;        /* batch: n pthread tasks */
    double rate;       /* tasks/s */
} run;

static double weft_one(run *r)
{
    int64_t t0 = bench_now(), t1 = t0;
    long i;

    for (i = 0; i < r->n; i++) {
        weft_future *f;
        void *v;

        check(weft_executor_submit(r->ex, inc, (void *)(intptr_t)i, &f,
                                   WEFT_FOREVER), "submit");
        check(weft_future_result(f, &v, WEFT_FOREVER), "result");
        if ((intptr_t)v != i + 1)
            bench_fail("wrong result");
        weft_future_release(f);
        if ((i & 255) == 255 && (t1 = bench_now()) - t0 > ONE_CAP_NS) {
            i++;
            break;
        }
    }
    t1 = bench_now();
    return (double)i * 1e9 / (double)(t1 - t0);
}

static double weft_batch(run *r)
{
    int64_t t0 = bench_now();

    for (long i = 0; i < r->n; i++)
        check(weft_executor_submit(r->ex, inc, (void *)(intptr_t)i, &r->fs[i],
                                   WEFT_FOREVER), "submit");
    for (long i = 0; i < r->n; i++) {
        void *v;

        check(weft_future_result(r->fs[i], &v, WEFT_FOREVER), "result");
        if ((intptr_t)v != i + 1)
            bench_fail("wrong result");
        weft_future_release(r->fs[i]);
    }
    return (double)r->n * 1e9 / (double)(bench_now() - t0);
}

static double pthread_one(run *r)
{
    int64_t t0 = bench_now();
    long i;

    for (i = 0; i < r->n; i++) {
        if (ppool_result(r->pool, ppool_submit(r->pool, i)) != i + 1)
            bench_fail("wrong result");
        if ((i & 255) == 255 && bench_now() - t0 > ONE_CAP_NS) {
            i++;
            break;
        }
    }
    return (double)i * 1e9 / (double)(bench_now() - t0);
}

static double pthread_batch(run *r)
{
    int64_t t0 = bench_now();

    for (long i = 0; i < r->n; i++)
        r->ts[i] = ppool_submit(r->pool, i);
    for (long i = 0; i < r->n; i++)
        if (ppool_result(r->pool, r->ts[i]) != i + 1)
            bench_fail("wrong result");
    return (double)r->n * 1e9 / (double)(bench_now() - t0);
}

static double run_here(run *r)
{
    if (r->impl == IMPL_PTHREAD)
        return r->batch ? pthread_batch(r) : pthread_one(r);
    return r->batch ? weft_batch(r) : weft_one(r);
}

static int driver(void *arg)
{
    run *r = arg;

    r->rate = run_here(r);
    return 0;
}

/* Run r: in a driver green thread for IMPL_GREEN, else here. */
static double run_once(run *r)
{
    if (r->impl == IMPL_GREEN) {
        weft_green *g;
        int res;

        check(weft_green_spawn(&g, driver, r, NULL), "spawn driver");
        check(weft_green_join(g, &res, WEFT_FOREVER), "join driver");
        return r->rate;
    }
    return run_here(r);
}

/* Measure one figure for every implementation; max_workers 0 means each
 * executor's default (and min(32, cores + 4) pthreads). */
static void measure(const char *key, int batch, long n, int max_workers,
                    weft_future **fs, ptask **ts)
{
    weft_executor_opts o = {0};
    weft_executor *tp, *ge;
    ppool pool;
    int reps = bench_reps();
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int pworkers = max_workers > 0 ? max_workers
                   : (cores + 4 < 32 ? cores + 4 : 32);
    double *v[NIMPL];
    run r;

    if (only_key != NULL && strcmp(only_key, key) != 0)
        return;
    o.max_workers = max_workers;
    o.daemon = true;
    check(weft_thread_pool_create(&tp, &o), "thread pool create");
    check(weft_green_executor_create(&ge, &o), "green executor create");
    ppool_start(&pool, pworkers);
    for (int k = 0; k < NIMPL; k++) {
        v[k] = calloc((size_t)reps, sizeof *v[k]);
        if (v[k] == NULL)
            bench_fail("out of memory");
    }

    /* Warm up: start every worker, fault in the futures array. */
    for (int k = 0; k < NIMPL; k++) {
        if (!selected(k))
            continue;
        r = (run){.impl = k, .pool = &pool, .n = n / 10 + 1, .batch = 1,
                  .fs = fs, .ts = ts,
                  .ex = k == IMPL_THREADS ? tp : ge};
        run_once(&r);
    }
    for (int rep = 0; rep < reps; rep++)
        for (int j = 0; j < NIMPL; j++) {
            int k = (rep + j) % NIMPL;

            if (!selected(k))
                continue;

            r = (run){.impl = k, .pool = &pool, .n = n, .batch = batch,
                      .fs = fs, .ts = ts,
                      .ex = k == IMPL_THREADS ? tp : ge};
            v[k][rep] = run_once(&r);
        }

    printf("# %s: %s, %ld tasks per run, max_workers %d (%s), "
           "weft workers started: threads %d, green %d\n",
           key, batch ? "submit all, then await each in order"
                      : "submit one, await it, repeat",
           n, max_workers, max_workers ? "set" : "each one's default",
           weft_executor_workers(tp), weft_executor_workers(ge));
    for (int k = 0; k < NIMPL; k++) {
        if (selected(k))
            bench_report(key, impl_name[k], v[k], reps, "tasks/s",
                         "higher");
        free(v[k]);
    }
    check(weft_executor_destroy(tp), "thread pool destroy");
    check(weft_executor_destroy(ge), "green executor destroy");
    ppool_stop(&pool);
}

int main(int argc, char **argv)
{
    long n_one = bench_scaled(200000, 1000);
    long n_batch = bench_scaled(100000, 1000);
    weft_future **fs = calloc((size_t)n_batch, sizeof *fs);
    ptask **ts = calloc((size_t)n_batch, sizeof *ts);

    if (fs == NULL || ts == NULL)
        bench_fail("out of memory");
    setvbuf(stdout, NULL, _IOLBF, 0);
    only_impl = argc > 1 ? argv[1] : NULL;
    only_key = argc > 2 ? argv[2] : NULL;
    check(weft_runtime_start(2), "runtime start");
    printf("# executors: the task returns its argument + 1; weft runtime "
           "with 2 workers\n");
    measure("executor_one", 0, n_one, 2, fs, ts);
    measure("executor_batch", 1, n_batch, 2, fs, ts);
    measure("executor_one_dflt", 0, n_one, 0, fs, ts);
    measure("executor_batch_dflt", 1, n_batch, 0, fs, ts);
    check(weft_runtime_shutdown(WEFT_FOREVER), "runtime shutdown");
    free(fs);
    free(ts);
    return 0;
}
