/* weft/sync.h - locks, conditions, semaphores, events, barriers, once,
 * read-write locks and timers, with the semantics of Python's threading
 * module in C form.
 *
 * Every primitive here works the same from OS threads and (later) green
 * threads, mixed freely: all of them wait through the park layer and nothing
 * else.  Every blocking call takes an absolute monotonic deadline as its
 * last argument (weft/time.h) and, in a green thread, is a cancellation
 * point.
 *
 * Storage.  Lock, rlock, condition, semaphore, event and once are exposed
 * structs so that they can live inside the caller's own structures and be
 * initialised statically (WEFT_LOCK_INIT and friends).  Their fields are
 * private: touch them only through the functions below.  All-zero storage is
 * a valid unlocked lock, rlock, event and once.  A primitive must not be
 * destroyed (or its storage reused) while any thread waits on it; the _fini
 * functions report that with -EBUSY.  Its _fini (_destroy for the opaque
 * ones) must be called, and must return 0, before its storage is freed or
 * reused, even when the last waiter has already returned: a waiter may
 * return while the thread that woke it is still inside its wake call (an
 * event's set, a condition's notify, ...), and _fini is what waits that
 * thread out (it takes the primitive's internal guard, which the waker holds
 * until it is done with the primitive).  The same holds for a lock freed
 * right after its last release by another thread (a reference count kept
 * under the lock): weft_lock_fini waits until that release has finished
 * touching the lock.
 *
 * Fairness.  Locks allow barging (a running thread may take a lock that was
 * just released ahead of a parked waiter), which keeps the uncontended and
 * lightly contended paths fast; but a waiter parked for more than
 * WEFT_LOCK_HANDOFF_NS is handed the lock directly at the next release, so
 * no waiter is kept out for long (the policy of Go's sync.Mutex and of
 * CPython's PyMutex).  Conditions wake in FIFO order.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- private plumbing shared by the exposed structs ------------------- */

struct weft__wait_entry;

/* A FIFO of parked waiters with the small lock that guards it.  Private.
 * guard is a futex-based mutex word (0 free, 1 held, 2 held and contended);
 * head, tail and len are guarded by it. */
typedef struct weft__waitq {
    _Atomic uint32_t guard;
    uint32_t len;
    struct weft__wait_entry *head;
    struct weft__wait_entry *tail;
} weft__waitq;

#define WEFT__WAITQ_INIT {0, 0, NULL, NULL}

/* A waiter parked this long on a lock is handed the lock at the next
 * release instead of competing for it. */
#define WEFT_LOCK_HANDOFF_NS INT64_C(1000000)

/* ---- Lock ------------------------------------------------------------- */

/* A mutual-exclusion lock (Python's threading.Lock), with an owner: the
 * thread or green thread that acquired it is the only one that may release
 * it, and re-acquiring it from the owner is reported instead of hanging. */
typedef struct weft_lock {
    _Atomic uint32_t locked;      /* private: 1 while held */
    _Atomic uint32_t waiters;     /* private: 1 while wq may hold waiters */
    _Atomic uint32_t contenders;  /* private: threads in the slow path */
    _Atomic(void *) owner;        /* private: the holder's identity */
    weft__waitq wq;               /* private */
} weft_lock;

#define WEFT_LOCK_INIT {0, 0, 0, NULL, WEFT__WAITQ_INIT}

void weft_lock_init(weft_lock *self);
/* -EBUSY if the lock is held or has waiters. */
int weft_lock_fini(weft_lock *self);

/* Acquire, waiting until deadline.  0, -ETIMEDOUT, -ECANCELED, or -EDEADLK
 * if the caller already holds it.  Blocks; cancellation point. */
int weft_lock_acquire(weft_lock *self, int64_t deadline);
/* Acquire without waiting: 0 or -EAGAIN (-EDEADLK if already held by the
 * caller). */
int weft_lock_try(weft_lock *self);
/* Release: 0, or -EPERM if the caller does not hold it.  Never blocks. */
int weft_lock_release(weft_lock *self);
/* A racy snapshot: is it held by anyone? */
bool weft_lock_locked(const weft_lock *self);
/* Does the calling thread (or green thread) hold it? */
bool weft_lock_held(const weft_lock *self);

/* ---- RLock ------------------------------------------------------------ */

