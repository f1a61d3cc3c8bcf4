/* stress_queue_one.c - FIFO queues of maxsize 1, which run on fast.c's
 * lock-free ring (two cells, and a put that also checks the previous
 * position's cell: fast.c, "Maxsize 1"), and the yield a green thread
 * makes before it parks (queue_internal.h): OS threads and green threads
 * on both sides at once, on one worker (where the yield lets the partner
 * run) and on two, with deadlines (WEFT_NOW and a few microseconds) on
 * puts and gets, green producers and consumers cancelled in the middle of
 * their waits, and shutdown racing all of it.
 * Checked: every item is delivered exactly once, each producer's in
 * order; the ring never holds two items (a watcher reads tail, then head:
 * at most one apart); with a shutdown, delivered + undelivered equals the
 * successful puts; unfinished, size and waiters end at zero.  A lost
 * wake-up shows as a test that hangs until its timeout.  Sizes scale with
 * WEFT_TEST_SCALE. */
#include "support.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "park/park.h"                    /* weft__waiter_uncancel */
#include "queue/queue_internal.h"         /* the ring's head and tail */

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
    int np_green, nc_green;      /* the first ones of each side are green */
    long per;                    /* items each producer tries to put */
    int timed;                   /* random short deadlines on both sides */
    _Atomic long produced[MAXP]; /* puts that succeeded, per producer */
    _Atomic long delivered;
    _Atomic long timeouts;
    _Atomic long cancels;        /* operations that returned -ECANCELED */
    _Atomic int bad;             /* order broken or an item seen twice */
    _Atomic int overfull;        /* the watcher saw two items at once */
    _Atomic int stop;            /* watcher and canceller: finish */
    _Atomic int pdone;           /* producers that returned */
    _Atomic unsigned char *seen; /* per (producer, seq) */
    weft_green *greens[MAXP + MAXC];
    _Atomic int ngreens;
};

struct role {
    struct run *r;
    int id;
    int green;
    unsigned rnd;
    uint64_t sum; /* of seqs got */
};

static unsigned next_rand(unsigned *r)
{
    *r = *r * 1103515245u + 12345u;
    return *r >> 8;
}

static int64_t pick_deadline(struct role *w)
{
    unsigned k;

    if (!w->r->timed)
        return WEFT_FOREVER;
    k = next_rand(&w->rnd) % 32;
    if (k >= 24)
        return WEFT_FOREVER;
    return k == 0 ? WEFT_NOW : weft_deadline_in((int64_t)k * 1000);
}

static size_t seen_index(const struct run *r, void *x)
{
    return (size_t)ITEM_P(x) * (size_t)(r->per + 1) + ITEM_SEQ(x);
}

/* A green thread whose operation said -ECANCELED clears its cancellation
 * and goes on (the canceller will cancel it again). */
static void cancelled(struct role *w)
{
    atomic_fetch_add(&w->r->cancels, 1);
    weft__waiter_uncancel(weft__self());
}

static int produce(struct role *w)
{
    struct run *r = w->r;
    long i = 1;

    while (i <= r->per) {
        int rc = weft_queue_put(r->q, ITEM(w->id, i), pick_deadline(w));
        if (rc == -EPIPE)
            return 0;
        if (rc == -ETIMEDOUT || rc == -EAGAIN) {
            atomic_fetch_add(&r->timeouts, 1);
            continue; /* the same item again: order per producer holds */
        }
        if (rc == -ECANCELED && w->green) {
            cancelled(w);
            continue;
        }
        if (rc != 0)
            return rc;
        atomic_fetch_add(&r->produced[w->id], 1);
        i++;
        if (!w->green && (i & 255) == 0)
            sched_yield();
    }
    return 0;
}

static int producer(void *arg)
{
    struct role *w = arg;
    int rc = produce(w);

    atomic_fetch_add(&w->r->pdone, 1);
    return rc;
}

