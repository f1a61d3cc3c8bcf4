/* deadlock.c - the deadlock check: notice when every green thread is asleep
 * for good and nothing can wake one (Go's "all goroutines are asleep"),
 * and report who waits on what.
 *
 * The condition, checked at a monitor round:
 *   - the scheduler is idle (every worker asleep, nothing queued), no green
 *     thread waits for I/O (weft__poller_waiters) and no offloaded job is
 *     in flight (the offload probe);
 *   - at least one green thread exists, and every green thread that has
 *     not exited is PARKED (switched out) in a wait that nobody has claimed,
 *     with no deadline, no timer and no cancellation pending;
 *   - every weft OS thread other than the green workers, the runtime's own
 *     threads (weft__thread_mark_system: the monitor, offload threads) and
 *     the thread running the check is asleep on its futex in such a wait,
 *     and no OS thread is between leaving the registry and setting its done
 *     event (which may wake a joiner).  The main thread counts even if it
 *     was never adopted (park.c knows its waiter).
 * One snapshot proves nothing: each thread is seen at a different moment,
 * and a thread seen parked may have run and woken another one in between.
 * So the condition must hold on two snapshots at least CONFIRM_NS apart,
 * with the same threads and every waiter's park count (bumped at each
 * wait) unchanged: a waiter seen unclaimed in the same wait twice was in
 * that wait, unclaimed, all along (a claim is never undone within a
 * wait), so none of them ran in between, and nobody else could.
 *   (Rejected: one snapshot under a global "stop the world" lock.  Every
 *   park and wake-up would have to take it or check it.)
 * Blind spots (documented in weft/debug.h): an OS thread weft never saw
 * (neither started nor adopted by weft, not the main thread) may wake a
 * green thread without being counted, as may a signal handler or a
 * process on the other end of a pipe read outside weft's poller; such
 * programs set WEFT_DEADLOCK=off or adopt their threads
 * (weft_thread_current).
 *
 * Once per episode: the confirmed snapshot's signature (threads and park
 * counts) is reported once; any change (progress) ends the episode.
 * The report is logged at error level, line by line, then handed to the
 * hook; WEFT_DEADLOCK=abort aborts after both, =off disables the check.
 * Locking: the candidate and its flags are touched only inside a round,
 * and rounds are serialised by the busy flag of poll.c; the hook pair is
 * guarded by hook_lock (a park guard, a leaf).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug/debug.h"
#include "green/green.h"
#include "io/poller.h"
#include "park/park.h"
#include "weft/debug.h"
#include "weft/log.h"
#include "weft/sync.h"

#define CONFIRM_NS (5 * 1000 * 1000)

enum { MODE_UNSET = 0, MODE_REPORT = 1, MODE_ABORT = 2, MODE_OFF = 3 };

static _Atomic int mode;
static weft__waitq hook_lock;               /* only its guard is used */
static weft_deadlock_hook hook;             /* guarded by hook_lock */
static void *hook_arg;                      /* guarded by hook_lock */
static _Atomic(long (*)(void)) offload_probe;

/* Round state: only inside a round (poll.c serialises rounds). */
static weft__dbg_snap cand;                 /* the candidate deadlock */
static bool cand_valid, cand_reported;

void weft_set_deadlock_hook(weft_deadlock_hook fn, void *arg)
{
    weft__waitq_lock(&hook_lock);
    hook = fn;
    hook_arg = arg;
    weft__waitq_unlock(&hook_lock);
}

void weft__debug_set_offload_probe(long (*fn)(void))
{
    atomic_store(&offload_probe, fn);
}

static int mode_now(void)
{
    int m = atomic_load_explicit(&mode, memory_order_relaxed);
    const char *s;

    if (m != MODE_UNSET)
        return m;
    s = getenv("WEFT_DEADLOCK");
    m = MODE_REPORT;
    if (s != NULL && strcmp(s, "abort") == 0)
        m = MODE_ABORT;
    else if (s != NULL && strcmp(s, "off") == 0)
        m = MODE_OFF;
    atomic_store_explicit(&mode, m, memory_order_relaxed);
    return m;
}

/* Nothing queued or running in the scheduler, no I/O, no offloaded job. */
static bool quiet(void)
{
    weft__sched_facts f;
    long (*probe)(void) = atomic_load(&offload_probe);

    weft__sched_get_facts(&f);
    return f.idle && weft__poller_waiters() == 0 &&
           (probe == NULL || probe() == 0);
}

/* Whether x takes part in the verdict (and the signature). */
static bool counted(const weft__dbg_entry *x)
{
    if (x->kind == WEFT__DBG_GREEN)
        return x->run_state != WEFT__G_EXITED;
    return !x->worker && !x->system && !x->self;
}

static bool all_stuck(const weft__dbg_snap *s)
{
    int green = 0;

    if (s->oom || s->exiting != 0)
        return false;
    for (int i = 0; i < s->n; i++) {
        const weft__dbg_entry *x = &s->e[i];
        if (!counted(x))
            continue;
        if (!weft__dbg_stuck(x))
            return false;
        green += x->kind == WEFT__DBG_GREEN;
    }
    return green > 0;
}

/* The OS-thread part of all_stuck (s holds OS threads only). */
static bool os_stuck(const weft__dbg_snap *s)
{
    if (s->oom || s->exiting != 0)
        return false;
    for (int i = 0; i < s->n; i++)
        if (counted(&s->e[i]) && !weft__dbg_stuck(&s->e[i]))
            return false;
    return true;
}

