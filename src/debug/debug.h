/* debug.h - the debug layer's internal interface: the monitor's entry, the
 * snapshot shared by the dump and the deadlock check, and the hooks the
 * runtime's other parts wire in. */
#ifndef WEFT_DEBUG_INTERNAL_H
#define WEFT_DEBUG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Called on the monitor thread at each of its rounds (now: monotonic ns):
 * serves a pending SIGQUIT dump and runs the deadlock check.  Safe to call
 * from several threads at once (a round already running elsewhere makes
 * the call return at once), so tests may drive it too. */
void weft__debug_poll(int64_t now);

/* How many rounds weft__debug_poll has run (tests use it to tell whether a
 * monitor is calling it). */
long weft__debug_polls(void);

/* The offload pool's hook: fn returns how many offloaded jobs are in
 * flight (each may wake a green thread when it completes), so the deadlock
 * check counts them as possible wakers.  NULL: none. */
void weft__debug_set_offload_probe(long (*fn)(void));

/* ---- the snapshot (snapshot.c) ---------------------------------------- */

enum { WEFT__DBG_OS = 0, WEFT__DBG_GREEN = 1 };

/* One thread as seen at one moment.  Pointers are identities: wait_obj and
 * waiter are never followed after the snapshot (they may be gone), except
 * by the deadlock report, once no thread can run. */
typedef struct weft__dbg_entry {
    int kind;                   /* WEFT__DBG_* */
    const void *waiter;         /* its park waiter, or NULL */
    const void *done;           /* its done event (a join waits on it) */
    uint64_t id;
    long tid;                   /* OS thread: its kernel id, or 0 */
    char name[64];
    const char *site;           /* green thread: spawn site (static) */
    uint32_t run_state;         /* green thread: WEFT__G_* */
    bool worker, system, daemon, main, self, timer;
    /* The waiter, read with atomic loads. */
    uint32_t state;             /* WEFT__W_* */
    bool claimed, cancelled;
    uint32_t count;
    const char *what;
    const void *obj;
    int64_t since, deadline;
} weft__dbg_entry;

typedef struct weft__dbg_snap {
    int64_t at;                 /* monotonic ns */
    weft__dbg_entry *e;
    int n, cap;
    int exiting;                /* OS threads finishing (may still wake) */
    bool oom;                   /* some entries could not be kept */
} weft__dbg_snap;

/* Take a snapshot of every weft OS thread and green thread.  0 or
 * -ENOMEM (then s->oom; what was kept is valid).  Free with _free. */
int weft__dbg_snap_take(weft__dbg_snap *s);
/* The same, with the green threads only if green: the OS threads alone
 * are a few entries, and often enough to rule a deadlock out. */
int weft__dbg_snap_take_some(weft__dbg_snap *s, bool green);
void weft__dbg_snap_free(weft__dbg_snap *s);
/* Whether entry x is parked for good: in a wait with no deadline, no timer,
 * not claimed, not cancelled (an OS thread asleep on its futex, a green
 * thread switched out). */
bool weft__dbg_stuck(const weft__dbg_entry *x);
/* The entry whose waiter is w, or NULL. */
const weft__dbg_entry *weft__dbg_find(const weft__dbg_snap *s, const void *w);

/* ---- the dump (dump.c) ------------------------------------------------ */

/* Format the dump of s into a malloc'd NUL-terminated text; NULL if out of
 * memory. */
char *weft__dbg_format_dump(const weft__dbg_snap *s);
/* One line of the dump for x (a thread of s), newline included. */
void weft__dbg_print_entry(FILE *f, const weft__dbg_snap *s,
                           const weft__dbg_entry *x);
/* What x waits on: "lock 0x...", "event 0x... (join of green thread 'a')". */
void weft__dbg_print_what(FILE *f, const weft__dbg_snap *s,
                          const weft__dbg_entry *x);

/* ---- the deadlock check (deadlock.c) ---------------------------------- */

/* One round of the deadlock check (weft__debug_poll runs it; tests may
 * call it directly).  Returns 1 if it reported a deadlock this round. */
int weft__debug_deadlock_round(int64_t now);
/* Forget the current candidate and whether it was reported (tests). */
void weft__debug_deadlock_reset(void);
/* The same two with poll.c's busy flag already held (poll.c's own). */
int weft__debug_deadlock_round_locked(int64_t now);
void weft__debug_deadlock_reset_locked(void);

#endif
