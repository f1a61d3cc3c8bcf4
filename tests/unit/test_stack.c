/* test_stack.c - green-thread stacks: allocation, rounding, errors, the
 * default size, reuse from the pool, lazy memory, guards that fault, the
 * overflow report, the mprotect fallback and its map-limit error, and the
 * VMA count at 100,000 stacks.
 *
 * Every Check test runs in its own forked process, so each starts with an
 * empty pool and may set WEFT_STACK_GUARD before its first allocation.
 * Faults are provoked in a further forked child whose stderr is captured.
 */
#include "support.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "platform/stack.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    ck_assert_ptr_nonnull(f);
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Resident set size in bytes, from /proc/self/statm. */
static size_t rss(void)
{
    long size, res;
    FILE *f = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &res), 2);
    fclose(f);
    return (size_t)res * page();
}

/* Resident pages of [lo, lo+len), from mincore. */
static size_t resident(void *lo, size_t len)
{
    size_t n = len / page(), r = 0;
    unsigned char *v = malloc(n);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(mincore(lo, len, v), 0);
    for (size_t i = 0; i < n; i++)
        r += v[i] & 1;
    free(v);
    return r;
}

/* Run fn(arg) in a forked child with stderr captured into out.  Returns
 * the wait status. */
static int in_child(void (*fn)(void *), void *arg, char *out, size_t cap)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

START_TEST(alloc_gives_usable_page_aligned_stack)
{
    weft__stack s;
    ck_assert_rc(weft__stack_alloc(&s, 64 * 1024), 0);
    ck_assert_ptr_nonnull(s.lo);
    ck_assert_uint_eq((uintptr_t)s.lo % page(), 0);
    ck_assert_uint_eq(s.size, 64 * 1024);
    /* A fresh stack is zero-filled and writable at both ends. */
    ck_assert_int_eq(((char *)s.lo)[0], 0);
    ck_assert_int_eq(((char *)s.lo)[s.size - 1], 0);
    memset(s.lo, 0xab, s.size);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 1);
    ck_assert_uint_eq(st.pooled, 0);
    ck_assert_uint_eq(st.chunks, 1);
    weft__stack_free(&s);
    ck_assert_ptr_null(s.lo);
    ck_assert_uint_eq(s.size, 0);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_eq(st.pooled, 1);
    ck_assert_uint_eq(st.pooled_warm, 1);
    /* Freeing a freed (zeroed) stack does nothing. */
    weft__stack_free(&s);
    weft__stack_free(NULL);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.pooled, 1);
}
END_TEST

START_TEST(freed_stack_comes_back_from_pool)
{
    weft__stack a, b, c;
    ck_assert_rc(weft__stack_alloc(&a, 32 * 1024), 0);
    ck_assert_rc(weft__stack_alloc(&b, 32 * 1024), 0);
    void *alo = a.lo, *blo = b.lo;
    ((char *)a.lo)[a.size - 1] = 42;
    weft__stack_free(&a);
    weft__stack_free(&b);
    /* LIFO: the most recently freed (cache-hot) stack first. */
    ck_assert_rc(weft__stack_alloc(&c, 32 * 1024), 0);
    ck_assert_ptr_eq(c.lo, blo);
    ck_assert_rc(weft__stack_alloc(&a, 32 * 1024), 0);
    ck_assert_ptr_eq(a.lo, alo);
    /* A pooled stack keeps its contents and its pages. */
    ck_assert_int_eq(((char *)a.lo)[a.size - 1], 42);
    /* A different size is a different class: no reuse across classes. */
    weft__stack d;
    weft__stack_free(&c);
    ck_assert_rc(weft__stack_alloc(&d, 48 * 1024), 0);
    ck_assert_ptr_ne(d.lo, blo);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 2);
    ck_assert_uint_eq(st.pooled, 1);
    ck_assert_uint_eq(st.chunks, 2);
    weft__stack_free(&a);
    weft__stack_free(&d);
}
END_TEST

