/* green_agent.c - the seed's agent: a green pool processing a stream of
 * updates with bounded concurrency, as OpenStack's DHCP agent does with an
 * eventlet GreenPool for port, network and subnet updates.
 *
 * An OS thread plays the RPC server: it puts updates (resource kind, id,
 * new revision) on a weft queue and shuts the queue down at the end.  A
 * green dispatcher takes them one by one and hands each to a green pool of
 * `size` handlers (weft_green_pool_spawn parks the dispatcher while every
 * handler is busy: back-pressure, not an unbounded backlog).  A handler
 * "talks to dnsmasq" (a short sleep: the green thread parks, its worker
 * runs others), then applies the update under the resource's lock, keeping
 * the highest revision seen, as the agent's resource cache does.  At the
 * end the agent runs a full resync with weft_green_pool_imap over every
 * network: the results come back in network order although they finish in
 * any order.
 *
 * The example checks itself: every update applied exactly once, every
 * resource at its last revision, never more than `size` handlers at once,
 * the resync in order.  Exit status 0 only if all hold.
 *
 * Usage: green_agent [updates] [pool_size]   (default 2000 and 8)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

#define NRES 64 /* resources of each kind */

enum { PORT, NETWORK, SUBNET, NKINDS };
static const char *kind_name[NKINDS] = {"port", "network", "subnet"};

struct update {
    int kind, id, revision;
};

struct resource {
    weft_lock lock;
    int revision; /* highest applied; guarded by lock */
    int applied;  /* updates applied; guarded by lock */
};

static struct resource cache[NKINDS][NRES];
static int sent[NKINDS][NRES]; /* updates sent per resource (by the server) */
static _Atomic int in_flight, max_in_flight, handled;

static int handle_update(void *arg)
{
    struct update *u = arg;
    struct resource *r = &cache[u->kind][u->id];
    int now = atomic_fetch_add(&in_flight, 1) + 1;
    int m = atomic_load(&max_in_flight);
    int rc;

    while (now > m && !atomic_compare_exchange_weak(&max_in_flight, &m, now))
        ;
    /* Talk to dnsmasq: 0-300 us of "I/O". */
    weft_sleep_until(weft_deadline_in((u->revision * 7919 % 300) * 1000));
    rc = weft_lock_acquire(&r->lock, WEFT_FOREVER);
    if (rc == 0) {
        if (u->revision > r->revision)
            r->revision = u->revision;
        r->applied++;
        weft_lock_release(&r->lock);
    }
    atomic_fetch_sub(&in_flight, 1);
    atomic_fetch_add(&handled, 1);
    free(u);
    return rc;
}

struct agent {
    weft_queue *updates;
    weft_green_pool *pool;
    int to_send;    /* read by the server */
    int dispatched; /* written by the dispatcher */
};

/* The green dispatcher: one update at a time into the pool. */
static int dispatcher(void *arg)
{
    struct agent *a = arg;
    void *item;
    int rc;

    while ((rc = weft_queue_get(a->updates, &item, WEFT_FOREVER)) == 0) {
        rc = weft_green_pool_spawn(a->pool, handle_update, item, WEFT_FOREVER);
        if (rc != 0) {
            free(item);
            return rc;
        }
        a->dispatched++;
    }
    return rc == -EPIPE ? 0 : rc; /* -EPIPE: the server shut the queue */
}

/* The RPC server on an OS thread. */
static int rpc_server(void *arg)
{
    struct agent *a = arg;
    int n = a->to_send;
    unsigned seed = 12345;

    for (int i = 0; i < n; i++) {
        struct update *u = malloc(sizeof *u);
        if (u == NULL)
            return -ENOMEM;
        seed = seed * 1103515245u + 12345u;
        u->kind = (int)(seed >> 8) % NKINDS;
        u->id = (int)(seed >> 12) % NRES;
        u->revision = ++sent[u->kind][u->id];
        if (weft_queue_put(a->updates, u, WEFT_FOREVER) != 0)
            return -EIO;
    }
    weft_queue_shutdown(a->updates, false);
    return 0;
}