/* A reentrant lock (Python's threading.RLock): the owner may acquire it
 * again, and must release it as many times as it acquired it. */
typedef struct weft_rlock {
    weft_lock lock;           /* private: held while count > 0 */
    uint32_t count;           /* private: owner only */
} weft_rlock;

#define WEFT_RLOCK_INIT {WEFT_LOCK_INIT, 0}

void weft_rlock_init(weft_rlock *self);
int weft_rlock_fini(weft_rlock *self);
/* 0, -ETIMEDOUT, -ECANCELED, -EOVERFLOW (recursion count at UINT32_MAX). */
int weft_rlock_acquire(weft_rlock *self, int64_t deadline);
int weft_rlock_try(weft_rlock *self);
/* -EPERM if the caller is not the owner. */
int weft_rlock_release(weft_rlock *self);
bool weft_rlock_locked(const weft_rlock *self);
/* The caller's recursion level: 0 if it does not own it. */
uint32_t weft_rlock_level(const weft_rlock *self);

/* ---- Condition -------------------------------------------------------- */

/* A condition variable bound to one lock or one rlock for its whole life
 * (Python's threading.Condition).  wait releases the lock (every recursion
 * level of an rlock), parks, and re-acquires it before returning, on timeout
 * and cancellation too.  notify wakes waiters in FIFO order.  Waiting or
 * notifying without holding the lock is -EPERM. */
typedef struct weft_cond {
    weft_lock *lock;          /* private: exactly one of lock, rlock */
    weft_rlock *rlock;        /* private */
    weft__waitq wq;           /* private */
    uint32_t nwait;           /* private: waiters not yet gone, for fini */
} weft_cond;

#define WEFT_COND_INIT(lockp) {(lockp), NULL, WEFT__WAITQ_INIT, 0}
#define WEFT_COND_INIT_RLOCK(rlockp) {NULL, (rlockp), WEFT__WAITQ_INIT, 0}

void weft_cond_init(weft_cond *self, weft_lock *lock);
void weft_cond_init_rlock(weft_cond *self, weft_rlock *rlock);
int weft_cond_fini(weft_cond *self);

/* 0 when notified, -ETIMEDOUT, -ECANCELED, -EPERM.  The lock is held again
 * when it returns, whatever it returns (except -EPERM, when it was never
 * released; and WEFT_NOW, which returns -ETIMEDOUT without releasing it, as
 * no notify could arrive meanwhile).  As in Python there are no spurious
 * wake-ups, but another thread may take the state first: re-check in a
 * loop, or use wait_for.  Blocks; cancellation point (a cancelled wait
 * still re-takes the lock, ignoring the cancellation meanwhile). */
int weft_cond_wait(weft_cond *self, int64_t deadline);

/* Wait until pred(arg) is true, re-checking after every wake-up, with one
 * deadline for the whole wait.  0 when pred became true, or the error that
 * ended the wait (-ETIMEDOUT: pred was still false at the deadline). */
typedef bool (*weft_pred_fn)(void *arg);
int weft_cond_wait_for(weft_cond *self, weft_pred_fn pred, void *arg,
                       int64_t deadline);

/* Wake up to n waiters (FIFO); notify_all wakes every one.  -EPERM without
 * the lock, -EINVAL if n < 0 (0 wakes nobody).  Never blocks; does not
 * release the lock. */
int weft_cond_notify(weft_cond *self, int n);
int weft_cond_notify_all(weft_cond *self);

/* ---- Semaphore and bounded semaphore ---------------------------------- */

/* A counting semaphore (Python's Semaphore); with a bound, a
 * BoundedSemaphore, whose value may never rise above its bound.
 *
 * Its value (the free permits) is at most WEFT_SEM_VALUE_MAX, 2^40 - 1: the
 * permits and the count of parked waiters share one 64-bit word, so that a
 * release that finds nobody parked touches the semaphore only in one atomic
 * operation.  Hence the usual completion pattern is safe: once an acquire
 * has returned and fini has returned 0, the semaphore may be freed even if
 * the thread whose release let that acquire through has not yet returned
 * from weft_sem_release. */
#define WEFT_SEM_PERMIT_BITS 40
#define WEFT_SEM_VALUE_MAX ((INT64_C(1) << WEFT_SEM_PERMIT_BITS) - 1)