static int consumer(void *arg)
{
    struct role *w = arg;
    struct run *r = w->r;
    long last[MAXP] = {0};
    void *x;

    for (;;) {
        int rc = weft_queue_get(r->q, &x, pick_deadline(w));

        if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&r->timeouts, 1);
            continue;
        }
        if (rc == -ECANCELED && w->green) {
            cancelled(w);
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

/* Reads tail, then head: head only grows, and a put at p needs the get of
 * p - 1 done (so head >= p when tail becomes p + 1), hence at most 1. */
static int watcher(void *arg)
{
    struct run *r = arg;
    const weft__fq *f = r->q->fast;

    for (unsigned k = 1; !atomic_load(&r->stop); k++) {
        uint64_t t = atomic_load(&f->tail) & ~WEFT__FQ_CLOSED;
        uint64_t h = atomic_load(&f->head) & ~WEFT__FQ_CLOSED;
        if (t > h + 1)
            atomic_store(&r->overfull, 1);
        if (k % 64 == 0)
            sched_yield(); /* two cores: leave the CPU to the others */
    }
    return 0;
}

/* Cancels a random green producer or consumer now and then.  Stopped
 * before any green thread is joined: a joined one's struct is recycled. */
static int canceller(void *arg)
{
    struct run *r = arg;
    unsigned rnd = 4242;
    int n = atomic_load(&r->ngreens);

    while (!atomic_load(&r->stop)) {
        if (n > 0)
            (void)weft_green_cancel(r->greens[next_rand(&rnd) % (unsigned)n]);
        for (unsigned k = next_rand(&rnd) % 16; k > 0; k--)
            sched_yield();
    }
    return 0;
}

struct handles {
    tt *os[MAXP + MAXC];
    weft_green *g[MAXP + MAXC];
    tt *watch, *cancel;
};

static void run_init(struct run *r, int np, int np_green, int nc,
                     int nc_green, long per, int timed)
{
    memset(r, 0, sizeof *r);
    ck_assert_rc(weft_queue_create(&r->q, WEFT_QUEUE_FIFO, 1), 0);
    ck_assert_ptr_nonnull(r->q->fast); /* maxsize 1 is lock-free */
    r->np = np;
    r->nc = nc;
    r->np_green = np_green;
    r->nc_green = nc_green;
    r->per = per;
    r->timed = timed;
    r->seen = calloc((size_t)MAXP * (size_t)(per + 1), 1);
    ck_assert_ptr_nonnull(r->seen);
}

static void start_one(struct run *r, struct handles *h, struct role *w,
                      int slot, int green, int (*fn)(void *))
{
    if (green) {
        ck_assert_rc(weft_green_spawn(&h->g[slot], fn, w, NULL), 0);
        r->greens[atomic_load(&r->ngreens)] = h->g[slot];
        atomic_fetch_add(&r->ngreens, 1);
    } else {
        h->os[slot] = tt_start(fn, w);
    }
}

static void start(struct run *r, struct role *w, struct handles *h,
                  unsigned seed, int cancel)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < r->nc; i++) {
        w[MAXP + i] = (struct role){.r = r, .id = i,
                                    .green = i < r->nc_green,
                                    .rnd = seed + 77u * (unsigned)i};
        start_one(r, h, &w[MAXP + i], MAXP + i, i < r->nc_green, consumer);
    }
    for (int i = 0; i < r->np; i++) {
        w[i] = (struct role){.r = r, .id = i, .green = i < r->np_green,
                             .rnd = seed + 13u * (unsigned)i};
        start_one(r, h, &w[i], i, i < r->np_green, producer);
    }
    h->watch = tt_start(watcher, r);
    h->cancel = cancel ? tt_start(canceller, r) : NULL;
}

static void join_slot(struct handles *h, int slot)
{
    int res = -1;

    if (h->g[slot] != NULL) {
        ck_assert_rc(weft_green_join(h->g[slot], &res, WEFT_FOREVER), 0);
        ck_assert_rc(res, 0);
    } else {
        ck_assert_rc(tt_join(h->os[slot]), 0);
    }
}

