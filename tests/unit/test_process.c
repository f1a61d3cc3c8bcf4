/* test_process.c - the process pool: tasks and their bytes, errors, crash,
 * exit and timeout isolation, kill_task, initializer and broken pools,
 * max tasks per worker, shutdown (waiting, cancelling, racing submit), map,
 * pools made by threaded programs and used from green threads, no process
 * or zombie left behind, the direct path (a submit writing to an idle
 * worker's socket itself) racing a worker's death, timeouts and kills, and
 * pipelining (a task sent behind the running one): a crash, SIGKILL,
 * timeout or kill_task fails only the running task while the one behind
 * runs elsewhere, kill_task of the one behind, cancel of a sent task
 * failing, timeouts from a task's start, max_tasks, exact results of many
 * small tasks.
 *
 * Making a worker hold two tasks: a "gate" task blocks on a FIFO until the
 * test writes to it; tasks submitted meanwhile wait in the queue, and the
 * gate's result hands the (only) worker the next one and, behind it, the
 * one after.
 *
 * Synchronising with a worker: a task that must be known to be running
 * ("hang") opens a FIFO named by its input and writes its pid there; the
 * test's blocking open+read of that FIFO returns exactly when the task
 * runs.  No sleep stands in for it.
 *
 * Sanitizers: every test runs under ThreadSanitizer and AddressSanitizer;
 * the forkserver is the test binary executed anew, so the sanitizer
 * follows it and its workers as ordinary processes.
 */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- tasks ------------------------------------------------------------ */

static int t_echo(const void *in, size_t len, weft_bytes *out)
{
    return weft_bytes_append(out, in, len);
}

static int t_square(const void *in, size_t len, weft_bytes *out)
{
    weft_bytes_reader r;
    int64_t x;
    weft_bytes_reader_init(&r, in, len);
    if (weft_bytes_get_i64(&r, &x) != 0)
        return weft_process_fail(-EINVAL, "want an int64, got %zu bytes", len);
    return weft_bytes_put_i64(out, x * x);
}

static int t_fail(const void *in, size_t len, weft_bytes *out)
{
    return weft_process_fail(-ENOENT, "no key %.*s", (int)len,
                             (const char *)in);
}

static int t_fail_plain(const void *in, size_t len, weft_bytes *out)
{
    return -EDOM;
}

static int t_segv(const void *in, size_t len, weft_bytes *out)
{
    raise(SIGSEGV);
    return 0;
}

static int t_exit3(const void *in, size_t len, weft_bytes *out)
{
    _exit(3);
}

static int t_spin(const void *in, size_t len, weft_bytes *out)
{
    volatile unsigned long n = 0;
    for (;;)
        n++;
    return 0;
}

static int t_pid(const void *in, size_t len, weft_bytes *out)
{
    return weft_bytes_put_i64(out, (int64_t)getpid());
}

/* Tell the test (through the FIFO named by the input) that it runs, then
 * never return. */
static int t_hang(const void *in, size_t len, weft_bytes *out)
{
    char path[256];
    int64_t me = getpid();
    int fd;
    snprintf(path, sizeof path, "%.*s", (int)len, (const char *)in);
    fd = open(path, O_WRONLY);
    if (fd >= 0) {
        if (write(fd, &me, sizeof me) < 0)
            _exit(9);
        close(fd);
    }
    for (;;)
        pause();
    return 0;
}

/* Create the file named by the input (to prove a task ran). */
static int t_touch(const void *in, size_t len, weft_bytes *out)
{
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)len, (const char *)in);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0)
        close(fd);
    return 0;
}

static int t_sleep(const void *in, size_t len, weft_bytes *out)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return weft_bytes_put_i64(out, 1);
}

/* Block until the test writes a byte to the FIFO named by the input, then
 * return this worker's pid.  The test's open of the FIFO for writing
 * returns exactly when the task runs. */
static int t_gate(const void *in, size_t len, weft_bytes *out)
{
    char path[256], c;
    int fd;
    snprintf(path, sizeof path, "%.*s", (int)len, (const char *)in);
    fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, &c, 1) != 1)
        _exit(9);
    close(fd);
    return weft_bytes_put_i64(out, (int64_t)getpid());
}

/* An initializer that, while the file "<input>.on" exists, waits as
 * t_gate does on the FIFO named by its input. */
static int t_init_gate(const void *in, size_t len, weft_bytes *out)
{
    char path[300];
    snprintf(path, sizeof path, "%.*s.on", (int)len, (const char *)in);
    if (access(path, F_OK) != 0)
        return 0;
    return t_gate(in, len, out);
}

static int64_t init_value = -1; /* set in workers by t_init only */

static int t_init(const void *in, size_t len, weft_bytes *out)
{
    weft_bytes_reader r;
    weft_bytes_reader_init(&r, in, len);
    return weft_bytes_get_i64(&r, &init_value);
}

static int t_init_fail(const void *in, size_t len, weft_bytes *out)
{
    return weft_process_fail(-EACCES, "no licence");
}

static int t_get_init(const void *in, size_t len, weft_bytes *out)
{
    return weft_bytes_put_i64(out, init_value);
}

/* Takes stdout's lock and malloc's: a worker forked from a threaded parent
 * whose other threads held them would hang here. */
static int t_stdio(const void *in, size_t len, weft_bytes *out)
{
    void *p = malloc(1000);
    fflush(stdout);
    free(p);
    return weft_bytes_put_i64(out, 7);
}

static void register_all(void)
{
    ck_assert_rc(weft_process_register("echo", t_echo), 0);
    ck_assert_rc(weft_process_register("square", t_square), 0);
    ck_assert_rc(weft_process_register("fail", t_fail), 0);
    ck_assert_rc(weft_process_register("fail_plain", t_fail_plain), 0);
    ck_assert_rc(weft_process_register("segv", t_segv), 0);
    ck_assert_rc(weft_process_register("exit3", t_exit3), 0);
    ck_assert_rc(weft_process_register("spin", t_spin), 0);
    ck_assert_rc(weft_process_register("pid", t_pid), 0);
    ck_assert_rc(weft_process_register("hang", t_hang), 0);
    ck_assert_rc(weft_process_register("touch", t_touch), 0);
    ck_assert_rc(weft_process_register("sleep", t_sleep), 0);
    ck_assert_rc(weft_process_register("init", t_init), 0);
    ck_assert_rc(weft_process_register("init_fail", t_init_fail), 0);
    ck_assert_rc(weft_process_register("get_init", t_get_init), 0);
    ck_assert_rc(weft_process_register("stdio", t_stdio), 0);
    ck_assert_rc(weft_process_register("gate", t_gate), 0);
    ck_assert_rc(weft_process_register("init_gate", t_init_gate), 0);
}

/* ---- helpers ------------------------------------------------------------ */