START_TEST(sizes_are_rounded_to_pages)
{
    weft__stack s;
    size_t p = page();
    size_t cases[][2] = {{1, p}, {p - 1, p}, {p, p}, {p + 1, 2 * p},
                         {100000, (100000 + p - 1) / p * p}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_rc(weft__stack_alloc(&s, cases[i][0]), 0);
        ck_assert_uint_eq(s.size, cases[i][1]);
        memset(s.lo, 1, s.size);
        weft__stack_free(&s);
    }
    /* The largest size is accepted and costs no memory until touched. */
    ck_assert_rc(weft__stack_alloc(&s, WEFT__STACK_MAX_SIZE), 0);
    ck_assert_uint_eq(s.size, WEFT__STACK_MAX_SIZE);
    ((char *)s.lo)[s.size - 1] = 1;
    weft__stack_free(&s);
}
END_TEST

START_TEST(bad_sizes_are_einval)
{
    weft__stack s = {.lo = (void *)1, .size = 7};
    ck_assert_rc(weft__stack_alloc(&s, 0), -EINVAL);
    ck_assert_rc(weft__stack_alloc(&s, WEFT__STACK_MAX_SIZE + 1), -EINVAL);
    ck_assert_rc(weft__stack_alloc(&s, SIZE_MAX), -EINVAL);
    ck_assert_rc(weft__stack_alloc(&s, SIZE_MAX - page() + 2), -EINVAL);
    ck_assert_rc(weft__stack_alloc(NULL, 4096), -EINVAL);
    /* s is untouched and nothing was allocated. */
    ck_assert_ptr_eq(s.lo, (void *)1);
    ck_assert_uint_eq(s.size, 7);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_eq(st.chunks, 0);
    ck_assert_str_eq(weft__stack_last_error(), "");
}
END_TEST

START_TEST(default_size_is_64k_and_settable)
{
    ck_assert_uint_eq(weft__stack_default_size(), 64 * 1024);
    ck_assert_rc(weft__stack_set_default_size(100000), 0);
    ck_assert_uint_eq(weft__stack_default_size(),
                      (100000 + page() - 1) / page() * page());
    ck_assert_rc(weft__stack_set_default_size(0), -EINVAL);
    ck_assert_rc(weft__stack_set_default_size(WEFT__STACK_MAX_SIZE + 1),
                 -EINVAL);
    ck_assert_uint_eq(weft__stack_default_size(),
                      (100000 + page() - 1) / page() * page());
    weft__stack s;
    ck_assert_rc(weft__stack_alloc(&s, weft__stack_default_size()), 0);
    ck_assert_uint_eq(s.size, weft__stack_default_size());
    weft__stack_free(&s);
    ck_assert_rc(weft__stack_set_default_size(16 * 1024), 0);
    ck_assert_uint_eq(weft__stack_default_size(), 16 * 1024);
}
END_TEST

START_TEST(stacks_are_disjoint_and_guarded_apart)
{
    enum { N = 600 }; /* more than two chunks */
    static weft__stack s[N];
    for (int i = 0; i < N; i++)
        ck_assert_rc(weft__stack_alloc(&s[i], 64 * 1024), 0);
    /* Slots of one class are laid out guard-stack-guard-stack: any two
     * stacks are at least a guard page apart. */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) {
            uintptr_t a = (uintptr_t)s[i].lo, b = (uintptr_t)s[j].lo;
            ck_assert(a + s[i].size + page() <= b ||
                      b + s[j].size + page() <= a);
        }
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, N);
    ck_assert_uint_ge(st.chunks, 3);
    ck_assert_uint_le(st.chunks, N / 100);
    for (int i = 0; i < N; i++)
        weft__stack_free(&s[i]);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_eq(st.pooled, N);
}
END_TEST

