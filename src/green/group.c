/* group.c - weft_group: structured concurrency over green threads (spawn
 * children, wait for every one, optionally cancel the rest on the first
 * failure), asyncio TaskGroup's rules in C.
 *
 * Design.  Each child is a detached green thread running child_main on a
 * node of ours (fn, arg, its result).  A child registers its own green
 * thread in its node when it starts and clears it when its function has
 * returned, both under the group's guard, so the group can cancel exactly
 * the children whose functions run: a registered pointer is always a live
 * green thread (detached threads are freed only after they return, and
 * they return only after clearing it).  A child spawned but not started
 * yet cannot be reached that way; it reads `cancelling` when it starts and
 * cancels itself.  The waiters of weft_group_wait park on the guard's own
 * wait queue; the child whose return brings `running` to 0 closes the group
 * and wakes them all with the answer, so a woken waiter returns without
 * touching the group again (destroy may free it at once).
 *   (Rejected: joinable children joined by wait.  Cancelling needs a valid
 *   handle, wait with a deadline would leave half-joined sets, and only one
 *   thread may join a handle; registration gives cancellation without any
 *   handle.  Rejected too: weft_lock/weft_cond as the group's lock.  A
 *   cancelled child could not take a cancellable lock to report its result;
 *   the park guard is not cancellable and is held for a few instructions.)
 *
 * Invariants: running == the number of nodes on the running list == the
 * children whose functions have not returned, plus spawns reserved and not
 * yet resolved; closed implies running == 0 and stays true; nwait counts the
 * threads in wait that were neither woken by a child nor gone (as in
 * event.c), so destroy's "nobody touches the group any more" holds; a
 * node's self is non-NULL only while its child's function runs.
 * Locking: everything in struct weft_group and in the nodes, apart from
 * their constant fields (fn, arg, grp, index), is guarded by wq's guard,
 * which is never held across a spawn, a park or a child's function.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "park/park.h"
#include "weft/group.h"

struct node {
    struct node *next, *prev;  /* running list; guarded */
    weft_group *grp;           /* constant */
    weft_green_fn fn;          /* constant */
    void *arg;                 /* constant */
    size_t index;              /* constant */
    weft_green *self;          /* guarded: the child while its fn runs */
    int result;                /* guarded; valid once finished */
    bool finished;             /* guarded */
    bool failed_spawn;         /* guarded: the spawn of this node failed */
};

struct weft_group {
    weft__waitq wq;            /* the guard, and the waiters of wait */
    unsigned flags;            /* constant */
    size_t running;
    uint32_t nwait;
    bool cancelling;
    bool closed;
    bool failed;
    int first_rc;
    size_t first_idx;
    struct node *head;         /* running list */
    struct node **kids;        /* every node by index */
    size_t nkids, cap;
};

int weft_group_create(weft_group **out, unsigned flags)
{
    weft_group *g;

    if (out == NULL || (flags & ~WEFT_GROUP_CANCEL_ON_FAILURE) != 0)
        return -EINVAL;
    g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    g->wq = (weft__waitq)WEFT__WAITQ_INIT;
    g->flags = flags;
    *out = g;
    return 0;
}

int weft_group_destroy(weft_group *g)
{
    bool busy;

    if (g == NULL)
        return -EINVAL;
    /* Taking the guard waits out a child still unlocking it. */
    weft__waitq_lock(&g->wq);
    busy = g->running != 0 || g->nwait != 0 || !weft__waitq_empty(&g->wq);
    weft__waitq_unlock(&g->wq);
    if (busy)
        return -EBUSY;
    for (size_t i = 0; i < g->nkids; i++)
        free(g->kids[i]);
    free(g->kids);
    free(g);
    return 0;
}

/* Guard held.  Cancel every running child and make the unstarted ones
 * cancel themselves as they start. */
static void cancel_all(weft_group *g)
{
    g->cancelling = true;
    for (struct node *c = g->head; c != NULL; c = c->next)
        if (c->self != NULL)
            weft_green_cancel(c->self);
}