/* Under ThreadSanitizer and AddressSanitizer the sanitizer's own SIGSEGV
 * handler catches the fault in the worker, prints its report and exits
 * (TSan with 66, ASan with 1) instead of letting the signal kill the
 * process: the worker then "exited with code N", and that is what the pool
 * must report; with ASAN_OPTIONS=abort_on_error=1 (tools/run-tests.sh sets
 * it) the report ends in abort(), and the worker is "killed by signal 6
 * (SIGABRT)" instead.  Without a sanitizer, the signal itself. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SEGV_DEATH "exited with code"
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SEGV_DEATH "exited with code"
#endif
#endif
#ifndef SEGV_DEATH
#define SEGV_DEATH "killed by signal 11 (SIGSEGV)"
#define SEGV_DEATH_ALT SEGV_DEATH
#else
#define SEGV_DEATH_ALT "killed by signal 6 (SIGABRT)"
#endif

static bool segv_death(const char *msg)
{
    return strstr(msg, SEGV_DEATH) != NULL ||
           strstr(msg, SEGV_DEATH_ALT) != NULL;
}

static weft_process_pool *make_pool(int workers, int max_tasks,
                                    int64_t timeout_ns)
{
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    o.max_workers = workers;
    o.max_tasks_per_worker = max_tasks;
    o.task_timeout_ns = timeout_ns;
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    return p;
}

static weft_future *submit_i64(weft_process_pool *p, const char *name,
                               int64_t x)
{
    weft_future *f;
    ck_assert_rc(weft_process_pool_submit(p, name, &x, sizeof x, 0, &f,
                                          WEFT_FOREVER), 0);
    return f;
}

static int64_t result_i64(weft_future *f)
{
    void *v;
    int64_t x;
    ck_assert_rc(weft_future_result(f, &v, weft_deadline_ms(20000)), 0);
    ck_assert_uint_eq(weft_future_result_size(f), sizeof x);
    memcpy(&x, v, sizeof x);
    return x;
}

/* The failure of f: its code, and its message copied into msg. */
static int failure(weft_future *f, char *msg, size_t cap)
{
    int code = 0;
    const char *m = NULL;
    ck_assert_rc(weft_future_result(f, NULL, weft_deadline_ms(20000)),
                 WEFT_EFAILED);
    ck_assert_rc(weft_future_error(f, &code, &m, WEFT_NOW), 0);
    ck_assert_ptr_nonnull(m);
    snprintf(msg, cap, "%s", m);
    return code;
}

static char fifo_path[128];

static void fifo_make(void)
{
    snprintf(fifo_path, sizeof fifo_path, "/tmp/weft-test-process-%d.fifo",
             (int)getpid());
    unlink(fifo_path);
    ck_assert_int_eq(mkfifo(fifo_path, 0600), 0);
}

/* Submit "hang" and return once it runs in a worker; *pid is that worker. */
static weft_future *submit_hang(weft_process_pool *p, pid_t *pid)
{
    weft_future *f;
    int64_t x = 0;
    int fd;
    ck_assert_rc(weft_process_pool_submit(p, "hang", fifo_path,
                                          strlen(fifo_path), 0, &f,
                                          WEFT_FOREVER), 0);
    fd = open(fifo_path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, &x, sizeof x), (int)sizeof x);
    close(fd);
    if (pid)
        *pid = (pid_t)x;
    return f;
}

/* The children of process pid (from /proc). */
static int children_of(pid_t pid)
{
    char path[128];
    int n = 0;
    DIR *d;
    struct dirent *e;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char cpath[300];
        FILE *f;
        int c;
        if (e->d_name[0] == '.')
            continue;
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid,
                 e->d_name);
        f = fopen(cpath, "r");
        if (f == NULL)
            continue;
        while (fscanf(f, "%d", &c) == 1)
            n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

static bool process_exists(pid_t pid)
{
    return kill(pid, 0) == 0;
}

/* ---- bytes and registry ----------------------------------------------- */

