/* stress_stack.c - several threads allocating and freeing stacks of a few
 * sizes at once, while others trim the pool and read the statistics: no
 * stack is ever handed to two owners (each owner stamps its stacks and
 * checks the stamps before freeing), the counts balance exactly, and the
 * DONTNEED path (a tiny pool bound) and the mprotect fallback hold up too.
 * Seeded per thread; the seed is printed on failure.
 */
#include "support.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "platform/stack.h"

enum { THREADS = 4, LIVE = 48 };

static const size_t sizes[] = {4096, 16 * 1024, 64 * 1024, 100 * 1000};

struct worker {
    int id;
    unsigned seed;
    long ops;
    _Atomic int *stop_helpers;
};

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* The stamp an owner writes at both ends of its stack. */
static uint64_t stamp(int id, long op)
{
    return ((uint64_t)(unsigned)id << 40) ^ (uint64_t)op ^ 0x5a5a5a5a5aull;
}

static void put_stamp(weft__stack *s, uint64_t v)
{
    memcpy(s->lo, &v, sizeof v);
    memcpy((char *)s->lo + s->size - sizeof v, &v, sizeof v);
}

static int check_stamp(const weft__stack *s, uint64_t v)
{
    uint64_t a, b;
    memcpy(&a, s->lo, sizeof a);
    memcpy(&b, (char *)s->lo + s->size - sizeof b, sizeof b);
    return a == v && b == v;
}

static int hammer(void *p)
{
    struct worker *w = p;
    weft__stack live[LIVE];
    uint64_t stamps[LIVE];
    char name[32];
    unsigned seed = w->seed;
    int bad = 0;

    snprintf(name, sizeof name, "hammer-%d", w->id);
    memset(live, 0, sizeof live);
    for (long op = 0; op < w->ops && !bad; op++) {
        int i = (int)(next_rand(&seed) % LIVE);
        if (live[i].lo) {
            if (!check_stamp(&live[i], stamps[i])) {
                fprintf(stderr, "seed %u: stack %p lost its stamp\n", w->seed,
                        live[i].lo);
                bad = 1;
            }
            weft__stack_free(&live[i]);
            continue;
        }
        size_t size = sizes[next_rand(&seed) % 4];
        int rc = weft__stack_alloc(&live[i], size);
        if (rc != 0) {
            fprintf(stderr, "seed %u: alloc %zu: %d %s\n", w->seed, size, rc,
                    weft__stack_last_error());
            bad = 1;
            break;
        }
        weft__stack_set_owner(&live[i], name, __FILE__);
        stamps[i] = stamp(w->id, op);
        put_stamp(&live[i], stamps[i]);
    }
    for (int i = 0; i < LIVE; i++) {
        if (live[i].lo && !check_stamp(&live[i], stamps[i]))
            bad = 1;
        weft__stack_free(&live[i]);
    }
    return bad;
}

/* Trims the pool and reads the statistics until told to stop. */
static int meddler(void *p)
{
    _Atomic int *stop = p;
    weft__stack_stats st;
    while (!atomic_load(stop)) {
        weft__stack_get_stats(&st);
        if (st.pooled_warm > st.pooled)
            return 1;
        weft__stack_trim();
    }
    return 0;
}

static void run(long ops)
{
    struct worker w[THREADS];
    _Atomic int stop = 0;
    unsigned base = (unsigned)weft_now();
    for (int i = 0; i < THREADS; i++)
        w[i] = (struct worker){i, base + (unsigned)i * 7919u, ops, &stop};
    tt *m = tt_start(meddler, &stop);
    int bad = tt_run_n(THREADS, hammer, w, sizeof w[0]);
    atomic_store(&stop, 1);
    ck_assert_rc(tt_join(m), 0);
    ck_assert_msg(bad == 0, "%d hammer threads failed (seed base %u)", bad,
                  base);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_le(st.pooled_warm, st.pooled);
    /* A class never holds more stacks than were live in it at once. */
    ck_assert_uint_le(st.pooled, THREADS * LIVE * 4);
}

START_TEST(alloc_free_from_many_threads)
{
    run(400000 * test_scale());
}
END_TEST

START_TEST(alloc_free_with_pages_given_back)
{
    weft__stack_set_pool_limit(128 * 1024);
    run(100000 * test_scale());
}
END_TEST

START_TEST(alloc_free_with_mprotect_guards)
{
    setenv("WEFT_STACK_GUARD", "mprotect", 1);
    run(100000 * test_scale());
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(weft__stack_guard_kind_now(), WEFT__STACK_GUARD_MPROTECT);
    ck_assert_uint_ge(st.guard_vmas, 2);
}
END_TEST

static Suite *stack_stress_suite(void)
{
    Suite *s = suite_create("stack_stress");
    TCase *c = tcase_create("stack_stress");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, alloc_free_from_many_threads);
    tcase_add_test(c, alloc_free_with_pages_given_back);
    tcase_add_test(c, alloc_free_with_mprotect_guards);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(stack_stress_suite)
