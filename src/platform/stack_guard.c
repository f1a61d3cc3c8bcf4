/* stack_guard.c - guard pages for green stacks, the kernel's map limit, and
 * the overflow handler that names the green thread that overflowed.
 *
 * Guards.  MADV_GUARD_INSTALL (Linux 6.13+) turns a page into a guard
 * without splitting the VMA, so a chunk of 256 stacks stays one mapping.
 * If the kernel refuses it (EINVAL: too old), or WEFT_STACK_GUARD=mprotect
 * asks for it, a guard is a PROT_NONE page made with mprotect: that splits
 * the chunk into two VMAs per stack, and the process would run into
 * vm.max_map_count near 32,000 stacks and then fail in some unrelated
 * mmap.  So in that mode we keep an estimate of the process's mappings (a
 * count of /proc/self/maps lines, plus what we added since) and refuse a
 * new guard with -EAGAIN and a sentence naming vm.max_map_count once the
 * process would come within WEFT__STACK_MAP_HEADROOM mappings of it.
 *   (Rejected: guards only between pooled stacks with a shared guard per
 *   pair - it halves the VMAs but keeps the cap.)
 *
 * Overflow.  The SIGSEGV/SIGBUS handler runs on the thread's alternate
 * signal stack (the overflowed stack has no room), looks the fault address
 * up in the chunk table (weft__stack_find_guard: lock-free, acquire loads),
 * and if it is one of our guards writes one line with write(2) and aborts.
 * It calls only async-signal-safe functions.  Any other fault goes to the
 * handler installed before ours, or to the default action.
 *
 * Locking: the guard kind, the map estimate and the handler state are
 * atomics; the previous sigactions are written once before the handler is
 * published (handler_state, release) and only read after.  The last error
 * and the alternate-stack flag are per thread.
 */
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/assert.h"
#include "platform.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 uapi; older headers lack it */
#endif

#define ALTSTACK_SIZE ((size_t)64 * 1024)
#define RECOUNT_INTERVAL_NS 100000000 /* after a refusal, 100 ms */

static _Atomic size_t page_size;
static _Atomic int guard_kind; /* 0: not decided yet */

/* The map estimate (mprotect fallback only). */
static _Atomic long maps_counted = -1;  /* /proc/self/maps lines at count */
static _Atomic long maps_added;         /* by us since that count */
static _Atomic long map_limit_override; /* test hook; 0: none */
static _Atomic int64_t refused_at;      /* clock of the last refusal */
static _Atomic size_t guard_vmas;

static _Thread_local char last_error[384];
static _Thread_local int thread_ready;

static struct sigaction old_segv, old_bus; /* written before publication */
static _Atomic int handler_state;          /* 0 none, 1 installing, 2 on */

static pthread_once_t altstack_once = PTHREAD_ONCE_INIT;
static pthread_key_t altstack_key;

size_t weft__stack_page(void)
{
    size_t p = atomic_load_explicit(&page_size, memory_order_relaxed);
    if (p == 0) {
        p = (size_t)sysconf(_SC_PAGESIZE);
        atomic_store_explicit(&page_size, p, memory_order_relaxed);
    }
    return p;
}

void weft__stack_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
}

const char *weft__stack_last_error(void)
{
    return last_error;
}

weft__stack_guard_kind weft__stack_guard_kind_now(void)
{
    int k = atomic_load_explicit(&guard_kind, memory_order_acquire);
    if (k != 0)
        return (weft__stack_guard_kind)k;
    const char *env = getenv("WEFT_STACK_GUARD");
    int want = env && strcmp(env, "mprotect") == 0 ? WEFT__STACK_GUARD_MPROTECT
                                                    : WEFT__STACK_GUARD_MADVISE;
    int expected = 0;
    atomic_compare_exchange_strong(&guard_kind, &expected, want);
    return (weft__stack_guard_kind)atomic_load(&guard_kind);
}

size_t weft__stack_guard_vmas(void)
{
    return atomic_load_explicit(&guard_vmas, memory_order_relaxed);
}

void weft__stack_test_set_map_limit(long limit)
{
    atomic_store(&map_limit_override, limit);
    atomic_store(&refused_at, 0);
}

