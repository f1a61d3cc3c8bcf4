/* bytes.c - weft_bytes, the growable buffer a process-pool task writes its
 * output into, and weft_bytes_reader, which reads such bytes back.
 *
 * Design: values are stored in the machine's own byte order and size
 * (parent and worker are the same program on the same machine, so no
 * portable encoding is needed); a string carries its length and a NUL so a
 * reader can hand out a pointer into the bytes as a C string.  Growth
 * doubles the capacity.  A reader never moves on a failed read, so a
 * caller can try another type.
 *
 * Locking: none; a buffer or reader belongs to one thread at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "process/process.h"

void weft_bytes_init(weft_bytes *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void weft_bytes_fini(weft_bytes *b)
{
    free(b->data);
    weft_bytes_init(b);
}

void weft_bytes_clear(weft_bytes *b)
{
    b->len = 0;
}

/* Make room for n more bytes: 0 or -ENOMEM (b unchanged). */
static int reserve(weft_bytes *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 64;
    unsigned char *d;

    if (n > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    if (b->len + n <= b->cap)
        return 0;
    while (cap < b->len + n)
        cap *= 2;
    d = realloc(b->data, cap);
    if (d == NULL)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int weft_bytes_append(weft_bytes *b, const void *p, size_t n)
{
    int rc;
    if (b == NULL || (p == NULL && n != 0))
        return -EINVAL;
    if (n == 0)
        return 0;
    rc = reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int weft_bytes_put_i64(weft_bytes *b, int64_t v)
{
    return weft_bytes_append(b, &v, sizeof v);
}

int weft_bytes_put_u64(weft_bytes *b, uint64_t v)
{
    return weft_bytes_append(b, &v, sizeof v);
}

int weft_bytes_put_f64(weft_bytes *b, double v)
{
    return weft_bytes_append(b, &v, sizeof v);
}

int weft_bytes_put_str(weft_bytes *b, const char *s)
{
    size_t n;
    uint32_t n32;
    int rc;

    if (b == NULL || s == NULL)
        return -EINVAL;
    n = strlen(s);
    if (n > UINT32_MAX - 1)
        return -EINVAL;
    n32 = (uint32_t)n;
    rc = reserve(b, sizeof n32 + n + 1);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, &n32, sizeof n32);
    memcpy(b->data + b->len + sizeof n32, s, n + 1);
    b->len += sizeof n32 + n + 1;
    return 0;
}

int weft_bytes_put_blob(weft_bytes *b, const void *p, size_t n)
{
    uint64_t n64 = n;
    int rc;

    if (b == NULL || (p == NULL && n != 0))
        return -EINVAL;
    rc = reserve(b, sizeof n64 + n);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, &n64, sizeof n64);
    if (n != 0)
        memcpy(b->data + b->len + sizeof n64, p, n);
    b->len += sizeof n64 + n;
    return 0;
}

void weft_bytes_reader_init(weft_bytes_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
}

size_t weft_bytes_reader_left(const weft_bytes_reader *r)
{
    return r->len - r->pos;
}

/* Copy the next n bytes out: 0 or -EINVAL if fewer are left. */
static int take(weft_bytes_reader *r, void *v, size_t n)
{
    if (r == NULL || v == NULL || r->len - r->pos < n)
        return -EINVAL;
    memcpy(v, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

int weft_bytes_get_i64(weft_bytes_reader *r, int64_t *v)
{
    return take(r, v, sizeof *v);
}

int weft_bytes_get_u64(weft_bytes_reader *r, uint64_t *v)
{
    return take(r, v, sizeof *v);
}

int weft_bytes_get_f64(weft_bytes_reader *r, double *v)
{
    return take(r, v, sizeof *v);
}

int weft_bytes_get_str(weft_bytes_reader *r, const char **s, size_t *len)
{
    uint32_t n;
    size_t left;

    if (r == NULL || r->len - r->pos < sizeof n)
        return -EINVAL;
    memcpy(&n, r->p + r->pos, sizeof n);
    left = r->len - r->pos - sizeof n;
    if ((size_t)n >= left || r->p[r->pos + sizeof n + n] != '\0')
        return -EINVAL;
    if (s)
        *s = (const char *)r->p + r->pos + sizeof n;
    if (len)
        *len = n;
    r->pos += sizeof n + (size_t)n + 1;
    return 0;
}

int weft_bytes_get_blob(weft_bytes_reader *r, const void **p, size_t *len)
{
    uint64_t n;

    if (r == NULL || r->len - r->pos < sizeof n)
        return -EINVAL;
    memcpy(&n, r->p + r->pos, sizeof n);
    if (n > r->len - r->pos - sizeof n)
        return -EINVAL;
    if (p)
        *p = r->p + r->pos + sizeof n;
    if (len)
        *len = (size_t)n;
    r->pos += sizeof n + (size_t)n;
    return 0;
}
