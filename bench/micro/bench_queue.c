/* bench_queue.c - queue throughput: weft_queue against a mutex+condvar
 * queue written the obvious way, 1 producer/1 consumer and 2/2, bounded
 * (capacity 1024) and unbounded.
 *
 * The anchor ("mutexcond") is what a C programmer writes first: a ring
 * buffer of void * under one pthread_mutex, with a not_empty and a not_full
 * pthread_cond, signalled on every put and every get; unbounded, the ring
 * doubles when full and not_full is never waited on.
 *
 * Producers put N/P distinct items each, consumers get N/C items each; the
 * figure is items per second from the first thread's start to the last
 * one's end (million items/s).  The sum of the items got is checked against
 * the sum put, so a lost or duplicated item fails the run.  Both
 * implementations run in the same process, alternating which goes first
 * (see bench.h).
 */
#include "bench.h"
#include "weft.h"

enum { IMPL_WEFT, IMPL_MUTEXCOND };
static const char *const impl_name[] = {"weft", "mutexcond"};

#define CAPACITY 1024
#define MAXT 4

/* ---- the anchor: the obvious mutex+condvar queue ----------------------- */

typedef struct mcq {
    pthread_mutex_t m;
    pthread_cond_t not_empty, not_full;
    void **buf;                /* guarded by m */
    size_t cap, head, count;   /* guarded by m */
    int bounded;               /* constant */
} mcq;

static void mcq_init(mcq *q, size_t maxsize)
{
    pthread_mutex_init(&q->m, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    q->bounded = maxsize > 0;
    q->cap = maxsize > 0 ? maxsize : 1024;
    q->buf = malloc(q->cap * sizeof *q->buf);
    if (!q->buf)
        bench_fail("out of memory");
    q->head = q->count = 0;
}

static void mcq_fini(mcq *q)
{
    free(q->buf);
    pthread_mutex_destroy(&q->m);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}

/* Double the ring, unwrapping it; m held. */
static void mcq_grow(mcq *q)
{
    void **nb = malloc(2 * q->cap * sizeof *nb);
    if (!nb)
        bench_fail("out of memory");
    for (size_t i = 0; i < q->count; i++)
        nb[i] = q->buf[(q->head + i) % q->cap];
    free(q->buf);
    q->buf = nb;
    q->head = 0;
    q->cap *= 2;
}

static void mcq_put(mcq *q, void *item)
{
    pthread_mutex_lock(&q->m);
    if (q->bounded)
        while (q->count == q->cap)
            pthread_cond_wait(&q->not_full, &q->m);
    else if (q->count == q->cap)
        mcq_grow(q);
    q->buf[(q->head + q->count) % q->cap] = item;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->m);
}

static void *mcq_get(mcq *q)
{
    pthread_mutex_lock(&q->m);
    while (q->count == 0)
        pthread_cond_wait(&q->not_empty, &q->m);
    void *item = q->buf[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    if (q->bounded)
        pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->m);
    return item;
}

/* ---- the runs ----------------------------------------------------------- */

typedef struct shared {
    int impl;
    weft_queue *wq;
    mcq mq;
    long per_thread;           /* items each producer puts / consumer gets */
    bench_gate gate;
} shared;

typedef struct role {
    shared *s;
    int index;
    uint64_t sum;              /* of the items got (consumers) */
    int64_t t_start, t_end;
} role;

static void *producer(void *arg)
{
    role *r = arg;
    shared *s = r->s;
    uintptr_t base = (uintptr_t)r->index * (uintptr_t)s->per_thread;

    bench_gate_wait(&s->gate);
    r->t_start = bench_now();
    for (long i = 1; i <= s->per_thread; i++) {
        void *item = (void *)(base + (uintptr_t)i);
        if (s->impl == IMPL_WEFT) {
            if (weft_queue_put(s->wq, item, WEFT_FOREVER) != 0)
                bench_fail("weft_queue_put failed");
        } else {
            mcq_put(&s->mq, item);
        }
    }
    r->t_end = bench_now();
    return NULL;
}