/* Same threads, same waiters, same park counts. */
static bool same(const weft__dbg_snap *a, const weft__dbg_snap *b)
{
    int i = 0, j = 0;

    for (;;) {
        while (i < a->n && !counted(&a->e[i]))
            i++;
        while (j < b->n && !counted(&b->e[j]))
            j++;
        if (i == a->n || j == b->n)
            return i == a->n && j == b->n;
        const weft__dbg_entry *x = &a->e[i++], *y = &b->e[j++];
        if (x->kind != y->kind || x->id != y->id || x->waiter != y->waiter ||
            x->count != y->count || x->obj != y->obj)
            return false;
    }
}

static void forget(void)
{
    if (cand_valid)
        weft__dbg_snap_free(&cand);
    cand_valid = false;
    cand_reported = false;
}

void weft__debug_deadlock_reset_locked(void)
{
    forget();
}

static void print_who(FILE *f, const weft__dbg_entry *x)
{
    if (x->kind == WEFT__DBG_GREEN)
        fprintf(f, "green thread '%s' (id %llu, spawned at %s)", x->name,
                (unsigned long long)x->id, x->site ? x->site : "?");
    else
        fprintf(f, "OS thread '%s' (id %llu, tid %ld)", x->name,
                (unsigned long long)x->id, x->tid);
}

/* "held by green thread 'B'": followed only here, when no thread runs, so
 * the lock a parked waiter waits on is still there. */
static void print_holder(FILE *f, const weft__dbg_snap *s,
                         const weft__dbg_entry *x)
{
    const weft__dbg_entry *o;
    void *owner;

    if (x->what == NULL || strcmp(x->what, "lock") != 0 || x->obj == NULL)
        return;
    owner = atomic_load(&((weft_lock *)x->obj)->owner);
    if (owner == NULL) {
        fprintf(f, ", not held");
        return;
    }
    o = weft__dbg_find(s, owner);
    if (o == NULL) {
        fprintf(f, " held by a thread not listed (waiter %p; it may have "
                   "exited holding it)", owner);
        return;
    }
    fprintf(f, " held by %s thread '%s'",
            o->kind == WEFT__DBG_GREEN ? "green" : "OS", o->name);
}

static char *format_report(const weft__dbg_snap *s, int64_t first_seen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int green = 0;

    if (f == NULL)
        return NULL;
    for (int i = 0; i < s->n; i++)
        green += counted(&s->e[i]) && s->e[i].kind == WEFT__DBG_GREEN;
    fprintf(f, "deadlock: all %d green thread%s asleep and no thread can wake "
            "them (WEFT_DEADLOCK=off disables this check)\n", green,
            green == 1 ? " is" : "s are");
    for (int i = 0; i < s->n; i++) {
        const weft__dbg_entry *x = &s->e[i];
        if (!counted(x))
            continue;
        fprintf(f, "  ");
        print_who(f, x);
        fprintf(f, " waits on ");
        weft__dbg_print_what(f, s, x);
        print_holder(f, s, x);
        if (x->since > 0)
            fprintf(f, ", for %.3f ms", (double)(s->at - x->since) / 1e6);
        else
            fprintf(f, ", for at least %.3f ms",
                    (double)(s->at - first_seen) / 1e6);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void report(const weft__dbg_snap *s, int64_t first_seen)
{
    char *text = format_report(s, first_seen);
    weft_deadlock_hook fn;
    void *arg;

    if (text == NULL) {
        weft_log(WEFT_LOG_ERROR, "deadlock: all green threads are asleep "
                 "(out of memory for the report)");
        return;
    }
    for (char *line = text, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL)
            nl = line + strlen(line) - 1;
        weft_log(WEFT_LOG_ERROR, "%.*s", (int)(nl - line), line);
    }
    weft__waitq_lock(&hook_lock);
    fn = hook;
    arg = hook_arg;
    weft__waitq_unlock(&hook_lock);
    if (fn != NULL)
        fn(text, arg);
    free(text);
    if (mode_now() == MODE_ABORT)
        abort();
}

/* One round; the caller holds poll.c's busy flag. */
int weft__debug_deadlock_round_locked(int64_t now)
{
    weft__dbg_snap s;

    (void)now;
    if (mode_now() == MODE_OFF || !quiet()) {
        forget();
        return 0;
    }
    /* The OS threads first: one of them running or waiting with a
     * deadline rules a deadlock out without walking (and copying) every
     * green thread, which costs ~180 bytes and a struct visit each - with
     * a million parked green threads, every round. */
    (void)weft__dbg_snap_take_some(&s, false);
    if (!os_stuck(&s)) {
        weft__dbg_snap_free(&s);
        forget();
        return 0;
    }
    weft__dbg_snap_free(&s);
    (void)weft__dbg_snap_take(&s);
    if (!all_stuck(&s) || !quiet()) {
        weft__dbg_snap_free(&s);
        forget();
        return 0;
    }
    if (!cand_valid || !same(&cand, &s)) {
        forget();
        cand = s; /* a new candidate: confirm it at a later round */
        cand_valid = true;
        return 0;
    }
    if (cand_reported || s.at - cand.at < CONFIRM_NS) {
        weft__dbg_snap_free(&s);
        return 0;
    }
    cand_reported = true;
    report(&s, cand.at);
    weft__dbg_snap_free(&s);
    return 1;
}