START_TEST(bytes_round_trip)
{
    weft_bytes b = WEFT_BYTES_INIT;
    weft_bytes_reader r;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const void *bl;
    size_t n;

    ck_assert_rc(weft_bytes_put_i64(&b, -5), 0);
    ck_assert_rc(weft_bytes_put_u64(&b, UINT64_MAX), 0);
    ck_assert_rc(weft_bytes_put_f64(&b, 2.5), 0);
    ck_assert_rc(weft_bytes_put_str(&b, "hello"), 0);
    ck_assert_rc(weft_bytes_put_blob(&b, "xyz", 3), 0);
    ck_assert_rc(weft_bytes_put_str(&b, NULL), -EINVAL);
    weft_bytes_reader_init(&r, b.data, b.len);
    ck_assert_rc(weft_bytes_get_i64(&r, &i), 0);
    ck_assert_int_eq(i, -5);
    ck_assert_rc(weft_bytes_get_u64(&r, &u), 0);
    ck_assert(u == UINT64_MAX);
    ck_assert_rc(weft_bytes_get_f64(&r, &d), 0);
    ck_assert(d == 2.5);
    ck_assert_rc(weft_bytes_get_str(&r, &s, &n), 0);
    ck_assert_str_eq(s, "hello");
    ck_assert_uint_eq(n, 5);
    ck_assert_rc(weft_bytes_get_blob(&r, &bl, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(bl, "xyz", 3), 0);
    ck_assert_uint_eq(weft_bytes_reader_left(&r), 0);
    ck_assert_rc(weft_bytes_get_i64(&r, &i), -EINVAL);
    /* a short read leaves the reader where it was */
    weft_bytes_reader_init(&r, b.data, 4);
    ck_assert_rc(weft_bytes_get_i64(&r, &i), -EINVAL);
    ck_assert_uint_eq(weft_bytes_reader_left(&r), 4);
    weft_bytes_fini(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(register_errors)
{
    char longname[100];
    register_all();
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_rc(weft_process_register(NULL, t_echo), -EINVAL);
    ck_assert_rc(weft_process_register("", t_echo), -EINVAL);
    ck_assert_rc(weft_process_register(longname, t_echo), -EINVAL);
    ck_assert_rc(weft_process_register("x", NULL), -EINVAL);
    ck_assert_rc(weft_process_register("echo", t_echo), 0); /* same pair */
    ck_assert_rc(weft_process_register("echo", t_square), -EBUSY);
    ck_assert(!weft_process_in_worker());
    ck_assert_rc(weft_process_fail(-EIO, "outside"), -EIO);
}
END_TEST

START_TEST(create_and_submit_errors)
{
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    weft_future *f;
    register_all();
    ck_assert_rc(weft_process_pool_create(NULL, NULL), -EINVAL);
    o.max_workers = -1;
    ck_assert_rc(weft_process_pool_create(&p, &o), -EINVAL);
    o.max_workers = 1;
    o.initializer = "no-such-init";
    ck_assert_rc(weft_process_pool_create(&p, &o), -EINVAL);
    p = make_pool(1, 0, 0);
    ck_assert_rc(weft_process_pool_submit(p, "nope", "", 0, 0, &f,
                                          WEFT_FOREVER), -ENOENT);
    ck_assert_rc(weft_process_pool_submit(p, NULL, "", 0, 0, &f,
                                          WEFT_FOREVER), -EINVAL);
    ck_assert_rc(weft_process_pool_submit(NULL, "echo", "", 0, 0, &f,
                                          WEFT_FOREVER), -EINVAL);
    ck_assert_rc(weft_process_pool_submit(p, "echo", NULL, 5, 0, &f,
                                          WEFT_FOREVER), -EINVAL);
    ck_assert_rc(weft_process_pool_kill_task(p, NULL), -EINVAL);
    ck_assert_rc(weft_process_pool_shutdown(p, 0x100, WEFT_FOREVER), -EINVAL);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    ck_assert_rc(weft_process_pool_destroy(NULL), -EINVAL);
}
END_TEST

/* ---- results and task failures ------------------------------------------- */

START_TEST(many_results)
{
    enum { N = 300 };
    weft_future *f[N];
    weft_process_pool *p;
    register_all();
    p = make_pool(3, 0, 0);
    for (int i = 0; i < N; i++)
        f[i] = submit_i64(p, "square", i);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(result_i64(f[i]), (int64_t)i * i);
        weft_future_release(f[i]);
    }
    ck_assert_int_le(weft_process_pool_workers(p), 3);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

START_TEST(empty_and_large_payloads)
{
    size_t big = 4u << 20;
    unsigned char *in = malloc(big);
    weft_process_pool *p;
    weft_future *f;
    void *v;
    register_all();
    for (size_t i = 0; i < big; i++)
        in[i] = (unsigned char)(i * 31 + 7);
    p = make_pool(2, 0, 0);
    ck_assert_rc(weft_process_pool_submit(p, "echo", NULL, 0, 0, &f,
                                          WEFT_FOREVER), 0);
    ck_assert_rc(weft_future_result(f, &v, weft_deadline_ms(20000)), 0);
    ck_assert_uint_eq(weft_future_result_size(f), 0);
    weft_future_release(f);
    ck_assert_rc(weft_process_pool_submit(p, "echo", in, big, 0, &f,
                                          WEFT_FOREVER), 0);
    ck_assert_rc(weft_future_result(f, &v, weft_deadline_ms(20000)), 0);
    ck_assert_uint_eq(weft_future_result_size(f), big);
    ck_assert_int_eq(memcmp(v, in, big), 0);
    weft_future_release(f);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    free(in);
}
END_TEST

START_TEST(task_failure_has_code_and_message)
{
    weft_process_pool *p;
    weft_future *f;
    char msg[512];
    register_all();
    p = make_pool(1, 0, 0);
    ck_assert_rc(weft_process_pool_submit(p, "fail", "k1", 2, 0, &f,
                                          WEFT_FOREVER), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), -ENOENT);
    ck_assert_msg(strstr(msg, "task 'fail' failed: no key k1"), "%s", msg);
    weft_future_release(f);
    ck_assert_rc(weft_process_pool_submit(p, "fail_plain", "", 0, 0, &f,
                                          WEFT_FOREVER), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), -EDOM);
    ck_assert_msg(strstr(msg, "task 'fail_plain' failed"), "%s", msg);
    weft_future_release(f);
    /* a bad input: the task's own message */
    ck_assert_rc(weft_process_pool_submit(p, "square", "ab", 2, 0, &f,
                                          WEFT_FOREVER), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), -EINVAL);
    ck_assert_msg(strstr(msg, "want an int64, got 2 bytes"), "%s", msg);
    weft_future_release(f);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

/* ---- crashes ----------------------------------------------------------------- */

START_TEST(crash_exit_and_timeout_fail_alone)
{
    enum { N = 24 };
    const char *names[N];
    weft_future *f[N];
    weft_process_pool *p;
    char msg[512];
    int64_t t0;
    register_all();
    p = make_pool(3, 0, 0);
    for (int i = 0; i < N; i++) {
        int64_t x = i;
        int64_t timeout = 0;
        names[i] = i % 8 == 1 ? "segv" : i % 8 == 3 ? "exit3"
                 : i % 8 == 5 ? "spin" : "square";
        if (strcmp(names[i], "spin") == 0)
            timeout = MS(300);
        ck_assert_rc(weft_process_pool_submit(p, names[i], &x, sizeof x,
                                              timeout, &f[i], WEFT_FOREVER),
                     0);
    }
    t0 = weft_now();
    for (int i = 0; i < N; i++) {
        if (strcmp(names[i], "square") == 0) {
            ck_assert_int_eq(result_i64(f[i]), (int64_t)i * i);
        } else if (strcmp(names[i], "segv") == 0) {
            ck_assert_int_eq(failure(f[i], msg, sizeof msg), WEFT_EWORKER);
            ck_assert_msg(strstr(msg, "task 'segv' failed: worker ") &&
                              segv_death(msg),
                          "%s", msg);
        } else if (strcmp(names[i], "exit3") == 0) {
            ck_assert_int_eq(failure(f[i], msg, sizeof msg), WEFT_EWORKER);
            ck_assert_msg(strstr(msg, "task 'exit3' failed: worker ") &&
                              strstr(msg, "exited with code 3"), "%s", msg);
        } else {
            ck_assert_int_eq(failure(f[i], msg, sizeof msg), -ETIMEDOUT);
            ck_assert_msg(strstr(msg, "task 'spin' timed out: worker ") &&
                              strstr(msg, "SIGKILL"), "%s", msg);
        }
        weft_future_release(f[i]);
    }
    ck_assert_elapsed(t0, 0, MS(15000));
    /* the pool goes on */
    f[0] = submit_i64(p, "square", 9);
    ck_assert_int_eq(result_i64(f[0]), 81);
    weft_future_release(f[0]);
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

START_TEST(timeout_is_not_early)
{
    weft_process_pool *p;
    weft_future *f;
    char msg[512];
    int64_t t0;
    register_all();
    p = make_pool(1, 0, MS(200)); /* the pool's default */
    t0 = weft_now();
    ck_assert_rc(weft_process_pool_submit(p, "spin", "", 0, 0, &f,
                                          WEFT_FOREVER), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(200), MS(5000));
    ck_assert_msg(strstr(msg, "after 200 ms"), "%s", msg);
    weft_future_release(f);
    /* -1: no limit for this task, whatever the pool's default */
    ck_assert_rc(weft_process_pool_submit(p, "sleep", "", 0, -1, &f,
                                          WEFT_FOREVER), 0);
    ck_assert_int_eq(result_i64(f), 1);
    weft_future_release(f);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

START_TEST(sigkill_from_outside_fails_that_task)
{
    weft_process_pool *p;
    weft_future *f, *g;
    char msg[512];
    pid_t pid;
    register_all();
    fifo_make();
    p = make_pool(2, 0, 0);
    f = submit_hang(p, &pid);
    g = submit_i64(p, "square", 5);
    ck_assert_int_eq(result_i64(g), 25);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), WEFT_EWORKER);
    char want[128];
    snprintf(want, sizeof want, "task 'hang' failed: worker %d killed by "
             "signal 9 (SIGKILL)", (int)pid);
    ck_assert_msg(strstr(msg, want), "%s", msg);
    weft_future_release(f);
    weft_future_release(g);
    g = submit_i64(p, "square", 6);
    ck_assert_int_eq(result_i64(g), 36);
    weft_future_release(g);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    ck_assert(!process_exists(pid) || kill(pid, 0) != 0);
    unlink(fifo_path);
}
END_TEST

START_TEST(kill_task_cancels_a_running_task)
{
    weft_process_pool *p;
    weft_future *f, *g, *other;
    char msg[512];
    pid_t pid;
    register_all();
    fifo_make();
    p = make_pool(1, 0, 0);
    f = submit_hang(p, &pid);
    ck_assert(weft_future_running(f));
    ck_assert_rc(weft_future_cancel(f), -EBUSY); /* running: by design */
    ck_assert_rc(weft_process_pool_kill_task(p, f), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), -ECANCELED);
    ck_assert_msg(strstr(msg, "task 'hang' cancelled: worker") &&
                      strstr(msg, "weft_process_pool_kill_task"), "%s", msg);
    ck_assert_rc(weft_process_pool_kill_task(p, f), -EBUSY); /* done */
    ck_assert_rc(weft_future_create(&other), 0);
    ck_assert_rc(weft_process_pool_kill_task(p, other), -ESRCH);
    weft_future_release(other);
    g = submit_i64(p, "pid", 0);
    ck_assert_int_ne(result_i64(g), pid); /* replaced */
    weft_future_release(g);
    weft_future_release(f);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    unlink(fifo_path);
}
END_TEST

START_TEST(cancelled_pending_task_is_never_sent)
{
    weft_process_pool *p;
    weft_future *f, *pend, *pend2, *g;
    char mark[128], mark2[128];
    register_all();
    fifo_make();
    snprintf(mark, sizeof mark, "/tmp/weft-test-process-%d.mark",
             (int)getpid());
    snprintf(mark2, sizeof mark2, "/tmp/weft-test-process-%d.mark2",
             (int)getpid());
    unlink(mark);
    unlink(mark2);
    p = make_pool(1, 0, 0);
    f = submit_hang(p, NULL);
    ck_assert_rc(weft_process_pool_submit(p, "touch", mark, strlen(mark), 0,
                                          &pend, WEFT_FOREVER), 0);
    ck_assert_rc(weft_process_pool_submit(p, "touch", mark2, strlen(mark2),
                                          0, &pend2, WEFT_FOREVER), 0);
    ck_assert_uint_eq(weft_process_pool_pending(p), 2);
    ck_assert_rc(weft_future_cancel(pend), 0);
    ck_assert_rc(weft_process_pool_kill_task(p, pend2), 0); /* queued */
    ck_assert(weft_future_cancelled(pend2));
    ck_assert_uint_eq(weft_process_pool_pending(p), 1);
    ck_assert_rc(weft_process_pool_kill_task(p, f), 0);
    g = submit_i64(p, "square", 3);
    ck_assert_int_eq(result_i64(g), 9); /* after the cancelled one */
    ck_assert(access(mark, F_OK) != 0);
    ck_assert(access(mark2, F_OK) != 0);
    ck_assert(weft_future_cancelled(pend));
    ck_assert_rc(weft_future_error(f, NULL, NULL, WEFT_FOREVER), 0);
    weft_future_release(f);
    weft_future_release(g);
    weft_future_release(pend);
    weft_future_release(pend2);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    unlink(fifo_path);
}
END_TEST

