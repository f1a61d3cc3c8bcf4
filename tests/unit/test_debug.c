/* test_debug.c - the dump (content for OS and green threads in known
 * states; racing spawns and exits) and the deadlock report (a lock-order
 * inversion between green threads; a green thread waiting on a queue
 * nobody fills while the main thread joins it; no report while a green
 * thread sleeps with a deadline or an OS thread may still act; once per
 * episode; WEFT_DEADLOCK=off), the dump on SIGQUIT, and misuse.
 *
 * In place of the monitor thread, a test's "poller" (a raw pthread, which
 * weft never sees) calls weft__debug_poll in a bounded loop; once the real
 * monitor calls it too, the rounds interleave harmlessly (one at a time).
 * Each Check test runs in its own process, so each starts its own
 * runtime and its own deadlock-check state. */
#include "support.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "debug/debug.h"
#include "green/green.h"
#include "thread/thread.h"

/* ---- helpers ---------------------------------------------------------- */

/* The dump's line for the thread named name ("'name'"), copied; or NULL. */
static char *line_of(const char *dump, const char *name)
{
    char pat[80];
    snprintf(pat, sizeof pat, "'%s'", name);
    const char *p = strstr(dump, pat);
    if (p == NULL)
        return NULL;
    const char *b = p, *e = strchr(p, '\n');
    while (b > dump && b[-1] != '\n')
        b--;
    return strndup(b, e ? (size_t)(e - b) : strlen(b));
}

/* Wait (bounded) until the dump's line for name contains want. */
static char *await_line(const char *name, const char *want)
{
    int64_t until = weft_deadline_in(MS(10000) * test_slow());
    for (;;) {
        char *d = test_dump(), *l = line_of(d, name);
        free(d);
        if (l != NULL && strstr(l, want) != NULL)
            return l;
        ck_assert_msg(weft_now() < until, "line of %s never had '%s': %s",
                      name, want, l ? l : "(none)");
        free(l);
        weft_sleep_until(weft_deadline_in(MS(1)));
    }
}

struct poller {
    _Atomic int stop;
    _Atomic int reports;
    int64_t bound;                /* ns of rounds at most */
    int stop_after;               /* stop once this many reports (0: no) */
    char first[4096];             /* the first report */
    void (*act)(struct poller *); /* the hook's action */
    void *arg;
    tt *t;
};

static void hook(const char *report, void *arg)
{
    struct poller *p = arg;
    if (atomic_fetch_add(&p->reports, 1) == 0)
        snprintf(p->first, sizeof p->first, "%s", report);
    if (p->act)
        p->act(p);
}

/* The monitor's stand-in: rounds every ~0.2 ms. */
static int poll_loop(void *arg)
{
    struct poller *p = arg;
    /* This thread drives rounds of the check itself, beside the monitor's:
     * it is not one of the program's threads for the verdict (else, asleep
     * with a deadline between rounds, it would be a thread that may act). */
    weft__thread_mark_system(weft_thread_current());
    int64_t until = weft_deadline_in(p->bound);
    while (!atomic_load(&p->stop) && weft_now() < until) {
        weft__debug_poll(weft_now());
        if (p->stop_after && atomic_load(&p->reports) >= p->stop_after)
            break;
        weft_sleep_until(weft_deadline_in(200 * 1000));
    }
    return 0;
}

static void poller_start(struct poller *p, int64_t bound, int stop_after)
{
    atomic_init(&p->stop, 0);
    atomic_init(&p->reports, 0);
    p->bound = bound * test_slow();
    p->stop_after = stop_after;
    p->first[0] = '\0';
    weft_set_deadlock_hook(hook, p);
    p->t = tt_start(poll_loop, p);
}

static void poller_stop(struct poller *p)
{
    atomic_store(&p->stop, 1);
    tt_join(p->t);
    weft_set_deadlock_hook(NULL, NULL);
}

/* ---- green thread bodies ---------------------------------------------- */

static weft_lock L1 = WEFT_LOCK_INIT, L2 = WEFT_LOCK_INIT;

