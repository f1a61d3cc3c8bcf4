/* error.c - weft_strerror and weft_errname, generated from the one table
 * in weft/error.h (WEFT_ERRNO_MAP).  Codes outside the table fall back to
 * the C library's message for the errno value.
 */
#include <string.h>

#include "weft/error.h"

const char *weft_strerror(int code)
{
    if (code == 0)
        return "success";
#define X(name, value, msg)                                                  \
    if (code == (value))                                                     \
        return msg;
    WEFT_ERRNO_MAP(X)
#undef X
    if (code < 0 && code > -4000)
        return strerror(-code);
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
    return "UNKNOWN";
}
