/* future.h - what the executors and the multi-future waits see of a future.
 *
 * The struct is here, not in the public header, so that executors can embed
 * their work item in it (one allocation per task) and the waits can hang
 * watchers on it.  Invariants, for every field below the guard: written
 * only with f->wq's guard held; state is also read without it (acquire),
 * and once done it never changes again, so a reader that sees a done state
 * may read value, size, code and message without the guard.
 */
#ifndef WEFT_FUTURE_INTERNAL_H
#define WEFT_FUTURE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "park/park.h"
#include "weft/executor.h"
#include "weft/future.h"

/* A watcher: something other than a parked waiter that wants to know when
 * a future is done (a weft_futures_wait in progress, an as-completed
 * iterator).  notify runs once, under the future's guard, as the future
 * completes; it must be short and may take only locks that rank below a
 * future's guard (the watcher's own).  The future unlinks the watcher
 * before calling notify; whoever added it unlinks it under the guard if
 * the future is not done when it stops watching. */
typedef struct weft__future_watch weft__future_watch;
struct weft__future_watch {
    weft__future_watch *next, *prev; /* guarded by the future's guard */
    bool linked;                     /* guarded by the future's guard */
    void (*notify)(weft__future_watch *w, weft_future *f);
    void *ctx;                       /* the watcher's own */
    size_t index;                    /* the watcher's own */
};

typedef struct weft__future_cb weft__future_cb;

struct weft_future {
    _Atomic uint32_t state;       /* weft_future_state; see above */
    _Atomic uint32_t refs;
    weft__waitq wq;               /* result waiters; its guard guards all
                                     that follows */
    _Atomic bool error_read;      /* someone asked for the failure */
    void *value;                  /* FINISHED: the result */
    union {                       /* the outcome: which one is live is */
        struct {                  /* told by the done state alone */
            size_t size;          /* FINISHED */
            void (*free_fn)(void *);
        };
        struct {
            int code;             /* FAILED */
            char *message;        /* malloc'd; NULL if memory ran out */
        };
    };
    weft__future_cb *cbs;         /* newest first; run oldest first */
    weft__future_watch *watchers;

    /* The executor's work item, owned by the executor (not guarded by the
     * future's guard: see src/future/executor.c). */
    weft_future *qnext;
    weft_task_fn fn;
    void *arg;
    weft_executor *exec;          /* the executor that runs it */
    char *task_msg;               /* weft_task_fail's message, written by
                                     the running task, read by its worker */
};

/* A future is allocated and freed once per task, often 100,000 at a time,
 * freed in the order they were allocated.  At 120 bytes or less glibc's
 * malloc serves it from its fast bins (chunks up to 128 bytes), which take
 * a free in any order without coalescing; at 144 bytes every free of a
 * batch coalesced with its neighbour, and a thread-pool batch ran at about
 * 5.3M tasks/s against 9.3M (docs/BENCHMARKS.md, "Executors").  That is
 * why the outcome is a union and the callbacks have no tail pointer.  A
 * field added here must keep within the bound or come with a measurement. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct weft_future) <= 120,
               "struct weft_future outgrew glibc's fast bins");

/* A future is allocated and freed once per task, often 100,000 at a time
 * and freed in the order allocated.  At 120 bytes or less glibc's malloc
 * serves it from its fast bins (chunks up to 128 bytes), which take a free
 * in any order without coalescing; at 144 bytes every free of a batch
 * coalesced with its neighbour, and a batch of the thread pool ran at 5.3M
 * tasks/s against 9.3M (docs/BENCHMARKS.md, "Executors").  Fields added
 * here must keep it within the bound, or come with a measurement. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct weft_future) <= 120,
               "struct weft_future outgrew glibc's fast bins");

/* Add w to f's watchers unless f is done.  Returns true if added; false if
 * f was already done (w is untouched and notify will not run). */
bool weft__future_watch_add(weft_future *f, weft__future_watch *w);
/* Take w off f's watchers if it is still there. */
void weft__future_watch_remove(weft_future *f, weft__future_watch *w);

/* Mark the failure of a done future as read (the waits that hand futures
 * back do not read it; result and error do). */
static inline void weft__future_mark_read(weft_future *f)
{
    atomic_store_explicit(&f->error_read, true, memory_order_relaxed);
}

static inline bool weft__future_state_done(uint32_t s)
{
    return s >= WEFT_FUTURE_FINISHED;
}

/* Fail f with code and message (malloc'd, or NULL when memory ran out;
 * taken over either way).  0, or -EINVAL if f was done already. */
int weft__future_fail_with(weft_future *f, int code, char *message);

/* Initialise a future embedded by an executor's allocation path
 * (refs = 1, PENDING). */
void weft__future_init(weft_future *f);

#endif