/* Read a small text file into buf; the number of bytes, or -1. */
static long read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* The kernel's vm.max_map_count (65530 if it cannot be read). */
static long sys_map_limit(void)
{
    char buf[32];
    if (read_small("/proc/sys/vm/max_map_count", buf, sizeof buf) <= 0)
        return 65530;
    long v = strtol(buf, NULL, 10);
    return v > 0 ? v : 65530;
}

/* The mappings this process has now: lines of /proc/self/maps.  Costs a
 * few milliseconds at 65,000 mappings, so it runs only near the limit. */
static long count_maps(void)
{
    char buf[4096];
    long lines = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    }
    close(fd);
    return lines;
}

static int refuse(long count, long limit, long sys, int need)
{
    char what[96];
    if (limit == sys)
        snprintf(what, sizeof what, "vm.max_map_count (%ld)", sys);
    else
        snprintf(what, sizeof what,
                 "vm.max_map_count (test limit %ld; "
                 "/proc/sys/vm/max_map_count is %ld)", limit, sys);
    weft__stack_set_error(
        "%s reached: the process has %ld memory mappings, a new stack needs "
        "%d more and %d are kept for the rest of the program; guard pages "
        "are PROT_NONE pages (two mappings per stack) because %s; raise the "
        "limit (sysctl vm.max_map_count=262144), use fewer stacks, or run "
        "on Linux 6.13+ for MADV_GUARD_INSTALL",
        what, count, need, WEFT__STACK_MAP_HEADROOM,
        getenv("WEFT_STACK_GUARD") ? "WEFT_STACK_GUARD=mprotect is set"
                                   : "the kernel refused MADV_GUARD_INSTALL");
    atomic_store(&refused_at, weft__clock_now());
    return -EAGAIN;
}

/* Reserve room for need more mappings in the mprotect fallback; 0 or
 * -EAGAIN with the message set. */
static int reserve_maps(int need)
{
    long sys = sys_map_limit();
    long limit = atomic_load(&map_limit_override);
    if (limit <= 0)
        limit = sys;
    long room = limit - WEFT__STACK_MAP_HEADROOM;
    long est = atomic_load(&maps_counted) + atomic_load(&maps_added) + need;
    if (atomic_load(&maps_counted) >= 0 && est <= room) {
        atomic_fetch_add(&maps_added, need);
        return 0;
    }
    /* Near the limit (or never counted): count for real, but not again
     * within RECOUNT_INTERVAL_NS of a refusal, so that a caller retrying
     * in a loop does not read /proc/self/maps each time. */
    int64_t last = atomic_load(&refused_at);
    if (last != 0 && weft__clock_now() - last < RECOUNT_INTERVAL_NS &&
        atomic_load(&maps_counted) >= 0)
        return refuse(est - need, limit, sys, need);
    long count = count_maps();
    if (count < 0)
        count = 0;
    atomic_store(&maps_counted, count);
    atomic_store(&maps_added, 0);
    if (count + need > room)
        return refuse(count, limit, sys, need);
    atomic_fetch_add(&maps_added, need);
    return 0;
}

int weft__stack_map_check(int err, size_t len)
{
    if (err == 0) {
        if (weft__stack_guard_kind_now() != WEFT__STACK_GUARD_MPROTECT)
            return 0;
        return reserve_maps(1);
    }
    long sys = sys_map_limit();
    long count = count_maps();
    if (err == ENOMEM && count >= sys - 2)
        return refuse(count, sys, sys, 1);
    weft__stack_set_error("mmap of %zu bytes for stacks failed: %s (the "
                          "process has %ld mappings of %ld; check "
                          "RLIMIT_AS and overcommit)",
                          len, strerror(err), count, sys);
    return -ENOMEM;
}

static int guard_mprotect(void *addr)
{
    int rc = reserve_maps(2);
    if (rc != 0)
        return rc;
    if (mprotect(addr, weft__stack_page(), PROT_NONE) == 0) {
        atomic_fetch_add_explicit(&guard_vmas, 2, memory_order_relaxed);
        return 0;
    }
    int err = errno;
    atomic_fetch_sub(&maps_added, 2);
    return weft__stack_map_check(err, weft__stack_page());
}