START_TEST(max_tasks_per_worker_replaces_workers)
{
    weft_process_pool *p;
    int64_t pids[6];
    register_all();
    p = make_pool(1, 2, 0);
    for (int i = 0; i < 6; i++) {
        weft_future *f = submit_i64(p, "pid", 0);
        pids[i] = result_i64(f);
        weft_future_release(f);
    }
    for (int i = 0; i < 6; i += 2) {
        ck_assert_int_eq(pids[i], pids[i + 1]);
        if (i > 0)
            ck_assert_int_ne(pids[i], pids[i - 1]);
    }
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

START_TEST(initializer_sets_worker_state)
{
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    int64_t v = 4242;
    register_all();
    o.max_workers = 2;
    o.max_tasks_per_worker = 1; /* every task in a fresh worker */
    o.initializer = "init";
    o.initarg = &v;
    o.initarg_len = sizeof v;
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    for (int i = 0; i < 4; i++) {
        weft_future *f = submit_i64(p, "get_init", 0);
        ck_assert_int_eq(result_i64(f), 4242);
        weft_future_release(f);
    }
    ck_assert_int_eq(init_value, -1); /* never in the parent */
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

START_TEST(failing_initializer_breaks_the_pool)
{
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    weft_future *f[4];
    char msg[512];
    register_all();
    o.max_workers = 2;
    o.initializer = "init_fail";
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    for (int i = 0; i < 4; i++) {
        int rc = weft_process_pool_submit(p, "square", &i, sizeof i, 0,
                                          &f[i], WEFT_FOREVER);
        if (rc == WEFT_EBROKEN) { /* broke already */
            f[i] = NULL;
            continue;
        }
        ck_assert_rc(rc, 0);
    }
    for (int i = 0; i < 4; i++) {
        if (f[i] == NULL)
            continue;
        ck_assert_int_eq(failure(f[i], msg, sizeof msg), WEFT_EBROKEN);
        ck_assert_msg(strstr(msg, "initializer 'init_fail' failed") &&
                          strstr(msg, "no licence"), "%s", msg);
        weft_future_release(f[i]);
    }
    ck_assert(weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_submit(p, "square", "", 0, 0, &f[0],
                                          WEFT_FOREVER), WEFT_EBROKEN);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

/* ---- shutdown ------------------------------------------------------------- */

START_TEST(shutdown_waits_for_running_and_queued)
{
    enum { N = 6 };
    weft_process_pool *p;
    weft_future *f[N];
    pid_t fs;
    register_all();
    p = make_pool(2, 0, 0);
    for (int i = 0; i < N; i++)
        ck_assert_rc(weft_process_pool_submit(p, "sleep", "", 0, 0, &f[i],
                                              WEFT_FOREVER), 0);
    fs = weft_process_pool_forkserver_pid(p);
    ck_assert_int_gt(fs, 0);
    ck_assert_rc(weft_process_pool_shutdown(p, 0, weft_deadline_ms(20000)),
                 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(weft_future_get_state(f[i]), WEFT_FUTURE_FINISHED);
        weft_future_release(f[i]);
    }
    ck_assert_int_eq(weft_process_pool_forkserver_pid(p), 0);
    ck_assert(!process_exists(fs));
    ck_assert_int_eq(children_of(getpid()), 0);
    ck_assert_rc(weft_process_pool_submit(p, "echo", "", 0, 0, &f[0],
                                          WEFT_FOREVER), -EPIPE);
    ck_assert_rc(weft_process_pool_shutdown(p, 0, WEFT_FOREVER), 0); /* twice */
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

START_TEST(shutdown_cancel_pending)
{
    enum { N = 5 };
    weft_process_pool *p;
    weft_future *run, *f[N];
    register_all();
    fifo_make();
    p = make_pool(1, 0, 0);
    run = submit_hang(p, NULL);
    for (int i = 0; i < N; i++)
        f[i] = submit_i64(p, "square", i);
    ck_assert_rc(weft_process_pool_shutdown(p, WEFT_SHUTDOWN_NOWAIT |
                                                   WEFT_SHUTDOWN_CANCEL_PENDING,
                                            WEFT_FOREVER), 0);
    for (int i = 0; i < N; i++) {
        ck_assert(weft_future_cancelled(f[i]));
        weft_future_release(f[i]);
    }
    /* the running task is waited for: shutdown times out while it hangs */
    ck_assert_rc(weft_process_pool_shutdown(p, 0, weft_deadline_ms(100)),
                 -ETIMEDOUT);
    ck_assert(!weft_future_done(run));
    ck_assert_rc(weft_process_pool_kill_task(p, run), 0);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    ck_assert_rc(weft_future_error(run, NULL, NULL, WEFT_NOW), 0);
    weft_future_release(run);
    ck_assert_int_eq(children_of(getpid()), 0);
    unlink(fifo_path);
}
END_TEST

typedef struct racer {
    weft_process_pool *p;
    int submitted, refused;
    weft_future *f[400];
} racer;

static int race_submit(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 400; i++) {
        int64_t x = i;
        int rc = weft_process_pool_submit(r->p, "square", &x, sizeof x, 0,
                                          &r->f[r->submitted], WEFT_FOREVER);
        if (rc == -EPIPE) {
            r->refused++;
            continue;
        }
        if (rc != 0)
            return 1;
        r->submitted++;
    }
    return 0;
}

START_TEST(shutdown_races_submit)
{
    enum { T = 4 };
    static racer rs[T];
    weft_process_pool *p;
    tt *t[T];
    int total = 0;
    register_all();
    p = make_pool(2, 0, 0);
    for (int i = 0; i < T; i++) {
        memset(&rs[i], 0, sizeof rs[i]);
        rs[i].p = p;
        t[i] = tt_start(race_submit, &rs[i]);
    }
    /* shut down while they submit; cancel what waits */
    while (weft_process_pool_pending(p) < 10 && weft_now() > 0) {
        int any = 0;
        for (int i = 0; i < T; i++)
            any |= rs[i].submitted + rs[i].refused == 400;
        if (any)
            break;
        sched_yield();
    }
    ck_assert_rc(weft_process_pool_shutdown(p, WEFT_SHUTDOWN_CANCEL_PENDING,
                                            weft_deadline_ms(20000)), 0);
    for (int i = 0; i < T; i++) {
        ck_assert_int_eq(tt_join(t[i]), 0);
        for (int k = 0; k < rs[i].submitted; k++) {
            weft_future_state s = weft_future_get_state(rs[i].f[k]);
            ck_assert(s == WEFT_FUTURE_FINISHED || s == WEFT_FUTURE_CANCELLED);
            if (s == WEFT_FUTURE_FINISHED)
                ck_assert_int_eq(result_i64(rs[i].f[k]), (int64_t)k * k);
            weft_future_release(rs[i].f[k]);
        }
        total += rs[i].submitted + rs[i].refused;
    }
    ck_assert_int_eq(total, T * 400);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    ck_assert_int_eq(children_of(getpid()), 0);
}
END_TEST

START_TEST(bounded_queue_parks_submit)
{
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    weft_future *run, *q1, *q2;
    int64_t t0;
    register_all();
    fifo_make();
    o.max_workers = 1;
    o.queue_capacity = 1;
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    run = submit_hang(p, NULL);
    q1 = submit_i64(p, "square", 2);
    ck_assert_rc(weft_process_pool_submit(p, "echo", "", 0, 0, &q2, WEFT_NOW),
                 -ETIMEDOUT);
    t0 = weft_now();
    ck_assert_rc(weft_process_pool_submit(p, "echo", "", 0, 0, &q2,
                                          weft_deadline_ms(100)),
                 -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(100), MS(5000));
    ck_assert_rc(weft_process_pool_kill_task(p, run), 0);
    ck_assert_int_eq(result_i64(q1), 4);
    ck_assert_rc(weft_future_error(run, NULL, NULL, WEFT_FOREVER), 0);
    weft_future_release(run);
    weft_future_release(q1);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    unlink(fifo_path);
}
END_TEST

/* ---- processes ------------------------------------------------------------- */

START_TEST(no_process_or_zombie_left)
{
    enum { N = 8 };
    weft_process_pool *p;
    pid_t fs, pids[N];
    register_all();
    p = make_pool(2, 1, 0);
    fs = weft_process_pool_forkserver_pid(p);
    for (int i = 0; i < N; i++) {
        weft_future *f = submit_i64(p, "pid", 0);
        pids[i] = (pid_t)result_i64(f);
        weft_future_release(f);
    }
    ck_assert_int_eq(children_of(getpid()), 1); /* the forkserver only */
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    ck_assert(!process_exists(fs));
    for (int i = 0; i < N; i++)
        ck_assert(!process_exists(pids[i]));
    ck_assert_int_eq(children_of(getpid()), 0);
}
END_TEST

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int holders_ready, holders_stop;

/* Holds stdout's lock, malloc's arenas and a mutex, round and round, while
 * the pool is created and used. */
static void *holder(void *arg)
{
    atomic_fetch_add(&holders_ready, 1);
    while (!atomic_load(&holders_stop)) {
        flockfile(stdout);
        pthread_mutex_lock(&held);
        void *q = malloc(64);
        free(q);
        pthread_mutex_unlock(&held);
        funlockfile(stdout);
    }
    return NULL;
}

START_TEST(pool_from_a_threaded_program)
{
    enum { T = 4 };
    pthread_t th[T];
    weft_process_pool *p;
    register_all();
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, holder, NULL), 0);
    while (atomic_load(&holders_ready) < T)
        sched_yield();
    flockfile(stdout); /* held by this thread through the pool's creation */
    p = make_pool(2, 1, 0);
    funlockfile(stdout);
    for (int i = 0; i < 10; i++) {
        weft_future *f = submit_i64(p, "stdio", 0);
        ck_assert_int_eq(result_i64(f), 7);
        weft_future_release(f);
    }
    atomic_store(&holders_stop, 1);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

/* ---- map ------------------------------------------------------------------------ */

START_TEST(map_in_order_with_chunks)
{
    enum { N = 103 };
    static int64_t xs[N];
    weft_process_input in[N];
    weft_process_map *m;
    weft_process_pool *p;
    register_all();
    p = make_pool(3, 0, 0);
    for (int i = 0; i < N; i++) {
        xs[i] = i;
        in[i].data = &xs[i];
        in[i].len = i == 50 ? 3 : sizeof xs[i]; /* input 50 fails */
    }
    ck_assert_rc(weft_process_map_start(&m, p, "nope", in, N, 7, 2), -ENOENT);
    ck_assert_rc(weft_process_map_start(&m, p, "square", in, N, 7, 2), 0);
    for (int i = 0; i < N; i++) {
        int rc;
        const void *d;
        size_t len;
        ck_assert_rc(weft_process_map_next(m, &rc, &d, &len,
                                           weft_deadline_ms(20000)), 0);
        if (i == 50) {
            ck_assert_int_eq(rc, -EINVAL);
            ck_assert_msg(strstr(d, "want an int64"), "%s", (const char *)d);
            continue;
        }
        int64_t v;
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(len, sizeof v);
        memcpy(&v, d, sizeof v);
        ck_assert_int_eq(v, (int64_t)i * i);
    }
    ck_assert_rc(weft_process_map_next(m, NULL, NULL, NULL, WEFT_FOREVER),
                 -EPIPE);
    ck_assert_rc(weft_process_map_end(m), 0);
    /* a chunk whose worker dies fails each of its inputs */
    ck_assert_rc(weft_process_map_start(&m, p, "segv", in, 5, 2, 0), 0);
    for (int i = 0; i < 5; i++) {
        int rc;
        const void *d;
        ck_assert_rc(weft_process_map_next(m, &rc, &d, NULL,
                                           weft_deadline_ms(20000)), 0);
        ck_assert_int_eq(rc, WEFT_EWORKER);
        ck_assert_msg(segv_death(d), "%s", (const char *)d);
    }
    ck_assert_rc(weft_process_map_end(m), 0);
    /* ended early: what was not sent is cancelled */
    ck_assert_rc(weft_process_map_start(&m, p, "square", in, N, 1, 4), 0);
    ck_assert_rc(weft_process_map_next(m, NULL, NULL, NULL,
                                       weft_deadline_ms(20000)), 0);
    ck_assert_rc(weft_process_map_end(m), 0);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

/* ---- green threads ------------------------------------------------------------ */

static weft_process_pool *green_pool;

static int green_user(void *arg)
{
    int64_t base = (int64_t)(intptr_t)arg;
    for (int i = 0; i < 10; i++) {
        weft_future *f;
        void *v;
        int64_t x = base + i, y;
        if (weft_process_pool_submit(green_pool, "square", &x, sizeof x, 0,
                                     &f, WEFT_FOREVER) != 0)
            return 1;
        if (weft_future_result(f, &v, weft_deadline_ms(20000)) != 0)
            return 2;
        memcpy(&y, v, sizeof y);
        weft_future_release(f);
        if (y != x * x)
            return 3;
    }
    return 0;
}

START_TEST(pool_used_from_green_threads)
{
    enum { G = 8 };
    weft_green *g[G];
    register_all();
    green_pool = make_pool(2, 0, 0);
    ck_assert_rc(weft_runtime_start(2), 0);
    for (int i = 0; i < G; i++)
        ck_assert_rc(weft_green_spawn(&g[i], green_user,
                                      (void *)(intptr_t)(i * 100), NULL), 0);
    for (int i = 0; i < G; i++) {
        int r = -1;
        ck_assert_rc(weft_green_join(g[i], &r, WEFT_FOREVER), 0);
        ck_assert_int_eq(r, 0);
    }
    ck_assert_rc(weft_process_pool_destroy(green_pool), 0);
}
END_TEST

/* ---- direct submit (a task written straight to an idle worker) -------- */

/* Wait until pid (not our child) has ended: its sockets are closed then. */
static void wait_gone(pid_t pid)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct pollfd pfd;
    if (fd < 0) {
        ck_assert_int_eq(errno, ESRCH); /* already reaped */
        return;
    }
    pfd.fd = fd;
    pfd.events = POLLIN;
    ck_assert_int_eq(poll(&pfd, 1, 20000), 1);
    close(fd);
}

/* A submit that finds an idle worker writes to it directly.  If that
 * worker has died and the manager has not noticed yet, the task must not
 * be lost or failed: it never reached a worker, so it runs elsewhere. */
START_TEST(direct_submit_after_idle_workers_die)
{
    register_all();
    for (int workers = 1; workers <= 2; workers++) {
        weft_process_pool *p = make_pool(workers, 0, 0);
        for (int i = 0; i < 8; i++) {
            weft_future *f = submit_i64(p, "pid", 0);
            pid_t pid = (pid_t)result_i64(f);
            weft_future_release(f);
            ck_assert_int_eq(kill(pid, SIGKILL), 0);
            wait_gone(pid);
            f = submit_i64(p, "square", i);
            ck_assert_int_eq(result_i64(f), (int64_t)i * i);
            weft_future_release(f);
            f = submit_i64(p, "pid", 0);
            ck_assert_int_ne(result_i64(f), pid);
            weft_future_release(f);
        }
        ck_assert(!weft_process_pool_broken(p));
        ck_assert_rc(weft_process_pool_destroy(p), 0);
    }
}
END_TEST

static pthread_t test_thread;
static weft_event stall_entered = WEFT_EVENT_INIT;
static weft_event stall_release = WEFT_EVENT_INIT;

/* A done-callback that holds the manager thread (which completes the
 * future) until the test lets it go; inline in the test thread, nothing. */
static int stall_manager(weft_future *f, void *arg)
{
    if (pthread_equal(pthread_self(), test_thread))
        return 0;
    weft_event_set(&stall_entered);
    return weft_event_wait(&stall_release, weft_deadline_ms(20000));
}

/* The same race made certain: the manager is held in a done-callback
 * right after it marked the worker idle, the worker is killed and gone,
 * and a submit then writes to its dead socket.  The task is queued (still
 * pending, not failed) and runs in a new worker once the manager goes on. */
START_TEST(direct_submit_races_a_dead_idle_worker)
{
    weft_process_pool *p;
    weft_future *f, *s, *g;
    pid_t pid;
    register_all();
    test_thread = pthread_self();
    p = make_pool(1, 0, 0);
    f = submit_i64(p, "pid", 0);
    pid = (pid_t)result_i64(f);
    weft_future_release(f);
    s = submit_i64(p, "sleep", 0); /* 100 ms, in that worker */
    ck_assert_rc(weft_future_add_done_callback(s, stall_manager, NULL), 0);
    if (weft_future_done(s)) { /* too slow to catch it: nothing to test */
        weft_future_release(s);
        ck_assert_rc(weft_process_pool_destroy(p), 0);
        return;
    }
    ck_assert_rc(weft_event_wait(&stall_entered, weft_deadline_ms(20000)),
                 0);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    wait_gone(pid);
    g = submit_i64(p, "square", 7);
    ck_assert(!weft_future_done(g) && !weft_future_running(g));
    ck_assert_uint_eq(weft_process_pool_pending(p), 1);
    weft_event_set(&stall_release);
    ck_assert_int_eq(result_i64(g), 49);
    ck_assert_int_eq(result_i64(s), 1);
    weft_future_release(g);
    weft_future_release(s);
    f = submit_i64(p, "pid", 0);
    ck_assert_int_ne(result_i64(f), pid);
    weft_future_release(f);
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
}
END_TEST

/* Tasks queued behind the task of a worker that is killed run elsewhere;
 * only the running one fails. */
START_TEST(tasks_queued_behind_a_killed_worker_still_run)
{
    enum { Q = 6 };
    weft_process_pool *p;
    weft_future *f, *g, *q[Q];
    char msg[512];
    pid_t pid;
    register_all();
    fifo_make();
    p = make_pool(1, 0, 0);
    g = submit_i64(p, "square", 2); /* start the worker: then direct */
    ck_assert_int_eq(result_i64(g), 4);
    weft_future_release(g);
    f = submit_hang(p, &pid);
    for (int i = 0; i < Q; i++)
        q[i] = submit_i64(p, "square", i + 10);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), WEFT_EWORKER);
    ck_assert_msg(strstr(msg, "task 'hang' failed: worker ") &&
                      strstr(msg, "SIGKILL"), "%s", msg);
    for (int i = 0; i < Q; i++) {
        ck_assert_int_eq(result_i64(q[i]), (int64_t)(i + 10) * (i + 10));
        weft_future_release(q[i]);
    }
    weft_future_release(f);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    unlink(fifo_path);
}
END_TEST

