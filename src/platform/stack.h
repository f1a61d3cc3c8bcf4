/* stack.h - stacks for green threads: mmap'd, guarded below, small by
 * default, pooled for reuse, with an overflow report (internal interface).
 *
 * Layout.  Stacks are carved from large anonymous mappings ("chunks") of one
 * size class each; every slot of a chunk is a guard page followed by the
 * usable stack:
 *
 *     chunk base                                           chunk end
 *     | guard | stack 0 ... | guard | stack 1 ... | ... | guard | stack n-1 |
 *             ^lo                   ^lo                         ^lo
 *
 * Stacks grow down, so the guard below lo catches an overflow.  The guard is
 * installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which leaves the
 * chunk one VMA however many guards it holds, so the number of stacks is not
 * capped by vm.max_map_count; where the kernel refuses it (or with
 * WEFT_STACK_GUARD=mprotect in the environment) the guard is a PROT_NONE page
 * made with mprotect, which splits the chunk into two VMAs per stack: then
 * weft__stack_alloc counts the mappings and fails with -EAGAIN, naming
 * vm.max_map_count, before the process reaches the limit.
 *
 * Memory.  Chunks are mapped MAP_NORESERVE and without huge pages, so a fresh
 * stack costs only the pages its green thread touches.  A freed stack goes to
 * its size class's free list and keeps its pages, so reusing it costs no page
 * faults; beyond the pool bound (weft__stack_set_pool_limit: by default the
 * recent peak of live stacks) freed stacks' pages are returned to the kernel
 * in bulk with madvise(MADV_DONTNEED) (their address ranges stay reserved and
 * are reused first-come).
 *
 * Overflow.  weft__stack_install_overflow_handler installs a SIGSEGV/SIGBUS
 * handler running on an alternate signal stack.  A fault inside one of our
 * guards writes
 *     weft: stack overflow in green thread <name> (stack <size> bytes,
 *     spawned at <site>)
 * to stderr with write(2) and aborts; any other fault goes to the handler
 * that was installed before ours, or to the default action.  The kernel can
 * only run the handler on a thread that has an alternate signal stack:
 * EVERY OS THREAD THAT RUNS CODE ON A GREEN STACK MUST CALL
 * weft__stack_thread_init() once before it switches to one (the scheduler's
 * workers do so when they start).  weft__stack_alloc and
 * weft__stack_install_overflow_handler also call it for their caller.
 * A frame larger than a page that skips the guard entirely is not caught;
 * compile with -fstack-clash-protection to probe every page.
 *
 * Errors follow include/weft/error.h: 0 or a negative errno code.  After
 * -ENOMEM or -EAGAIN, weft__stack_last_error() names the reason for the
 * calling thread.
 *
 * Thread safety: every function may be called from any thread at any time;
 * one lock guards the pool (never held across anything that can block for
 * long).  A weft__stack itself belongs to its caller: two threads must not
 * free the same one.
 */
#ifndef WEFT_PLATFORM_STACK_H
#define WEFT_PLATFORM_STACK_H

#include <stddef.h>
#include <stdint.h>

struct weft__stack_slot;

/* A stack.  lo and size are for the caller (the context switch starts at
 * lo + size); the rest is private to stack_pool.c.  A zeroed weft__stack is
 * "no stack": freeing it does nothing. */
typedef struct weft__stack {
    void *lo;     /* lowest usable byte; the guard page is just below */
    size_t size;  /* usable bytes (a multiple of the page size) */
    struct weft__stack_slot *slot; /* private */
} weft__stack;

/* The default stack size, 64 KiB until changed. */
#define WEFT__STACK_DEFAULT_SIZE ((size_t)64 * 1024)
/* The largest stack weft__stack_alloc accepts (Go's limit too). */
#define WEFT__STACK_MAX_SIZE ((size_t)1 << 30)