typedef struct weft_sem {
    /* private: free permits in the low WEFT_SEM_PERMIT_BITS bits, above
     * them the number of waiters registered to park */
    _Atomic uint64_t state;
    int64_t bound;            /* private: -1 means unbounded */
    weft__waitq wq;           /* private */
} weft_sem;

/* v must be in 0..WEFT_SEM_VALUE_MAX (the functions below check this; a
 * static initialiser cannot). */
#define WEFT_SEM_INIT(v) {(uint64_t)(v), -1, WEFT__WAITQ_INIT}
#define WEFT_BOUNDED_SEM_INIT(v) {(uint64_t)(v), (v), WEFT__WAITQ_INIT}

/* -EINVAL if value < 0 or value > WEFT_SEM_VALUE_MAX.  The bounded form's
 * bound is its initial value. */
int weft_sem_init(weft_sem *self, int64_t value);
int weft_sem_init_bounded(weft_sem *self, int64_t value);
/* -EBUSY if anyone waits, or is still leaving after a timeout or
 * cancellation, or a release is still handing it a unit; 0 means the
 * storage may be freed. */
int weft_sem_fini(weft_sem *self);
/* Take one unit: 0, -ETIMEDOUT, -ECANCELED, or -ENOMEM if 2^24 - 1
 * waiters are already parked (the most the state word can count).  Blocks;
 * cancellation point.  Parked waiters are served in FIFO order and are
 * handed their unit directly, so running threads cannot starve them. */
int weft_sem_acquire(weft_sem *self, int64_t deadline);
/* 0 or -EAGAIN. */
int weft_sem_try(weft_sem *self);
/* Give back n units (n >= 1, else -EINVAL) and wake up to n waiters.
 * Refuses, changing nothing, with -EOVERFLOW if the value would exceed the
 * bound of a bounded semaphore, or WEFT_SEM_VALUE_MAX.  Never blocks.  When
 * nobody is parked, its one access to the semaphore is the atomic update
 * that adds the units. */
int weft_sem_release(weft_sem *self, int64_t n);
int64_t weft_sem_value(const weft_sem *self);

/* ---- Event ------------------------------------------------------------ */

/* A level-triggered flag (Python's threading.Event). */
typedef struct weft_event {
    _Atomic uint32_t flag;    /* private */
    weft__waitq wq;           /* private */
    uint32_t nwait;           /* private: waiters not yet gone, for fini */
} weft_event;

#define WEFT_EVENT_INIT {0, WEFT__WAITQ_INIT, 0}

void weft_event_init(weft_event *self);
/* -EBUSY while anyone waits.  An event used as a completion signal must
 * still be fini'd (until it returns 0) before its storage is freed, even
 * after the waiter's wait returned: the setter that woke it may still be
 * inside weft_event_set, and fini waits for it to leave. */
int weft_event_fini(weft_event *self);
/* Set the flag and wake every waiter. */
void weft_event_set(weft_event *self);
void weft_event_clear(weft_event *self);
bool weft_event_is_set(const weft_event *self);
/* 0 once the flag is set (at once if it already is), -ETIMEDOUT,
 * -ECANCELED.  As Python's wait returns the flag, a wait whose deadline
 * passes (or which is cancelled) just as the event is set returns 0. */
int weft_event_wait(weft_event *self, int64_t deadline);

/* ---- Barrier ---------------------------------------------------------- */

/* A cyclic barrier for a fixed number of parties (Python's
 * threading.Barrier).  Opaque: create and destroy it. */
typedef struct weft_barrier weft_barrier;

/* action, if not NULL, is run by exactly one party (the last to arrive)
 * before any is released; if it returns non-zero the barrier breaks: that
 * party gets the action's code back, every other gets WEFT_EBROKEN (so an
 * action should fail with a negative code, which no index can be mistaken
 * for).  -EINVAL if parties < 1, -ENOMEM. */
typedef int (*weft_barrier_action)(void *arg);
int weft_barrier_create(weft_barrier **out, int parties,
                        weft_barrier_action action, void *arg);
