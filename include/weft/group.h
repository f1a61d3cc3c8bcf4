/* weft/group.h - structured concurrency over green threads: groups (spawn
 * children, wait for all of them, optionally cancel the rest on the first
 * failure) and green pools (eventlet's GreenPool: at most `size` tasks at
 * once, spawn parks the caller while the pool is full, imap in input order).
 *
 * Both work from OS threads and green threads alike, as every weft call
 * does.  Conventions as everywhere in weft (weft.h): 0 or a negative errno
 * code; the deadline is the last argument.  A child's or task's "failure"
 * is any non-zero return of its function.
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "weft/green.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Groups ----------------------------------------------------------- */

typedef struct weft_group weft_group;

/* On the first failure, cancel every other child (weft_green_cancel: its
 * current and later blocking calls return -ECANCELED) and refuse new
 * spawns, as asyncio's TaskGroup does. */
#define WEFT_GROUP_CANCEL_ON_FAILURE 1u

/* Create an open group.  flags: 0 or WEFT_GROUP_CANCEL_ON_FAILURE.
 * 0, -EINVAL (out NULL, unknown flag), -ENOMEM. */
int weft_group_create(weft_group **out, unsigned flags);

/* Free the group.  -EBUSY (and nothing changes) while a child's function
 * still runs or a thread waits in weft_group_wait; otherwise 0, and nobody
 * touches the group any more.  A group need not have been waited for.
 * -EINVAL if g is NULL. */
int weft_group_destroy(weft_group *g);

/* Start fn(arg) in a new green thread that belongs to g.  opts as for
 * weft_green_spawn (may be NULL).  If index is not NULL it receives the
 * child's number for weft_group_result: numbers rise in spawn order from 0
 * (one may be skipped where a concurrent spawn failed).  Any thread, a
 * child of g included (a child may spawn siblings, also while someone
 * waits).  0; -EPIPE if g is closed (a wait has returned with every child
 * finished); -ECANCELED if g is cancelling (weft_group_cancel was called, or
 * a child failed under WEFT_GROUP_CANCEL_ON_FAILURE); -EINVAL (g or fn
 * NULL, stack too large); -ENOMEM; -EAGAIN (a stack limit, see green.h).
 * Use the macro: it records the spawn site for the stack-overflow report. */
int weft_group_spawn_at(weft_group *g, weft_green_fn fn, void *arg,
                        const weft_green_opts *opts, size_t *index,
                        const char *site);
#define weft_group_spawn(g, fn, arg, opts, index)                            \
    weft_group_spawn_at((g), (fn), (arg), (opts), (index),                   \
                        __FILE__ ":" WEFT__STR(__LINE__))

/* Wait until no child of g runs, then close g (later spawns: -EPIPE).
 * Returns 0 if every child returned 0; else the code of the first child to
 * fail (in time); the same answer again on every later call.  A child
 * counts as finished once its function has returned (its green-thread-local
 * destructors may still be running; weft_runtime_shutdown waits for those).
 * It may also return, with children still running and g still open:
 *   -ETIMEDOUT  the deadline passed (wait again, cancel, or let them run)
 *   -ECANCELED  the calling green thread was cancelled
 * A child's own code may equal these; weft_group_running(g) > 0 tells the
 * wait's own -ETIMEDOUT/-ECANCELED from a child's.  -EDEADLK if the caller
 * is a running child of g (it would wait for itself); -EINVAL if g is NULL.
 * Several threads may wait at once. */
int weft_group_wait(weft_group *g, int64_t deadline);

/* Cancel every running child (weft_green_cancel) and every child spawned
 * but not started yet (cancelled as it starts: it runs until its first
 * blocking call, which returns -ECANCELED), and refuse new spawns
 * (-ECANCELED) until the group closes.  Does not wait: follow with
 * weft_group_wait.  0 (also on a closed group: nothing to do), or -EINVAL. */
int weft_group_cancel(weft_group *g);

/* How many children's functions have not returned yet (0 if g is NULL). */
size_t weft_group_running(weft_group *g);

/* The result of child number index: 0 and *result; -EAGAIN while it still
 * runs; -EINVAL (g or result NULL, no such child). */
int weft_group_result(weft_group *g, size_t index, int *result);

/* The first failure so far: its code (0 if none) and, if index is not NULL
 * and there was one, the failing child's number. */
int weft_group_first_failure(weft_group *g, size_t *index);

/* ---- Green pools ------------------------------------------------------ */

typedef struct weft_green_pool weft_green_pool;

/* Create a pool that runs at most size tasks at once (size >= 0; a pool of
 * size 0 runs nothing until resized).  0, -EINVAL, -ENOMEM. */