/* Allocate a stack of at least size bytes (rounded up to the page size).
 * Returns 0 and fills *s; -EINVAL for size 0 or above
 * WEFT__STACK_MAX_SIZE (s untouched); -ENOMEM when the kernel refuses
 * memory; -EAGAIN when a kernel limit (vm.max_map_count) would be reached.
 * After -ENOMEM/-EAGAIN, weft__stack_last_error() says why.  A stack from
 * the pool comes back with its old contents; a fresh one is zero-filled. */
int weft__stack_alloc(weft__stack *s, size_t size);

/* Return a stack to the pool and zero *s.  No code may run on it any more.
 * Freeing a zeroed weft__stack does nothing; freeing a stack that is not
 * allocated (a stale copy) is a bug in weft and panics. */
void weft__stack_free(weft__stack *s);

/* For per-worker caches (src/green/green.c): take up to n pooled stacks
 * of size bytes (rounded up) into s[0..), in one hold of the pool lock;
 * returns how many (0 when none is pooled: then weft__stack_alloc, which
 * also makes new ones).  Only stacks whose guard is installed are taken,
 * so no system call is made here. */
size_t weft__stack_alloc_n(weft__stack *s, size_t n, size_t size);
/* Free s[0..n) (zeroed entries are skipped) in one hold of the lock.
 * Every stack must have been passed to weft__stack_recycle since code last
 * ran on it (the caches do so when they take a stack back): this call does
 * not unpoison again, nor forget the owners' names (which must therefore
 * stay valid strings, or have been cleared). */
void weft__stack_free_n(weft__stack *s, size_t n);
/* The stack's user is done with it but keeps it allocated for the next
 * one (a cache): under AddressSanitizer, unpoison what the last user's
 * frames left poisoned, as weft__stack_free does; otherwise nothing (an
 * inline no-op: the hot path of a cache touches no slot).  The owner's
 * names stay until the next weft__stack_set_owner, so a caller whose name
 * string is about to be freed clears them first (set_owner NULL, NULL). */
#if defined(__SANITIZE_ADDRESS__)
#define WEFT__STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT__STACK_ASAN 1
#endif
#endif
#ifdef WEFT__STACK_ASAN
void weft__stack_recycle(weft__stack *s);
#else
static inline void weft__stack_recycle(weft__stack *s)
{
    (void)s;
}
#endif
/* size rounded up to the page size, as weft__stack_alloc rounds it; 0 for
 * 0 or above WEFT__STACK_MAX_SIZE. */
size_t weft__stack_round(size_t size);

/* Name the stack's owner for the overflow report: the green thread's name
 * and where it was spawned ("file.c:42").  Either may be NULL.  The strings
 * are not copied: they must stay valid until the stack is freed or renamed.
 * Freeing a stack forgets them. */
void weft__stack_set_owner(weft__stack *s, const char *name,
                           const char *spawn_site);

/* The size used when the caller has no preference (64 KiB by default). */
size_t weft__stack_default_size(void);
/* Set it (rounded up to the page size).  0 or -EINVAL (0 or above
 * WEFT__STACK_MAX_SIZE; the default is then unchanged). */
int weft__stack_set_default_size(size_t size);

/* Install the overflow handler for SIGSEGV and SIGBUS (once; later calls
 * return 0 and do nothing) and an alternate signal stack for the caller.
 * 0, or a negative errno from sigaction/sigaltstack/mmap. */
int weft__stack_install_overflow_handler(void);

/* Give the calling OS thread an alternate signal stack so that the
 * overflow handler can run on it (see the header comment).  Idempotent
 * and cheap after the first call; a thread that already has one (its own,
 * or a sanitizer's) keeps it.  The stack is unmapped when the thread
 * exits.  0 or -ENOMEM. */
int weft__stack_thread_init(void);

/* A sentence naming why the calling thread's last weft__stack_alloc failed
 * with -ENOMEM or -EAGAIN ("" if none did).  Valid until that thread's next
 * failing call. */
const char *weft__stack_last_error(void);