START_TEST(fresh_stack_costs_only_touched_pages)
{
    weft__stack s;
    ck_assert_rc(weft__stack_alloc(&s, 1024 * 1024), 0);
    ck_assert_uint_eq(resident(s.lo, s.size), 0);
    char *top = (char *)s.lo + s.size;
    top[-1] = 1;
    top[-1 - (long)page()] = 1;
    top[-1 - 2 * (long)page()] = 1;
    ck_assert_uint_eq(resident(s.lo, s.size), 3);
    /* Pooled: the pages stay (that is the point of pooling). */
    void *lo = s.lo;
    weft__stack_free(&s);
    ck_assert_uint_eq(resident(lo, 1024 * 1024), 3);
    ck_assert_rc(weft__stack_alloc(&s, 1024 * 1024), 0);
    ck_assert_ptr_eq(s.lo, lo);
    ck_assert_uint_eq(resident(s.lo, s.size), 3);
    /* Trimmed: they go back to the kernel and the stack reads zero. */
    weft__stack_free(&s);
    ck_assert_uint_eq(weft__stack_trim(), 1);
    ck_assert_uint_eq(resident(lo, 1024 * 1024), 0);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.pooled, 1);
    ck_assert_uint_eq(st.pooled_warm, 0);
    ck_assert_rc(weft__stack_alloc(&s, 1024 * 1024), 0);
    ck_assert_ptr_eq(s.lo, lo);
    ck_assert_int_eq(((char *)s.lo)[s.size - 1], 0);
    weft__stack_free(&s);
}
END_TEST

START_TEST(rss_grows_only_by_touched_pages)
{
    enum { N = 2000 };
    static weft__stack s[N];
    size_t before = rss();
    for (int i = 0; i < N; i++)
        ck_assert_rc(weft__stack_alloc(&s[i], 256 * 1024), 0);
    size_t untouched = rss();
    for (int i = 0; i < N; i++)
        ((char *)s[i].lo)[s[i].size - 1] = 1; /* one page each */
    size_t touched = rss();
    /* 2000 stacks of 256 KiB are 512 MiB of address space; untouched they
     * cost only their headers (tens of bytes each). */
    size_t slack = (size_t)8 << 20;
    ck_assert_msg(untouched - before < slack, "untouched: +%zu bytes",
                  untouched - before);
    size_t want = N * page();
    /* ThreadSanitizer's shadow memory adds pages per touched page. */
    size_t factor = SANITIZED ? 6 : 1;
    ck_assert_msg(touched - untouched >= want * 9 / 10 &&
                      touched - untouched <= want * factor + slack,
                  "touching %d pages grew RSS by %zu bytes", N,
                  touched - untouched);
    for (int i = 0; i < N; i++)
        weft__stack_free(&s[i]);
}
END_TEST

START_TEST(pool_bound_gives_pages_back)
{
    weft__stack a, b;
    /* Bound: one 64 KiB stack keeps its pages, the next gives them back. */
    weft__stack_set_pool_limit(64 * 1024);
    ck_assert_rc(weft__stack_alloc(&a, 64 * 1024), 0);
    ck_assert_rc(weft__stack_alloc(&b, 64 * 1024), 0);
    memset(a.lo, 1, a.size);
    memset(b.lo, 1, b.size);
    void *alo = a.lo, *blo = b.lo;
    weft__stack_free(&a);
    weft__stack_free(&b);
    ck_assert_uint_eq(resident(alo, 64 * 1024), 16 * 4096 / page());
    ck_assert_uint_eq(resident(blo, 64 * 1024), 0);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.pooled, 2);
    ck_assert_uint_eq(st.pooled_warm, 1);
    /* Warm stacks are preferred to cold ones. */
    ck_assert_rc(weft__stack_alloc(&a, 64 * 1024), 0);
    ck_assert_ptr_eq(a.lo, alo);
    ck_assert_rc(weft__stack_alloc(&b, 64 * 1024), 0);
    ck_assert_ptr_eq(b.lo, blo);
    ck_assert_uint_eq(weft__stack_set_pool_limit(0), 64 * 1024);
    weft__stack_free(&a);
    weft__stack_free(&b);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.pooled_warm, 0);
    ck_assert_uint_eq(resident(alo, 64 * 1024), 0);
}
END_TEST