/* A task written directly to an idle worker still has its timeout
 * watched (from when it was sent) and can still be killed. */
START_TEST(direct_task_times_out_and_can_be_killed)
{
    weft_process_pool *p;
    weft_future *f, *g;
    char msg[512];
    int64_t t0;
    pid_t pid;
    register_all();
    fifo_make();
    p = make_pool(1, 0, 0);
    g = submit_i64(p, "square", 3);
    ck_assert_int_eq(result_i64(g), 9);
    weft_future_release(g);
    t0 = weft_now();
    ck_assert_rc(weft_process_pool_submit(p, "spin", "", 0, MS(200), &f,
                                          WEFT_FOREVER), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), -ETIMEDOUT);
    ck_assert_elapsed(t0, MS(200), MS(5000));
    weft_future_release(f);
    g = submit_i64(p, "square", 4);
    ck_assert_int_eq(result_i64(g), 16);
    weft_future_release(g);
    f = submit_hang(p, &pid);
    ck_assert_rc(weft_process_pool_kill_task(p, f), 0);
    ck_assert_int_eq(failure(f, msg, sizeof msg), -ECANCELED);
    weft_future_release(f);
    g = submit_i64(p, "pid", 0);
    ck_assert_int_ne(result_i64(g), pid);
    weft_future_release(g);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    unlink(fifo_path);
}
END_TEST