/* How the guards are made. */
typedef enum weft__stack_guard_kind {
    WEFT__STACK_GUARD_MADVISE = 1, /* MADV_GUARD_INSTALL: no VMA per guard */
    WEFT__STACK_GUARD_MPROTECT = 2 /* PROT_NONE page: two VMAs per stack */
} weft__stack_guard_kind;

/* The guard kind in use: decided when the first stack is allocated (from
 * WEFT_STACK_GUARD=mprotect|madvise|auto and what the kernel accepts);
 * MPROTECT once the kernel has refused MADV_GUARD_INSTALL. */
weft__stack_guard_kind weft__stack_guard_kind_now(void);

/* Statistics, for tests and benchmarks; a consistent snapshot. */
typedef struct weft__stack_stats {
    size_t chunks;         /* mappings made (each one or more VMAs) */
    size_t reserved_bytes; /* address space of all chunks */
    size_t in_use;         /* stacks allocated and not freed */
    size_t pooled;         /* freed stacks waiting for reuse */
    size_t pooled_warm;    /* ... of which keep their pages */
    size_t guard_vmas;     /* VMAs the mprotect fallback has added */
    size_t bound;          /* bytes of warm pooled stacks kept now */
    size_t peak_bytes;     /* recent peak of live stacks' bytes */
} weft__stack_stats;
void weft__stack_get_stats(weft__stack_stats *out);

/* Bound the pages kept by pooled stacks: once the pooled stacks that keep
 * their pages add up to more than bytes, a freed stack gives its pages
 * back with MADV_DONTNEED (together with enough warm neighbours' to make
 * room for the next frees: one madvise per run of adjacent stacks, not one
 * per free).  0 gives back every freed stack's pages.  The default,
 * WEFT__STACK_POOL_AUTO, bounds them by the recent peak of live stacks'
 * bytes (at least 256 MiB): the peak is raised by every allocation and
 * halves, down to what is live, once a second (looked at by frees), and
 * what the bound no longer covers is then given back in bulk - so a burst
 * of N live stacks keeps its pages for the next burst, and returns them
 * over a few seconds of activity without one.  Returns the previous
 * setting (WEFT__STACK_POOL_AUTO if it was the default). */
#define WEFT__STACK_POOL_AUTO ((size_t)-1)
size_t weft__stack_set_pool_limit(size_t bytes);

/* Give back the pages of every pooled stack now (MADV_DONTNEED).  Returns
 * how many stacks were trimmed. */
size_t weft__stack_trim(void);

/* Test hook: pretend vm.max_map_count is limit (0: read the real one
 * again).  Only the mprotect fallback consults the limit. */
void weft__stack_test_set_map_limit(long limit);

/* Mappings left free for the rest of the program: with the mprotect
 * fallback, weft__stack_alloc fails once the process would come within this
 * many mappings of vm.max_map_count. */
#define WEFT__STACK_MAP_HEADROOM 1024

/* ---- Between stack_pool.c and stack_guard.c only. ---- */

/* The page size (cached). */
size_t weft__stack_page(void);

/* Make the page at addr (page-aligned, inside a chunk) a guard.  0,
 * -EAGAIN (map limit; message set) or -ENOMEM (message set).  Switches to
 * the mprotect fallback for good if the kernel refuses MADV_GUARD_INSTALL.
 * Called without the pool lock. */
int weft__stack_guard_page(void *addr);

/* VMAs the mprotect fallback has added (2 per guard). */
size_t weft__stack_guard_vmas(void);

/* Check that one more mapping of len bytes may be made (map limit in the
 * mprotect fallback), and explain a failed mmap: returns -EAGAIN or -ENOMEM
 * with the message set.  err is mmap's errno, or 0 before mapping. */
int weft__stack_map_check(int err, size_t len);

/* Set the calling thread's last error (printf format). */
void weft__stack_set_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Async-signal-safe: if addr lies in the guard page of a slot of one of
 * our chunks, return 1 and that slot's owner and usable size. */
int weft__stack_find_guard(uintptr_t addr, const char **name,
                           const char **site, size_t *size);

#endif
