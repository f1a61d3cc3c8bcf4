/* pool.h - the process pool's own structures, shared by pool.c (the calls
 * user threads make) and manager.c (the pool's manager thread).
 *
 * Who owns what.  The manager thread owns the workers (their processes,
 * sockets and buffers) and the forkserver socket: nobody else touches them.
 * User threads and the manager share, under lock: the queue of tasks not
 * yet sent, the flags, and each worker's cur and kill fields (so that
 * kill_task can find a running task).  The manager never holds lock while
 * it completes a future (a done-callback may call back into the pool) or
 * does I/O.  User threads wake the manager through an eventfd; every wait
 * of a user thread is a weft wait (cond, event), so it parks.
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
    int64_t deadline;                /* manager only: WEFT_FOREVER or when
                                        the worker overruns */
};

enum {
    W_FREE = 0,  /* no process */
    W_FORKING,   /* asked the forkserver; no FORKED yet */
    W_INIT,      /* INIT sent, no INITR yet */
    W_IDLE,      /* ready for a task */
    W_BUSY,      /* running cur */
    W_DYING,     /* socket closed (quit or killed); waiting for EXITED */
};

typedef struct pworker {
    int state;                /* manager only: W_* */
    pid_t pid;                /* manager only */
    int fd, pidfd;            /* manager only; -1 when closed / none */
    ptask *cur;               /* written by the manager under lock */
    bool kill;                /* guarded by lock: kill_task asked */
    int ntasks;               /* manager only: tasks done */
    /* manager only: the frame being received */
    weft__frame hdr;
    size_t hgot;
    unsigned char *body;
    size_t bgot;
    /* manager only: the frame being sent (points into cur->frame or own) */
    const unsigned char *tx;
    size_t txlen, txoff;
    weft_bytes own;           /* manager only: INIT frame storage */
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