START_TEST(default_bound_follows_the_peak)
{
    /* More live at once than the 256 MiB floor: all kept warm, since the
     * peak says they will be needed again. */
    long n = 6000;
    weft__stack *s = calloc((size_t)n, sizeof *s);
    weft__stack_stats st;
    ck_assert_ptr_nonnull(s);
    for (long i = 0; i < n; i++) {
        ck_assert_rc(weft__stack_alloc(&s[i], 64 * 1024), 0);
        ((char *)s[i].lo)[s[i].size - 1] = 1;
    }
    weft__stack_get_stats(&st);
    ck_assert_uint_ge(st.peak_bytes, (size_t)n * 64 * 1024);
    for (long i = 0; i < n; i++)
        weft__stack_free(&s[i]);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_eq(st.pooled_warm, (size_t)n);
    ck_assert_uint_ge(st.bound, (size_t)n * 64 * 1024);
    /* A fixed bound gives the excess back at once, in bulk. */
    ck_assert_uint_eq(weft__stack_set_pool_limit(0), WEFT__STACK_POOL_AUTO);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.pooled_warm, 0);
    ck_assert_uint_eq(st.pooled, (size_t)n);
    ck_assert_uint_eq(weft__stack_set_pool_limit(WEFT__STACK_POOL_AUTO), 0);
    free(s);
}
END_TEST

START_TEST(peak_decays_and_pages_go_back)
{
    /* After a burst, steady activity with few stacks live lets the peak
     * halve once a second, down to the 256 MiB floor: the warm stacks
     * beyond it are given back in bulk by a later free. */
    long n = 6000;
    weft__stack *s = calloc((size_t)n, sizeof *s), one;
    weft__stack_stats st;
    ck_assert_ptr_nonnull(s);
    for (long i = 0; i < n; i++)
        ck_assert_rc(weft__stack_alloc(&s[i], 64 * 1024), 0);
    for (long i = 0; i < n; i++)
        weft__stack_free(&s[i]);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.pooled_warm, (size_t)n);
    int64_t until = weft_deadline_in(MS(6000));
    do {
        for (int i = 0; i < 64; i++) {
            ck_assert_rc(weft__stack_alloc(&one, 64 * 1024), 0);
            weft__stack_free(&one);
        }
        weft__stack_get_stats(&st);
        if (st.pooled_warm <= 4096)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL); /* time is what is tested: the decay */
    } while (weft_now() < until);
    ck_assert_msg(st.pooled_warm <= 4096, "%zu warm stacks after 6 s",
                  st.pooled_warm);
    ck_assert_uint_eq(st.bound, (size_t)256 << 20);
    ck_assert_uint_eq(st.pooled, (size_t)n);
    free(s);
}
END_TEST

START_TEST(batch_alloc_and_free)
{
    weft__stack s[12], t[20];
    void *lo[10];
    weft__stack_stats st;
    /* Nothing pooled of this size yet: the batch takes none. */
    ck_assert_uint_eq(weft__stack_alloc_n(t, 20, 40 * 1024), 0);
    for (int i = 0; i < 10; i++) {
        ck_assert_rc(weft__stack_alloc(&s[i], 40 * 1024), 0);
        lo[i] = s[i].lo;
    }
    memset(&s[10], 0, 2 * sizeof s[0]); /* zeroed entries are skipped */
    weft__stack_free_n(s, 12);
    for (int i = 0; i < 12; i++)
        ck_assert_ptr_null(s[i].slot);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_eq(st.pooled_warm, 10);
    /* Another size takes none of them; this size takes all ten, the
     * most recently freed first. */
    ck_assert_uint_eq(weft__stack_alloc_n(t, 20, 64 * 1024), 0);
    ck_assert_uint_eq(weft__stack_alloc_n(t, 20, 40 * 1024 - 100), 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_uint_eq(t[i].size, 40 * 1024);
        ck_assert_ptr_eq(t[i].lo, lo[9 - i]);
        memset(t[i].lo, 1, t[i].size);
    }
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 10);
    ck_assert_uint_eq(st.pooled, 0);
    /* A recycled stack keeps its slot. */
    weft__stack_recycle(&t[0]);
    ck_assert_ptr_nonnull(t[0].slot);
    weft__stack_free_n(t, 10);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_eq(st.pooled, 10);
}
END_TEST

