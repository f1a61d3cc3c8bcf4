/* test_green_cache.c - the per-worker cache of green structs and stacks
 * (src/green/green.c, "the per-worker cache") and the join protocol in
 * front of the done event: what a spawn takes from the cache is a clean
 * green thread (name, id, result, stack size, locals); stacks of several
 * sizes mix; a worker that stops gives everything back (shutdown and
 * restart); the stack overflow report still names the green thread on a
 * recycled stack; a join that waits, times out or comes late. */
#include "support.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "green/green.h"

static int ret_arg(void *p)
{
    return (int)(intptr_t)p;
}

/* The stack of the calling green thread, as the scheduler gave it. */
static int stack_size_of_self(void *p)
{
    weft_green *g = weft_green_current();
    volatile char here = 0;
    (void)p;
    if (g == NULL)
        return -1;
    if ((char *)&here < (char *)g->stack.lo ||
        (char *)&here >= (char *)g->stack.lo + g->stack.size)
        return -2; /* not running on its own stack */
    return (int)(g->stack.size / 1024);
}

static int spawn_sizes(void *p)
{
    static const size_t kib[] = {64, 16, 64, 128, 20, 64, 16, 200, 64, 4};
    long rounds = (long)(intptr_t)p;

    for (long r = 0; r < rounds; r++) {
        for (size_t i = 0; i < sizeof kib / sizeof kib[0]; i++) {
            weft_green_opts o = {.stack_size = kib[i] * 1024 - (i & 1)};
            weft_green *g;
            int res;
            if (weft_green_spawn(&g, stack_size_of_self, NULL, &o) != 0)
                return 1;
            if (weft_green_join(g, &res, WEFT_FOREVER) != 0)
                return 2;
            if (res != (int)kib[i]) /* rounded up to the page */
                return 3;
        }
    }
    return 0;
}