static void unlink_node(weft_group *g, struct node *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

/* Guard held: c's function returned rc (or its spawn failed, counted as no
 * failure: the spawner got the error).  The last one out closes the group
 * if anyone waits and hands them the answer. */
static void finish_locked(weft_group *g, struct node *c, int rc, bool spawned)
{
    c->result = rc;
    c->finished = true;
    c->self = NULL;
    unlink_node(g, c);
    g->running--;
    if (spawned && rc != 0 && !g->failed) {
        g->failed = true;
        g->first_rc = rc;
        g->first_idx = c->index;
        if (g->flags & WEFT_GROUP_CANCEL_ON_FAILURE)
            cancel_all(g);
    }
    if (g->running == 0 && !weft__waitq_empty(&g->wq)) {
        g->closed = true;
        g->nwait -= (uint32_t)weft__wake_all(&g->wq, g->failed ? g->first_rc
                                                                : 0);
    }
}

static int child_main(void *arg)
{
    struct node *c = arg;
    weft_group *g = c->grp;
    int rc;

    weft__waitq_lock(&g->wq);
    c->self = weft_green_current();
    if (g->cancelling)
        weft_green_cancel(c->self);
    weft__waitq_unlock(&g->wq);
    rc = c->fn(c->arg);
    weft__waitq_lock(&g->wq);
    finish_locked(g, c, rc, true);
    weft__waitq_unlock(&g->wq);
    /* From here on the group may be freed: touch nothing of it. */
    return rc;
}

/* Guard held: make room for one more node pointer. */
static int grow_locked(weft_group *g)
{
    size_t cap;
    struct node **k;

    if (g->nkids < g->cap)
        return 0;
    cap = g->cap ? g->cap * 2 : 8;
    k = realloc(g->kids, cap * sizeof *k);
    if (k == NULL)
        return -ENOMEM;
    g->kids = k;
    g->cap = cap;
    return 0;
}

int weft_group_spawn_at(weft_group *g, weft_green_fn fn, void *arg,
                        const weft_green_opts *opts, size_t *index,
                        const char *site)
{
    struct node *c;
    int rc;

    if (g == NULL || fn == NULL)
        return -EINVAL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->grp = g;
    c->fn = fn;
    c->arg = arg;
    /* Reserve: counted as running from here, so no wait can close the
     * group while this spawn is being resolved. */
    weft__waitq_lock(&g->wq);
    rc = g->closed ? -EPIPE : g->cancelling ? -ECANCELED : grow_locked(g);
    if (rc != 0) {
        weft__waitq_unlock(&g->wq);
        free(c);
        return rc;
    }
    c->index = g->nkids;
    g->kids[g->nkids++] = c;
    g->running++;
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    weft__waitq_unlock(&g->wq);

    rc = weft_green_spawn_at(NULL, child_main, c, opts, site);
    if (rc != 0) {
        weft__waitq_lock(&g->wq);
        c->failed_spawn = true;
        finish_locked(g, c, rc, false);
        weft__waitq_unlock(&g->wq);
        return rc;
    }
    if (index)
        *index = c->index;
    return 0;
}

/* Guard held: is the caller one of g's running children? */
static bool caller_is_child(weft_group *g)
{
    weft_green *me = weft_green_current();

    if (me == NULL)
        return false;
    for (struct node *c = g->head; c != NULL; c = c->next)
        if (c->self == me)
            return true;
    return false;
}

int weft_group_wait(weft_group *g, int64_t deadline)
{
    weft__wait_entry e;
    int rc;

    if (g == NULL)
        return -EINVAL;
    weft__waitq_lock(&g->wq);
    if (g->running == 0)
        goto done;
    if (caller_is_child(g)) {
        weft__waitq_unlock(&g->wq);
        return -EDEADLK;
    }
    if (deadline == WEFT_NOW) {
        weft__waitq_unlock(&g->wq);
        return -ETIMEDOUT;
    }
    g->nwait++;
    rc = weft__wait_on(&g->wq, &e, false, deadline, "group wait", g);
    if (rc == 0)
        return e.result; /* the last child closed g and counted us out */
    /* Guard held, e unlinked.  If the last child returned as we gave up,
     * its answer wins, as an event's flag does. */
    g->nwait--;
    if (g->running != 0) {
        weft__waitq_unlock(&g->wq);
        return rc;
    }
done:
    g->closed = true;
    rc = g->failed ? g->first_rc : 0;
    weft__waitq_unlock(&g->wq);
    return rc;
}

int weft_group_cancel(weft_group *g)
{
    if (g == NULL)
        return -EINVAL;
    weft__waitq_lock(&g->wq);
    if (!g->closed)
        cancel_all(g);
    weft__waitq_unlock(&g->wq);
    return 0;
}

size_t weft_group_running(weft_group *g)
{
    size_t n;

    if (g == NULL)
        return 0;
    weft__waitq_lock(&g->wq);
    n = g->running;
    weft__waitq_unlock(&g->wq);
    return n;
}

int weft_group_result(weft_group *g, size_t index, int *result)
{
    int rc = 0;

    if (g == NULL || result == NULL)
        return -EINVAL;
    weft__waitq_lock(&g->wq);
    if (index >= g->nkids || g->kids[index]->failed_spawn)
        rc = -EINVAL;
    else if (!g->kids[index]->finished)
        rc = -EAGAIN;
    else
        *result = g->kids[index]->result;
    weft__waitq_unlock(&g->wq);
    return rc;
}

int weft_group_first_failure(weft_group *g, size_t *index)
{
    int rc;

    if (g == NULL)
        return -EINVAL;
    weft__waitq_lock(&g->wq);
    rc = g->failed ? g->first_rc : 0;
    if (g->failed && index)
        *index = g->first_idx;
    weft__waitq_unlock(&g->wq);
    return rc;
}
