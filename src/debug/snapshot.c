/* snapshot.c - a snapshot of every weft OS thread and green thread, for the
 * dump and the deadlock check.
 *
 * Design.  OS threads come from the thread registry, walked under its lock
 * (weft__registry_walk): a linked thread has not yet left the registry on
 * its way out, so its waiter (in its TLS) is still there to read.  Green
 * threads come from the struct pool, walked under the pool's lock
 * (weft__green_walk): structs are type-stable and never freed, and while
 * the walk holds that lock no struct is recycled and no name freed, so
 * the constant fields (id, name, site) of a struct seen alive are stable.
 * Everything that changes while a thread runs (run_state, the waiter's
 * state, claim and dump fields) is read with atomic loads, so a snapshot
 * taken while threads run, park and exit is race-free (TSan-clean); each
 * entry is one thread at one moment, different entries at different
 * moments.  The walks copy into an array grown by realloc (neither lock is
 * held for long: a copy per thread).
 *   (Rejected: a list of live green threads linked at spawn and unlinked
 *   at exit.  It costs every spawn and exit a lock or an atomic
 *   read-modify-write; the walk costs only the dump, and the pool lock
 *   that guards it was already taken at spawn and at recycling.)
 * The main thread is always in the snapshot, adopted or not: its waiter
 * is known to park.c from its first wait (weft__main_waiter).
 * Locking: the registry lock, then (separately) the pool lock; neither is
 * held while formatting or calling out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "debug/debug.h"
#include "green/green.h"
#include "park/park.h"
#include "platform/platform.h"
#include "thread/thread.h"

static weft__dbg_entry *grow(weft__dbg_snap *s)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        weft__dbg_entry *e = realloc(s->e, (size_t)cap * sizeof *e);
        if (e == NULL) {
            s->oom = true;
            return NULL;
        }
        s->e = e;
        s->cap = cap;
    }
    weft__dbg_entry *x = &s->e[s->n++];
    memset(x, 0, sizeof *x);
    return x;
}

/* Copy the waiter's fields.  claim first, with acquire: a claim of NULL
 * was stored by the current wait's prepare after its count and dump
 * fields, so those are this wait's. */
static void read_waiter(weft__dbg_entry *x, weft__waiter *w)
{
    x->waiter = w;
    if (w == NULL)
        return;
    x->claimed = atomic_load_explicit(&w->claim, memory_order_acquire) != NULL;
    x->state = atomic_load_explicit(&w->state, memory_order_acquire);
    x->count = atomic_load_explicit(&w->wait_count, memory_order_acquire);
    x->what = atomic_load_explicit(&w->wait_what, memory_order_relaxed);
    x->obj = atomic_load_explicit(&w->wait_obj, memory_order_relaxed);
    x->since = atomic_load_explicit(&w->wait_since, memory_order_relaxed);
    x->deadline = atomic_load_explicit(&w->wait_deadline,
                                       memory_order_relaxed);
    x->cancelled = atomic_load_explicit(&w->cancel, memory_order_acquire);
}

struct os_walk {
    weft__dbg_snap *s;
    weft_thread_fn worker_fn;
    weft_thread *me;
    long pid;
    bool main_seen;
};

static void take_os(weft_thread *t, void *arg)
{
    struct os_walk *ow = arg;
    weft__dbg_entry *x = grow(ow->s);
    weft__waiter *w;

    if (x == NULL)
        return;
    x->kind = WEFT__DBG_OS;
    x->id = t->id;
    x->tid = atomic_load(&t->native_id);
    snprintf(x->name, sizeof x->name, "%s", weft_thread_name(t));
    x->done = &t->done;
    x->daemon = t->daemon;
    x->system = atomic_load(&t->system);
    x->worker = !t->foreign && t->fn == ow->worker_fn;
    x->self = t == ow->me;
    x->main = t->foreign && x->tid == ow->pid;
    ow->main_seen |= x->main;
    w = atomic_load_explicit(&t->waiter, memory_order_acquire);
    if (w == NULL && x->main)
        w = weft__main_waiter(); /* not bound yet: park.c knows it */
    read_waiter(x, w);
}

static void take_green(weft_green *g, void *arg)
{
    weft__dbg_snap *s = arg;
    weft__dbg_entry *x = grow(s);

    if (x == NULL)
        return;
    x->kind = WEFT__DBG_GREEN;
    /* run_state before the waiter: PARKED is committed after the park's
     * deadline and the waiter's state were stored. */
    x->run_state = atomic_load_explicit(&g->run_state, memory_order_acquire);
    x->id = g->id;
    snprintf(x->name, sizeof x->name, "%s", g->name ? g->name : "?");
    x->site = g->site;
    x->done = &g->done;
    x->timer = atomic_load_explicit(&g->timer_worker,
                                    memory_order_acquire) != NULL;
    read_waiter(x, &g->waiter);
}

static int by_kind_and_id(const void *a, const void *b)
{
    const weft__dbg_entry *x = a, *y = b;

    if (x->kind != y->kind)
        return x->kind - y->kind;
    return x->id < y->id ? -1 : x->id > y->id;
}

int weft__dbg_snap_take(weft__dbg_snap *s)
{
    return weft__dbg_snap_take_some(s, true);
}

int weft__dbg_snap_take_some(weft__dbg_snap *s, bool green)
{
    weft__sched_facts f;
    struct os_walk ow;

    memset(s, 0, sizeof *s);
    weft__sched_get_facts(&f);
    ow.s = s;
    ow.worker_fn = f.worker_fn;
    ow.me = weft__thread_self_or_null();
    ow.pid = (long)getpid();
    ow.main_seen = false;
    s->at = weft__clock_now();
    s->exiting = weft__registry_walk(take_os, &ow);
    if (!ow.main_seen) {
        weft__dbg_entry *x = grow(s);
        if (x != NULL) {
            x->kind = WEFT__DBG_OS;
            x->tid = ow.pid;
            x->main = true;
            x->self = weft__gettid() == ow.pid;
            snprintf(x->name, sizeof x->name, "MainThread"); /* id 0: not adopted */
            read_waiter(x, weft__main_waiter());
        }
    }
    if (green)
        (void)weft__green_walk(take_green, s);
    qsort(s->e, (size_t)s->n, sizeof *s->e, by_kind_and_id);
    return s->oom ? -ENOMEM : 0;
}

void weft__dbg_snap_free(weft__dbg_snap *s)
{
    free(s->e);
    memset(s, 0, sizeof *s);
}

bool weft__dbg_stuck(const weft__dbg_entry *x)
{
    if (x->waiter == NULL || x->claimed || x->cancelled || x->deadline >= 0 ||
        x->timer)
        return false;
    if (x->kind == WEFT__DBG_OS)
        return x->state == WEFT__W_SLEEPING; /* asleep on its futex */
    return x->run_state == WEFT__G_PARKED && x->state == WEFT__W_WAITING;
}

const weft__dbg_entry *weft__dbg_find(const weft__dbg_snap *s, const void *w)
{
    if (w == NULL)
        return NULL;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].waiter == w)
            return &s->e[i];
    return NULL;
}