START_TEST(vmas_stay_few_at_100k_stacks)
{
    long n = 100000 * test_scale();
    weft__stack *s = calloc((size_t)n, sizeof *s);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(weft__stack_guard_kind_now(), WEFT__STACK_GUARD_MADVISE);
    long maps0 = count_maps();
    size_t rss0 = rss();
    for (long i = 0; i < n; i++)
        ck_assert_rc(weft__stack_alloc(&s[i], 64 * 1024), 0);
    long maps1 = count_maps();
    size_t rss1 = rss();
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, (size_t)n);
    ck_assert_uint_eq(st.guard_vmas, 0);
    /* 100,000 guards with mprotect would be 200,000 VMAs; with guard
     * regions the chunks (about 420) do not even count one each, since
     * adjacent chunks merge.  ThreadSanitizer maps its own meta shadow
     * beside every mmap, which adds its VMAs per chunk (not per stack). */
    long per_chunk = SANITIZED ? 3 : 1;
    ck_assert_msg(maps1 - maps0 <= per_chunk * (long)st.chunks &&
                      maps1 - maps0 < n / 50,
                  "%ld stacks added %ld VMAs (%zu chunks)", n, maps1 - maps0,
                  st.chunks);
    /* About 40 bytes of header per stack; nothing touched. */
    ck_assert_msg(rss1 - rss0 < (size_t)n * 256 + ((size_t)16 << 20),
                  "%ld untouched stacks cost %zu bytes of RSS", n,
                  rss1 - rss0);
    for (long i = 0; i < n; i++)
        weft__stack_free(&s[i]);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
    ck_assert_uint_eq(st.pooled, (size_t)n);
    weft__stack_trim();
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.pooled_warm, 0);
    free(s);
}
END_TEST

/* ---- Faults, in forked children. */

struct fault_arg {
    const char *name, *site;
    size_t size;
    int below; /* write just below lo instead of recursing */
};

static void write_below(void *p)
{
    struct fault_arg *a = p;
    weft__stack s;
    if (weft__stack_install_overflow_handler() != 0 ||
        weft__stack_alloc(&s, a->size) != 0)
        _exit(3);
    weft__stack_set_owner(&s, a->name, a->site);
    ((volatile char *)s.lo)[-1] = 1;
    _exit(4); /* not reached */
}

static ucontext_t main_ctx, green_ctx;

/* Each frame holds a page-sized buffer it really uses, so the recursion
 * walks down the stack page by page and meets the guard. */
static int __attribute__((noinline)) recurse(int depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = (char)depth;
    if (depth > 1000000)
        return buf[0];
    return recurse(depth + 1) + buf[sizeof buf - 1];
}

static void green_main(void)
{
    recurse(0);
    swapcontext(&green_ctx, &main_ctx); /* not reached */
}

static void overflow_on_green_stack(void *p)
{
    struct fault_arg *a = p;
    weft__stack s;
    if (weft__stack_install_overflow_handler() != 0 ||
        weft__stack_alloc(&s, a->size) != 0)
        _exit(3);
    weft__stack_set_owner(&s, a->name, a->site);
    getcontext(&green_ctx);
    green_ctx.uc_stack.ss_sp = s.lo;
    green_ctx.uc_stack.ss_size = s.size;
    green_ctx.uc_link = &main_ctx;
    makecontext(&green_ctx, green_main, 0);
    swapcontext(&main_ctx, &green_ctx);
    _exit(4); /* not reached */
}

static void check_overflow_report(int status, const char *out,
                                  const struct fault_arg *a)
{
    char want[256];
    snprintf(want, sizeof want,
             "weft: stack overflow in green thread %s (stack %zu bytes, "
             "spawned at %s)\n",
             a->name, a->size, a->site);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "child status %#x, output: %s", status, out);
    ck_assert_msg(strstr(out, want) != NULL, "output: %s", out);
}

START_TEST(write_below_lo_hits_guard)
{
    char out[4096];
    struct fault_arg a = {"guard-test", "test_stack.c:1", 64 * 1024, 1};
    int status = in_child(write_below, &a, out, sizeof out);
    check_overflow_report(status, out, &a);
}
END_TEST

