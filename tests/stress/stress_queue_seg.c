/* stress_queue_seg.c - the lock-free segment store of unbounded FIFO queues
 * (src/queue/seg.c) under many producers and consumers: tiny segments
 * (1, 3 and 15 items, made through weft__queue_create_seg) so that puts
 * install and gets retire segments all the time, racing each other and
 * shutdown.  Every item is delivered exactly once, each producer's items
 * in order, and the sums and counts match; with a shutdown, delivered +
 * undelivered + refused equals produced; destroy frees what is left (ASan
 * checks the segments and the malloc'd items). */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "queue/queue_internal.h" /* weft__queue_create_seg */

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((uintptr_t)(p))

enum { MAXP = 4, MAXC = 4 };

/* Item = seq << 3 | producer (seq from 1). */
#define ITEM(p, seq) P(((uintptr_t)(seq) << 3) | (uintptr_t)(p))
#define ITEM_P(x) (I(x) & 7)
#define ITEM_SEQ(x) (I(x) >> 3)

struct run {
    weft_queue *q;
    int np, nc;
    long per;                    /* items each producer tries to put */
    int timed;                   /* consumers use short random deadlines */
    _Atomic long produced[MAXP]; /* puts that succeeded, per producer */
    _Atomic long refused;
    _Atomic long delivered;
    _Atomic long timeouts;
    _Atomic int bad;             /* order broken or an item seen twice */
    _Atomic unsigned char *seen; /* per (producer, seq) */
};

struct role {
    struct run *r;
    int id;
    unsigned rnd;
    uint64_t sum;                /* of seqs got */
};

static unsigned next_rand(unsigned *r)
{
    *r = *r * 1103515245u + 12345u;
    return *r >> 8;
}

static size_t seen_index(const struct run *r, void *x)
{
    return (size_t)ITEM_P(x) * (size_t)(r->per + 1) + ITEM_SEQ(x);
}

static int producer(void *arg)
{
    struct role *w = arg;
    struct run *r = w->r;

    for (long i = 1; i <= r->per; i++) {
        int rc = weft_queue_put(r->q, ITEM(w->id, i), WEFT_FOREVER);
        if (rc == -EPIPE) {
            atomic_fetch_add(&r->refused, 1);
            return 0;
        }
        if (rc != 0)
            return rc;
        atomic_fetch_add(&r->produced[w->id], 1);
        if ((i & 255) == 0)
            sched_yield(); /* let consumers catch up and find it empty */
    }
    return 0;
}

static int consumer(void *arg)
{
    struct role *w = arg;
    struct run *r = w->r;
    long last[MAXP] = {0};
    void *x;

    for (;;) {
        int64_t deadline = WEFT_FOREVER;
        int rc;

        if (r->timed) {
            unsigned k = next_rand(&w->rnd) % 32;
            deadline = k == 0 ? WEFT_NOW : weft_deadline_in((int64_t)k * 1000);
        }
        rc = weft_queue_get(r->q, &x, deadline);
        if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&r->timeouts, 1);
            continue;
        }
        if (rc == -EPIPE)
            return 0;
        if (rc != 0)
            return rc;
        if (ITEM_P(x) >= (uintptr_t)r->np ||
            (long)ITEM_SEQ(x) <= last[ITEM_P(x)] ||
            (long)ITEM_SEQ(x) > r->per ||
            atomic_fetch_add(&r->seen[seen_index(r, x)], 1) != 0)
            atomic_store(&r->bad, 1);
        else
            last[ITEM_P(x)] = (long)ITEM_SEQ(x);
        w->sum += ITEM_SEQ(x);
        atomic_fetch_add(&r->delivered, 1);
        if (weft_queue_task_done(r->q) != 0)
            atomic_store(&r->bad, 1);
    }
}

static void run_init(struct run *r, unsigned shift, int np, int nc, long per,
                     int timed)
{
    memset(r, 0, sizeof *r);
    ck_assert_rc(weft__queue_create_seg(&r->q, shift), 0);
    r->np = np;
    r->nc = nc;
    r->per = per;
    r->timed = timed;
    r->seen = calloc((size_t)MAXP * (size_t)(per + 1), 1);
    ck_assert_ptr_nonnull(r->seen);
}

