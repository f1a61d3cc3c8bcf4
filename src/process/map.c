/* map.c - weft_process_map: a task over many inputs, several inputs per
 * message to a worker, results handed back in input order.
 *
 * Design: the inputs are cut into chunks; each chunk is one TASK frame of
 * several inputs and one future (its value is the worker's RESULT body:
 * one code and one output per input).  next() keeps at most max_in_flight
 * chunks submitted and not yet handed back, waits for the oldest, and
 * walks its results one by one.  A chunk whose worker died or timed out
 * fails as a whole: each of its inputs is reported with that code and
 * message.  Submission is lazy: a chunk is built only when the window has
 * room, so a long input list never sits in memory twice.
 *   (Rejected: one future per input.  A message per input is what chunks
 *   exist to avoid; the cost of a round trip dwarfs a small task.)
 *
 * Locking: a map belongs to one thread at a time; busy (atomic) turns a
 * second concurrent caller away with -EBUSY.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "process/process.h"

struct weft_process_map {
    weft_process_pool *pool;
    const weft__proc_entry *entry;
    const weft_process_input *in;
    size_t n, chunk, window;
    weft_future **ring;   /* [window]: chunk c lives at c % window */
    size_t nchunks;
    size_t sent;          /* chunks submitted */
    size_t taken;         /* chunks whose future is being read or done */
    /* the chunk being read (index taken - 1) */
    weft_bytes_reader r;
    size_t left;          /* its results not yet handed back */
    int chunk_rc;         /* its failure for every input, or 0 */
    const char *chunk_msg;
    int sticky;           /* a submission failure, returned from then on */
    _Atomic int busy;
};

int weft_process_map_start(weft_process_map **out, weft_process_pool *p,
                           const char *name, const weft_process_input *inputs,
                           size_t n, size_t chunk, size_t max_in_flight)
{
    weft_process_map *m;
    const weft__proc_entry *e;

    if (out == NULL || p == NULL || name == NULL || (inputs == NULL && n))
        return -EINVAL;
    e = weft__process_lookup(name);
    if (e == NULL)
        return -ENOENT;
    m = calloc(1, sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    m->pool = p;
    m->entry = e;
    m->in = inputs;
    m->n = n;
    m->chunk = chunk ? chunk : 1;
    m->window = max_in_flight ? max_in_flight
                              : 2 * (size_t)weft__process_pool_max_workers(p);
    m->nchunks = (n + m->chunk - 1) / m->chunk;
    m->ring = calloc(m->window, sizeof *m->ring);
    if (m->ring == NULL) {
        free(m);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

/* Submit chunks while the window has room.  0 or the submit error. */
static int fill(weft_process_map *m, int64_t deadline)
{
    while (m->sent < m->nchunks && m->sent - m->taken < m->window) {
        size_t lo = m->sent * m->chunk, hi = lo + m->chunk;
        weft_bytes frame = WEFT_BYTES_INIT;
        int rc;
        if (hi > m->n)
            hi = m->n;
        rc = weft__frame_task(&frame, m->entry, hi - lo);
        for (size_t i = lo; rc == 0 && i < hi; i++)
            rc = weft_bytes_put_blob(&frame, m->in[i].data, m->in[i].len);
        if (rc == 0) {
            weft__frame_end(&frame);
            rc = weft__process_submit_frame(m->pool, m->entry, &frame,
                                            hi - lo, true, 0,
                                            &m->ring[m->sent % m->window],
                                            deadline);
        }
        weft_bytes_fini(&frame);
        if (rc != 0)
            return rc;
        m->sent++;
    }
    return 0;
}

/* Make the oldest submitted chunk the current one (waiting for it). */
static int open_chunk(weft_process_map *m, int64_t deadline)
{
    weft_future *f = m->ring[m->taken % m->window];
    size_t lo = m->taken * m->chunk;
    size_t cnt = lo + m->chunk > m->n ? m->n - lo : m->chunk;
    void *v = NULL;
    uint64_t n;
    int rc = weft_future_result(f, &v, deadline);

    if (rc == -ETIMEDOUT || (rc == -ECANCELED && !weft_future_cancelled(f)))
        return rc; /* nothing consumed */
    m->taken++;
    m->left = cnt;
    m->chunk_rc = 0;
    m->chunk_msg = NULL;
    if (rc == 0) {
        weft_bytes_reader_init(&m->r, v, weft_future_result_size(f));
        if (weft_bytes_get_u64(&m->r, &n) != 0 || n != cnt) {
            m->chunk_rc = WEFT_EWORKER;
            m->chunk_msg = "garbled chunk result";
        }
    } else if (rc == WEFT_EFAILED) {
        weft_future_error(f, &m->chunk_rc, &m->chunk_msg, WEFT_NOW);
    } else {
        m->chunk_rc = -ECANCELED;
        m->chunk_msg = "cancelled";
    }
    return 0;
}

int weft_process_map_next(weft_process_map *m, int *task_rc,
                          const void **data, size_t *len, int64_t deadline)
{
    int rc = 0;
    int64_t code = 0;
    const void *d = NULL;
    size_t dl = 0;

    if (m == NULL)
        return -EINVAL;
    if (atomic_exchange(&m->busy, 1) != 0)
        return -EBUSY;
    if (m->left == 0) {
        /* the chunk read before is finished with: let it go */
        if (m->taken > 0 && m->ring[(m->taken - 1) % m->window] != NULL) {
            weft_future_release(m->ring[(m->taken - 1) % m->window]);
            m->ring[(m->taken - 1) % m->window] = NULL;
        }
        if (m->sticky == 0)
            m->sticky = fill(m, deadline);
        if (m->taken == m->sent) {
            rc = m->sticky ? m->sticky : -EPIPE;
            if (rc == -ETIMEDOUT || rc == -ECANCELED)
                m->sticky = 0; /* nothing lost: try again next call */
            goto out;
        }
        rc = open_chunk(m, deadline);
        if (rc != 0)
            goto out;
    }
    m->left--;
    if (m->chunk_rc != 0) {
        code = m->chunk_rc;
        d = m->chunk_msg;
        dl = strlen(m->chunk_msg);
    } else if (weft_bytes_get_i64(&m->r, &code) != 0 ||
               weft_bytes_get_blob(&m->r, &d, &dl) != 0) {
        code = WEFT_EWORKER;
        d = "garbled chunk result";
        dl = strlen(d);
    } else if (code != 0 && dl > 0) {
        dl--; /* the message's NUL */
    }
    if (task_rc)
        *task_rc = (int)code;
    if (data)
        *data = d;
    if (len)
        *len = dl;
out:
    atomic_store(&m->busy, 0);
    return rc;
}

int weft_process_map_end(weft_process_map *m)
{
    if (m == NULL)
        return -EINVAL;
    if (atomic_exchange(&m->busy, 1) != 0)
        return -EBUSY;
    for (size_t i = 0; i < m->window; i++) {
        if (m->ring[i] != NULL) {
            weft_future_cancel(m->ring[i]);
            weft_future_release(m->ring[i]);
        }
    }
    free(m->ring);
    free(m);
    return 0;
}