/* Resync: report a network's revision, after a "query" of random length. */
static int resync_network(void *input, void **output)
{
    intptr_t id = (intptr_t)input;
    struct resource *r = &cache[NETWORK][id];
    int rev;

    weft_sleep_until(weft_deadline_in((id * 37 % 11) * 50000));
    if (weft_lock_acquire(&r->lock, WEFT_FOREVER) != 0)
        return -ECANCELED;
    rev = r->revision;
    weft_lock_release(&r->lock);
    *output = (void *)(intptr_t)(id * 100000 + rev);
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int size = argc > 2 ? atoi(argv[2]) : 8;
    struct agent a = {NULL, NULL, n, 0};
    weft_thread *server;
    weft_green *disp;
    void *nets[NRES], *outs[NRES];
    int rc, drc = -1, src = -1, bad = 0, total = 0;

    if (n < 1 || size < 1) {
        fprintf(stderr, "usage: green_agent [updates>0] [pool_size>0]\n");
        return 2;
    }
    for (int k = 0; k < NKINDS; k++)
        for (int i = 0; i < NRES; i++)
            weft_lock_init(&cache[k][i].lock);
    if (weft_queue_create(&a.updates, WEFT_QUEUE_FIFO, 64) != 0 ||
        weft_green_pool_create(&a.pool, size) != 0)
        return 1;
    if (weft_green_spawn(&disp, dispatcher, &a, NULL) != 0 ||
        weft_thread_start(&server, rpc_server, &a, NULL) != 0)
        return 1;
    if (weft_thread_join(server, &src, WEFT_FOREVER) != 0 || src != 0) {
        fprintf(stderr, "server failed: %d\n", src);
        return 1;
    }
    if (weft_green_join(disp, &drc, WEFT_FOREVER) != 0 || drc != 0) {
        fprintf(stderr, "dispatcher failed: %s\n", weft_strerror(drc));
        return 1;
    }
    rc = weft_green_pool_waitall(a.pool, weft_deadline_in(30 * WEFT_NSEC_PER_SEC));
    if (rc != 0) {
        fprintf(stderr, "waitall: %s\n", weft_strerror(rc));
        return 1;
    }

    for (int k = 0; k < NKINDS; k++) {
        int kind_total = 0;
        for (int i = 0; i < NRES; i++) {
            struct resource *r = &cache[k][i];
            if (r->applied != sent[k][i] || r->revision != sent[k][i])
                bad++;
            kind_total += r->applied;
        }
        printf("%-8s updates applied: %d\n", kind_name[k], kind_total);
        total += kind_total;
    }
    printf("processed %d of %d updates (%d dispatched), %d resources wrong\n",
           atomic_load(&handled), n, a.dispatched, bad);
    printf("at most %d handlers at once (pool size %d)\n",
           atomic_load(&max_in_flight), size);

    for (intptr_t i = 0; i < NRES; i++)
        nets[i] = (void *)i;
    rc = weft_green_pool_imap(a.pool, resync_network, nets, NRES, outs, NULL,
                              WEFT_FOREVER);
    int in_order = rc == 0;
    for (intptr_t i = 0; i < NRES && in_order; i++)
        in_order = (intptr_t)outs[i] == i * 100000 + sent[NETWORK][i];
    printf("resync of %d networks: %s\n", NRES,
           in_order ? "in network order, every revision current" : "WRONG");

    int ok = bad == 0 && total == n && atomic_load(&handled) == n &&
             a.dispatched == n && atomic_load(&max_in_flight) <= size &&
             in_order && weft_green_pool_failures(a.pool) == 0;
    if (weft_green_pool_waitall(a.pool, WEFT_FOREVER) != 0 ||
        weft_green_pool_destroy(a.pool) != 0 ||
        weft_queue_destroy(a.updates, free) != 0)
        ok = 0;
    printf("%s\n", ok ? "agent: every update applied exactly once"
                      : "agent: FAILED");
    return ok ? 0 : 1;
}
