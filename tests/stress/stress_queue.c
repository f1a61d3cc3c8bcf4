/* stress_queue.c - weft_queue under many producers and consumers: every
 * item delivered exactly once on every kind, bounded and unbounded, with
 * random short deadlines forcing timeouts and the hand-off races they
 * cause; and shutdown (graceful and immediate) while producers and
 * consumers are blocked, where delivered + undelivered + refused must equal
 * produced with no item lost or duplicated. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((uintptr_t)(p))

enum { NPROD = 3, NCONS = 2 };

struct shared {
    weft_queue *q;
    long per_producer;       /* items each producer tries to put */
    _Atomic unsigned char *seen; /* per item: how many times delivered */
    _Atomic long delivered;
    _Atomic long refused;
    _Atomic long produced;
    _Atomic long timeouts;
    _Atomic long task_done_errors;
    int timed;               /* use random short deadlines */
    int task_done;           /* consumers call task_done */
    unsigned seed;
};

struct worker {
    struct shared *s;
    int id;
    unsigned rnd;
};

static unsigned next_rand(unsigned *r)
{
    *r = *r * 1103515245u + 12345u;
    return *r >> 8;
}

/* A deadline 0-50 us away (WEFT_FOREVER when untimed); WEFT_NOW sometimes,
 * to exercise the -ETIMEDOUT-without-waiting path as well. */
static int64_t pick_deadline(struct worker *w)
{
    unsigned r;
    if (!w->s->timed)
        return WEFT_FOREVER;
    r = next_rand(&w->rnd) % 64;
    if (r == 0)
        return WEFT_NOW;
    return weft_deadline_in((int64_t)(r - 1) * 800);
}

