/* log.c - the logger: one line per call, naming the thread that logged it,
 * written with a single write(2).
 *
 * Design.  A line is formatted on the caller's stack (at most
 * WEFT_LOG_LINE_MAX bytes, newline included) and written with one write(2),
 * retried only for the rest after a short write or EINTR; so lines from
 * different threads never interleave on a regular file or a pipe (pipes
 * keep writes of up to PIPE_BUF = 4096 bytes whole).  The name is the green
 * thread's when a green thread logs (weft_green_current: one TLS load; the
 * name is constant while that thread runs), else the OS thread's, from
 * weft's current-thread handle (a TLS pointer and an atomic load; a
 * thread weft did not start is adopted lock-free at its first line), so the
 * logging path never takes a weft lock, never allocates after that first
 * line, and works from any thread.  The timestamp is converted to UTC by
 * hand, since gmtime_r takes a C library lock.
 *
 * The destination.  out_fd is an atomic fd (-1: stderr).  A file the logger
 * opens is never closed while another thread may be writing to it through
 * a stale copy of out_fd (that could write into whatever file next gets the
 * same number): the logger keeps one private fd, own_fd, made once and never
 * closed, and installs each new file on it with dup3, which swaps the file
 * atomically (writes already in the kernel finish on the old file).
 * Leaving a file for another destination puts /dev/null on own_fd, which
 * closes the file; a line racing with that change may land in either place
 * or be dropped, never in a stranger's file.
 *   (Rejected: counting writers in flight and closing when they drain.  The
 *   setter would have to wait for loggers, and a thread blocked in write on
 *   a full pipe could hold it up for ever.)
 *
 * Recursion: a thread-local flag drops any line logged from inside the
 * logger (nothing in the logger logs or calls the failure hook today; the
 * flag keeps it that way if a later change does).
 *
 * fork.  A child forked while another thread held cfg_lock (inside set_fd
 * or set_file) would find it held for ever, by a thread the child does not
 * have.  An atfork handler, installed at the first setter call, takes
 * cfg_lock before fork and releases it in the parent; the child
 * re-initialises it (its holder is gone), as registry.c does with its lock.
 * cfg_lock is never held while taking the registry's lock or the other way
 * round, so the two handlers cannot deadlock.
 *
 * Locking: level, out_fd and own_fd are atomic; the setters (set_fd,
 * set_file) are serialised by cfg_lock, which the logging path never takes;
 * own_active is guarded by cfg_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../lib/assert.h"
#include "../platform/platform.h"
#include "../sync/sync.h"
#include "../thread/thread.h"
#include "log.h"
#include "weft/green.h"
#include "weft/log.h"

#define LEVEL_UNSET (-1)

static _Atomic int level = LEVEL_UNSET;   /* atomic */
static _Atomic int out_fd = -1;           /* atomic; -1: stderr */
static _Atomic int own_fd = -1;           /* atomic; never closed once set */
static bool own_active;                   /* guarded by cfg_lock */
static weft_lock cfg_lock = WEFT_LOCK_INIT;
static _Thread_local bool in_log;         /* owner only */
static _Atomic bool atfork_installed;     /* atomic */

/* ---- levels ----------------------------------------------------------- */

static int parse_level(const char *s)
{
    static const struct {
        const char *name;
        int level;
    } names[] = {
        {"debug", WEFT_LOG_DEBUG},     {"info", WEFT_LOG_INFO},
        {"warning", WEFT_LOG_WARNING}, {"warn", WEFT_LOG_WARNING},
        {"error", WEFT_LOG_ERROR},     {"critical", WEFT_LOG_CRITICAL},
        {"off", WEFT_LOG_OFF},
    };
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return WEFT_LOG_INFO;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].level;
    v = strtol(s, &end, 10);
    if (*end == '\0' && v >= 0 && v <= WEFT_LOG_OFF)
        return (int)v;
    return WEFT_LOG_INFO;
}

/* The level, read from WEFT_LOG_LEVEL at first use. */
static int level_now(void)
{
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    int expect = LEVEL_UNSET;

    if (WEFT_LIKELY(l != LEVEL_UNSET))
        return l;
    l = parse_level(getenv("WEFT_LOG_LEVEL"));
    if (!atomic_compare_exchange_strong(&level, &expect, l))
        l = expect;
    return l;
}

weft_log_level weft_log_get_level(void)
{
    return (weft_log_level)level_now();
}

/* A level outside 0..WEFT_LOG_OFF is refused (it could also collide with
 * LEVEL_UNSET): nothing changes and the current level is returned. */
weft_log_level weft_log_set_level(weft_log_level l)
{
    int cur = level_now(); /* so that the previous level is the environment's */

    if ((int)l < 0 || (int)l > WEFT_LOG_OFF)
        return (weft_log_level)cur;
    return (weft_log_level)atomic_exchange(&level, (int)l);
}