/* -EBUSY if parties are waiting. */
int weft_barrier_destroy(weft_barrier *self);
/* Wait for every party.  Returns the arrival index within the cycle: 0 for
 * the first to arrive, parties-1 for the last (the one that runs the
 * action); or WEFT_EBROKEN, -ETIMEDOUT (which also breaks the barrier for
 * everyone) or -ECANCELED (which breaks it too).  A waiter whose deadline
 * passes (or which is cancelled) once every party has arrived, at the
 * moment the cycle completes or while the last one runs the action, gets
 * the cycle's result (its index, or WEFT_EBROKEN if the action failed) and
 * breaks nothing; so it may wait past its deadline for the action to end,
 * as in Python, where the action runs under the barrier's lock (a
 * cancellation is then left pending).  A surplus arrival (more than
 * parties, while the action runs) likewise waits for that cycle to end
 * whatever its deadline, then arrives in the next cycle; if its deadline
 * has passed by then, it times out there and breaks the barrier.  Blocks;
 * cancellation point. */
int weft_barrier_wait(weft_barrier *self, int64_t deadline);
/* Break it: every current and future waiter gets WEFT_EBROKEN. */
void weft_barrier_abort(weft_barrier *self);
/* Fail the current waiters with WEFT_EBROKEN and make it usable again. */
void weft_barrier_reset(weft_barrier *self);
int weft_barrier_parties(const weft_barrier *self);
/* Parties that arrived in the current cycle and are not yet released
 * (including the one running the action).  A racy snapshot. */
int weft_barrier_n_waiting(const weft_barrier *self);
bool weft_barrier_broken(const weft_barrier *self);

/* ---- Once ------------------------------------------------------------- */

/* Run a function exactly once, however many threads ask at the same time;
 * the others wait until it has finished. */
typedef struct weft_once {
    _Atomic uint32_t state;   /* private: 0 new, 1 running, 2 done */
    int rc;                   /* private: what fn returned */
    _Atomic(void *) runner;   /* private: who runs fn while state is 1 */
    weft__waitq wq;           /* private */
    uint32_t nwait;           /* private: waiters not yet gone, for fini */
} weft_once;

#define WEFT_ONCE_INIT {0, 0, NULL, WEFT__WAITQ_INIT, 0}

/* Calls fn(arg) if nobody has yet; returns fn's return value (to every
 * caller, the first and the later ones).  Blocks while another caller runs
 * fn.  A caller that must wait for a running fn may be cancelled
 * (-ECANCELED; fn still runs to completion in its own thread, and a later
 * call gets its value).  fn calling weft_once_call on the same once gets
 * -EDEADLK instead of waiting for itself. */
int weft_once_call(weft_once *self, int (*fn)(void *arg), void *arg);
bool weft_once_done(const weft_once *self);
/* Before the once's storage is freed or reused (see Storage above): 0, or
 * -EBUSY while fn runs or a caller still waits.  A once in static storage
 * needs no fini. */
int weft_once_fini(weft_once *self);

/* ---- Read-write lock -------------------------------------------------- */

/* Many readers or one writer.  Writers are preferred: once a writer waits,
 * new readers wait behind it, so a stream of readers cannot starve writers;
 * and a writer's release admits every reader that queued during its turn
 * before the next writer, so writers cannot starve readers either.  Waiters
 * are handed the lock directly.  Not reentrant.  Readers are counted, not
 * identified: any thread may release a read hold, and a reader that asks to
 * write waits for itself (undetected).  Opaque. */
typedef struct weft_rwlock weft_rwlock;

/* 0 or -ENOMEM. */
int weft_rwlock_create(weft_rwlock **out);
/* -EBUSY if held or waited on. */
int weft_rwlock_destroy(weft_rwlock *self);
/* 0, -ETIMEDOUT, -ECANCELED, or -EDEADLK if the caller holds it for
 * writing.  Blocks; cancellation point. */
int weft_rwlock_read_acquire(weft_rwlock *self, int64_t deadline);
/* 0 or -EAGAIN (-EDEADLK as above). */
int weft_rwlock_read_try(weft_rwlock *self);
/* -EPERM if no reader holds it. */
int weft_rwlock_read_release(weft_rwlock *self);
/* 0, -ETIMEDOUT, -ECANCELED, or -EDEADLK if the caller already holds it for
 * writing.  Blocks; cancellation point. */
int weft_rwlock_write_acquire(weft_rwlock *self, int64_t deadline);
/* 0 or -EAGAIN (-EDEADLK as above). */
int weft_rwlock_write_try(weft_rwlock *self);
/* -EPERM if the caller is not the writer. */
int weft_rwlock_write_release(weft_rwlock *self);

#ifdef __cplusplus
}
#endif
#endif