int weft_green_pool_create(weft_green_pool **out, int size);

/* Free the pool.  -EBUSY while a task runs, a spawner is parked, or a
 * thread waits in waitall or in an imap; else 0.  -EINVAL if p is NULL. */
int weft_green_pool_destroy(weft_green_pool *p);

/* Run fn(arg) as a task of the pool, in a new green thread, parking the
 * caller (OS or green thread) while size tasks run; parked spawners get
 * slots in FIFO order.  Any non-zero result of fn counts as a failure
 * (weft_green_pool_failures); keep results in the task's own memory, or
 * use imap or a group.
 * Reentrancy (eventlet's rule): a task of p that spawns into p while p is
 * full runs fn(arg) itself, inline, before this call returns 0, instead of
 * parking for a slot that it may be holding itself.
 * 0; -ETIMEDOUT (full until the deadline; WEFT_NOW: do not wait),
 * -ECANCELED, -EINVAL (p or fn NULL), -ENOMEM, -EAGAIN (a stack limit). */
int weft_green_pool_spawn(weft_green_pool *p, weft_green_fn fn, void *arg,
                          int64_t deadline);

/* Counts, all approximate the moment they return.  running: tasks running
 * now.  free_count: size - running; negative after shrinking below the
 * number running.  waiting: spawners parked for a slot.  failures: tasks
 * (spawned, not imap) that returned non-zero, since creation. */
int weft_green_pool_running(weft_green_pool *p);
int weft_green_pool_free_count(weft_green_pool *p);
int weft_green_pool_waiting(weft_green_pool *p);
long weft_green_pool_failures(weft_green_pool *p);
int weft_green_pool_size(weft_green_pool *p);

/* Set the size (n >= 0).  Growing hands slots to parked spawners at once;
 * shrinking lets running tasks finish (free_count goes negative meanwhile)
 * and starts no new one until running < n.  0 or -EINVAL. */
int weft_green_pool_resize(weft_green_pool *p, int n);

/* Wait until no task runs.  0, -ETIMEDOUT, -ECANCELED, -EDEADLK (called
 * from a task of p: it would wait for itself), -EINVAL. */
int weft_green_pool_waitall(weft_green_pool *p, int64_t deadline);

/* imap: run fn over inputs with the pool's bound on concurrency and hand
 * the results back in input order.  fn(input, &output) returns 0 or a
 * failure code; output is what it stored (NULL if it stored nothing). */
typedef int (*weft_green_map_fn)(void *input, void **output);
typedef struct weft_green_imap weft_green_imap;

/* Start an iteration over inputs[0..n) (the array must stay valid until
 * weft_green_imap_end).  Tasks are started lazily by next, through
 * weft_green_pool_spawn, keeping at most max(size, 1) (size when started)
 * tasks started and not yet handed back: memory is bounded by the pool
 * size, not by n.  0, -EINVAL (NULL p, fn or out; inputs NULL with n > 0),
 * -ENOMEM. */
int weft_green_imap_start(weft_green_imap **out, weft_green_pool *p,
                          weft_green_map_fn fn, void *const *inputs,
                          size_t n);

/* Hand back the next result in input order: 0 with *output and the task's
 * code in *task_rc (a failure is reported here, when the iteration reaches
 * it; the iteration may go on).  -EPIPE when all n were handed back.
 * -ETIMEDOUT / -ECANCELED: the wait (for the task, or for a pool slot to
 * start one) ended; nothing was consumed, call again.  -EBUSY if another
 * thread is in next on the same iterator; -EINVAL on NULL arguments.
 * output and task_rc may be NULL. */
int weft_green_imap_next(weft_green_imap *it, void **output, int *task_rc,
                         int64_t deadline);

/* End the iteration: start no more tasks, drop the results not handed back
 * (tasks still running finish on their own and count as running in the
 * pool until then), free the iterator.  Never blocks.  0, or -EBUSY if a
 * thread is in next, -EINVAL if it is NULL. */
int weft_green_imap_end(weft_green_imap *it);

/* The whole iteration in one call: outputs[i] = the output of input i and,
 * if rcs is not NULL, rcs[i] = its code.  Returns 0 if every task returned
 * 0; else the first failing code in input order, after all n ran.  If the
 * wait ends first, returns -ETIMEDOUT / -ECANCELED, starts no more tasks,
 * and sets rcs[i] to that code for every i not handed back (pass rcs to
 * tell a task's -ETIMEDOUT from the call's).  Nothing writes to outputs or
 * rcs after the call returns.  -EINVAL, -ENOMEM as start. */
int weft_green_pool_imap(weft_green_pool *p, weft_green_map_fn fn,
                         void *const *inputs, size_t n, void **outputs,
                         int *rcs, int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
