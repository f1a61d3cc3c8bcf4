/* platform.h - the platform layer's internal interface: futex, clock, CPU
 * relax hint and OS thread ids.  Everything architecture- or OS-specific
 * that the layers above need is declared here and defined under
 * src/platform/ alone (futex.c, clock.c, cpu.h); no other folder may contain
 * an #ifdef for an architecture or an OS.
 */
#ifndef WEFT_PLATFORM_H
#define WEFT_PLATFORM_H

#include <stdatomic.h>
#include <stdint.h>

/* Sleep while *addr == expected, until woken or the absolute monotonic
 * deadline (WEFT_FOREVER: none) passes.  Returns 0 when woken (or on a
 * spurious return: callers re-check their condition), -EAGAIN if *addr
 * already differed, -ETIMEDOUT, or -EINTR.  Process-private. */
int weft__futex_wait(_Atomic uint32_t *addr, uint32_t expected,
                     int64_t deadline);

/* After a system call returned EINTR: let ThreadSanitizer run a signal
 * handler it deferred (futex.c says why); nothing in other builds. */
void weft__tsan_deliver_signals(void);

/* The SA_RESTART flag for weft's signal handlers: SA_RESTART, or 0 under
 * ThreadSanitizer (futex.c says why). */
int weft__sa_restart(void);

/* Wake up to n sleepers on addr (INT32_MAX: all).  Returns how many. */
int weft__futex_wake(_Atomic uint32_t *addr, int n);

/* Monotonic nanoseconds (CLOCK_MONOTONIC). */
int64_t weft__clock_now(void);

/* Wall-clock time: seconds and microseconds since the epoch. */
void weft__clock_wall(int64_t *sec, int32_t *usec);

/* The kernel's id for the calling thread. */
long weft__gettid(void);

/* Set the calling OS thread's name (cut to what the OS keeps). */
void weft__set_os_thread_name(const char *name);

/* A hint to the CPU that we are spinning. */
void weft__cpu_relax(void);

/* Asymmetric fences (fence.c).  Code on a hot path that must be ordered
 * against a store-then-load on a cold path uses
 *     hot:  store A; weft__fence_light(); load B
 *     cold: store B; weft__fence_heavy(); load A
 * and then at least one side sees the other's store.  The light fence is a
 * compiler barrier when membarrier(2) is available, else a full fence. */
extern int weft__membarrier_ok;
void weft__fence_heavy(void);

/* gcc's ThreadSanitizer does not model fences and says so (-Wtsan); the
 * fence is still executed, and TSan checks data races, not fence logic. */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
static inline void weft__full_fence(void)
{
    atomic_thread_fence(memory_order_seq_cst);
}
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static inline void weft__fence_light(void)
{
    if (__builtin_expect(weft__membarrier_ok, 1))
        atomic_signal_fence(memory_order_seq_cst);
    else
        weft__full_fence();
}

/* Spin budgets in iterations of weft__cpu_relax, calibrated at start-up
 * (spin.c): before an OS thread sleeps in park, before a lock contender
 * parks, and before an OS thread sleeps in a wait for a hand-off that
 * another thread is about to make (an executor's idle worker, a caller
 * waiting for a task's result): there a sleep on one side makes the other
 * side's spin run out too, and the pair settles into two futex round trips
 * per task. */
extern unsigned weft__park_spin_iters;
extern unsigned weft__lock_spin_iters;
extern unsigned weft__handoff_spin_iters;

/* Step i (from 0) of a spin that may run past the ordinary park budget (a
 * hand-off spin): cpu_relax, but past that budget a sched_yield every 32
 * steps, since the thread we wait for may be waiting for this very core
 * and spinning on would only delay it. */
void weft__spin_step(unsigned i);

/* Number of CPUs this process may run on (>= 1). */
int weft__cpu_count(void);

#endif
