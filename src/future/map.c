/* map.c - an executor's map: results in input order, inputs pulled lazily,
 * a bound on the work in flight (Python's Executor.map, without its
 * eagerness: Python submits every input before the first result comes).
 *
 * Design.  A ring of at most max_in_flight futures, oldest first.  next
 * tops the ring up from the input (submitting each input as it is
 * pulled), then waits for the oldest future and hands back its outcome.
 * An input pulled but not yet accepted by the executor (its bounded queue
 * stayed full until the deadline) is held for the next call, so a timeout
 * loses nothing.  The map is used by one thread at a time (in_next; a
 * second caller gets -EBUSY), so its fields need no lock: in_next is the
 * only shared word.
 */
#include <stdlib.h>

#include "future/executor.h"
#include "future/future.h"
#include "weft/error.h"

struct weft_map {
    weft_executor *ex;
    weft_task_fn fn;
    weft_input_fn next_input;
    void *state;
    weft_future **ring;        /* [cap] */
    size_t cap, head, count;
    void *held;                /* pulled, not yet submitted */
    bool has_held;
    bool inputs_done;          /* the input said -EPIPE (or failed) */
    int input_rc;              /* the input's failure, reported once */
    int submit_rc;             /* the executor refused: reported at end */
    _Atomic bool in_next;
    /* The array source. */
    void *const *inputs;
    size_t n, i;
};

static int array_next(void *state, void **input)
{
    struct weft_map *m = state;
    if (m->i == m->n)
        return -EPIPE;
    *input = m->inputs[m->i++];
    return 0;
}

int weft_map_start(weft_map **out, weft_executor *ex, weft_task_fn fn,
                   weft_input_fn next, void *state, size_t max_in_flight)
{
    if (out == NULL || ex == NULL || fn == NULL || next == NULL)
        return -EINVAL;
    weft_map *m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    if (max_in_flight == 0)
        max_in_flight = 2 * (size_t)weft__executor_max_workers(ex);
    m->ring = calloc(max_in_flight, sizeof *m->ring);
    if (m->ring == NULL) {
        free(m);
        return -ENOMEM;
    }
    m->ex = ex;
    m->fn = fn;
    m->next_input = next;
    m->state = state;
    m->cap = max_in_flight;
    atomic_init(&m->in_next, false);
    *out = m;
    return 0;
}

int weft_map_start_array(weft_map **out, weft_executor *ex, weft_task_fn fn,
                         void *const *inputs, size_t n,
                         size_t max_in_flight)
{
    if (inputs == NULL && n > 0)
        return -EINVAL;
    int rc = weft_map_start(out, ex, fn, array_next, NULL, max_in_flight);
    if (rc == 0) {
        (*out)->state = *out;
        (*out)->inputs = inputs;
        (*out)->n = n;
    }
    return rc;
}

/* Submit inputs while there is room.  0, or the submit's -ETIMEDOUT /
 * -ECANCELED (the input is held for the next call). */
static int top_up(weft_map *m, int64_t deadline)
{
    while (m->count < m->cap && m->submit_rc == 0) {
        if (!m->has_held) {
            if (m->inputs_done)
                return 0;
            int rc = m->next_input(m->state, &m->held);
            if (rc != 0) {
                m->inputs_done = true;
                m->input_rc = rc == -EPIPE ? 0 : rc;
                return 0;
            }
            m->has_held = true;
        }
        weft_future *f = NULL;
        int rc = weft_executor_submit(m->ex, m->fn, m->held, &f, deadline);
        if (rc == -ETIMEDOUT || rc == -ECANCELED)
            return rc;
        m->has_held = false;
        if (rc != 0) {
            m->submit_rc = rc; /* shut down, broken, out of memory */
            return 0;
        }
        m->ring[(m->head + m->count) % m->cap] = f;
        m->count++;
    }
    return 0;
}

static int next_locked(weft_map *m, void **result, int *task_rc,
                       int64_t deadline)
{
    int rc = top_up(m, deadline);
    if (rc != 0 && m->count == 0)
        return rc;
    if (m->count == 0) {
        if (m->submit_rc != 0)
            return m->submit_rc;
        if (m->input_rc != 0) {
            rc = m->input_rc;
            m->input_rc = 0;
            return rc;
        }
        return -EPIPE;
    }
    weft_future *f = m->ring[m->head];
    void *value = NULL;
    rc = weft_future_result(f, &value, deadline);
    if (rc == -ETIMEDOUT || (rc == -ECANCELED && !weft_future_cancelled(f)))
        return rc;
    m->ring[m->head] = NULL;
    m->head = (m->head + 1) % m->cap;
    m->count--;
    if (result != NULL)
        *result = rc == 0 ? value : NULL;
    if (task_rc != NULL)
        *task_rc = rc == WEFT_EFAILED ? f->code : rc;
    weft_future_release(f);
    return 0;
}

int weft_map_next(weft_map *m, void **result, int *task_rc,
                  int64_t deadline)
{
    if (m == NULL)
        return -EINVAL;
    if (atomic_exchange(&m->in_next, true))
        return -EBUSY;
    int rc = next_locked(m, result, task_rc, deadline);
    atomic_store(&m->in_next, false);
    return rc;
}

int weft_map_end(weft_map *m)
{
    if (m == NULL)
        return -EINVAL;
    if (atomic_exchange(&m->in_next, true))
        return -EBUSY;
    for (size_t k = 0; k < m->count; k++) {
        weft_future *f = m->ring[(m->head + k) % m->cap];
        weft_future_cancel(f);
        /* Its outcome is dropped on purpose: the caller ended the map. */
        weft__future_mark_read(f);
        weft_future_release(f);
    }
    free(m->ring);
    free(m);
    return 0;
}
