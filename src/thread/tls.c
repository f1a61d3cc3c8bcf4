/* tls.c - thread-local keys with destructors (weft_tls_key; Python's
 * threading.local at the C level).
 *
 * Design.  A global table of WEFT_TLS_KEYS_MAX slots, each with a sequence
 * number (odd while the slot is in use) and a destructor.  A key is a slot
 * index plus the sequence number it was created with (its generation).
 * Each thread's values live in an array allocated at its first
 * weft_tls_set, reached through a C11 _Thread_local pointer; an entry holds
 * the value and the generation it was set under, so after a key is deleted
 * and its slot reused, a value left under the old generation is neither
 * returned for the new key nor passed to its destructor.
 *   (Rejected: one pthread key per weft key.  It ties weft's key limit to
 *   the C library's, and gives no control over when destructors run relative
 *   to join.)
 *
 * Destructors.  A weft thread runs them (weft__tls_thread_exit) after its
 * function and failure hook and before join can return.  For a foreign
 * thread, a single pthread key, set to the thread's value array when the
 * array is allocated, has a destructor that does the same at its exit.  As
 * in POSIX, a round calls every destructor whose key still has a non-NULL
 * value (clearing it first); if destructors set values again, up to
 * WEFT_TLS_DTOR_ROUNDS rounds run, and what is left after that is dropped.
 *
 * Invariants: a slot's seq is odd iff the slot is in use; a key is valid iff
 * seq == key.gen.  Generations are 32-bit: a slot would have to be created
 * and deleted 2^31 times for a stale key to match again.
 * Locking: the table is atomic (create and delete are a CAS on seq); a
 * value array is owner-only.
 */
#include "thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define WEFT_TLS_DTOR_ROUNDS 4

struct slot {
    _Atomic unsigned seq;                 /* atomic; odd: in use */
    _Atomic(void (*)(void *)) dtor;       /* atomic; set before publishing */
};

struct entry {
    void *value;
    unsigned gen;
};

static struct slot slots[WEFT_TLS_KEYS_MAX];
static _Thread_local struct entry *tls_values; /* owner only */

/* The pthread key that runs a foreign thread's destructors. */
#define KEY_UNSET 0xffffffffu
static _Atomic unsigned exit_key = KEY_UNSET;

static void foreign_exit(void *values);

static bool get_exit_key(pthread_key_t *key)
{
    unsigned k = atomic_load_explicit(&exit_key, memory_order_acquire);
    pthread_key_t mine;

    if (k == KEY_UNSET) {
        if (pthread_key_create(&mine, foreign_exit) != 0)
            return false;
        k = KEY_UNSET;
        if (atomic_compare_exchange_strong(&exit_key, &k, (unsigned)mine))
            k = (unsigned)mine;
        else
            pthread_key_delete(mine);
    }
    *key = (pthread_key_t)k;
    return true;
}

int weft_tls_key_create(weft_tls_key *key, void (*dtor)(void *value))
{
    if (key == NULL)
        return -EINVAL;
    for (unsigned i = 0; i < WEFT_TLS_KEYS_MAX; i++) {
        unsigned s = atomic_load_explicit(&slots[i].seq, memory_order_relaxed);
        if (s & 1u)
            continue;
        /* No value can carry the new generation until this returns, so
         * setting dtor just after the CAS is safe. */
        if (!atomic_compare_exchange_strong(&slots[i].seq, &s, s | 1u))
            continue;
        atomic_store_explicit(&slots[i].dtor, dtor, memory_order_release);
        key->idx = i;
        key->gen = s | 1u;
        return 0;
    }
    return -EAGAIN;
}

static bool key_valid(weft_tls_key key)
{
    return key.idx < WEFT_TLS_KEYS_MAX && (key.gen & 1u) &&
           atomic_load_explicit(&slots[key.idx].seq, memory_order_acquire) ==
               key.gen;
}

int weft_tls_key_delete(weft_tls_key key)
{
    unsigned s = key.gen;

    if (key.idx >= WEFT_TLS_KEYS_MAX || !(s & 1u))
        return -EINVAL;
    if (!atomic_compare_exchange_strong(&slots[key.idx].seq, &s, s + 1u))
        return -EINVAL;
    return 0;
}

void *weft_tls_get(weft_tls_key key)
{
    struct entry *v = tls_values;

    if (v == NULL || !key_valid(key))
        return NULL;
    return v[key.idx].gen == key.gen ? v[key.idx].value : NULL;
}

static struct entry *values_alloc(void)
{
    pthread_key_t pk;
    struct entry *v = calloc(WEFT_TLS_KEYS_MAX, sizeof *v);

    if (v == NULL)
        return NULL;
    /* Weft threads clear this themselves before they exit. */
    if (get_exit_key(&pk))
        pthread_setspecific(pk, v);
    tls_values = v;
    return v;
}

int weft_tls_set(weft_tls_key key, void *value)
{
    struct entry *v = tls_values;

    if (!key_valid(key))
        return -EINVAL;
    if (v == NULL) {
        if (value == NULL)
            return 0;
        v = values_alloc();
        if (v == NULL)
            return -ENOMEM;
    }
    v[key.idx].value = value;
    v[key.idx].gen = key.gen;
    return 0;
}

/* One round over v: clear and destroy each live value.  Returns whether any
 * destructor ran (then another round is due). */
static bool dtor_round(struct entry *v)
{
    bool ran = false;

    for (unsigned i = 0; i < WEFT_TLS_KEYS_MAX; i++) {
        void *value = v[i].value;
        if (value == NULL)
            continue;
        v[i].value = NULL;
        if (atomic_load_explicit(&slots[i].seq, memory_order_acquire) !=
            v[i].gen)
            continue; /* its key was deleted */
        void (*dtor)(void *) =
            atomic_load_explicit(&slots[i].dtor, memory_order_acquire);
        if (dtor != NULL) {
            dtor(value);
            ran = true;
        }
    }
    return ran;
}

static void run_dtors(struct entry *v)
{
    for (int r = 0; r < WEFT_TLS_DTOR_ROUNDS; r++)
        if (!dtor_round(v))
            break;
    tls_values = NULL;
    free(v);
}

void weft__tls_thread_exit(void)
{
    pthread_key_t pk;
    struct entry *v = tls_values;

    if (v == NULL)
        return;
    if (get_exit_key(&pk))
        pthread_setspecific(pk, NULL);
    run_dtors(v);
}

static void foreign_exit(void *values)
{
    if (tls_values == values)
        run_dtors(values);
}