START_TEST(deep_recursion_reports_overflow)
{
    char out[4096];
    struct fault_arg a = {"deep-recursion", "worker.c:77", 64 * 1024, 0};
    int status = in_child(overflow_on_green_stack, &a, out, sizeof out);
    check_overflow_report(status, out, &a);
}
END_TEST

static void unnamed_overflow(void *p)
{
    (void)p;
    weft__stack s;
    if (weft__stack_install_overflow_handler() != 0 ||
        weft__stack_alloc(&s, 16 * 1024) != 0)
        _exit(3);
    ((volatile char *)s.lo)[-(long)page()] = 1; /* the guard's first byte */
    _exit(4);
}

START_TEST(overflow_of_unnamed_stack_is_reported)
{
    char out[4096];
    int status = in_child(unnamed_overflow, NULL, out, sizeof out);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "status %#x: %s", status, out);
    ck_assert_msg(strstr(out, "weft: stack overflow in green thread "
                              "(unnamed) (stack 16384 bytes, spawned at "
                              "(unknown))") != NULL,
                  "output: %s", out);
}
END_TEST

static void own_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    static const char msg[] = "own handler\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(42);
}

static void other_fault_with_own_handler(void *p)
{
    (void)p;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = own_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    weft__stack s;
    if (weft__stack_install_overflow_handler() != 0 ||
        weft__stack_alloc(&s, 16 * 1024) != 0)
        _exit(3);
    char *bad = mmap(NULL, page(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    ((volatile char *)bad)[0] = 1;
    _exit(4);
}

START_TEST(other_fault_goes_to_previous_handler)
{
    char out[4096];
    int status = in_child(other_fault_with_own_handler, NULL, out, sizeof out);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42,
                  "status %#x: %s", status, out);
    ck_assert_ptr_null(strstr(out, "weft: stack overflow"));
}
END_TEST

static void other_fault_default(void *p)
{
    (void)p;
    weft__stack s;
    if (weft__stack_install_overflow_handler() != 0 ||
        weft__stack_install_overflow_handler() != 0 ||
        weft__stack_alloc(&s, 16 * 1024) != 0)
        _exit(3);
    /* Inside a stack, not in its guard: not an overflow.  Make that page
     * inaccessible to fault there. */
    mprotect(s.lo, page(), PROT_NONE);
    ((volatile char *)s.lo)[0] = 1;
    _exit(4);
}

START_TEST(other_fault_gets_default_action)
{
    char out[4096];
    int status = in_child(other_fault_default, NULL, out, sizeof out);
    /* Under a sanitizer the fault ends in the sanitizer's own SEGV report
     * instead: ASan's handler was the previous one and aborts
     * (abort_on_error=1); TSan keeps its handler beneath the ones it lets
     * the program install, sees the re-executed fault and exits with its
     * error code. */
    if (SANITIZED && strstr(out, "Sanitizer: SEGV") != NULL)
        ck_assert(WIFSIGNALED(status) || WEXITSTATUS(status) != 0);
    else
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                      "status %#x: %s", status, out);
    ck_assert_ptr_null(strstr(out, "weft: stack overflow"));
}
END_TEST

static int altstack_enabled(void *p)
{
    (void)p;
    stack_t ss;
    if (weft__stack_thread_init() != 0 || weft__stack_thread_init() != 0)
        return 1;
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE))
        return 2;
    return ss.ss_size >= 16 * 1024 ? 0 : 3;
}

START_TEST(thread_init_gives_an_alternate_stack)
{
    ck_assert_rc(tt_join(tt_start(altstack_enabled, NULL)), 0);
    ck_assert_rc(altstack_enabled(NULL), 0);
}
END_TEST

/* ---- The mprotect fallback. */

