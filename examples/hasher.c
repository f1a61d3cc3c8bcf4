/* hasher.c - the seed's hashing race, and the object that fixes it by
 * keeping its own lock (seed 001's DataHasher).
 *
 * Ten threads each replace a shared buffer by the hex digest of its hash.
 * Done one at a time, that is ten hashes applied in a row, and the result is
 * always the same.  Done as the seed first writes it, each thread reads the
 * buffer, hashes (slowly), and writes back: two threads that read the same
 * buffer both write a digest of it, and one hash is lost; the final value
 * then differs from run to run.  In C a plain shared buffer would be a data
 * race (undefined behaviour), so the racy version here swaps immutable
 * buffers through an atomic pointer: every access is well defined, and the
 * lost updates come only from the read-compute-write sequence not being
 * atomic - the race condition the seed shows.
 *
 * The DataHasher keeps its lock private: users call hasher_hash and
 * hasher_get and cannot forget to lock; get returns a copy (a defensive
 * copy, as the seed discusses), so the caller can do what it likes with it.
 *
 * The hash is 64-bit FNV-1a applied over the buffer many times (to make it
 * slow enough for threads to overlap), written as 16 hex digits.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

#define THREADS 10
#define ROUNDS 200 /* passes over the buffer per hash: the slow part */

typedef struct buf {
    size_t len;
    char data[];
} buf;

static buf *buf_new(const char *data, size_t len)
{
    buf *b = malloc(sizeof *b + len + 1);
    if (!b)
        abort();
    b->len = len;
    memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

/* The slow hash: returns a new buffer holding the hex digest of b. */
static buf *hash_buf(const buf *b)
{
    uint64_t h = 1469598103934665603ull;
    char hex[17];
    for (int r = 0; r < ROUNDS; r++)
        for (size_t i = 0; i < b->len; i++) {
            h ^= (unsigned char)b->data[i];
            h *= 1099511628211ull;
        }
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    return buf_new(hex, 16);
}

static buf *initial(void)
{
    static char hello[5 * 1000];
    for (int i = 0; i < 1000; i++)
        memcpy(hello + 5 * i, "Hello", 5);
    return buf_new(hello, sizeof hello);
}

/* ---- the racy version ---------------------------------------------- */

static _Atomic(buf *) racy_data;
static weft_lock retired_lock = WEFT_LOCK_INIT;
static buf *retired[THREADS + 1]; /* guarded by retired_lock */
static int nretired;              /* guarded by retired_lock */
static weft_barrier *start_line;

static int racy_hash(void *arg)
{
    (void)arg;
    weft_barrier_wait(start_line, WEFT_FOREVER); /* start together */
    buf *old = atomic_load(&racy_data);            /* read */
    buf *new = hash_buf(old);                      /* compute */
    buf *prev = atomic_exchange(&racy_data, new);  /* write */
    /* prev (usually old, unless another thread wrote meanwhile) may still
     * be read by others: free it at the end. */
    weft_lock_acquire(&retired_lock, WEFT_FOREVER);
    retired[nretired++] = prev;
    weft_lock_release(&retired_lock);
    return 0;
}

/* ---- the DataHasher: the lock is part of the object ------------------ */

typedef struct data_hasher {
    weft_lock lock; /* private */
    buf *data;      /* guarded by lock */
} data_hasher;

static void hasher_init(data_hasher *h, buf *data)
{
    weft_lock_init(&h->lock);
    h->data = data;
}

static void hasher_hash(data_hasher *h)
{
    weft_lock_acquire(&h->lock, WEFT_FOREVER);
    buf *old = h->data;
    h->data = hash_buf(old);
    free(old);
    weft_lock_release(&h->lock);
}

/* A defensive copy: the caller owns it. */
static buf *hasher_get(data_hasher *h)
{
    weft_lock_acquire(&h->lock, WEFT_FOREVER);
    buf *copy = buf_new(h->data->data, h->data->len);
    weft_lock_release(&h->lock);
    return copy;
}

static int safe_hash(void *arg)
{
    weft_barrier_wait(start_line, WEFT_FOREVER);
    hasher_hash(arg);
    return 0;
}

static int run_threads(int (*fn)(void *), void *arg)
{
    weft_thread *ts[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (weft_thread_start(&ts[i], fn, arg, NULL) != 0)
            return -1;
    for (int i = 0; i < THREADS; i++)
        weft_thread_join(ts[i], NULL, WEFT_FOREVER);
    return 0;
}

/* How many hashes separate start from result (THREADS+1 if none fits). */
static int hashes_applied(const buf *result)
{
    buf *b = initial();
    for (int n = 0; n <= THREADS; n++) {
        if (b->len == result->len && memcmp(b->data, result->data, b->len) == 0) {
            free(b);
            return n;
        }
        buf *next = hash_buf(b);
        free(b);
        b = next;
    }
    free(b);
    return THREADS + 1;
}

int main(int argc, char **argv)
{
    int tries = argc > 1 ? atoi(argv[1]) : 5;
    int lost_total = 0;

    if (weft_barrier_create(&start_line, THREADS, NULL, NULL) != 0)
        return 1;

    printf("Unprotected: %d threads hash one shared buffer (%d runs)\n",
           THREADS, tries);
    for (int t = 0; t < tries; t++) {
        atomic_store(&racy_data, initial());
        nretired = 0;
        if (run_threads(racy_hash, NULL) != 0)
            return 1;
        buf *result = atomic_load(&racy_data);
        int applied = hashes_applied(result);
        printf("  run %d: %s  (%d of %d hashes applied)\n", t + 1,
               result->data, applied, THREADS);
        lost_total += THREADS - applied;
        for (int i = 0; i < nretired; i++)
            free(retired[i]);
        free(result);
    }
    printf("  lost updates over all runs: %d\n", lost_total);

    printf("DataHasher (its own lock): the same %d threads\n", THREADS);
    int bad = 0;
    for (int t = 0; t < tries; t++) {
        data_hasher h;
        hasher_init(&h, initial());
        if (run_threads(safe_hash, &h) != 0)
            return 1;
        buf *result = hasher_get(&h);
        int applied = hashes_applied(result);
        printf("  run %d: %s  (%d of %d hashes applied)\n", t + 1,
               result->data, applied, THREADS);
        bad += applied != THREADS;
        free(result);
        free(h.data);
    }
    printf("DataHasher: %s\n", bad ? "WRONG" : "every run applied every hash");
    weft_barrier_destroy(start_line);
    return bad ? 1 : 0;
}