int weft__stack_guard_page(void *addr)
{
    if (weft__stack_guard_kind_now() == WEFT__STACK_GUARD_MADVISE) {
        for (int tries = 0; tries < 8; tries++) {
            if (madvise(addr, weft__stack_page(), MADV_GUARD_INSTALL) == 0)
                return 0;
            if (errno != EAGAIN && errno != EINTR)
                break;
        }
        if (errno != EINVAL) {
            weft__stack_set_error("madvise(MADV_GUARD_INSTALL) failed: %s",
                                  strerror(errno));
            return -ENOMEM;
        }
        /* The kernel predates guard regions: fall back for good. */
        atomic_store(&guard_kind, WEFT__STACK_GUARD_MPROTECT);
    }
    return guard_mprotect(addr);
}

/* ---- The alternate signal stack, one per thread that runs green code. */

static void altstack_release(void *mem)
{
    stack_t cur;
    size_t len = ALTSTACK_SIZE + weft__stack_page();
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == (char *)mem +
                                                       weft__stack_page()) {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
    }
    munmap(mem, len);
}

static void altstack_key_create(void)
{
    if (pthread_key_create(&altstack_key, altstack_release) != 0)
        WEFT_PANIC("pthread_key_create failed for the alternate stacks");
}

int weft__stack_thread_init(void)
{
    if (thread_ready)
        return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) {
        thread_ready = 1; /* the thread (or a sanitizer) has one */
        return 0;
    }
    pthread_once(&altstack_once, altstack_key_create);
    size_t page = weft__stack_page();
    size_t len = ALTSTACK_SIZE + page;
    char *mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    /* A guard below, so that a handler overflowing its own stack dies
     * instead of corrupting the memory below; best effort. */
    if (madvise(mem, page, MADV_GUARD_INSTALL) != 0)
        (void)mprotect(mem, page, PROT_NONE);
    stack_t ss = {.ss_sp = mem + page, .ss_size = ALTSTACK_SIZE};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(mem, len);
        return -ENOMEM;
    }
    pthread_setspecific(altstack_key, mem);
    thread_ready = 1;
    return 0;
}

/* ---- The handler. */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_size(char *buf, size_t at, size_t cap, size_t v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0 && at < cap)
        buf[at++] = digits[--n];
    return at;
}

static void report_overflow(const char *name, const char *site, size_t size)
{
    char buf[512];
    size_t cap = sizeof buf - 1, n = 0;
    n = put(buf, n, cap, "weft: stack overflow in green thread ");
    n = put(buf, n, cap, name ? name : "(unnamed)");
    n = put(buf, n, cap, " (stack ");
    n = put_size(buf, n, cap, size);
    n = put(buf, n, cap, " bytes, spawned at ");
    n = put(buf, n, cap, site ? site : "(unknown)");
    n = put(buf, n, cap, ")\n");
    ssize_t w = write(2, buf, n);
    (void)w;
}

/* Hand a fault that is not ours to whoever had the signal before us. */
static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO) {
        old->sa_sigaction(sig, si, uc);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: returning re-runs the faulting instruction, which
     * faults again and kills the process; a signal sent with kill() has no
     * instruction to re-run, so raise it again (delivered on return). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0)
        raise(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    const char *name, *site;
    size_t size;
    int saved = errno;

    if (atomic_load_explicit(&handler_state, memory_order_acquire) == 2 &&
        si->si_code > 0 &&
        weft__stack_find_guard((uintptr_t)si->si_addr, &name, &site, &size)) {
        report_overflow(name, site, size);
        abort();
    }
    chain(sig, si, uc);
    errno = saved;
}

int weft__stack_install_overflow_handler(void)
{
    int rc = weft__stack_thread_init();
    if (rc != 0)
        return rc;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&handler_state, &expected, 1)) {
        while (atomic_load(&handler_state) == 1)
            weft__cpu_relax(); /* another thread is installing: brief */
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, NULL, &old_segv) != 0 ||
        sigaction(SIGBUS, NULL, &old_bus) != 0) {
        rc = -errno;
        atomic_store(&handler_state, 0);
        return rc;
    }
    atomic_store_explicit(&handler_state, 2, memory_order_release);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 ||
        sigaction(SIGBUS, &sa, NULL) != 0) {
        rc = -errno;
        sigaction(SIGSEGV, &old_segv, NULL);
        atomic_store(&handler_state, 0);
        return rc;
    }
    return 0;
}
