/* test_thread.c - weft_thread: start/join results and errors, detach,
 * names (weft's and the OS's), ids, current/main, enumerate, daemon
 * inheritance, stack sizes, the failure hook, join_all and the exit policy.
 */
#include "support.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Tests that make threads fail on purpose do not want the log lines. */
static void quiet_hook(weft_thread *t, int rc)
{
    (void)t;
    (void)rc;
}

static void setup(void)
{
    weft_thread_set_failure_hook(quiet_hook);
}

static long my_tid(void)
{
    return (long)syscall(SYS_gettid);
}

static int ret_arg(void *p)
{
    return (int)(intptr_t)p;
}

/* Waits for the event passed as arg, then returns 0. */
static int wait_ev(void *p)
{
    return weft_event_wait(p, WEFT_FOREVER);
}

static weft_thread *start(weft_thread_fn fn, void *arg)
{
    weft_thread *t = NULL;
    ck_assert_rc(weft_thread_start(&t, fn, arg, NULL), 0);
    ck_assert_ptr_nonnull(t);
    return t;
}

START_TEST(start_and_join_returns_result)
{
    int r = -1;
    weft_thread *t = start(ret_arg, (void *)(intptr_t)42);
    ck_assert_rc(weft_thread_join(t, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 42);
    t = start(ret_arg, (void *)(intptr_t)0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
}
END_TEST

START_TEST(start_rejects_bad_args)
{
    weft_thread *t = NULL;
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    ck_assert_rc(weft_thread_start(NULL, ret_arg, NULL, NULL), -EINVAL);
    ck_assert_rc(weft_thread_start(&t, NULL, NULL, NULL), -EINVAL);
    o.daemon = 2;
    ck_assert_rc(weft_thread_start(&t, ret_arg, NULL, &o), -EINVAL);
    o.daemon = -1;
    o.stack_size = 16 * 1024;
    ck_assert_rc(weft_thread_start(&t, ret_arg, NULL, &o), -EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

START_TEST(join_deadline_times_out_then_joins)
{
    weft_event ev = WEFT_EVENT_INIT;
    weft_thread *t = start(wait_ev, &ev);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_thread_join(t, NULL, weft_deadline_in(MS(50))),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    ck_assert(weft_thread_is_alive(t));
    weft_event_set(&ev);
    int r = -1;
    ck_assert_rc(weft_thread_join(t, &r, weft_deadline_in(MS(5000))), 0);
    ck_assert_int_eq(r, 0);
}
END_TEST

static int self_join(void *p)
{
    (void)p;
    return weft_thread_join(weft_thread_current(), NULL, WEFT_FOREVER);
}

START_TEST(self_join_is_edeadlk)
{
    int r = 0;
    weft_thread *t = start(self_join, NULL);
    ck_assert_rc(weft_thread_join(t, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, -EDEADLK);
}
END_TEST

START_TEST(join_main_or_foreign_is_einval)
{
    ck_assert_rc(weft_thread_join(NULL, NULL, WEFT_FOREVER), -EINVAL);
    /* Joining oneself (the main thread) is a deadlock. */
    ck_assert_rc(weft_thread_join(weft_thread_main(), NULL, WEFT_NOW),
                 -EDEADLK);
    ck_assert_rc(weft_thread_detach(weft_thread_main()), -EINVAL);
}
END_TEST

static int join_main(void *p)
{
    (void)p;
    return weft_thread_join(weft_thread_main(), NULL, WEFT_NOW);
}

START_TEST(join_main_from_other_thread_is_einval)
{
    int r = 0;
    (void)weft_thread_current();
    weft_thread *t = start(join_main, NULL);
    ck_assert_rc(weft_thread_join(t, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, -EINVAL);
}
END_TEST

struct detach_arg {
    weft_event go, done;
};

static int detached_body(void *p)
{
    struct detach_arg *a = p;
    weft_event_wait(&a->go, WEFT_FOREVER);
    weft_event_set(&a->done);
    return 0;
}

START_TEST(detach_lets_thread_finish_alone)
{
    struct detach_arg a = {WEFT_EVENT_INIT, WEFT_EVENT_INIT};
    weft_thread *t = start(detached_body, &a);
    weft_thread *list[8];
    ck_assert_int_eq(weft_thread_enumerate(list, 8), 2);
    ck_assert_rc(weft_thread_detach(t), 0);
    /* A borrowed (enumerate) reference to a detached thread cannot join or
     * detach it again. */
    weft_thread *other = list[0] == weft_thread_main() ? list[1] : list[0];
    ck_assert_ptr_eq(other, t);
    ck_assert_rc(weft_thread_detach(other), -EINVAL);
    ck_assert_rc(weft_thread_join(other, NULL, WEFT_NOW), -EINVAL);
    weft_event_set(&a.go);
    ck_assert_rc(weft_event_wait(&a.done, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_thread_join_all(weft_deadline_in(MS(5000))), 0);
    ck_assert(!weft_thread_is_alive(other));
    weft_thread_release(list[0]);
    weft_thread_release(list[1]);
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

START_TEST(is_alive_before_and_after)
{
    weft_event ev = WEFT_EVENT_INIT;
    weft_thread *t = start(wait_ev, &ev);
    ck_assert(weft_thread_is_alive(t));
    weft_event_set(&ev);
    /* join_all waits for it without consuming the handle. */
    ck_assert_rc(weft_thread_join_all(weft_deadline_in(MS(5000))), 0);
    ck_assert(!weft_thread_is_alive(t));
    ck_assert_int_eq(weft_thread_native_id(t), 0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_NOW), 0);
    ck_assert(!weft_thread_is_alive(NULL));
}
END_TEST

struct name_probe {
    char weft[WEFT_THREAD_NAME_MAX];
    char os[32];
    weft_event ready, go;
};

static int probe_names(void *p)
{
    struct name_probe *n = p;
    weft_event_set(&n->ready);
    weft_event_wait(&n->go, WEFT_FOREVER);
    snprintf(n->weft, sizeof n->weft, "%s",
             weft_thread_name(weft_thread_current()));
    pthread_getname_np(pthread_self(), n->os, sizeof n->os);
    return 0;
}

START_TEST(default_names_are_thread_n)
{
    weft_thread *a = start(ret_arg, NULL), *b = start(ret_arg, NULL);
    unsigned na = 0, nb = 0;
    ck_assert_int_eq(sscanf(weft_thread_name(a), "Thread-%u", &na), 1);
    ck_assert_int_eq(sscanf(weft_thread_name(b), "Thread-%u", &nb), 1);
    ck_assert_uint_gt(nb, na);
    ck_assert_rc(weft_thread_join(a, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_thread_join(b, NULL, WEFT_FOREVER), 0);
}
END_TEST

START_TEST(explicit_name_sets_os_name)
{
    struct name_probe n = {.ready = WEFT_EVENT_INIT, .go = WEFT_EVENT_INIT};
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *t;
    o.name = "a-rather-long-worker-name";
    weft_event_set(&n.go);
    ck_assert_rc(weft_thread_start(&t, probe_names, &n, &o), 0);
    ck_assert_str_eq(weft_thread_name(t), "a-rather-long-worker-name");
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_str_eq(n.weft, "a-rather-long-worker-name");
    ck_assert_str_eq(n.os, "a-rather-long-w"); /* 15 bytes */
}
END_TEST

START_TEST(rename_running_thread_renames_os_thread)
{
    struct name_probe n = {.ready = WEFT_EVENT_INIT, .go = WEFT_EVENT_INIT};
    weft_thread *t = start(probe_names, &n);
    weft_event_wait(&n.ready, WEFT_FOREVER);
    ck_assert_rc(weft_thread_set_name(t, "renamed"), 0);
    ck_assert_str_eq(weft_thread_name(t), "renamed");
    ck_assert_rc(weft_thread_set_name(t, NULL), -EINVAL);
    ck_assert_rc(weft_thread_set_name(NULL, "x"), -EINVAL);
    weft_event_set(&n.go);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_str_eq(n.weft, "renamed");
    ck_assert_str_eq(n.os, "renamed");
}
END_TEST

static int rename_self(void *p)
{
    char os[32];
    (void)p;
    if (weft_thread_set_name(weft_thread_current(), "selfnamed"))
        return 1;
    pthread_getname_np(pthread_self(), os, sizeof os);
    return strcmp(os, "selfnamed") != 0 ||
           strcmp(weft_thread_name(weft_thread_current()), "selfnamed") != 0;
}

START_TEST(rename_self_and_after_exit)
{
    int r = -1;
    weft_thread *t = start(rename_self, NULL);
    ck_assert_rc(weft_thread_join_all(WEFT_FOREVER), 0);
    /* Renaming an ended thread only changes weft's name. */
    ck_assert_rc(weft_thread_set_name(t, "later"), 0);
    ck_assert_str_eq(weft_thread_name(t), "later");
    ck_assert_rc(weft_thread_join(t, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
}
END_TEST

struct ids {
    long native_inside, tid_inside;
    uint64_t ident_inside;
    weft_thread *cur;
};

static int probe_ids(void *p)
{
    struct ids *i = p;
    i->cur = weft_thread_current();
    i->native_inside = weft_thread_native_id(i->cur);
    i->tid_inside = my_tid();
    i->ident_inside = weft_thread_get_ident();
    return 0;
}

START_TEST(ids_unique_and_native_id_is_gettid)
{
    struct ids v[8];
    weft_thread *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = start(probe_ids, &v[i]);
    uint64_t id[8];
    for (int i = 0; i < 8; i++) {
        id[i] = weft_thread_id(t[i]);
        ck_assert_uint_ne(id[i], 0);
    }
    for (int i = 0; i < 8; i++) {
        ck_assert_rc(weft_thread_join(t[i], NULL, WEFT_FOREVER), 0);
        ck_assert_int_eq(v[i].native_inside, v[i].tid_inside);
        ck_assert_uint_eq(v[i].ident_inside, id[i]);
        ck_assert_ptr_eq(v[i].cur, t[i]);
        for (int j = 0; j < i; j++)
            ck_assert_uint_ne(id[i], id[j]);
    }
    ck_assert_uint_ne(weft_thread_get_ident(), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_ne(weft_thread_get_ident(), id[i]);
}
END_TEST

START_TEST(main_thread_handle_from_main)
{
    weft_thread *m = weft_thread_current();
    ck_assert_ptr_eq(m, weft_thread_main());
    ck_assert_str_eq(weft_thread_name(m), "MainThread");
    ck_assert(!weft_thread_is_daemon(m));
    ck_assert(weft_thread_is_alive(m));
    ck_assert_int_eq(weft_thread_native_id(m), (long)getpid());
    ck_assert_int_eq(weft_thread_native_id(m), my_tid());
    ck_assert_ptr_eq(weft_thread_current(), m);
}
END_TEST

struct mainprobe {
    weft_thread *main_seen, *cur;
};

static int probe_main(void *p)
{
    struct mainprobe *m = p;
    m->main_seen = weft_thread_main();
    m->cur = weft_thread_current();
    return 0;
}

START_TEST(main_thread_from_other_thread_first)
{
    struct mainprobe mp = {0};
    weft_thread *t = start(probe_main, &mp);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_ptr_nonnull(mp.main_seen);
    ck_assert_ptr_ne(mp.main_seen, mp.cur);
    ck_assert_str_eq(weft_thread_name(mp.main_seen), "MainThread");
    /* The main thread binds to the handle created elsewhere. */
    ck_assert_ptr_eq(weft_thread_current(), mp.main_seen);
}
END_TEST

struct foreign_probe {
    weft_thread *cur;
    char name[WEFT_THREAD_NAME_MAX];
    bool daemon, alive;
    long native, tid;
    int count_inside;
    weft_event adopted, go;
};

static int foreign_body(void *p)
{
    struct foreign_probe *f = p;
    f->cur = weft_thread_current();
    snprintf(f->name, sizeof f->name, "%s", weft_thread_name(f->cur));
    f->daemon = weft_thread_is_daemon(f->cur);
    f->alive = weft_thread_is_alive(f->cur);
    f->native = weft_thread_native_id(f->cur);
    f->tid = my_tid();
    f->count_inside = weft_thread_active_count();
    ck_assert_ptr_eq(weft_thread_current(), f->cur);
    weft_event_set(&f->adopted);
    weft_event_wait(&f->go, WEFT_FOREVER);
    return weft_thread_join(f->cur, NULL, WEFT_NOW);
}

START_TEST(foreign_thread_is_adopted_and_released)
{
    struct foreign_probe f = {.adopted = WEFT_EVENT_INIT,
                              .go = WEFT_EVENT_INIT};
    (void)weft_thread_current();
    tt *t = tt_start(foreign_body, &f);
    weft_event_wait(&f.adopted, WEFT_FOREVER);
    unsigned n;
    ck_assert_int_eq(sscanf(f.name, "Dummy-%u", &n), 1);
    ck_assert(f.daemon);
    ck_assert(f.alive);
    ck_assert_int_eq(f.native, f.tid);
    ck_assert_int_eq(f.count_inside, 2);
    ck_assert_int_eq(weft_thread_active_count(), 2);
    /* A dummy thread is not joinable. */
    ck_assert_rc(weft_thread_join(f.cur, NULL, WEFT_NOW), -EINVAL);
    ck_assert_rc(weft_thread_detach(f.cur), -EINVAL);
    weft_event_set(&f.go);
    /* ...and joining itself is still a deadlock. */
    ck_assert_rc(tt_join(t), -EDEADLK);
    /* Its handle left the registry when it exited. */
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

struct gate {
    weft_event started;
    _Atomic int n;
    weft_event go;
};

static int gate_body(void *p)
{
    struct gate *g = p;
    atomic_fetch_add(&g->n, 1);
    weft_event_wait(&g->go, WEFT_FOREVER);
    return 0;
}

START_TEST(enumerate_counts_exactly)
{
    struct gate g = {WEFT_EVENT_INIT, 0, WEFT_EVENT_INIT};
    weft_thread *t[5], *list[16];
    for (int i = 0; i < 5; i++)
        t[i] = start(gate_body, &g);
    ck_assert_int_eq(weft_thread_active_count(), 6);
    int n = weft_thread_enumerate(list, 16);
    ck_assert_int_eq(n, 6);
    int found = 0, main_found = 0;
    for (int i = 0; i < n; i++) {
        main_found += list[i] == weft_thread_main();
        for (int j = 0; j < 5; j++)
            found += list[i] == t[j];
    }
    ck_assert_int_eq(found, 5);
    ck_assert_int_eq(main_found, 1);
    for (int i = 0; i < n; i++)
        weft_thread_release(list[i]);
    /* A short buffer: fills what fits and returns the full count. */
    ck_assert_int_eq(weft_thread_enumerate(list, 2), 6);
    weft_thread_release(list[0]);
    weft_thread_release(list[1]);
    ck_assert_int_eq(weft_thread_enumerate(NULL, 0), 6);
    weft_event_set(&g.go);
    for (int i = 0; i < 5; i++)
        ck_assert_rc(weft_thread_join(t[i], NULL, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

/* Holds an enumerate reference across the thread's end and join. */
START_TEST(enumerate_reference_outlives_join)
{
    weft_event ev = WEFT_EVENT_INIT;
    weft_thread *t = start(wait_ev, &ev), *list[4];
    ck_assert_rc(weft_thread_set_name(t, "kept"), 0);
    ck_assert_int_eq(weft_thread_enumerate(list, 4), 2);
    weft_event_set(&ev);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    for (int i = 0; i < 2; i++) {
        if (list[i] != weft_thread_main()) {
            ck_assert_str_eq(weft_thread_name(list[i]), "kept");
            ck_assert(!weft_thread_is_alive(list[i]));
        }
        weft_thread_release(list[i]);
    }
}
END_TEST

struct daemon_probe {
    bool child_daemon;
    int rc;
};

static int start_child_report(void *p)
{
    struct daemon_probe *d = p;
    weft_thread *c;
    d->rc = weft_thread_start(&c, ret_arg, NULL, NULL);
    if (d->rc)
        return d->rc;
    d->child_daemon = weft_thread_is_daemon(c);
    return weft_thread_join(c, NULL, WEFT_FOREVER);
}

START_TEST(daemon_is_inherited)
{
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    struct daemon_probe d1 = {true, 0}, d2 = {false, 0}, d3 = {false, 0};
    weft_thread *t;

    /* From main: non-daemon. */
    ck_assert_rc(weft_thread_start(&t, start_child_report, &d1, &o), 0);
    ck_assert(!weft_thread_is_daemon(t));
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert(!d1.child_daemon);
    /* From a daemon: daemon. */
    o.daemon = 1;
    ck_assert_rc(weft_thread_start(&t, start_child_report, &d2, &o), 0);
    ck_assert(weft_thread_is_daemon(t));
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert(d2.child_daemon);
    /* From a foreign (dummy, daemon) thread: daemon, as in Python. */
    ck_assert_rc(tt_join(tt_start(start_child_report, &d3)), 0);
    ck_assert(d3.child_daemon);
    /* Explicit 0 wins over inheritance. */
    o.daemon = 0;
    ck_assert_rc(weft_thread_start(&t, ret_arg, NULL, &o), 0);
    ck_assert(!weft_thread_is_daemon(t));
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
}
END_TEST

static int report_stack(void *p)
{
    pthread_attr_t a;
    size_t *sz = p;
    if (pthread_getattr_np(pthread_self(), &a))
        return 1;
    pthread_attr_getstacksize(&a, sz);
    pthread_attr_destroy(&a);
    return 0;
}

START_TEST(stack_size_option_and_default)
{
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *t;
    size_t got = 0, old = 1;
    o.stack_size = 512 * 1024;
    ck_assert_rc(weft_thread_start(&t, report_stack, &got, &o), 0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_uint_ge(got, 512 * 1024);
    ck_assert_uint_lt(got, 2 * 512 * 1024); /* sanitizers add some */

    ck_assert_rc(weft_thread_stack_size(1024, &old), -EINVAL);
    ck_assert_rc(weft_thread_stack_size(32 * 1024 - 1, NULL), -EINVAL);
    ck_assert_rc(weft_thread_stack_size(768 * 1024, &old), 0);
    ck_assert_uint_eq(old, 0);
    ck_assert_rc(weft_thread_start(&t, report_stack, &got, NULL), 0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_uint_ge(got, 768 * 1024);
    ck_assert_uint_lt(got, 2 * 768 * 1024);
    ck_assert_rc(weft_thread_stack_size(0, &old), 0);
    ck_assert_uint_eq(old, 768 * 1024);
    ck_assert_rc(weft_thread_stack_size(0, &old), 0);
    ck_assert_uint_eq(old, 0);
}
END_TEST

static _Atomic int hook_calls, hook_rc;
static weft_thread *_Atomic hook_thread;
static _Atomic bool hook_on_thread;

static void my_hook(weft_thread *t, int rc)
{
    atomic_fetch_add(&hook_calls, 1);
    atomic_store(&hook_rc, rc);
    atomic_store(&hook_thread, t);
    atomic_store(&hook_on_thread, weft_thread_current() == t);
}

START_TEST(failure_hook_gets_rc_on_failing_thread)
{
    ck_assert_ptr_eq(weft_thread_set_failure_hook(NULL), quiet_hook);
    weft_thread_failure_hook dflt = weft_thread_set_failure_hook(my_hook);
    ck_assert_ptr_nonnull(dflt);
    weft_thread *t = start(ret_arg, (void *)(intptr_t)-ETIMEDOUT);
    int r = 0;
    ck_assert_rc(weft_thread_join(t, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&hook_calls), 1);
    ck_assert_int_eq(atomic_load(&hook_rc), -ETIMEDOUT);
    ck_assert_ptr_eq(atomic_load(&hook_thread), t);
    ck_assert(atomic_load(&hook_on_thread));
    /* Success does not call it. */
    t = start(ret_arg, NULL);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_int_eq(atomic_load(&hook_calls), 1);
    /* NULL restores the default; the returned pointer can too. */
    ck_assert_ptr_eq(weft_thread_set_failure_hook(NULL), my_hook);
    ck_assert_ptr_eq(weft_thread_set_failure_hook(dflt), dflt);
    ck_assert_ptr_eq(weft_thread_set_failure_hook(NULL), dflt);
}
END_TEST

static char *read_all(int fd)
{
    static char buf[8192];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return buf;
}

START_TEST(default_failure_hook_logs_one_error_line)
{
    int p[2];
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *t;
    weft_thread_set_failure_hook(NULL);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_rc(weft_log_set_fd(p[1]), 0);
    o.name = "failer";
    ck_assert_rc(weft_thread_start(&t, ret_arg, (void *)(intptr_t)-EPIPE, &o),
                 0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    o.name = "odd";
    ck_assert_rc(weft_thread_start(&t, ret_arg, (void *)(intptr_t)7, &o), 0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(weft_log_set_fd(-1), 0);
    close(p[1]);
    char *out = read_all(p[0]);
    close(p[0]);
    ck_assert_msg(strstr(out, "ERROR    [failer] thread failer failed: EPIPE "
                              "(shut down)\n") != NULL, "got: %s", out);
    ck_assert_msg(strstr(out, "[odd] thread odd failed: 7 (") != NULL,
                  "got: %s", out);
    int lines = 0;
    for (char *c = out; *c; c++)
        lines += *c == '\n';
    ck_assert_int_eq(lines, 2);
}
END_TEST

START_TEST(join_all_waits_with_deadline)
{
    weft_event ev = WEFT_EVENT_INIT;
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *a = start(wait_ev, &ev), *b = start(wait_ev, &ev), *d;
    o.daemon = 1;
    ck_assert_rc(weft_thread_start(&d, wait_ev, &ev, &o), 0);
    int64_t t0 = weft_now();
    ck_assert_rc(weft_thread_join_all(WEFT_NOW), -ETIMEDOUT);
    ck_assert_rc(weft_thread_join_all(weft_deadline_in(MS(50))), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(50), MS(2000));
    weft_event_set(&ev);
    ck_assert_rc(weft_thread_join_all(weft_deadline_in(MS(5000))), 0);
    ck_assert(!weft_thread_is_alive(a));
    ck_assert(!weft_thread_is_alive(b));
    ck_assert_rc(weft_thread_join(a, NULL, WEFT_NOW), 0);
    ck_assert_rc(weft_thread_join(b, NULL, WEFT_NOW), 0);
    ck_assert_rc(weft_thread_join(d, NULL, weft_deadline_in(MS(5000))), 0);
    ck_assert_rc(weft_thread_join_all(WEFT_NOW), 0);
}
END_TEST

START_TEST(join_all_ignores_daemons)
{
    weft_event ev = WEFT_EVENT_INIT;
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *d;
    o.daemon = 1;
    ck_assert_rc(weft_thread_start(&d, wait_ev, &ev, &o), 0);
    ck_assert_rc(weft_thread_join_all(WEFT_NOW), 0);
    weft_event_set(&ev);
    ck_assert_rc(weft_thread_join(d, NULL, WEFT_FOREVER), 0);
}
END_TEST

/* ---- key destructors that log after the thread let go of its handle ---- */

static pthread_key_t logging_key;
static _Atomic int key_rounds;
static _Atomic int key_saw_alive;

/* Logs and asks for the current thread in every destructor round, and
 * re-arms itself so that it also runs in the last round POSIX allows. */
static void logging_destructor(void *p)
{
    weft_thread *me = weft_thread_current();
    weft_log(WEFT_LOG_ERROR, "key destructor round %d",
             atomic_fetch_add(&key_rounds, 1));
    if (weft_thread_is_alive(me))
        atomic_fetch_add(&key_saw_alive, 1);
    if ((intptr_t)p < 8)
        pthread_setspecific(logging_key, (void *)((intptr_t)p + 1));
}

static int arm_logging_key(void *p)
{
    (void)p;
    (void)weft_thread_current(); /* adopted, if foreign */
    return pthread_setspecific(logging_key, (void *)(intptr_t)1);
}

static int adopt_only(void *p)
{
    (void)p;
    return weft_thread_current() == NULL;
}

/* Used to re-adopt the thread as a new Dummy-N whose handle could stay in
 * the registry for ever (when the re-adoption came in the last round). */
START_TEST(key_destructor_logging_after_exit_does_not_readopt)
{
    int devnull = open("/dev/null", O_WRONLY);
    ck_assert_int_ge(devnull, 0);
    ck_assert_rc(weft_log_set_fd(devnull), 0);
    /* Adopt one foreign thread first, so that weft's own key exists and
     * ours comes after it (destructors run in key order in each round). */
    ck_assert_rc(tt_join(tt_start(adopt_only, NULL)), 0);
    ck_assert_int_eq(pthread_key_create(&logging_key, logging_destructor), 0);
    int before = weft_thread_active_count();
    /* A foreign thread and a weft thread. */
    ck_assert_rc(tt_join(tt_start(arm_logging_key, NULL)), 0);
    ck_assert_int_gt(atomic_load(&key_rounds), 0);
    weft_thread *t = start(arm_logging_key, NULL);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_int_eq(weft_thread_active_count(), before);
    ck_assert_int_eq(atomic_load(&key_saw_alive), 0);
    ck_assert_rc(weft_log_set_fd(-1), 0);
    /* devnull stays open: ThreadSanitizer does not see pthread_join as
     * ordering the key destructors' writes before a close here. */
    pthread_key_delete(logging_key);
}
END_TEST

/* ---- join_all and failed starts ---------------------------------------- */

struct fail_starts {
    atomic_int stop;
    long fails;
};

/* A foreign (daemon) thread that keeps starting non-daemon threads whose
 * pthread_create fails (a stack no system can give). */
static int fail_starts(void *p)
{
    struct fail_starts *f = p;
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    o.daemon = 0;
    o.stack_size = (size_t)1 << 46;
    while (!atomic_load(&f->stop)) {
        weft_thread *t;
        if (weft_thread_start(&t, ret_arg, NULL, &o) != 0)
            f->fails++;
        else
            weft_thread_join(t, NULL, WEFT_FOREVER);
    }
    return 0;
}

/* A handle whose pthread_create fails is briefly in the registry; a
 * join_all that picks it up waits on its done event, which must be set on
 * the failure path too (it used to hang for ever there). */
START_TEST(join_all_does_not_wait_for_a_failed_start)
{
    struct fail_starts f = {0};
    tt *s = tt_start(fail_starts, &f);
    int64_t end = weft_deadline_in(MS(1000));
    long rounds = 0;
    while (weft_now() < end) {
        ck_assert_rc(weft_thread_join_all(weft_deadline_in(MS(2000))), 0);
        rounds++;
    }
    atomic_store(&f.stop, 1);
    ck_assert_rc(tt_join(s), 0);
    ck_assert_int_gt(f.fails, 0);
    ck_assert_int_gt(rounds, 0);
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

/* ---- the exit policy, in forked children ------------------------------- */

struct exit_arg {
    int fd;
    int64_t delay;
    const char *msg;
};

static int delayed_write(void *p)
{
    struct exit_arg *a = p;
    weft_event never = WEFT_EVENT_INIT;
    /* The delay: an event nobody sets, with a deadline. */
    weft_event_wait(&never, weft_deadline_in(a->delay));
    ssize_t w = write(a->fd, a->msg, strlen(a->msg));
    return w < 0;
}

/* Fork; the child runs body(fd) and then calls exit(0).  Returns what the
 * child and its threads wrote to the pipe until it was closed. */
static char *run_child(void (*body)(int fd), int *status)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        body(p[1]);
        exit(0);
    }
    close(p[1]);
    char *out = read_all(p[0]);
    close(p[0]);
    ck_assert_int_eq(waitpid(pid, status, 0), pid);
    return out;
}

static void child_nondaemon(int fd)
{
    static struct exit_arg a;
    weft_thread *t;
    a.fd = fd;
    a.delay = MS(100);
    a.msg = "finished";
    if (weft_thread_start(&t, delayed_write, &a, NULL) != 0)
        _exit(3);
    /* Return without joining: the exit policy must wait.  (Detached, so
     * that ThreadSanitizer does not call the unjoined thread a leak; a
     * detached non-daemon thread is waited for all the same.) */
    weft_thread_detach(t);
}

START_TEST(exit_waits_for_nondaemon_threads)
{
    int status;
    char *out = run_child(child_nondaemon, &status);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_str_eq(out, "finished");
}
END_TEST

static void child_daemon(int fd)
{
    static struct exit_arg a;
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *t;
    a.fd = fd;
    a.delay = MS(60000);
    a.msg = "daemon finished";
    o.daemon = 1;
    if (weft_thread_start(&t, delayed_write, &a, &o) != 0)
        _exit(3);
    weft_thread_detach(t);
}

START_TEST(exit_abandons_daemon_threads)
{
    int status;
    int64_t t0 = weft_now();
    char *out = run_child(child_daemon, &status);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_str_eq(out, "");
    ck_assert_elapsed(t0, 0, MS(10000));
}
END_TEST

static struct exit_arg exit_from_thread_arg;

static int start_then_exit(void *p)
{
    weft_thread *t;
    (void)p;
    if (weft_thread_start(&t, delayed_write, &exit_from_thread_arg, NULL))
        _exit(3);
    weft_thread_detach(t);
    exit(0); /* from a weft thread: must not wait for itself */
}

static void child_exit_from_thread(int fd)
{
    weft_thread *t;
    exit_from_thread_arg.fd = fd;
    exit_from_thread_arg.delay = MS(50);
    exit_from_thread_arg.msg = "grandchild";
    if (weft_thread_start(&t, start_then_exit, NULL, NULL) != 0)
        _exit(3);
    weft_thread_join(t, NULL, WEFT_FOREVER);
    _exit(4); /* not reached: exit() in the thread ends the process */
}

START_TEST(exit_from_a_thread_skips_itself)
{
    int status;
    char *out = run_child(child_exit_from_thread, &status);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_str_eq(out, "grandchild");
}
END_TEST

static void child_after_fork(int fd)
{
    /* In the child, the parent's threads are gone: none is alive, the
     * forking thread is the main thread, and there is nothing to join.
     * (_exit: LeakSanitizer cannot scan a child forked from a non-main
     * thread, and reports the test runner's memory as leaked.) */
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%d %s %d", weft_thread_active_count(),
                     weft_thread_name(weft_thread_current()),
                     weft_thread_join_all(WEFT_NOW));
    ssize_t w = write(fd, buf, (size_t)n);
    _exit(w == n ? 0 : 1);
}

static int fork_from_thread(void *p)
{
    int *status = p;
    char *out = run_child(child_after_fork, status);
    return strcmp(out, "1 forker 0") != 0;
}

START_TEST(fork_child_forgets_other_threads)
{
    weft_event ev = WEFT_EVENT_INIT;
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *busy = start(wait_ev, &ev), *f;
    int status = -1, r = -1;
    o.name = "forker";
    ck_assert_rc(weft_thread_start(&f, fork_from_thread, &status, &o), 0);
    ck_assert_rc(weft_thread_join(f, &r, WEFT_FOREVER), 0);
    ck_assert_int_eq(r, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    weft_event_set(&ev);
    ck_assert_rc(weft_thread_join(busy, NULL, WEFT_FOREVER), 0);
}
END_TEST

static void child_reports_daemon(int fd)
{
    char buf[64];
    weft_thread *me = weft_thread_current();
    int n = snprintf(buf, sizeof buf, "%s %d %d", weft_thread_name(me),
                     weft_thread_is_daemon(me),
                     weft_thread_main() == me);
    ssize_t w = write(fd, buf, (size_t)n);
    _exit(w == n ? 0 : 1);
}

static int fork_and_report_daemon(void *p)
{
    int *status = p;
    char *out = run_child(child_reports_daemon, status);
    return strcmp(out, "daemon-forker 0 1") != 0;
}

/* The forking thread becomes the main thread in the child, and a main
 * thread is non-daemon, even if the forking thread was a daemon. */
START_TEST(fork_from_a_daemon_thread_makes_it_a_non_daemon_main)
{
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *f;
    int status = -1, r = -1;
    o.name = "daemon-forker";
    o.daemon = 1;
    ck_assert_rc(weft_thread_start(&f, fork_and_report_daemon, &status, &o),
                 0);
    ck_assert_rc(weft_thread_join(f, &r, WEFT_FOREVER), 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(r, 0);
}
END_TEST

START_TEST(many_threads_start_and_join)
{
    enum { N = 200 };
    weft_thread *t[N];
    long sum = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            t[i] = start(ret_arg, (void *)(intptr_t)(i + 1));
        for (int i = 0; i < N; i++) {
            int r;
            ck_assert_rc(weft_thread_join(t[i], &r, WEFT_FOREVER), 0);
            sum += r;
        }
    }
    ck_assert_int_eq(sum, 3L * N * (N + 1) / 2);
    ck_assert_int_eq(weft_thread_active_count(), 1);
}
END_TEST

static Suite *thread_suite(void)
{
    Suite *s = suite_create("thread");
    TCase *c = tcase_create("thread");
    tcase_set_timeout(c, 30);
    tcase_add_checked_fixture(c, setup, NULL);
    tcase_add_test(c, start_and_join_returns_result);
    tcase_add_test(c, start_rejects_bad_args);
    tcase_add_test(c, join_deadline_times_out_then_joins);
    tcase_add_test(c, self_join_is_edeadlk);
    tcase_add_test(c, join_main_or_foreign_is_einval);
    tcase_add_test(c, join_main_from_other_thread_is_einval);
    tcase_add_test(c, detach_lets_thread_finish_alone);
    tcase_add_test(c, is_alive_before_and_after);
    tcase_add_test(c, default_names_are_thread_n);
    tcase_add_test(c, explicit_name_sets_os_name);
    tcase_add_test(c, rename_running_thread_renames_os_thread);
    tcase_add_test(c, rename_self_and_after_exit);
    tcase_add_test(c, ids_unique_and_native_id_is_gettid);
    tcase_add_test(c, main_thread_handle_from_main);
    tcase_add_test(c, main_thread_from_other_thread_first);
    tcase_add_test(c, foreign_thread_is_adopted_and_released);
    tcase_add_test(c, enumerate_counts_exactly);
    tcase_add_test(c, enumerate_reference_outlives_join);
    tcase_add_test(c, daemon_is_inherited);
    tcase_add_test(c, stack_size_option_and_default);
    tcase_add_test(c, failure_hook_gets_rc_on_failing_thread);
    tcase_add_test(c, default_failure_hook_logs_one_error_line);
    tcase_add_test(c, join_all_waits_with_deadline);
    tcase_add_test(c, join_all_ignores_daemons);
    tcase_add_test(c, exit_waits_for_nondaemon_threads);
    tcase_add_test(c, exit_abandons_daemon_threads);
    tcase_add_test(c, exit_from_a_thread_skips_itself);
    tcase_add_test(c, fork_child_forgets_other_threads);
    tcase_add_test(c, many_threads_start_and_join);
    tcase_add_test(c, join_all_does_not_wait_for_a_failed_start);
    tcase_add_test(c, fork_from_a_daemon_thread_makes_it_a_non_daemon_main);
    tcase_add_test(c, key_destructor_logging_after_exit_does_not_readopt);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(thread_suite)
