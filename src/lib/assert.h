/* assert.h - always-on assertions and panics for broken invariants.
 *
 * A broken internal invariant is a bug in weft, not an error for the caller:
 * WEFT_PANIC prints file:line, the message and the calling thread's name to
 * stderr with one write, then aborts (Go's throw, libdill's dill_assert).
 * WEFT_ASSERT is always compiled in; WEFT_DEBUG_ASSERT only in WEFT_DEBUG
 * builds, for checks too costly for the hot paths.
 */
#ifndef WEFT_LIB_ASSERT_H
#define WEFT_LIB_ASSERT_H

_Noreturn void weft__panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define WEFT_PANIC(...) weft__panic(__FILE__, __LINE__, __VA_ARGS__)

#define WEFT_ASSERT(cond)                                                    \
    do {                                                                     \
        if (__builtin_expect(!(cond), 0))                                    \
            weft__panic(__FILE__, __LINE__, "assertion failed: %s", #cond);  \
    } while (0)

#ifdef WEFT_DEBUG
#define WEFT_DEBUG_ASSERT(cond) WEFT_ASSERT(cond)
#else
#define WEFT_DEBUG_ASSERT(cond) ((void)0)
#endif

#define WEFT_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