/* Items are numbered from 1: producer p puts p*per+1 .. (p+1)*per. */
static int producer(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->s;
    long base = (long)w->id * s->per_producer;
    int rc;

    for (long i = 1; i <= s->per_producer; i++) {
        uintptr_t item = (uintptr_t)(base + i);
        atomic_fetch_add(&s->produced, 1);
        for (;;) {
            rc = weft_queue_put_prio(s->q, P(item),
                                     (int64_t)(next_rand(&w->rnd) % 8),
                                     pick_deadline(w));
            if (rc != -ETIMEDOUT)
                break;
            atomic_fetch_add(&s->timeouts, 1);
        }
        if (rc == -EPIPE) {
            atomic_fetch_add(&s->refused, 1);
            return 0; /* shut down: stop producing */
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int consumer(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->s;
    void *x;
    int rc;

    for (;;) {
        rc = weft_queue_get(s->q, &x, pick_deadline(w));
        if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&s->timeouts, 1);
            continue;
        }
        if (rc == -EPIPE)
            return 0;
        if (rc != 0)
            return rc;
        atomic_fetch_add(&s->seen[I(x)], 1);
        atomic_fetch_add(&s->delivered, 1);
        if (s->task_done && weft_queue_task_done(s->q) != 0)
            atomic_fetch_add(&s->task_done_errors, 1);
    }
}

static void shared_init(struct shared *s, weft_queue_kind kind,
                        size_t maxsize, long per_producer, int timed)
{
    memset(s, 0, sizeof *s);
    ck_assert_rc(weft_queue_create(&s->q, kind, maxsize), 0);
    s->per_producer = per_producer;
    s->seen = calloc((size_t)(NPROD * per_producer + 1), 1);
    ck_assert_ptr_nonnull(s->seen);
    s->timed = timed;
    s->task_done = 1;
}

static void start_all(struct shared *s, struct worker *w, tt **t, unsigned seed)
{
    for (int i = 0; i < NPROD + NCONS; i++) {
        w[i] = (struct worker){.s = s, .id = i < NPROD ? i : i - NPROD,
                               .rnd = seed * 7919u + (unsigned)i};
        t[i] = tt_start(i < NPROD ? producer : consumer, &w[i]);
    }
}

/* Every item counted at most once overall, and exactly once across the
 * three outcomes; returns how many were seen by consumers. */
static long check_exactly_once(struct shared *s, void **undelivered,
                               size_t nundel)
{
    long n = NPROD * s->per_producer, seen = 0;
    for (size_t i = 0; i < nundel; i++) {
        uintptr_t x = I(undelivered[i]);
        ck_assert_msg(x >= 1 && x <= (uintptr_t)n, "bad item %lu",
                      (unsigned long)x);
        ck_assert_msg(atomic_load(&s->seen[x]) == 0,
                      "item %lu both delivered and undelivered",
                      (unsigned long)x);
        atomic_store(&s->seen[x], 1);
    }
    for (long i = 1; i <= n; i++) {
        unsigned c = atomic_load(&s->seen[i]);
        ck_assert_msg(c <= 1, "item %ld delivered %u times", i, c);
        seen += c;
    }
    return seen;
}

/* ---- every item exactly once ------------------------------------------ */

static void run_exactly_once(weft_queue_kind kind, size_t maxsize, int timed)
{
    struct shared s;
    struct worker w[NPROD + NCONS];
    tt *t[NPROD + NCONS];
    long per = 10000 * test_scale();
    long total = NPROD * per;

    shared_init(&s, kind, maxsize, per, timed);
    start_all(&s, w, t, (unsigned)(kind * 31 + maxsize + timed));
    for (int i = 0; i < NPROD; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    /* Producers are done; a graceful shutdown lets consumers drain and then
     * stop with -EPIPE. */
    weft_queue_shutdown(s.q, false);
    for (int i = NPROD; i < NPROD + NCONS; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    ck_assert_int_eq(atomic_load(&s.refused), 0);
    ck_assert_int_eq(atomic_load(&s.delivered), total);
    ck_assert_int_eq(check_exactly_once(&s, NULL, 0), total);
    ck_assert_int_eq(atomic_load(&s.task_done_errors), 0);
    ck_assert_uint_eq(weft_queue_unfinished(s.q), 0);
    ck_assert_uint_eq(weft_queue_size(s.q), 0);
    ck_assert_rc(weft_queue_join(s.q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(s.q, NULL), 0);
    if (timed)
        fprintf(stderr, "# kind %d max %zu: %ld timeouts\n", (int)kind,
                maxsize, atomic_load(&s.timeouts));
    free((void *)s.seen);
}

START_TEST(exactly_once_fifo)
{
    run_exactly_once(WEFT_QUEUE_FIFO, 0, 0);
    run_exactly_once(WEFT_QUEUE_FIFO, 4, 0);
    run_exactly_once(WEFT_QUEUE_FIFO, 0, 1);
    run_exactly_once(WEFT_QUEUE_FIFO, 4, 1);
}
END_TEST

START_TEST(exactly_once_lifo)
{
    run_exactly_once(WEFT_QUEUE_LIFO, 0, 0);
    run_exactly_once(WEFT_QUEUE_LIFO, 3, 0);
    run_exactly_once(WEFT_QUEUE_LIFO, 0, 1);
    run_exactly_once(WEFT_QUEUE_LIFO, 3, 1);
}
END_TEST

START_TEST(exactly_once_priority)
{
    run_exactly_once(WEFT_QUEUE_PRIORITY, 0, 0);
    run_exactly_once(WEFT_QUEUE_PRIORITY, 5, 0);
    run_exactly_once(WEFT_QUEUE_PRIORITY, 0, 1);
    run_exactly_once(WEFT_QUEUE_PRIORITY, 5, 1);
}
END_TEST

START_TEST(exactly_once_size_one)
{
    /* maxsize 1: nearly every put and get goes through a hand-off. */
    run_exactly_once(WEFT_QUEUE_FIFO, 1, 0);
    run_exactly_once(WEFT_QUEUE_FIFO, 1, 1);
}
END_TEST

START_TEST(exactly_once_ring)
{
    /* Bounded FIFO queues of maxsize >= 2 use the lock-free ring: tiny
     * rings keep both sides at the full and empty boundaries (spinning,
     * parking, serving parked waiters); 3 is not a power of two. */
    static const size_t sizes[] = {2, 3, 64};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        run_exactly_once(WEFT_QUEUE_FIFO, sizes[i], 0);
        run_exactly_once(WEFT_QUEUE_FIFO, sizes[i], 1);
    }
}
END_TEST

/* ---- shutdown while blocked ------------------------------------------- */

/* Stop after the consumers have taken about stop_after items, with
 * producers blocked on a full queue (bounded) or consumers blocked on an
 * empty one (few producers, timed), then account for every item. */
static void run_shutdown(weft_queue_kind kind, size_t maxsize, int immediate,
                         int timed, long stop_after, unsigned seed)
{
    struct shared s;
    struct worker w[NPROD + NCONS];
    tt *t[NPROD + NCONS];
    long per = 4000;
    void *buf[64];
    void **undel = NULL;
    size_t nundel = 0, cap = 0, n;
    long produced, delivered, refused;

    shared_init(&s, kind, maxsize, per, timed);
    start_all(&s, w, t, seed);
    while (atomic_load(&s.delivered) < stop_after &&
           atomic_load(&s.produced) < NPROD * per)
        sched_yield();
    weft_queue_shutdown(s.q, immediate);
    for (int i = 0; i < NPROD + NCONS; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    while ((n = weft_queue_take_undelivered(s.q, buf, 64)) != 0) {
        if (nundel + n > cap) {
            cap = cap ? cap * 2 : 256;
            undel = realloc(undel, cap * sizeof *undel);
            ck_assert_ptr_nonnull(undel);
        }
        memcpy(undel + nundel, buf, n * sizeof *buf);
        nundel += n;
    }
    produced = atomic_load(&s.produced);
    delivered = atomic_load(&s.delivered);
    refused = atomic_load(&s.refused);
    if (!immediate)
        ck_assert_uint_eq(nundel, 0);
    ck_assert_msg(delivered + (long)nundel + refused == produced,
                  "seed %u: delivered %ld + undelivered %zu + refused %ld "
                  "!= produced %ld", seed, delivered, nundel, refused,
                  produced);
    ck_assert_int_eq(check_exactly_once(&s, undel, nundel),
                     delivered + (long)nundel);
    /* Every delivered item was task_done'd, and the shutdown withdrew the
     * undelivered ones. */
    ck_assert_int_eq(atomic_load(&s.task_done_errors), 0);
    ck_assert_uint_eq(weft_queue_unfinished(s.q), 0);
    ck_assert_rc(weft_queue_destroy(s.q, NULL), 0);
    free(undel);
    free((void *)s.seen);
}

START_TEST(shutdown_accounts_for_every_item)
{
    long rounds = 4 * test_scale();
    weft_queue_kind kinds[] = {WEFT_QUEUE_FIFO, WEFT_QUEUE_LIFO,
                               WEFT_QUEUE_PRIORITY};
    for (long r = 0; r < rounds; r++)
        for (int k = 0; k < 3; k++)
            for (int imm = 0; imm <= 1; imm++) {
                unsigned seed = (unsigned)(r * 6 + k * 2 + imm);
                /* Bounded: producers mostly blocked when it stops. */
                run_shutdown(kinds[k], 2, imm, (int)(r & 1), 500 + r * 97,
                             seed);
                /* Unbounded: the queue holds a backlog when it stops. */
                run_shutdown(kinds[k], 0, imm, (int)(r & 1), 200 + r * 53,
                             seed + 1000);
            }
}
END_TEST

START_TEST(shutdown_races_ring_fast_path)
{
    /* Rings big enough that most puts and gets take the lock-free path when
     * the shutdown lands (and small ones, where they park). */
    long rounds = 6 * test_scale();
    static const size_t sizes[] = {2, 3, 16, 1024};
    for (long r = 0; r < rounds; r++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            for (int imm = 0; imm <= 1; imm++)
                run_shutdown(WEFT_QUEUE_FIFO, sizes[k], imm, (int)(r & 1),
                             100 + r * 331 + (long)k * 17,
                             (unsigned)(r * 8 + k * 2 + imm + 5000));
}
END_TEST

/* ---- no lost wake-up at the empty and full boundaries ------------------ */

/* One producer puts bursts of random length (up to twice the bound) and
 * then idles a random while, so that the consumer keeps finding the ring
 * empty and the producer keeps finding it full, and each side parks with
 * the other running.  A lost wake-up hangs a side: the test times out. */
struct burst {
    weft_queue *q;
    long n;
    size_t maxsize;
    _Atomic long sum;
    int getter_timed;
};

static int burst_producer(void *p)
{
    struct burst *b = p;
    unsigned rnd = (unsigned)b->n;
    long i = 1;
    while (i <= b->n) {
        unsigned len = next_rand(&rnd) % (unsigned)(2 * b->maxsize) + 1;
        for (unsigned k = 0; k < len && i <= b->n; k++, i++)
            if (weft_queue_put(b->q, P(i), WEFT_FOREVER) != 0)
                return 1;
        for (unsigned k = next_rand(&rnd) % 16; k > 0; k--)
            sched_yield();
    }
    return 0;
}

static int burst_consumer(void *p)
{
    struct burst *b = p;
    unsigned rnd = 77;
    long got = 0, sum = 0;
    void *x;
    while (got < b->n) {
        int64_t d = b->getter_timed
                        ? weft_deadline_in((int64_t)(next_rand(&rnd) % 50) *
                                           1000)
                        : WEFT_FOREVER;
        int rc = weft_queue_get(b->q, &x, d);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc != 0)
            return 1;
        if (I(x) != (uintptr_t)got + 1)
            return 2; /* FIFO order with one producer */
        got++;
        sum += (long)I(x);
        if (next_rand(&rnd) % 256 == 0)
            sched_yield();
    }
    atomic_store(&b->sum, sum);
    return 0;
}

START_TEST(no_lost_wakeup_at_boundaries)
{
    static const size_t sizes[] = {2, 3, 8};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int timed = 0; timed <= 1; timed++) {
            struct burst b = {.n = 5000 * test_scale(),
                              .maxsize = sizes[k],
                              .getter_timed = timed};
            ck_assert_rc(weft_queue_create(&b.q, WEFT_QUEUE_FIFO, sizes[k]),
                         0);
            tt *c = tt_start(burst_consumer, &b);
            tt *p = tt_start(burst_producer, &b);
            ck_assert_rc(tt_join(p), 0);
            ck_assert_rc(tt_join(c), 0);
            ck_assert_int_eq(atomic_load(&b.sum), b.n * (b.n + 1) / 2);
            ck_assert_uint_eq(weft_queue_waiters(b.q), 0);
            ck_assert_uint_eq(weft_queue_unfinished(b.q), (size_t)b.n);
            ck_assert_rc(weft_queue_destroy(b.q, NULL), 0);
        }
}
END_TEST

static int blocked_getter(void *p)
{
    weft_queue *q = p;
    void *x;
    return weft_queue_get(q, &x, WEFT_FOREVER);
}

START_TEST(shutdown_releases_many_blocked_getters)
{
    long rounds = 50 * test_scale();
    for (long r = 0; r < rounds; r++) {
        weft_queue *q;
        tt *t[4];
        ck_assert_rc(weft_queue_create(&q, WEFT_QUEUE_FIFO, 0), 0);
        for (int i = 0; i < 4; i++)
            t[i] = tt_start(blocked_getter, q);
        if (r & 1)
            while (weft_queue_waiters(q) < 4)
                sched_yield();
        weft_queue_shutdown(q, r & 2);
        for (int i = 0; i < 4; i++)
            ck_assert_rc(tt_join(t[i]), -EPIPE);
        ck_assert_rc(weft_queue_destroy(q, NULL), 0);
    }
}
END_TEST

/* ---- FIFO order under load --------------------------------------------- */

/* Producers put (id, seq) with seq rising; every consumer must see each
 * producer's items in rising order (FIFO across the put and get locks),
 * through full rings, empty rings, growth, spinning and parking. */
enum { ORD_P = 2, ORD_C = 2 };

struct ord {
    weft_queue *q;
    long per;
    _Atomic long got;
    _Atomic long sum;
    _Atomic int bad;
};

struct ord_worker {
    struct ord *o;
    int id;
};

#define ORD_ITEM(p, seq) P(((uintptr_t)(seq) << 2) | (uintptr_t)(p))

static int ord_producer(void *arg)
{
    struct ord_worker *w = arg;
    for (long i = 1; i <= w->o->per; i++) {
        int rc = weft_queue_put(w->o->q, ORD_ITEM(w->id, i), WEFT_FOREVER);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int ord_consumer(void *arg)
{
    struct ord_worker *w = arg;
    uintptr_t last[ORD_P] = {0};
    void *x;
    int rc;

    for (;;) {
        rc = weft_queue_get(w->o->q, &x, WEFT_FOREVER);
        if (rc == -EPIPE)
            return 0;
        if (rc != 0)
            return rc;
        uintptr_t p = I(x) & 3, seq = I(x) >> 2;
        if (p >= ORD_P || seq <= last[p])
            atomic_store(&w->o->bad, 1);
        else
            last[p] = seq;
        atomic_fetch_add(&w->o->got, 1);
        atomic_fetch_add(&w->o->sum, (long)seq);
    }
}

static void run_order(size_t maxsize, int np, int nc)
{
    struct ord o = {.per = 20000 * test_scale()};
    struct ord_worker w[ORD_P + ORD_C];
    tt *t[ORD_P + ORD_C];

    ck_assert_rc(weft_queue_create(&o.q, WEFT_QUEUE_FIFO, maxsize), 0);
    for (int i = 0; i < nc; i++) {
        w[np + i] = (struct ord_worker){&o, i};
        t[np + i] = tt_start(ord_consumer, &w[np + i]);
    }
    for (int i = 0; i < np; i++) {
        w[i] = (struct ord_worker){&o, i};
        t[i] = tt_start(ord_producer, &w[i]);
    }
    for (int i = 0; i < np; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    weft_queue_shutdown(o.q, false);
    for (int i = 0; i < nc; i++)
        ck_assert_rc(tt_join(t[np + i]), 0);
    ck_assert_msg(atomic_load(&o.bad) == 0, "maxsize %zu: order broken",
                  maxsize);
    ck_assert_int_eq(atomic_load(&o.got), np * o.per);
    ck_assert_int_eq(atomic_load(&o.sum), np * (o.per * (o.per + 1) / 2));
    ck_assert_uint_eq(weft_queue_waiters(o.q), 0);
    ck_assert_rc(weft_queue_destroy(o.q, NULL), 0);
}

START_TEST(fifo_order_kept_per_producer)
{
    static const size_t sizes[] = {0, 1, 2, 7, 64, 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        run_order(sizes[i], 1, 1);
        run_order(sizes[i], ORD_P, ORD_C);
    }
}
END_TEST

/* One case per test, so that CK_RUN_CASE can run them one at a time. */
static void add(Suite *s, const char *name, const TTest *test)
{
    TCase *c = tcase_create(name);
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test);
    suite_add_tcase(s, c);
}

static Suite *queue_stress_suite(void)
{
    Suite *s = suite_create("queue_stress");
    add(s, "exactly_once_fifo", exactly_once_fifo);
    add(s, "exactly_once_lifo", exactly_once_lifo);
    add(s, "exactly_once_priority", exactly_once_priority);
    add(s, "exactly_once_size_one", exactly_once_size_one);
    add(s, "exactly_once_ring", exactly_once_ring);
    add(s, "shutdown_races_ring", shutdown_races_ring_fast_path);
    add(s, "no_lost_wakeup_at_boundaries", no_lost_wakeup_at_boundaries);
    add(s, "shutdown_accounts", shutdown_accounts_for_every_item);
    add(s, "shutdown_blocked_getters", shutdown_releases_many_blocked_getters);
    add(s, "fifo_order_per_producer", fifo_order_kept_per_producer);
    return s;
}

TEST_MAIN(queue_stress_suite)