/* A frame larger than the socket takes at once: the submit writes what
 * fits and the manager sends the rest; results of several tasks that
 * arrive together are each handed to the right future. */
START_TEST(direct_submit_of_a_large_frame)
{
    size_t big = 3u << 20;
    unsigned char *in = malloc(big);
    weft_process_pool *p;
    weft_future *f, *g[16];
    void *v;
    register_all();
    for (size_t i = 0; i < big; i++)
        in[i] = (unsigned char)(i * 13 + 1);
    p = make_pool(1, 0, 0);
    f = submit_i64(p, "square", 5);
    ck_assert_int_eq(result_i64(f), 25);
    weft_future_release(f);
    for (int r = 0; r < 3; r++) {
        ck_assert_rc(weft_process_pool_submit(p, "echo", in, big, 0, &f,
                                              WEFT_FOREVER), 0);
        for (int i = 0; i < 16; i++)
            g[i] = submit_i64(p, "square", i);
        ck_assert_rc(weft_future_result(f, &v, weft_deadline_ms(20000)), 0);
        ck_assert_uint_eq(weft_future_result_size(f), big);
        ck_assert_int_eq(memcmp(v, in, big), 0);
        weft_future_release(f);
        for (int i = 0; i < 16; i++) {
            ck_assert_int_eq(result_i64(g[i]), (int64_t)i * i);
            weft_future_release(g[i]);
        }
    }
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    free(in);
}
END_TEST

/* ---- pipelining: a second task sent behind the running one ------------- */

static char gate_path[2][128];

static void gates_make(void)
{
    for (int i = 0; i < 2; i++) {
        snprintf(gate_path[i], sizeof gate_path[i],
                 "/tmp/weft-test-process-%d.gate%d", (int)getpid(), i);
        unlink(gate_path[i]);
        ck_assert_int_eq(mkfifo(gate_path[i], 0600), 0);
    }
}

static void gates_unlink(void)
{
    unlink(gate_path[0]);
    unlink(gate_path[1]);
}

static weft_future *submit_gate(weft_process_pool *p, int i)
{
    weft_future *f;
    ck_assert_rc(weft_process_pool_submit(p, "gate", gate_path[i],
                                          strlen(gate_path[i]), 0, &f,
                                          WEFT_FOREVER), 0);
    return f;
}

/* Return once gate task i runs: a fd to hand to gate_release. */
static int gate_reached(int i)
{
    int fd = open(gate_path[i], O_WRONLY);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static void gate_release(int fd)
{
    ck_assert_int_eq(write(fd, "x", 1), 1);
    close(fd);
}

static weft_future *submit_named(weft_process_pool *p, const char *name,
                                 const char *in, int64_t timeout_ns)
{
    weft_future *f;
    ck_assert_rc(weft_process_pool_submit(p, name, in, strlen(in),
                                          timeout_ns, &f, WEFT_FOREVER), 0);
    return f;
}

/* The pid a "hang" task writes to fifo_path once it runs. */
static pid_t hang_pid(void)
{
    int64_t x = 0;
    int fd = open(fifo_path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, &x, sizeof x), (int)sizeof x);
    close(fd);
    return (pid_t)x;
}

