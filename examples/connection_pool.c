/* connection_pool.c - a bounded semaphore limiting a pool of connections
 * (seed 004: "protect a resource that has a limited capacity ... a pool of
 * connections").
 *
 * A pool holds POOL connections.  WORKERS threads each make several
 * requests; a request takes a connection (acquiring the semaphore, waiting
 * while all are busy), uses it for a moment and gives it back.  The pool
 * counts how many connections are in use at once: it never exceeds POOL,
 * and with more workers than connections it reaches POOL.  Giving back a
 * connection twice is caught: the bounded semaphore refuses the extra
 * release with -EOVERFLOW instead of silently growing the pool.
 *
 * Usage: connection_pool [workers] [pool]   (default 10 and 3)
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

#define REQUESTS 5

typedef struct pool {
    weft_sem slots;     /* one unit per free connection */
    weft_lock lock;
    bool busy[64];      /* guarded by lock */
    int in_use;         /* guarded by lock */
    int max_in_use;     /* guarded by lock */
    long served;        /* guarded by lock */
} pool;

static int pool_take(pool *p)
{
    int rc = weft_sem_acquire(&p->slots, weft_deadline_ms(5000));
    if (rc != 0)
        return rc;
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    int conn = 0;
    while (p->busy[conn])
        conn++;
    p->busy[conn] = true;
    if (++p->in_use > p->max_in_use)
        p->max_in_use = p->in_use;
    weft_lock_release(&p->lock);
    return conn;
}

static void pool_give(pool *p, int conn)
{
    weft_lock_acquire(&p->lock, WEFT_FOREVER);
    p->busy[conn] = false;
    p->in_use--;
    p->served++;
    weft_lock_release(&p->lock);
    weft_sem_release(&p->slots, 1);
}

static int worker(void *arg)
{
    pool *p = arg;
    for (int i = 0; i < REQUESTS; i++) {
        int conn = pool_take(p);
        if (conn < 0)
            return conn;
        weft_debug("using connection %d", conn);
        weft_sleep_until(weft_deadline_ms(2)); /* the request's work */
        pool_give(p, conn);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int workers = argc > 1 ? atoi(argv[1]) : 10;
    int size = argc > 2 ? atoi(argv[2]) : 3;
    static pool p = {.lock = WEFT_LOCK_INIT};
    weft_thread *ts[64];

    if (workers < 1 || workers > 64 || size < 1 || size > 64)
        return 2;
    if (weft_sem_init_bounded(&p.slots, size) != 0)
        return 1;
    for (int i = 0; i < workers; i++) {
        char name[32];
        snprintf(name, sizeof name, "client-%d", i + 1);
        weft_thread_opts o = {name, 0, 0};
        if (weft_thread_start(&ts[i], worker, &p, &o) != 0)
            return 1;
    }
    int failed = 0;
    for (int i = 0; i < workers; i++) {
        int rc;
        weft_thread_join(ts[i], &rc, WEFT_FOREVER);
        failed += rc != 0;
    }
    printf("%d workers made %ld requests through a pool of %d connections; "
           "at most %d in use at once\n",
           workers, p.served, size, p.max_in_use);

    int rc = weft_sem_release(&p.slots, 1); /* a connection given back twice */
    printf("returning one connection too many: %s (%s)\n", weft_errname(rc),
           weft_strerror(rc));

    bool ok = failed == 0 && p.served == (long)workers * REQUESTS &&
              p.max_in_use <= size &&
              (workers < size || p.max_in_use == size || size == 1) &&
              rc == -EOVERFLOW && weft_sem_value(&p.slots) == size;
    printf("pool: %s\n", ok ? "never more connections in use than the pool has"
                            : "FAILED");
    return ok ? 0 : 1;
}