static void start(struct run *r, struct role *w, tt **t, unsigned seed)
{
    for (int i = 0; i < r->nc; i++) {
        w[MAXP + i] = (struct role){.r = r, .id = i, .rnd = seed + 77u * i};
        t[MAXP + i] = tt_start(consumer, &w[MAXP + i]);
    }
    for (int i = 0; i < r->np; i++) {
        w[i] = (struct role){.r = r, .id = i, .rnd = seed + 13u * i};
        t[i] = tt_start(producer, &w[i]);
    }
}

/* ---- every item exactly once, in order per producer --------------------- */

static void run_exactly_once(unsigned shift, int np, int nc, int timed)
{
    struct run r;
    struct role w[MAXP + MAXC];
    tt *t[MAXP + MAXC];
    long per = 20000 * test_scale();
    uint64_t sum = 0;

    run_init(&r, shift, np, nc, per, timed);
    start(&r, w, t, shift * 100u + (unsigned)(np * 10 + nc));
    for (int i = 0; i < np; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    weft_queue_shutdown(r.q, false);
    for (int i = 0; i < nc; i++) {
        ck_assert_rc(tt_join(t[MAXP + i]), 0);
        sum += w[MAXP + i].sum;
    }
    ck_assert_msg(atomic_load(&r.bad) == 0,
                  "shift %u %dP/%dC: order broken, item duplicated or "
                  "task_done failed", shift, np, nc);
    ck_assert_int_eq(atomic_load(&r.refused), 0);
    ck_assert_int_eq(atomic_load(&r.delivered), np * per);
    ck_assert_uint_eq(sum, (uint64_t)np * (uint64_t)(per * (per + 1) / 2));
    ck_assert_uint_eq(weft_queue_size(r.q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(r.q), 0);
    ck_assert_uint_eq(weft_queue_waiters(r.q), 0);
    ck_assert_rc(weft_queue_join(r.q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(r.q, NULL), 0);
    if (timed)
        fprintf(stderr, "# shift %u %dP/%dC: %ld timeouts\n", shift, np, nc,
                atomic_load(&r.timeouts));
    free((void *)r.seen);
}

START_TEST(seg_exactly_once_in_order)
{
    static const unsigned shifts[] = {1, 2, 4};
    for (size_t k = 0; k < sizeof shifts / sizeof shifts[0]; k++) {
        run_exactly_once(shifts[k], 1, 1, 0);
        run_exactly_once(shifts[k], 2, 2, 0);
        run_exactly_once(shifts[k], 4, 3, 0);
        run_exactly_once(shifts[k], 3, 4, 1);
    }
}
END_TEST

START_TEST(seg_exactly_once_default_segments)
{
    run_exactly_once(WEFT__SEG_SHIFT, 1, 1, 0);
    run_exactly_once(WEFT__SEG_SHIFT, 4, 4, 0);
    run_exactly_once(WEFT__SEG_SHIFT, 2, 3, 1);
}
END_TEST

/* ---- shutdown racing puts and gets ------------------------------------- */

static void run_shutdown(unsigned shift, int np, int nc, int immediate,
                         long stop_after, unsigned seed)
{
    struct run r;
    struct role w[MAXP + MAXC];
    tt *t[MAXP + MAXC];
    long per = 5000, produced = 0, delivered, nundel = 0;
    void *buf[16];
    size_t n;

    run_init(&r, shift, np, nc, per, (int)(seed & 1));
    start(&r, w, t, seed);
    while (atomic_load(&r.delivered) < stop_after) {
        long p = 0;
        for (int i = 0; i < np; i++)
            p += atomic_load(&r.produced[i]);
        if (p >= np * per)
            break;
        sched_yield();
    }
    weft_queue_shutdown(r.q, immediate);
    for (int i = 0; i < np; i++)
        ck_assert_rc(tt_join(t[i]), 0);
    for (int i = 0; i < nc; i++)
        ck_assert_rc(tt_join(t[MAXP + i]), 0);
    while ((n = weft_queue_take_undelivered(r.q, buf, 16)) != 0) {
        for (size_t i = 0; i < n; i++)
            if (ITEM_P(buf[i]) >= (uintptr_t)np ||
                (long)ITEM_SEQ(buf[i]) > per ||
                atomic_fetch_add(&r.seen[seen_index(&r, buf[i])], 1) != 0)
                atomic_store(&r.bad, 1);
        nundel += (long)n;
    }
    for (int i = 0; i < np; i++)
        produced += atomic_load(&r.produced[i]);
    delivered = atomic_load(&r.delivered);
    ck_assert_msg(atomic_load(&r.bad) == 0, "seed %u: bad item", seed);
    if (!immediate)
        ck_assert_int_eq(nundel, 0);
    ck_assert_msg(delivered + nundel == produced,
                  "seed %u: delivered %ld + undelivered %ld != produced %ld",
                  seed, delivered, nundel, produced);
    /* Exactly the successful puts were seen, once each. */
    for (int p = 0; p < np; p++)
        for (long i = 1; i <= per; i++)
            ck_assert_msg(atomic_load(&r.seen[(size_t)p * (size_t)(per + 1) +
                                              (size_t)i]) ==
                              (i <= atomic_load(&r.produced[p]) ? 1 : 0),
                          "seed %u: producer %d item %ld", seed, p, i);
    ck_assert_uint_eq(weft_queue_unfinished(r.q), 0);
    ck_assert_uint_eq(weft_queue_size(r.q), 0);
    ck_assert_rc(weft_queue_destroy(r.q, NULL), 0);
    free((void *)r.seen);
}

START_TEST(seg_shutdown_races_puts_and_gets)
{
    long rounds = 5 * test_scale();
    static const unsigned shifts[] = {1, 2, 4, WEFT__SEG_SHIFT};
    for (long k = 0; k < rounds; k++)
        for (size_t s = 0; s < sizeof shifts / sizeof shifts[0]; s++)
            for (int imm = 0; imm <= 1; imm++) {
                unsigned seed = (unsigned)(k * 16 + (long)s * 2 + imm);
                run_shutdown(shifts[s], 3, 2, imm, 50 + k * 211, seed);
                run_shutdown(shifts[s], 2, 3, imm, 10 + k * 97, seed + 500);
            }
}
END_TEST

/* ---- destroy while items and segments are left ------------------------- */

static _Atomic long nfreed;
static void free_item(void *p)
{
    atomic_fetch_add(&nfreed, 1);
    free(p);
}

static int malloc_producer(void *arg)
{
    struct role *w = arg;
    for (long i = 0; i < w->r->per; i++) {
        long *p = malloc(sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        *p = i;
        if (weft_queue_put(w->r->q, p, WEFT_FOREVER) != 0) {
            free(p);
            return -EIO;
        }
    }
    return 0;
}

static int malloc_consumer(void *arg)
{
    struct role *w = arg;
    void *x;
    /* Take half of one producer's worth, leaving the rest (over many
     * segments) for destroy. */
    for (long i = 0; i < w->r->per / 2; i++) {
        int rc = weft_queue_get(w->r->q, &x, WEFT_FOREVER);
        if (rc != 0)
            return rc;
        free(x);
        atomic_fetch_add(&w->r->delivered, 1);
    }
    return 0;
}

START_TEST(seg_destroy_frees_what_concurrent_runs_left)
{
    static const unsigned shifts[] = {1, 3, WEFT__SEG_SHIFT};
    for (size_t s = 0; s < sizeof shifts / sizeof shifts[0]; s++) {
        struct run r;
        struct role w[4];
        tt *t[4];
        long per = 3000 * test_scale();

        run_init(&r, shifts[s], 2, 2, per, 0);
        for (int i = 0; i < 4; i++) {
            w[i] = (struct role){.r = &r, .id = i};
            t[i] = tt_start(i < 2 ? malloc_producer : malloc_consumer, &w[i]);
        }
        /* Producers put per each; consumers take per / 2 each. */
        for (int i = 0; i < 4; i++)
            ck_assert_rc(tt_join(t[i]), 0);
        ck_assert_uint_eq(weft_queue_size(r.q), (size_t)(2 * per - per / 2 * 2));
        atomic_store(&nfreed, 0);
        ck_assert_rc(weft_queue_destroy(r.q, free_item), 0);
        ck_assert_int_eq(atomic_load(&nfreed), 2 * per - per / 2 * 2);
        free((void *)r.seen);
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

static Suite *queue_seg_stress_suite(void)
{
    Suite *s = suite_create("queue_seg_stress");
    add(s, "seg_exactly_once", seg_exactly_once_in_order);
    add(s, "seg_exactly_once_default", seg_exactly_once_default_segments);
    add(s, "seg_shutdown_races", seg_shutdown_races_puts_and_gets);
    add(s, "seg_destroy_frees", seg_destroy_frees_what_concurrent_runs_left);
    return s;
}

TEST_MAIN(queue_seg_stress_suite)