const char *weft_log_level_name(weft_log_level l)
{
    if (l >= WEFT_LOG_OFF)
        return "OFF";
    if (l >= WEFT_LOG_CRITICAL)
        return "CRITICAL";
    if (l >= WEFT_LOG_ERROR)
        return "ERROR";
    if (l >= WEFT_LOG_WARNING)
        return "WARNING";
    if (l >= WEFT_LOG_INFO)
        return "INFO";
    return "DEBUG";
}

/* ---- destination ------------------------------------------------------ */

/* Close the file the logger opened, if any, without freeing own_fd's
 * number.  cfg_lock held. */
static void release_own(void)
{
    int fd = atomic_load(&own_fd), nul;

    if (!own_active)
        return;
    nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (nul < 0)
        return; /* keep the file open rather than risk the fd */
    if (dup3(nul, fd, O_CLOEXEC) >= 0)
        own_active = false;
    close(nul);
}

static void at_fork_prepare(void)
{
    weft__lock_reacquire(&cfg_lock);
}

static void at_fork_parent(void)
{
    weft_lock_release(&cfg_lock);
}

/* Single-threaded: any other holder is gone with its thread. */
static void at_fork_child(void)
{
    weft_lock_init(&cfg_lock);
}

/* Take cfg_lock, installing the atfork handlers first (once): a fork can
 * only catch cfg_lock held after some setter has run this. */
static void cfg_take(void)
{
    if (!atomic_load_explicit(&atfork_installed, memory_order_acquire) &&
        !atomic_exchange(&atfork_installed, true))
        pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
    weft__lock_reacquire(&cfg_lock);
}

int weft_log_set_fd(int fd)
{
    if (fd < -1 || (fd >= 0 && fcntl(fd, F_GETFL) < 0))
        return -EINVAL;
    cfg_take();
    atomic_store(&out_fd, fd);
    release_own();
    weft_lock_release(&cfg_lock);
    return 0;
}

/* Put the file open on fd onto own_fd (making own_fd the first time).
 * Consumes fd.  cfg_lock held. */
static int install_own(int fd)
{
    int own = atomic_load(&own_fd), rc = 0;

    if (own < 0) {
        own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (own < 0)
            rc = -errno;
        else
            atomic_store(&own_fd, own);
    } else if (dup3(fd, own, O_CLOEXEC) < 0) {
        rc = -errno;
    }
    close(fd);
    if (rc == 0) {
        own_active = true;
        atomic_store(&out_fd, own);
    }
    return rc;
}

int weft_log_set_file(const char *path)
{
    int fd, rc;

    if (path == NULL)
        return -EINVAL;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    cfg_take();
    rc = install_own(fd);
    weft_lock_release(&cfg_lock);
    return rc;
}

/* ---- formatting and writing ------------------------------------------- */

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void civil(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* The name a line carries: the running green thread's, else the OS
 * thread's.  (The worker a green thread runs on is not named: it changes
 * at any switch and means little to the reader.) */
static const char *current_name(void)
{
    weft_green *g = weft_green_current();

    return g != NULL ? weft_green_name(g) : weft__thread_current_name();
}

static int format_prefix(char *buf, size_t cap, weft_log_level l)
{
    int64_t sec, days, rem;
    int32_t usec;
    int y, mo, d;

    weft__clock_wall(&sec, &usec);
    days = sec / 86400;
    rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil(days, &y, &mo, &d);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ %-8s [%s] ",
                     y, mo, d, (int)(rem / 3600), (int)(rem / 60 % 60),
                     (int)(rem % 60), (int)usec, weft_log_level_name(l),
                     current_name());
    if (n < 0)
        return 0;
    return n < (int)cap ? n : (int)cap - 1;
}

/* Write all of buf, retrying after EINTR and short writes; other errors
 * drop the rest of the line (there is nowhere to report them). */
static void write_all(const char *buf, size_t len)
{
    int fd = atomic_load_explicit(&out_fd, memory_order_acquire);

    if (fd < 0)
        fd = 2;
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
}

void weft__log_write_raw(const char *buf, size_t len)
{
    write_all(buf, len);
}

static bool enabled(weft_log_level l)
{
    int thr = level_now();
    return thr < WEFT_LOG_OFF && (int)l >= thr;
}

void weft_vlog(weft_log_level l, const char *fmt, va_list ap)
{
    char buf[WEFT_LOG_LINE_MAX];
    int saved = errno;
    size_t len;
    int m;

    if (!enabled(l) || in_log)
        return;
    in_log = true;
    len = (size_t)format_prefix(buf, sizeof buf - 1, l);
    m = vsnprintf(buf + len, sizeof buf - len, fmt, ap);
    if (m > 0)
        len += (size_t)m < sizeof buf - len ? (size_t)m : sizeof buf - len - 1;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    buf[len++] = '\n';
    write_all(buf, len);
    in_log = false;
    errno = saved;
}

void weft_log(weft_log_level l, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    weft_vlog(l, fmt, ap);
    va_end(ap);
}