/* In a one-worker pool the worker's result of a gate task hands it the
 * next queued task and, behind it, the one after (a task per worker still
 * waits): both are sent, RUNNING, and no longer cancellable.  The running
 * one ends by SIGKILL from outside, kill_task or its timeout; the task
 * behind it never started and runs in the replacement worker.  The
 * timeout counts from the gate's result (when the task started). */
START_TEST(death_with_a_task_pipelined_behind_fails_it_alone)
{
    register_all();
    fifo_make();
    gates_make();
    for (int mode = 0; mode < 3; mode++) {
        weft_process_pool *p = make_pool(1, 0, 0);
        weft_future *g, *h, *x;
        char msg[512];
        int64_t t0;
        pid_t pid;
        int fd;
        g = submit_gate(p, 0);
        fd = gate_reached(0);
        h = submit_named(p, "hang", fifo_path, mode == 2 ? MS(300) : 0);
        x = submit_i64(p, "pid", 0);
        ck_assert_uint_eq(weft_process_pool_pending(p), 2);
        ck_assert(!weft_future_running(h) && !weft_future_running(x));
        t0 = weft_now();
        gate_release(fd);
        pid = (pid_t)result_i64(g);
        ck_assert_int_eq(hang_pid(), pid);
        ck_assert_uint_eq(weft_process_pool_pending(p), 0);
        ck_assert(weft_future_running(x)); /* sent behind h */
        ck_assert_rc(weft_future_cancel(x), -EBUSY);
        if (mode == 0) {
            ck_assert_int_eq(kill(pid, SIGKILL), 0);
            ck_assert_int_eq(failure(h, msg, sizeof msg), WEFT_EWORKER);
            ck_assert_msg(strstr(msg, "task 'hang' failed: worker ") &&
                              strstr(msg, "killed by signal 9"), "%s", msg);
        } else if (mode == 1) {
            ck_assert_rc(weft_process_pool_kill_task(p, h), 0);
            ck_assert_int_eq(failure(h, msg, sizeof msg), -ECANCELED);
            ck_assert_msg(strstr(msg, "task 'hang' cancelled: worker "),
                          "%s", msg);
        } else {
            ck_assert_int_eq(failure(h, msg, sizeof msg), -ETIMEDOUT);
            ck_assert_elapsed(t0, MS(300), MS(10000));
            ck_assert_msg(strstr(msg, "task 'hang' timed out"), "%s", msg);
        }
        ck_assert_int_ne(result_i64(x), pid); /* the replacement ran it */
        weft_future_release(g);
        weft_future_release(h);
        weft_future_release(x);
        ck_assert(!weft_process_pool_broken(p));
        ck_assert_rc(weft_process_pool_destroy(p), 0);
    }
    gates_unlink();
    unlink(fifo_path);
}
END_TEST

/* A crash fails the task it hit, not the one sent behind it. */
START_TEST(crash_with_a_task_pipelined_behind_fails_it_alone)
{
    weft_process_pool *p;
    weft_future *g, *s, *x;
    char msg[512];
    pid_t pid;
    int fd;
    register_all();
    gates_make();
    p = make_pool(1, 0, 0);
    for (int r = 0; r < 3; r++) {
        g = submit_gate(p, 0);
        fd = gate_reached(0);
        s = submit_named(p, r == 1 ? "exit3" : "segv", "", 0);
        x = submit_i64(p, "pid", 0);
        ck_assert_uint_eq(weft_process_pool_pending(p), 2);
        gate_release(fd);
        pid = (pid_t)result_i64(g);
        ck_assert_rc(weft_future_cancel(x), -EBUSY); /* sent, or done */
        ck_assert_int_eq(failure(s, msg, sizeof msg), WEFT_EWORKER);
        if (r == 1)
            ck_assert_msg(strstr(msg, "exited with code 3"), "%s", msg);
        else
            ck_assert_msg(segv_death(msg), "%s", msg);
        ck_assert_int_ne(result_i64(x), pid);
        weft_future_release(g);
        weft_future_release(s);
        weft_future_release(x);
    }
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    gates_unlink();
}
END_TEST

/* kill_task of a task sent behind the running one fails it at once and
 * leaves the running task alone; its worker is killed when it reaches it
 * (once the running task reported), and the pool goes on. */
START_TEST(kill_task_of_a_pipelined_task)
{
    weft_process_pool *p;
    weft_future *g1, *g2, *x, *y;
    char msg[512];
    pid_t pid;
    int fd;
    register_all();
    gates_make();
    p = make_pool(1, 0, 0);
    g1 = submit_gate(p, 0);
    fd = gate_reached(0);
    g2 = submit_gate(p, 1);
    x = submit_i64(p, "square", 3);
    gate_release(fd);
    pid = (pid_t)result_i64(g1);
    fd = gate_reached(1); /* g2 runs, x is behind it */
    ck_assert(weft_future_running(x));
    ck_assert_rc(weft_process_pool_kill_task(p, x), 0);
    ck_assert_int_eq(failure(x, msg, sizeof msg), -ECANCELED);
    ck_assert_msg(strstr(msg, "task 'square' cancelled by "
                              "weft_process_pool_kill_task before it "
                              "started"), "%s", msg);
    ck_assert_rc(weft_process_pool_kill_task(p, x), -EBUSY);
    ck_assert(!weft_future_done(g2)); /* untouched */
    ck_assert(process_exists(pid));
    gate_release(fd);
    ck_assert_int_eq(result_i64(g2), pid);
    wait_gone(pid); /* killed when it started x */
    y = submit_i64(p, "pid", 0);
    ck_assert_int_ne(result_i64(y), pid);
    weft_future_release(y);
    /* and behind a task that never ends: killing it too frees the worker */
    fifo_make();
    weft_future_release(g1);
    g1 = submit_gate(p, 0);
    fd = gate_reached(0);
    weft_future_release(g2);
    g2 = submit_named(p, "hang", fifo_path, 0);
    weft_future_release(x);
    x = submit_i64(p, "square", 4);
    gate_release(fd);
    weft_future_release(g1);
    pid = hang_pid();
    ck_assert_rc(weft_process_pool_kill_task(p, x), 0);
    ck_assert_int_eq(failure(x, msg, sizeof msg), -ECANCELED);
    ck_assert(!weft_future_done(g2));
    ck_assert_rc(weft_process_pool_kill_task(p, g2), 0);
    ck_assert_int_eq(failure(g2, msg, sizeof msg), -ECANCELED);
    y = submit_i64(p, "pid", 0);
    ck_assert_int_ne(result_i64(y), pid);
    weft_future_release(y);
    weft_future_release(g2);
    weft_future_release(x);
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    gates_unlink();
    unlink(fifo_path);
}
END_TEST

/* A pipelined task's timeout counts from when it starts (the result of the
 * task before it), not from when it was sent. */
START_TEST(pipelined_timeout_counts_from_its_start)
{
    struct timespec hold = {0, 600 * 1000 * 1000};
    weft_process_pool *p;
    weft_future *g1, *g2, *x;
    int fd;
    register_all();
    gates_make();
    p = make_pool(1, 0, 0);
    g1 = submit_gate(p, 0);
    fd = gate_reached(0);
    g2 = submit_gate(p, 1);
    ck_assert_rc(weft_process_pool_submit(p, "sleep", "", 0, MS(400), &x,
                                          WEFT_FOREVER), 0);
    gate_release(fd);
    result_i64(g1);
    fd = gate_reached(1);
    ck_assert(weft_future_running(x)); /* sent behind g2 */
    nanosleep(&hold, NULL); /* longer than x's limit, before x starts */
    gate_release(fd);
    result_i64(g2);
    ck_assert_int_eq(result_i64(x), 1); /* 100 ms of its 400 */
    weft_future_release(g1);
    weft_future_release(g2);
    weft_future_release(x);
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    gates_unlink();
}
END_TEST