START_TEST(mprotect_fallback_guards_and_counts)
{
    setenv("WEFT_STACK_GUARD", "mprotect", 1);
    ck_assert_int_eq(weft__stack_guard_kind_now(), WEFT__STACK_GUARD_MPROTECT);
    weft__stack s[4];
    long maps0 = count_maps();
    for (int i = 0; i < 4; i++)
        ck_assert_rc(weft__stack_alloc(&s[i], 64 * 1024), 0);
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.guard_vmas, 8);
    ck_assert_int_ge(count_maps() - maps0, 7);
    for (int i = 0; i < 4; i++)
        weft__stack_free(&s[i]);
    /* Reuse needs no new guard. */
    ck_assert_rc(weft__stack_alloc(&s[0], 64 * 1024), 0);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.guard_vmas, 8);
    weft__stack_free(&s[0]);

    char out[4096];
    struct fault_arg a = {"fallback", "test_stack.c:2", 64 * 1024, 1};
    int status = in_child(write_below, &a, out, sizeof out);
    check_overflow_report(status, out, &a);
}
END_TEST

START_TEST(mprotect_fallback_fails_clearly_at_map_limit)
{
    enum { ROOM = 40 }; /* mappings we let the stacks have */
    static weft__stack s[ROOM];
    setenv("WEFT_STACK_GUARD", "mprotect", 1);
    long limit = count_maps() + WEFT__STACK_MAP_HEADROOM + ROOM;
    weft__stack_test_set_map_limit(limit);
    int n = 0, rc;
    while ((rc = weft__stack_alloc(&s[n], 16 * 1024)) == 0) {
        n++;
        ck_assert_int_lt(n, ROOM);
    }
    ck_assert_rc(rc, -EAGAIN);
    /* One chunk mapping, then two mappings per guard. */
    ck_assert_int_ge(n, ROOM / 2 - 4);
    const char *msg = weft__stack_last_error();
    char want[64];
    snprintf(want, sizeof want, "vm.max_map_count (test limit %ld;", limit);
    ck_assert_msg(strstr(msg, want) != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "/proc/sys/vm/max_map_count is") != NULL, "%s",
                  msg);
    ck_assert_msg(strstr(msg, "WEFT_STACK_GUARD=mprotect") != NULL, "%s", msg);
    /* The failed call left no stack behind. */
    weft__stack_stats st;
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, (size_t)n);
    /* A pooled stack already has its guard, so it can still be reused. */
    weft__stack_free(&s[0]);
    ck_assert_rc(weft__stack_alloc(&s[0], 16 * 1024), 0);
    /* The real limit is far away. */
    weft__stack_test_set_map_limit(0);
    ck_assert_rc(weft__stack_alloc(&s[n], 16 * 1024), 0);
    for (int i = 0; i <= n; i++)
        weft__stack_free(&s[i]);
    weft__stack_get_stats(&st);
    ck_assert_uint_eq(st.in_use, 0);
}
END_TEST

static Suite *stack_suite(void)
{
    Suite *s = suite_create("stack");
    TCase *c = tcase_create("stack");
    tcase_set_timeout(c, 30);
    tcase_add_test(c, alloc_gives_usable_page_aligned_stack);
    tcase_add_test(c, freed_stack_comes_back_from_pool);
    tcase_add_test(c, sizes_are_rounded_to_pages);
    tcase_add_test(c, bad_sizes_are_einval);
    tcase_add_test(c, default_size_is_64k_and_settable);
    tcase_add_test(c, stacks_are_disjoint_and_guarded_apart);
    tcase_add_test(c, fresh_stack_costs_only_touched_pages);
    tcase_add_test(c, rss_grows_only_by_touched_pages);
    tcase_add_test(c, pool_bound_gives_pages_back);
    tcase_add_test(c, default_bound_follows_the_peak);
    tcase_add_test(c, batch_alloc_and_free);
    tcase_add_test(c, peak_decays_and_pages_go_back);
    tcase_add_test(c, vmas_stay_few_at_100k_stacks);
    tcase_add_test(c, write_below_lo_hits_guard);
    tcase_add_test(c, deep_recursion_reports_overflow);
    tcase_add_test(c, overflow_of_unnamed_stack_is_reported);
    tcase_add_test(c, other_fault_goes_to_previous_handler);
    tcase_add_test(c, other_fault_gets_default_action);
    tcase_add_test(c, thread_init_gives_an_alternate_stack);
    tcase_add_test(c, mprotect_fallback_guards_and_counts);
    tcase_add_test(c, mprotect_fallback_fails_clearly_at_map_limit);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(stack_suite)
