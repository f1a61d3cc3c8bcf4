/* pool.h - the process pool's own structures, shared by pool.c (the calls
 * user threads make) and manager.c (the pool's manager thread).
 *
 * Who owns what.  The manager thread owns the workers (their processes,
 * sockets, state and buffers) and the forkserver socket.  User threads and
 * the manager share, under lock: the queue of tasks not yet sent, the
 * flags, each worker's cur, behind, finishing, kill, idle, direct and gone fields (so
 * that kill_task can find a running or pipelined task, and submit can hand
 * a task straight to an idle worker), and each task's abandoned and
 * requeued flags.
 *
 * In flight.  A worker has at most two tasks in flight: cur, the first one
 * sent without a result (the one it runs: a worker runs its tasks in the
 * order it receives them and writes each result before it starts the
 * next), and
 * behind, sent after cur and not yet started.  Every sent task's future is
 * RUNNING (set when it leaves the queue), so cancel fails on it.
 *
 * Direct submit.  When the queue is empty, the manager marks each worker
 * that has nothing in flight `idle` (under lock).  A submit that finds an
 * idle worker claims it (idle = false, direct = the task) and writes the
 * TASK frame to the worker's socket itself, under lock: no manager wake-up.
 * While idle is true the manager does not touch that worker's socket, and
 * it clears idle (claim_direct, under lock) before it acts on the worker
 * in any way: it then takes a claimed task as cur, as if it had sent it.
 * The manager's own state for the worker may therefore be stale (W_IDLE
 * while a direct task runs) only until claim_direct.
 *
 * The manager never holds lock while it completes a future (a
 * done-callback may call back into the pool) or does I/O on a socket it
 * owns.  User threads wake the manager through an eventfd; every wait of a
 * user thread is a weft wait (cond, event), so it parks.
 */
#ifndef WEFT_PROCESS_POOL_H
#define WEFT_PROCESS_POOL_H

#include <stdatomic.h>

#include "process/process.h"
#include "weft/sync.h"
#include "weft/thread.h"

typedef struct ptask ptask;
struct ptask {
    ptask *next;                     /* guarded by lock while queued */
    weft_future *fut;                /* the pool's reference */
    const weft__proc_entry *entry;   /* constant */
    weft_bytes frame;                /* the TASK frame; constant once queued */
    uint64_t nitems;                 /* constant */
    bool chunk;                      /* constant: a map chunk */
    int64_t timeout_ns;              /* constant: <= 0 none */
    int64_t deadline;                /* manager only (a direct submit sets
                                        it before the manager sees the
                                        task): 0 not started, WEFT_FOREVER,
                                        or when the worker overruns */
    size_t sent;                     /* manager only once claimed (a direct
                                        submit sets it first): bytes of
                                        frame written to the worker */
    bool abandoned;                  /* guarded by lock: its future was
                                        failed (timeout, kill_task) while it
                                        was in flight; its result is ignored
                                        and it is never sent again */
    bool requeued;                   /* guarded by lock: queued again after
                                        its worker died before starting it;
                                        its future is RUNNING already */
};

enum {
    W_FREE = 0,  /* no process */
    W_FORKING,   /* asked the forkserver; no FORKED yet */
    W_INIT,      /* INIT sent, no INITR yet */
    W_IDLE,      /* ready for a task */
    W_BUSY,      /* running cur (and maybe holding behind) */
    W_DYING,     /* retired, quit or killed (SIGKILL sent); waiting for
                    EXITED.  A killed worker's socket stays open until then
                    so that what it wrote is read before it is judged */
};

typedef struct pworker {
    int state;                /* manager only: W_* */
    pid_t pid;                /* manager only */
    int fd, pidfd;            /* manager only; -1 when closed / none.  A
                                 submitter reads fd under lock while idle */
    ptask *cur;               /* written by the manager under lock: the
                                 task it runs (the first without a
                                 result) */
    ptask *behind;            /* written by the manager under lock: sent
                                 after cur, not started; NULL if cur is */
    ptask *finishing;         /* guarded by lock: the task whose result
                                 was read last; kept (and freed at the
                                 next result or the worker's end) so that
                                 kill_task finds it while its future is
                                 being completed */
    bool kill;                /* guarded by lock: kill_task asked */
    bool idle;                /* guarded by lock: a submit may claim it */
    bool gone;                /* guarded by lock: a direct send found the
                                 socket closed; send it nothing more */
    ptask *direct;            /* guarded by lock: claimed by a submit, not
                                 yet taken by the manager */
    int ntasks;               /* manager only: tasks done */
    /* manager only: bytes received and not yet handled (whole frames are
     * handled as soon as they are in) */
    unsigned char *rx;
    size_t rxlen, rxcap;
    /* manager only: the INIT frame being sent (tasks' frames are sent
     * from cur->frame and behind->frame, as their `sent` says) */
    const unsigned char *tx;
    size_t txlen, txoff;
} pworker;

struct weft_process_pool {
    weft_lock lock;
    weft_cond space;          /* on lock: room in a bounded queue, or
                                 shutdown */
    weft_event done;          /* set once every process is gone */
    ptask *head, *tail;       /* guarded by lock: not yet sent, FIFO */
    size_t qlen;              /* guarded by lock */
    bool shutdown;            /* guarded by lock */
    _Atomic bool broken;      /* written under lock; read anywhere */
    char broken_msg[512];     /* guarded by lock; constant once broken */
    pworker *w;               /* [max_workers]; see pworker */
    _Atomic int nworkers;     /* written by the manager: alive workers */
    _Atomic pid_t fs_pid;     /* written by the manager: 0 once reaped */
    /* constant after create */
    int max_workers, max_tasks;
    int64_t timeout_ns;
    size_t capacity;
    const weft__proc_entry *init;
    weft_bytes initframe;     /* the INIT frame, if init */
    int efd;                  /* eventfd waking the manager */
    int fs_sock;              /* manager only after create */
    weft_thread *mgr;
    _Atomic int wake_pending; /* the eventfd has been written and not read */
};

/* The manager thread's body (manager.c). */
int weft__process_manager(void *pool);

/* Wake the manager (any thread). */
void weft__process_wake(weft_process_pool *p);

/* Free a task and give back the pool's reference to its future. */
void weft__process_task_free(ptask *t);

#endif