static void *consumer(void *arg)
{
    role *r = arg;
    shared *s = r->s;
    uint64_t sum = 0;

    bench_gate_wait(&s->gate);
    r->t_start = bench_now();
    for (long i = 0; i < s->per_thread; i++) {
        void *item;
        if (s->impl == IMPL_WEFT) {
            if (weft_queue_get(s->wq, &item, WEFT_FOREVER) != 0)
                bench_fail("weft_queue_get failed");
        } else {
            item = mcq_get(&s->mq);
        }
        sum += (uintptr_t)item;
    }
    r->t_end = bench_now();
    r->sum = sum;
    return NULL;
}

/* Million items per second of one run of n items. */
static double run(int impl, int np, int nc, size_t maxsize, long n)
{
    static shared s;
    static role prod[MAXT], cons[MAXT];
    pthread_t tp[MAXT], tc[MAXT];
    uint64_t got = 0, want = 0;
    int64_t start = INT64_MAX, end = 0;

    s.impl = impl;
    s.per_thread = n / np;
    if (impl == IMPL_WEFT) {
        if (weft_queue_create(&s.wq, WEFT_QUEUE_FIFO, maxsize) != 0)
            bench_fail("weft_queue_create failed");
    } else {
        mcq_init(&s.mq, maxsize);
    }
    bench_gate_init(&s.gate, np + nc);
    for (int i = 0; i < nc; i++) {
        cons[i] = (role){&s, i, 0, 0, 0};
        tc[i] = bench_start(consumer, &cons[i]);
    }
    for (int i = 0; i < np; i++) {
        prod[i] = (role){&s, i, 0, 0, 0};
        tp[i] = bench_start(producer, &prod[i]);
    }
    for (int i = 0; i < np; i++)
        bench_join(tp[i]);
    for (int i = 0; i < nc; i++)
        bench_join(tc[i]);
    for (int i = 0; i < np; i++) {
        uint64_t m = (uint64_t)s.per_thread, base = (uint64_t)i * m;
        want += m * base + m * (m + 1) / 2;
        if (prod[i].t_start < start)
            start = prod[i].t_start;
        if (prod[i].t_end > end)
            end = prod[i].t_end;
    }
    for (int i = 0; i < nc; i++) {
        got += cons[i].sum;
        if (cons[i].t_start < start)
            start = cons[i].t_start;
        if (cons[i].t_end > end)
            end = cons[i].t_end;
    }
    if (got != want)
        bench_fail("queue lost or duplicated an item");
    if (impl == IMPL_WEFT) {
        if (weft_queue_destroy(s.wq, NULL) != 0)
            bench_fail("weft_queue_destroy failed");
    } else {
        mcq_fini(&s.mq);
    }
    return (double)(s.per_thread * np) / (double)(end - start) * 1e3;
}

int main(void)
{
    static const struct {
        int np, nc;
        size_t maxsize;
        const char *key;
    } cfg[] = {
        {1, 1, CAPACITY, "queue_1p1c_bounded"},
        {2, 2, CAPACITY, "queue_2p2c_bounded"},
        {1, 1, 0, "queue_1p1c_unbounded"},
        {2, 2, 0, "queue_2p2c_unbounded"},
    };
    int reps = bench_reps();
    long n = bench_scaled(2000000, 1000) / 4 * 4; /* divisible by 1, 2, 4 */
    double v[2][64];

    if (reps > 64)
        reps = 64;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        run(IMPL_WEFT, cfg[c].np, cfg[c].nc, cfg[c].maxsize, n / 10);
        run(IMPL_MUTEXCOND, cfg[c].np, cfg[c].nc, cfg[c].maxsize, n / 10);
        for (int r = 0; r < reps; r++)
            for (int k = 0; k < 2; k++) {
                int impl = (r + k) % 2;
                v[impl][r] = run(impl, cfg[c].np, cfg[c].nc, cfg[c].maxsize,
                                 n);
            }
        printf("# queue %dP/%dC, %s, %ld items per run\n", cfg[c].np,
               cfg[c].nc, cfg[c].maxsize ? "capacity 1024" : "unbounded", n);
        double mw = bench_report(cfg[c].key, impl_name[0], v[0], reps,
                                 "Mitems/s", "higher");
        double mm = bench_report(cfg[c].key, impl_name[1], v[1], reps,
                                 "Mitems/s", "higher");
        printf("#   ratio weft/mutexcond rate %.2f%s\n", mw / mm,
               c == 0 ? " (target >= 2.0)" : "");
    }
    return 0;
}