START_TEST(stacks_of_several_sizes_mix)
{
    weft_green *g;
    int r;

    ck_assert_rc(weft_runtime_start(2), 0);
    /* From a green thread (the cache) and from this OS thread (the global
     * pools) at once. */
    ck_assert_rc(weft_green_spawn(&g, spawn_sizes, (void *)(intptr_t)200,
                                  NULL), 0);
    ck_assert_int_eq(spawn_sizes((void *)(intptr_t)50), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

static weft_green_key key;

static int check_fresh(void *p)
{
    weft_green *g = weft_green_current();
    (void)p;
    /* A recycled struct must not show its last life's locals. */
    if (weft_green_key_get(key) != NULL)
        return 1;
    if (weft_green_key_set(key, g) != 0)
        return 2;
    return 0;
}

static int name_and_locals(void *p)
{
    long n = (long)(intptr_t)p;
    uint64_t last = 0;

    for (long i = 0; i < n; i++) {
        weft_green *g;
        char want[64];
        int r;
        weft_green_opts o = {.name = (i % 3 == 0) ? NULL
                                 : (i % 3 == 1) ? "short"
                                 : "a name far longer than the inline "
                                   "buffer of the struct"};
        if (weft_green_spawn(&g, check_fresh, NULL, &o) != 0)
            return 1;
        if (weft_green_id(g) <= last)
            return 2;
        last = weft_green_id(g);
        if (o.name == NULL)
            snprintf(want, sizeof want, "Green-%llu",
                     (unsigned long long)last);
        else
            snprintf(want, sizeof want, "%s", o.name);
        if (strcmp(weft_green_name(g), want) != 0)
            return 3;
        if (weft_green_join(g, &r, WEFT_FOREVER) != 0 || r != 0)
            return 4;
    }
    return 0;
}

START_TEST(recycled_struct_is_clean)
{
    weft_green *g;
    int r;

    ck_assert_rc(weft_green_key_create(&key, NULL), 0);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&g, name_and_locals,
                                  (void *)(intptr_t)(3000 * test_scale()),
                                  NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* Fill the caches of both workers (more green threads alive at once than
 * a cache holds, then all of them ended), stop the runtime, and check
 * that every stack went back to the pool; then start again and spawn. */
static int fan_out(void *p)
{
    long n = (long)(intptr_t)p;
    weft_green **v = malloc((size_t)n * sizeof *v);
    int bad = 0, r;

    if (v == NULL)
        return 1;
    for (long i = 0; i < n; i++)
        if (weft_green_spawn(&v[i], ret_arg, (void *)(intptr_t)(i & 0xff),
                             NULL) != 0)
            return 2;
    for (long i = 0; i < n; i++)
        if (weft_green_join(v[i], &r, WEFT_FOREVER) != 0 || r != (i & 0xff))
            bad++;
    free(v);
    return bad ? 3 : 0;
}

START_TEST(shutdown_flushes_caches_and_restart_works)
{
    weft__stack_stats st;
    weft_green *g[2];
    int r;

    for (int round = 0; round < 3; round++) {
        ck_assert_rc(weft_runtime_start(2), 0);
        for (int i = 0; i < 2; i++)
            ck_assert_rc(weft_green_spawn(&g[i], fan_out,
                                          (void *)(intptr_t)(5 *
                                              WEFT__GREEN_CACHE), NULL), 0);
        for (int i = 0; i < 2; i++) {
            ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
            ck_assert_int_eq(r, 0);
        }
        ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
        /* No worker holds a stack any more. */
        weft__stack_get_stats(&st);
        ck_assert_uint_eq(st.in_use, 0);
    }
}
END_TEST

/* ---- join ------------------------------------------------------------- */

static int wait_event(void *p)
{
    return weft_event_wait(p, WEFT_FOREVER) == 0 ? 7 : -1;
}

START_TEST(join_waits_times_out_and_joins_late)
{
    weft_event ev;
    weft_green *g;
    int r = 0;

    weft_event_init(&ev);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&g, wait_event, &ev, NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_green_join(g, &r, weft_deadline_in(MS(20))),
                 -ETIMEDOUT);
    /* The timed-out join announced itself: the exit sets the event, and a
     * later join finds the thread done either way. */
    weft_event_set(&ev);
    ck_assert_rc(weft_green_join(g, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(r, 7);
    ck_assert_rc(weft_green_join(g, &r, WEFT_NOW), -EINVAL);
    /* The struct is reused; a new life's join is not confused by the old
     * event having been set. */
    weft_event_clear(&ev);
    ck_assert_rc(weft_green_spawn(&g, wait_event, &ev, NULL), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_NOW), -ETIMEDOUT);
    weft_event_set(&ev);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 7);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

static int join_arg(void *p)
{
    int r = -1;
    if (weft_green_join(p, &r, WEFT_FOREVER) != 0)
        return -2;
    return r;
}

START_TEST(joiner_parked_in_green_thread_is_woken)
{
    weft_event ev;
    weft_green *g, *j;
    int r = 0;

    weft_event_init(&ev);
    ck_assert_rc(weft_runtime_start(1), 0);
    ck_assert_rc(weft_green_spawn(&g, wait_event, &ev, NULL), 0);
    ck_assert_rc(weft_green_spawn(&j, join_arg, g, NULL), 0);
    ck_assert_rc(weft_green_join(j, &r, weft_deadline_in(MS(30))),
                 -ETIMEDOUT);
    weft_event_set(&ev);
    ck_assert_rc(weft_green_join(j, &r, weft_deadline_in(MS(10000))), 0);
    ck_assert_int_eq(r, 7);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

/* ---- overflow on a recycled stack ----------------------------------- */

static int __attribute__((noinline)) recurse(int depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = (char)depth;
    if (depth > 1000000)
        return buf[0];
    return recurse(depth + 1) + buf[sizeof buf - 1];
}

static int overflow(void *p)
{
    (void)p;
    return recurse(0);
}

static void overflow_child(void)
{
    weft_green *g;
    weft_green_opts o = {.name = "deep-diver", .stack_size = 32 * 1024};
    int r;

    if (weft_runtime_start(1) != 0)
        _exit(3);
    /* Run a few first so that the overflowing one gets a cached stack
     * of the same size. */
    for (int i = 0; i < 100; i++) {
        weft_green_opts q = {.stack_size = 32 * 1024};
        if (weft_green_spawn(&g, ret_arg, NULL, &q) != 0 ||
            weft_green_join(g, &r, WEFT_FOREVER) != 0)
            _exit(4);
    }
    if (weft_green_spawn(&g, overflow, NULL, &o) != 0)
        _exit(5);
    (void)weft_green_join(g, &r, WEFT_FOREVER);
    _exit(6); /* not reached */
}

START_TEST(overflow_on_recycled_stack_is_reported)
{
    int fds[2];
    char out[4096];
    size_t n = 0;
    ssize_t k;
    int status;

    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        overflow_child();
    }
    close(fds[1]);
    while (n < sizeof out - 1 &&
           (k = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child status %#x, output: %s", status, out);
    ck_assert_msg(strstr(out, "weft: stack overflow in green thread "
                              "deep-diver (stack 32768 bytes, spawned at "
                              "tests/unit/test_green_cache.c:") != NULL,
                  "output: %s", out);
}
END_TEST

static Suite *green_cache_suite(void)
{
    Suite *s = suite_create("green_cache");
    TCase *c = tcase_create("core");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, stacks_of_several_sizes_mix);
    tcase_add_test(c, recycled_struct_is_clean);
    tcase_add_test(c, shutdown_flushes_caches_and_restart_works);
    tcase_add_test(c, join_waits_times_out_and_joins_late);
    tcase_add_test(c, joiner_parked_in_green_thread_is_woken);
    tcase_add_test(c, overflow_on_recycled_stack_is_reported);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(green_cache_suite)