static void stop_helpers(struct run *r, struct handles *h)
{
    atomic_store(&r->stop, 1);
    ck_assert_rc(tt_join(h->watch), 0);
    if (h->cancel != NULL)
        ck_assert_rc(tt_join(h->cancel), 0);
}

/* ---- every item exactly once, in order per producer --------------------- */

static void run_exactly_once(int workers, int np, int np_green, int nc,
                             int nc_green, int timed, int cancel)
{
    struct run r;
    struct role w[MAXP + MAXC];
    struct handles h;
    long per = 10000 * test_scale();
    uint64_t sum = 0;

    ck_assert_rc(weft_runtime_start(workers), 0);
    run_init(&r, np, np_green, nc, nc_green, per, timed);
    start(&r, w, &h, (unsigned)(workers * 1000 + np * 100 + nc * 10 + timed),
          cancel);
    while (atomic_load(&r.pdone) < np)
        sched_yield();
    stop_helpers(&r, &h);
    for (int i = 0; i < np; i++)
        join_slot(&h, i);
    weft_queue_shutdown(r.q, false);
    for (int i = 0; i < nc; i++) {
        join_slot(&h, MAXP + i);
        sum += w[MAXP + i].sum;
    }
    ck_assert_msg(atomic_load(&r.bad) == 0,
                  "%d workers %dP/%dC: order broken, item duplicated or "
                  "task_done failed", workers, np, nc);
    ck_assert_msg(atomic_load(&r.overfull) == 0,
                  "%d workers %dP/%dC: two items in a maxsize-1 queue",
                  workers, np, nc);
    ck_assert_int_eq(atomic_load(&r.delivered), np * per);
    ck_assert_uint_eq(sum, (uint64_t)np * (uint64_t)(per * (per + 1) / 2));
    ck_assert_uint_eq(weft_queue_size(r.q), 0);
    ck_assert_uint_eq(weft_queue_unfinished(r.q), 0);
    ck_assert_uint_eq(weft_queue_waiters(r.q), 0);
    ck_assert_rc(weft_queue_join(r.q, WEFT_NOW), 0);
    ck_assert_rc(weft_queue_destroy(r.q, NULL), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    fprintf(stderr, "# %d workers %dP(%d green)/%dC(%d green)%s%s: "
            "%ld timeouts, %ld cancels\n", workers, np, np_green, nc,
            nc_green, timed ? " timed" : "", cancel ? " cancel" : "",
            atomic_load(&r.timeouts), atomic_load(&r.cancels));
    free((void *)r.seen);
}

START_TEST(one_green_only_one_worker)
{
    /* Every hand-over is between green threads on one worker: the yield
     * path, and parks when a yield does not pay (three and more). */
    run_exactly_once(1, 1, 1, 1, 1, 0, 0);
    run_exactly_once(1, 3, 3, 2, 2, 0, 0);
    run_exactly_once(1, 2, 2, 3, 3, 1, 0);
}
END_TEST

START_TEST(one_mixed_both_sides)
{
    run_exactly_once(1, 2, 1, 2, 1, 0, 0);
    run_exactly_once(2, 2, 1, 2, 1, 0, 0);
    run_exactly_once(2, 3, 2, 3, 1, 0, 0);
    run_exactly_once(2, 1, 0, 2, 2, 0, 0);
    run_exactly_once(2, 2, 2, 1, 0, 0, 0);
}
END_TEST

START_TEST(one_mixed_deadlines)
{
    run_exactly_once(1, 2, 1, 2, 1, 1, 0);
    run_exactly_once(2, 2, 1, 2, 1, 1, 0);
    run_exactly_once(2, 3, 1, 2, 1, 1, 0);
}
END_TEST

START_TEST(one_mixed_cancellation)
{
    run_exactly_once(1, 2, 1, 2, 1, 0, 1);
    run_exactly_once(2, 2, 1, 2, 1, 0, 1);
    run_exactly_once(2, 2, 2, 2, 2, 1, 1);
}
END_TEST

/* ---- shutdown racing puts and gets ------------------------------------- */

static void run_shutdown(int workers, int immediate, long stop_after,
                         unsigned seed)
{
    struct run r;
    struct role w[MAXP + MAXC];
    struct handles h;
    long per = 3000, produced = 0, delivered, nundel = 0;
    void *buf[4];
    size_t n;

    ck_assert_rc(weft_runtime_start(workers), 0);
    run_init(&r, 3, 2, 3, 2, per, (int)(seed & 1));
    start(&r, w, &h, seed, (int)(seed & 2));
    while (atomic_load(&r.delivered) < stop_after) {
        long p = 0;
        for (int i = 0; i < r.np; i++)
            p += atomic_load(&r.produced[i]);
        if (p >= r.np * per)
            break;
        sched_yield();
    }
    weft_queue_shutdown(r.q, immediate);
    stop_helpers(&r, &h);
    for (int i = 0; i < r.np; i++)
        join_slot(&h, i);
    for (int i = 0; i < r.nc; i++)
        join_slot(&h, MAXP + i);
    while ((n = weft_queue_take_undelivered(r.q, buf, 4)) != 0) {
        for (size_t i = 0; i < n; i++)
            if (ITEM_P(buf[i]) >= (uintptr_t)r.np ||
                (long)ITEM_SEQ(buf[i]) > per ||
                atomic_fetch_add(&r.seen[seen_index(&r, buf[i])], 1) != 0)
                atomic_store(&r.bad, 1);
        nundel += (long)n;
    }
    for (int i = 0; i < r.np; i++)
        produced += atomic_load(&r.produced[i]);
    delivered = atomic_load(&r.delivered);
    ck_assert_msg(atomic_load(&r.bad) == 0, "seed %u: bad item", seed);
    ck_assert_msg(atomic_load(&r.overfull) == 0, "seed %u: overfull", seed);
    ck_assert(nundel <= 1);
    if (!immediate)
        ck_assert_int_eq(nundel, 0);
    ck_assert_msg(delivered + nundel == produced,
                  "seed %u: delivered %ld + undelivered %ld != produced %ld",
                  seed, delivered, nundel, produced);
    for (int p = 0; p < r.np; p++)
        for (long i = 1; i <= per; i++)
            ck_assert_msg(atomic_load(&r.seen[(size_t)p * (size_t)(per + 1) +
                                              (size_t)i]) ==
                              (i <= atomic_load(&r.produced[p]) ? 1 : 0),
                          "seed %u: producer %d item %ld", seed, p, i);
    ck_assert_uint_eq(weft_queue_unfinished(r.q), 0);
    ck_assert_uint_eq(weft_queue_size(r.q), 0);
    ck_assert_uint_eq(weft_queue_waiters(r.q), 0);
    ck_assert_rc(weft_queue_destroy(r.q, NULL), 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
    free((void *)r.seen);
}

START_TEST(one_shutdown_races_mixed)
{
    long rounds = 3 * test_scale();
    for (long k = 0; k < rounds; k++)
        for (int workers = 1; workers <= 2; workers++)
            for (int imm = 0; imm <= 1; imm++)
                for (unsigned v = 0; v < 4; v++) {
                    unsigned seed = (unsigned)(k * 64 + workers * 16 +
                                               imm * 4) + v;
                    run_shutdown(workers, imm, 20 + k * 157 + v * 301, seed);
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

static Suite *queue_one_stress_suite(void)
{
    Suite *s = suite_create("queue_one_stress");
    add(s, "one_green_only_one_worker", one_green_only_one_worker);
    add(s, "one_mixed_both_sides", one_mixed_both_sides);
    add(s, "one_mixed_deadlines", one_mixed_deadlines);
    add(s, "one_mixed_cancellation", one_mixed_cancellation);
    add(s, "one_shutdown_races_mixed", one_shutdown_races_mixed);
    return s;
}

TEST_MAIN(queue_one_stress_suite)