/* With tasks waiting, a worker is never sent more than it will run before
 * max_tasks_per_worker retires it: each worker runs exactly its share,
 * and no task fails. */
START_TEST(max_tasks_with_pipelining)
{
    enum { N = 13 };
    register_all();
    gates_make();
    for (int max = 1; max <= 3; max++) {
        weft_process_pool *p = make_pool(1, max, 0);
        weft_future *f[N];
        int64_t pids[N];
        int fd;
        f[0] = submit_gate(p, 0);
        fd = gate_reached(0);
        for (int i = 1; i < N; i++)
            f[i] = submit_i64(p, "pid", 0);
        gate_release(fd);
        for (int i = 0; i < N; i++) {
            pids[i] = result_i64(f[i]);
            weft_future_release(f[i]);
        }
        for (int i = 1; i < N; i++) {
            if (i % max == 0)
                ck_assert_int_ne(pids[i], pids[i - 1]);
            else
                ck_assert_int_eq(pids[i], pids[i - 1]);
        }
        ck_assert_rc(weft_process_pool_destroy(p), 0);
    }
    gates_unlink();
}
END_TEST

/* Many small tasks through two workers kept two deep: every future gets
 * its own task's result, none is lost or doubled, and a map's results
 * come in input order. */
START_TEST(many_small_tasks_pipelined)
{
    long n = 3000 * test_scale();
    weft_future **f = malloc((size_t)n * sizeof *f);
    static int64_t xs[2000];
    weft_process_input in[2000];
    weft_process_map *m;
    weft_process_pool *p;
    register_all();
    ck_assert_ptr_nonnull(f);
    p = make_pool(2, 0, 0);
    for (int r = 0; r < 2; r++) {
        for (long i = 0; i < n; i++)
            f[i] = submit_i64(p, "square", i + r);
        for (long i = 0; i < n; i++) {
            ck_assert_int_eq(result_i64(f[i]), (i + r) * (i + r));
            weft_future_release(f[i]);
        }
        ck_assert_uint_eq(weft_process_pool_pending(p), 0);
    }
    for (int i = 0; i < 2000; i++) {
        xs[i] = i;
        in[i].data = &xs[i];
        in[i].len = sizeof xs[i];
    }
    ck_assert_rc(weft_process_map_start(&m, p, "square", in, 2000, 3, 0), 0);
    for (int i = 0; i < 2000; i++) {
        int rc;
        const void *d;
        size_t len;
        int64_t v;
        ck_assert_rc(weft_process_map_next(m, &rc, &d, &len,
                                           weft_deadline_ms(20000)), 0);
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(len, sizeof v);
        memcpy(&v, d, sizeof v);
        ck_assert_int_eq(v, (int64_t)i * i);
    }
    ck_assert_rc(weft_process_map_next(m, NULL, NULL, NULL, WEFT_FOREVER),
                 -EPIPE);
    ck_assert_rc(weft_process_map_end(m), 0);
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    free(f);
}
END_TEST

/* A task sent behind one whose worker dies goes back to the head of the
 * queue still RUNNING (it was sent: cancel fails), until a worker takes
 * it; kill_task meanwhile fails it with -ECANCELED.  The replacement
 * worker is held in its initializer to keep the task queued. */
START_TEST(requeued_task_is_running_and_can_be_killed)
{
    weft_process_pool_opts o = {0};
    weft_process_pool *p;
    weft_future *g, *h, *x, *y;
    char marker[200], msg[512];
    pid_t pid;
    int fd, mfd;
    register_all();
    fifo_make();
    gates_make();
    snprintf(marker, sizeof marker, "%s.on", gate_path[1]);
    unlink(marker);
    o.max_workers = 1;
    o.initializer = "init_gate";
    o.initarg = gate_path[1];
    o.initarg_len = strlen(gate_path[1]);
    ck_assert_rc(weft_process_pool_create(&p, &o), 0);
    g = submit_gate(p, 0);
    fd = gate_reached(0);
    h = submit_named(p, "hang", fifo_path, 0);
    x = submit_i64(p, "square", 5);
    gate_release(fd);
    pid = (pid_t)result_i64(g);
    ck_assert_int_eq(hang_pid(), pid);
    ck_assert(weft_future_running(x));
    mfd = open(marker, O_WRONLY | O_CREAT, 0600); /* hold the next worker */
    ck_assert_int_ge(mfd, 0);
    close(mfd);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(failure(h, msg, sizeof msg), WEFT_EWORKER);
    fd = gate_reached(1); /* the replacement is in its initializer */
    ck_assert_uint_eq(weft_process_pool_pending(p), 1); /* x, put back */
    ck_assert(weft_future_running(x));
    ck_assert_rc(weft_future_cancel(x), -EBUSY);
    ck_assert_rc(weft_process_pool_kill_task(p, x), 0);
    ck_assert_int_eq(failure(x, msg, sizeof msg), -ECANCELED);
    ck_assert_msg(strstr(msg, "task 'square' cancelled by "
                              "weft_process_pool_kill_task before it "
                              "started"), "%s", msg);
    ck_assert_uint_eq(weft_process_pool_pending(p), 0);
    unlink(marker);
    gate_release(fd);
    y = submit_i64(p, "square", 6);
    ck_assert_int_eq(result_i64(y), 36);
    weft_future_release(g);
    weft_future_release(h);
    weft_future_release(x);
    weft_future_release(y);
    ck_assert(!weft_process_pool_broken(p));
    ck_assert_rc(weft_process_pool_destroy(p), 0);
    gates_unlink();
    unlink(fifo_path);
}
END_TEST

static Suite *process_suite(void)
{
    Suite *s = suite_create("process");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bytes_round_trip);
    tcase_add_test(tc, register_errors);
    tcase_add_test(tc, create_and_submit_errors);
    tcase_add_test(tc, many_results);
    tcase_add_test(tc, empty_and_large_payloads);
    tcase_add_test(tc, task_failure_has_code_and_message);
    tcase_add_test(tc, crash_exit_and_timeout_fail_alone);
    tcase_add_test(tc, timeout_is_not_early);
    tcase_add_test(tc, sigkill_from_outside_fails_that_task);
    tcase_add_test(tc, kill_task_cancels_a_running_task);
    tcase_add_test(tc, cancelled_pending_task_is_never_sent);
    tcase_add_test(tc, max_tasks_per_worker_replaces_workers);
    tcase_add_test(tc, initializer_sets_worker_state);
    tcase_add_test(tc, failing_initializer_breaks_the_pool);
    tcase_add_test(tc, shutdown_waits_for_running_and_queued);
    tcase_add_test(tc, shutdown_cancel_pending);
    tcase_add_test(tc, shutdown_races_submit);
    tcase_add_test(tc, bounded_queue_parks_submit);
    tcase_add_test(tc, no_process_or_zombie_left);
    tcase_add_test(tc, pool_from_a_threaded_program);
    tcase_add_test(tc, map_in_order_with_chunks);
    tcase_add_test(tc, pool_used_from_green_threads);
    tcase_add_test(tc, direct_submit_after_idle_workers_die);
    tcase_add_test(tc, direct_submit_races_a_dead_idle_worker);
    tcase_add_test(tc, tasks_queued_behind_a_killed_worker_still_run);
    tcase_add_test(tc, direct_task_times_out_and_can_be_killed);
    tcase_add_test(tc, direct_submit_of_a_large_frame);
    tcase_add_test(tc, death_with_a_task_pipelined_behind_fails_it_alone);
    tcase_add_test(tc, crash_with_a_task_pipelined_behind_fails_it_alone);
    tcase_add_test(tc, kill_task_of_a_pipelined_task);
    tcase_add_test(tc, pipelined_timeout_counts_from_its_start);
    tcase_add_test(tc, max_tasks_with_pipelining);
    tcase_add_test(tc, many_small_tasks_pipelined);
    tcase_add_test(tc, requeued_task_is_running_and_can_be_killed);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(process_suite)