static int take_lock(void *p)
{
    int rc = weft_lock_acquire(p, WEFT_FOREVER);
    if (rc == 0)
        weft_lock_release(p);
    return rc;
}

static int get_one(void *p)
{
    void *item = NULL;
    int rc = weft_queue_get(p, &item, WEFT_FOREVER);
    return rc != 0 ? rc : (int)(intptr_t)item;
}

static int sleep_long(void *p)
{
    (void)p;
    return weft_sleep_until(weft_deadline_in(MS(30000)));
}

static int spin_until(void *p)
{
    while (!atomic_load((_Atomic int *)p))
        ;
    return 0;
}

static weft_green *spawn_named(weft_green_fn fn, void *arg, const char *name)
{
    weft_green *g;
    weft_green_opts o = {name, 0};
    ck_assert_rc(weft_green_spawn(&g, fn, arg, &o), 0);
    return g;
}

/* ---- the dump --------------------------------------------------------- */

START_TEST(dump_shows_threads_in_known_states)
{
    weft_queue *q;
    _Atomic int stop = 0;
    char want[64];

    ck_assert_rc(weft_runtime_start(2), 0);
    ck_assert_rc(weft_queue_create(&q, WEFT_QUEUE_FIFO, 0), 0);
    ck_assert_rc(weft_lock_acquire(&L1, WEFT_FOREVER), 0);
    weft_green *a = spawn_named(take_lock, &L1, "locker");
    weft_green *b = spawn_named(get_one, q, "getter");
    weft_green *c = spawn_named(sleep_long, NULL, "sleeper");
    weft_green *d = spawn_named(spin_until, &stop, "spinner");

    snprintf(want, sizeof want, "on lock %p", (void *)&L1);
    char *l = await_line("locker", want);
    ck_assert_ptr_nonnull(strstr(l, "green thread 'locker' id "));
    ck_assert_ptr_nonnull(strstr(l, "spawned at tests/unit/test_debug.c:"));
    ck_assert_ptr_nonnull(strstr(l, ": waiting on lock"));
    ck_assert_ptr_nonnull(strstr(l, "no deadline"));
    free(l);
    snprintf(want, sizeof want, "on queue get %p", (void *)q);
    free(await_line("getter", want));
    free(await_line("sleeper", "on sleep"));
    /* A timed park stamps the wait once parked: wait for that too. */
    l = await_line("sleeper", ", for ");
    ck_assert_ptr_nonnull(strstr(l, "on sleep"));
    ck_assert_ptr_nonnull(strstr(l, "deadline in "));
    free(l);
    free(await_line("spinner", ": running"));

    char *dump = test_dump();
    ck_assert_ptr_nonnull(strstr(dump, "weft dump at "));
    ck_assert_ptr_nonnull(strstr(dump, "OS thread 'MainThread'"));
    ck_assert_ptr_nonnull(strstr(dump, "OS thread 'green-worker-0'"));
    ck_assert_ptr_nonnull(strstr(dump, "[green worker]"));
    l = line_of(dump, "MainThread");
    ck_assert_ptr_nonnull(strstr(l, "[dumping]: running"));
    free(l);
    free(dump);

    atomic_store(&stop, 1);
    weft_lock_release(&L1);
    ck_assert_rc(weft_queue_put(q, (void *)7, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_cancel(c), 0);
    int r;
    ck_assert_rc(weft_green_join(a, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert_rc(weft_green_join(b, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 7);
    ck_assert_rc(weft_green_join(c, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, -ECANCELED);
    ck_assert_rc(weft_green_join(d, NULL, WEFT_FOREVER), 0);
    /* An exited green thread whose handle is held shows as such. */
    weft_green *e = spawn_named(spin_until, &stop, "finished");
    free(await_line("finished", "exited, not joined"));
    ck_assert_rc(weft_green_join(e, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_destroy(q, NULL), 0);
}
END_TEST

static int os_waits_event(void *p)
{
    return weft_event_wait(p, WEFT_FOREVER);
}

START_TEST(dump_shows_os_thread_waiting_and_join)
{
    weft_event ev = WEFT_EVENT_INIT;
    weft_thread *t;
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    char want[64];
    o.name = "os-waiter";
    ck_assert_rc(weft_thread_start(&t, os_waits_event, &ev, &o), 0);
    snprintf(want, sizeof want, "waiting on event %p", (void *)&ev);
    free(await_line("os-waiter", want));
    /* The wait is stamped once the thread sleeps on its futex, after its
     * spin: wait for that too (the first line may catch it spinning). */
    char *l = await_line("os-waiter", ", for ");
    ck_assert_ptr_nonnull(strstr(l, "OS thread 'os-waiter' id "));
    ck_assert_ptr_nonnull(strstr(l, want));
    free(l);
    weft_event_set(&ev);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
}
END_TEST

static int short_green(void *p)
{
    (void)p;
    return weft_green_yield();
}

static int spawner(void *p)
{
    _Atomic int *stop = p;
    while (!atomic_load(stop)) {
        weft_green *g[16];
        for (int i = 0; i < 16; i++)
            ck_assert_rc(weft_green_spawn(&g[i], short_green, NULL, NULL), 0);
        for (int i = 0; i < 16; i++)
            ck_assert_rc(weft_green_join(g[i], NULL, WEFT_FOREVER), 0);
        weft_green_spawn(NULL, short_green, NULL, NULL); /* detached */
    }
    return 0;
}

START_TEST(dump_races_spawns_and_exits)
{
    _Atomic int stop = 0;
    FILE *f = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_rc(weft_runtime_start(2), 0);
    tt *s1 = tt_start(spawner, &stop), *s2 = tt_start(spawner, &stop);
    long n = 200 * test_scale();
    for (long i = 0; i < n; i++) {
        ck_assert_rc(weft_dump(f), 0);
        weft__debug_poll(weft_now()); /* the check races them too */
    }
    atomic_store(&stop, 1);
    ck_assert_int_eq(tt_join(s1), 0);
    ck_assert_int_eq(tt_join(s2), 0);
    fclose(f);
    ck_assert_rc(weft_runtime_shutdown(weft_deadline_in(MS(10000))), 0);
}
END_TEST

START_TEST(dump_rejects_null_stream)
{
    ck_assert_rc(weft_dump(NULL), -EINVAL);
}
END_TEST

/* ---- the deadlock report ---------------------------------------------- */

static weft_barrier *both_hold;
static weft_green *ga, *gb;

static int lock_a_then_b(void *p)
{
    (void)p;
    ck_assert_rc(weft_lock_acquire(&L1, WEFT_FOREVER), 0);
    weft_barrier_wait(both_hold, WEFT_FOREVER);
    int rc = weft_lock_acquire(&L2, WEFT_FOREVER);
    if (rc == 0)
        weft_lock_release(&L2);
    weft_lock_release(&L1);
    return rc;
}

static int lock_b_then_a(void *p)
{
    (void)p;
    ck_assert_rc(weft_lock_acquire(&L2, WEFT_FOREVER), 0);
    weft_barrier_wait(both_hold, WEFT_FOREVER);
    int rc = weft_lock_acquire(&L1, WEFT_FOREVER);
    if (rc == 0)
        weft_lock_release(&L1);
    weft_lock_release(&L2);
    return rc;
}

static void cancel_a(struct poller *p)
{
    (void)p;
    weft_green_cancel(ga);
}

START_TEST(deadlock_lock_order_inversion)
{
    struct poller p = {.act = cancel_a};
    char want[128];
    int ra = 1, rb = 1;

    ck_assert_rc(weft_barrier_create(&both_hold, 2, NULL, NULL), 0);
    ga = spawn_named(lock_a_then_b, NULL, "A");
    gb = spawn_named(lock_b_then_a, NULL, "B");
    poller_start(&p, MS(20000), 1);
    ck_assert_rc(weft_green_join(ga, &ra, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_join(gb, &rb, WEFT_FOREVER), 0);
    poller_stop(&p);
    ck_assert_int_eq(ra, -ECANCELED); /* the hook broke the deadlock */
    ck_assert_int_eq(rb, 0);
    ck_assert_int_eq(atomic_load(&p.reports), 1);
    ck_assert_msg(strstr(p.first, "deadlock: all 2 green threads are asleep"),
                  "%s", p.first);
    snprintf(want, sizeof want, "waits on lock %p held by green thread 'B'",
             (void *)&L2);
    ck_assert_msg(strstr(p.first, want), "%s", p.first);
    snprintf(want, sizeof want, "waits on lock %p held by green thread 'A'",
             (void *)&L1);
    ck_assert_msg(strstr(p.first, want), "%s", p.first);
    ck_assert_msg(strstr(p.first, "OS thread 'MainThread"), "%s", p.first);
    ck_assert_msg(strstr(p.first, "(join of green thread 'A')"), "%s",
                  p.first);
    ck_assert_msg(strstr(p.first, "spawned at tests/unit/test_debug.c:"),
                  "%s", p.first);
    ck_assert_rc(weft_barrier_destroy(both_hold), 0);
}
END_TEST

static weft_queue *Q;

static void put_item(struct poller *p)
{
    (void)p;
    ck_assert_rc(weft_queue_put(Q, (void *)42, WEFT_FOREVER), 0);
}

START_TEST(deadlock_queue_nobody_fills)
{
    struct poller p = {.act = put_item};
    char want[96];
    int r = 0;

    ck_assert_rc(weft_queue_create(&Q, WEFT_QUEUE_FIFO, 0), 0);
    weft_green *g = spawn_named(get_one, Q, "consumer");
    poller_start(&p, MS(20000), 1);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    poller_stop(&p);
    ck_assert_int_eq(r, 42);
    ck_assert_int_eq(atomic_load(&p.reports), 1);
    ck_assert_msg(strstr(p.first, "all 1 green thread is asleep"), "%s",
                  p.first);
    snprintf(want, sizeof want, "green thread 'consumer' (id %llu",
             (unsigned long long)weft_green_id(g));
    ck_assert_msg(strstr(p.first, want), "%s", p.first);
    snprintf(want, sizeof want, "waits on queue get %p", (void *)Q);
    ck_assert_msg(strstr(p.first, want), "%s", p.first);
    ck_assert_msg(strstr(p.first, "(join of green thread 'consumer')"), "%s",
                  p.first);
    ck_assert_rc(weft_queue_destroy(Q, NULL), 0);
}
END_TEST

static int sleep_300ms(void *p)
{
    (void)p;
    return weft_sleep_until(weft_deadline_in(MS(300)));
}

START_TEST(no_report_while_a_green_thread_sleeps_with_a_deadline)
{
    struct poller p = {0};

    ck_assert_rc(weft_queue_create(&Q, WEFT_QUEUE_FIFO, 0), 0);
    weft_green *g = spawn_named(get_one, Q, "stuck");
    weft_green *s = spawn_named(sleep_300ms, NULL, "sleeper");
    poller_start(&p, MS(20000), 0);
    ck_assert_rc(weft_green_join(s, NULL, WEFT_FOREVER), 0);
    poller_stop(&p);
    ck_assert_int_eq(atomic_load(&p.reports), 0);
    ck_assert_rc(weft_queue_put(Q, (void *)1, WEFT_FOREVER), 0);
    ck_assert_rc(weft_green_join(g, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_destroy(Q, NULL), 0);
}
END_TEST

static int os_fills_later(void *p)
{
    weft_event never = WEFT_EVENT_INIT;
    (void)p;
    /* An OS thread with a deadline may act when it passes. */
    weft_event_wait(&never, weft_deadline_in(MS(300)));
    return weft_queue_put(Q, (void *)5, WEFT_FOREVER);
}

START_TEST(no_report_while_an_os_thread_may_act)
{
    struct poller p = {0};
    weft_thread *t;
    int r = 0;

    ck_assert_rc(weft_queue_create(&Q, WEFT_QUEUE_FIFO, 0), 0);
    weft_green *g = spawn_named(get_one, Q, "waits-for-os");
    ck_assert_rc(weft_thread_start(&t, os_fills_later, NULL, NULL), 0);
    poller_start(&p, MS(20000), 0);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    poller_stop(&p);
    ck_assert_int_eq(r, 5);
    ck_assert_int_eq(atomic_load(&p.reports), 0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_queue_destroy(Q, NULL), 0);
}
END_TEST

static int read_forever(void *p)
{
    char c;
    return (int)weft_read((int)(intptr_t)p, &c, 1, WEFT_FOREVER);
}

static int write_after_rounds(void *p)
{
    int fd = (int)(intptr_t)p;
    weft__thread_mark_system(weft_thread_current());
    int64_t until = weft_deadline_in(MS(100));
    while (weft_now() < until) {
        weft__debug_poll(weft_now());
        weft_sleep_until(weft_deadline_in(200 * 1000));
    }
    return write(fd, "x", 1) == 1 ? 0 : -1;
}

/* A green thread parked on a socket can be woken from outside the
 * process: not a deadlock, even with every thread asleep. */
START_TEST(no_report_while_a_green_thread_waits_for_io)
{
    struct poller p = {0};
    int sv[2], r = 0;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    atomic_init(&p.reports, 0);
    weft_set_deadlock_hook(hook, &p);
    weft_green *g = spawn_named(read_forever, (void *)(intptr_t)sv[0],
                                "reader");
    tt *t = tt_start(write_after_rounds, (void *)(intptr_t)sv[1]);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(tt_join(t), 0);
    ck_assert_int_eq(r, 1);
    ck_assert_int_eq(atomic_load(&p.reports), 0);
    weft_close(sv[0]);
    weft_close(sv[1]);
}
END_TEST

static int get_two(void *p)
{
    int a = get_one(p), b = get_one(p);
    return a + b;
}

/* The poller waits for a report, keeps polling (no second one: same
 * episode), resolves it, then sees the next episode reported. */
static int poll_episodes(void *arg)
{
    struct poller *p = arg;
    /* This thread drives rounds of the check itself, beside the monitor's:
     * it is not one of the program's threads for the verdict (else, asleep
     * with a deadline between rounds, it would be a thread that may act). */
    weft__thread_mark_system(weft_thread_current());
    int64_t until = weft_deadline_in(p->bound);
    for (int episode = 1; episode <= 2; episode++) {
        while (atomic_load(&p->reports) < episode && weft_now() < until) {
            weft__debug_poll(weft_now());
            weft_sleep_until(weft_deadline_in(200 * 1000));
        }
        int64_t more = weft_deadline_in(MS(50));
        while (weft_now() < more) {
            weft__debug_poll(weft_now());
            weft_sleep_until(weft_deadline_in(200 * 1000));
        }
        if (atomic_load(&p->reports) != episode)
            return -1;
        weft_queue_put(Q, (void *)(intptr_t)(10 * episode), WEFT_FOREVER);
    }
    return 0;
}

START_TEST(deadlock_reported_once_per_episode)
{
    struct poller p = {0};
    int r = 0;

    ck_assert_rc(weft_queue_create(&Q, WEFT_QUEUE_FIFO, 0), 0);
    weft_green *g = spawn_named(get_two, Q, "twice");
    atomic_init(&p.reports, 0);
    p.bound = MS(20000) * test_slow();
    weft_set_deadlock_hook(hook, &p);
    tt *t = tt_start(poll_episodes, &p);
    ck_assert_rc(weft_green_join(g, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(tt_join(t), 0);
    ck_assert_int_eq(r, 30);
    ck_assert_int_eq(atomic_load(&p.reports), 2);
    ck_assert_rc(weft_queue_destroy(Q, NULL), 0);
}
END_TEST

static int fill_after_rounds(void *arg)
{
    struct poller *p = arg;
    /* This thread drives rounds of the check itself, beside the monitor's:
     * it is not one of the program's threads for the verdict (else, asleep
     * with a deadline between rounds, it would be a thread that may act). */
    weft__thread_mark_system(weft_thread_current());
    int64_t until = weft_deadline_in(MS(100));
    while (weft_now() < until) {
        weft__debug_poll(weft_now());
        weft_sleep_until(weft_deadline_in(200 * 1000));
    }
    return weft_queue_put(Q, (void *)3, WEFT_FOREVER) == 0 &&
                   atomic_load(&p->reports) == 0
               ? 0
               : -1;
}

START_TEST(deadlock_check_off_by_environment)
{
    struct poller p = {0};
    setenv("WEFT_DEADLOCK", "off", 1);
    ck_assert_rc(weft_queue_create(&Q, WEFT_QUEUE_FIFO, 0), 0);
    weft_green *g = spawn_named(get_one, Q, "ignored");
    atomic_init(&p.reports, 0);
    weft_set_deadlock_hook(hook, &p);
    tt *t = tt_start(fill_after_rounds, &p);
    ck_assert_rc(weft_green_join(g, NULL, WEFT_FOREVER), 0);
    ck_assert_int_eq(tt_join(t), 0);
    ck_assert_rc(weft_queue_destroy(Q, NULL), 0);
}
END_TEST

/* ---- SIGQUIT ---------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(dump_on_sigquit_goes_to_the_log)
{
    char path[] = "/tmp/weft-dump-XXXXXX";
    struct sigaction sa, before;
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_rc(weft_log_set_file(path), 0);
    weft_green *g = spawn_named(sleep_long, NULL, "napper");
    /* Asleep before the signal, so that the dump it brings shows it so. */
    free(await_line("napper", "on sleep"));
    ck_assert_int_eq(sigaction(SIGQUIT, NULL, &before), 0);
    ck_assert_rc(weft_dump_on_sigquit(1), 0);
    ck_assert_rc(weft_dump_on_sigquit(1), 0); /* idempotent */
    ck_assert_int_eq(raise(SIGQUIT), 0);
    /* The monitor serves it; without one (or before it lands), poll
     * ourselves once we have seen that nobody polls. */
    int64_t t0 = weft_now(), until = weft_deadline_in(MS(10000) * test_slow());
    char *text = NULL;
    for (;;) {
        free(text);
        text = slurp(path);
        if (strstr(text, "'napper'") != NULL)
            break;
        ck_assert_msg(weft_now() < until, "no dump: %s", text);
        if (weft_now() - t0 > MS(2000) && weft__debug_polls() == 0)
            weft__debug_poll(weft_now());
        weft_sleep_until(weft_deadline_in(MS(1)));
    }
    ck_assert_ptr_nonnull(strstr(text, "weft dump at "));
    ck_assert_ptr_nonnull(strstr(text, "on sleep"));
    free(text);
    ck_assert_rc(weft_dump_on_sigquit(0), 0);
    ck_assert_int_eq(sigaction(SIGQUIT, NULL, &sa), 0);
    /* The previous disposition is back (SIG_DFL, or what a sanitizer's
     * runner set). */
    ck_assert_ptr_eq((void *)sa.sa_handler, (void *)before.sa_handler);
    ck_assert_rc(weft_dump_on_sigquit(0), 0);
    ck_assert_rc(weft_green_cancel(g), 0);
    ck_assert_rc(weft_green_join(g, NULL, WEFT_FOREVER), 0);
    weft_log_set_fd(-1);
    unlink(path);
}
END_TEST

static Suite *debug_suite(void)
{
    Suite *s = suite_create("debug");
    TCase *c = tcase_create("debug");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, dump_shows_threads_in_known_states);
    tcase_add_test(c, dump_shows_os_thread_waiting_and_join);
    tcase_add_test(c, dump_races_spawns_and_exits);
    tcase_add_test(c, dump_rejects_null_stream);
    tcase_add_test(c, deadlock_lock_order_inversion);
    tcase_add_test(c, deadlock_queue_nobody_fills);
    tcase_add_test(c, no_report_while_a_green_thread_sleeps_with_a_deadline);
    tcase_add_test(c, no_report_while_an_os_thread_may_act);
    tcase_add_test(c, no_report_while_a_green_thread_waits_for_io);
    tcase_add_test(c, deadlock_reported_once_per_episode);
    tcase_add_test(c, deadlock_check_off_by_environment);
    tcase_add_test(c, dump_on_sigquit_goes_to_the_log);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(debug_suite)
