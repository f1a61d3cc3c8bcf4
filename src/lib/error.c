/* error.c - weft_strerror and weft_errname, generated from the one table
 * in weft/error.h (WEFT_ERRNO_MAP).  Codes outside the table fall back to
 * the C library's message for the errno value where the C library has a
 * thread-safe one: glibc's strerrordesc_np (2.32 and later) returns a
 * constant string.  strerror itself may format into a static buffer shared
 * by every thread, and strerror_r into a buffer weft_strerror cannot own;
 * so without strerrordesc_np, and for errno values the C library does not
 * know, the message is "unknown error".  weft_errname names the other
 * errno values with glibc's strerrorname_np (same version) for the same
 * reason.
 */
#include <string.h>

#include "weft/error.h"

#if defined(__GLIBC__) &&                                                    \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define HAVE_STRERRORDESC_NP 1
#endif

/* A constant message for errno value e, or NULL. */
static const char *libc_message(int e)
{
#ifdef HAVE_STRERRORDESC_NP
    return strerrordesc_np(e);
#else
    (void)e;
    return NULL;
#endif
}

const char *weft_strerror(int code)
{
    if (code == 0)
        return "success";
#define X(name, value, msg)                                                  \
    if (code == (value))                                                     \
        return msg;
    WEFT_ERRNO_MAP(X)
#undef X
    if (code < 0 && code > -4000) {
        const char *m = libc_message(-code);
        if (m != NULL)
            return m;
    }
    return "unknown error";
}

const char *weft_errname(int code)
{
    if (code == 0)
        return "OK";
#define X(name, value, msg)                                                  \
    if (code == (value))                                                     \
        return #name;
    WEFT_ERRNO_MAP(X)
#undef X
#ifdef HAVE_STRERRORDESC_NP
    /* Any other errno value by its name too ("EIO"): a task's failure code
     * can be any errno, and its name is what a log reader searches for. */
    const char *name = code < 0 && code > -4000 ? strerrorname_np(-code)
                                                : NULL;
    if (name != NULL)
        return name;
#endif
    return "UNKNOWN";
}
