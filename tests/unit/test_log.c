/* test_log.c - the logger: line format, levels (set and from the
 * environment), thread names, destinations (fd, file, back to stderr),
 * whole lines under concurrency, long lines, trailing newlines. */
#include "support.h"

#include <fcntl.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_RE                                                              \
    "^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"    \
    "\\.[0-9]{6}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\\[([^]]*)\\] (.*)$"

static char path[64];

/* Send the log to a fresh temporary file. */
static void to_temp(void)
{
    snprintf(path, sizeof path, "/tmp/weft-log-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_rc(weft_log_set_file(path), 0);
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Split buf into lines (in place); returns how many. */
static int split(char *buf, char **lines, int cap)
{
    int n = 0;
    char *save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l && n < cap;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    return n;
}

/* Match one line; fills level, thread name and message. */
static void parse(const char *line, char *level, char *name, char *msg)
{
    regex_t re;
    regmatch_t m[10];
    ck_assert_int_eq(regcomp(&re, LINE_RE, REG_EXTENDED), 0);
    ck_assert_msg(regexec(&re, line, 10, m, 0) == 0, "bad line: '%s'", line);
    regfree(&re);
    if (level)
        sprintf(level, "%.*s", (int)(m[7].rm_eo - m[7].rm_so),
                line + m[7].rm_so);
    if (name)
        sprintf(name, "%.*s", (int)(m[8].rm_eo - m[8].rm_so),
                line + m[8].rm_so);
    if (msg)
        sprintf(msg, "%.*s", (int)(m[9].rm_eo - m[9].rm_so),
                line + m[9].rm_so);
}

static void teardown(void)
{
    weft_log_set_fd(-1);
    if (path[0])
        unlink(path);
}

START_TEST(format_matches)
{
    char level[16], name[64], msg[128];
    char *lines[4];
    to_temp();
    time_t before = time(NULL);
    weft_info("hello %d %s", 42, "world");
    time_t after = time(NULL);
    char *buf = slurp(path, NULL);
    ck_assert_int_eq(buf[strlen(buf) - 1], '\n');
    ck_assert_int_eq(split(buf, lines, 4), 1);
    parse(lines[0], level, name, msg);
    ck_assert_str_eq(level, "INFO");
    ck_assert_str_eq(name, "MainThread");
    ck_assert_str_eq(msg, "hello 42 world");
    /* Level padded to a fixed width: the '[' is always in column 37. */
    ck_assert_int_eq(lines[0][37], '[');
    /* The timestamp is UTC now. */
    struct tm tm;
    char want_a[32], want_b[32];
    gmtime_r(&before, &tm);
    strftime(want_a, sizeof want_a, "%Y-%m-%dT%H:%M:%S", &tm);
    gmtime_r(&after, &tm);
    strftime(want_b, sizeof want_b, "%Y-%m-%dT%H:%M:%S", &tm);
    ck_assert_msg(strncmp(lines[0], want_a, 19) == 0 ||
                      strncmp(lines[0], want_b, 19) == 0,
                  "%s vs %s", lines[0], want_a);
    free(buf);
}
END_TEST

START_TEST(level_filtering)
{
    char *lines[8], level[16];
    to_temp();
    ck_assert_int_eq(weft_log_get_level(), WEFT_LOG_INFO);
    weft_debug("hidden");
    weft_warning("shown 1");
    ck_assert_int_eq(weft_log_set_level(WEFT_LOG_ERROR), WEFT_LOG_INFO);
    weft_warning("hidden");
    weft_error("shown 2");
    weft_critical("shown 3");
    ck_assert_int_eq(weft_log_set_level(WEFT_LOG_DEBUG), WEFT_LOG_ERROR);
    weft_debug("shown 4");
    ck_assert_int_eq(weft_log_set_level(WEFT_LOG_OFF), WEFT_LOG_DEBUG);
    weft_critical("hidden");
    weft_log(WEFT_LOG_OFF, "hidden");
    char *buf = slurp(path, NULL);
    ck_assert_int_eq(split(buf, lines, 8), 4);
    const char *want[] = {"WARNING", "ERROR", "CRITICAL", "DEBUG"};
    for (int i = 0; i < 4; i++) {
        char msg[64], exp[32];
        parse(lines[i], level, NULL, msg);
        ck_assert_str_eq(level, want[i]);
        snprintf(exp, sizeof exp, "shown %d", i + 1);
        ck_assert_str_eq(msg, exp);
    }
    free(buf);
}
END_TEST

START_TEST(level_from_environment)
{
    /* Each test runs in a fresh process, where the logger has not yet read
     * the environment. */
    setenv("WEFT_LOG_LEVEL", "Warning", 1);
    ck_assert_int_eq(weft_log_get_level(), WEFT_LOG_WARNING);
    char *lines[4];
    to_temp();
    weft_info("hidden");
    weft_warning("shown");
    char *buf = slurp(path, NULL);
    ck_assert_int_eq(split(buf, lines, 4), 1);
    free(buf);
}
END_TEST

START_TEST(level_from_environment_debug_and_bad)
{
    setenv("WEFT_LOG_LEVEL", "debug", 1);
    ck_assert_int_eq(weft_log_set_level(WEFT_LOG_INFO), WEFT_LOG_DEBUG);
    ck_assert_str_eq(weft_log_level_name(WEFT_LOG_DEBUG), "DEBUG");
    ck_assert_str_eq(weft_log_level_name(WEFT_LOG_INFO), "INFO");
    ck_assert_str_eq(weft_log_level_name(WEFT_LOG_WARNING), "WARNING");
    ck_assert_str_eq(weft_log_level_name(WEFT_LOG_ERROR), "ERROR");
    ck_assert_str_eq(weft_log_level_name(WEFT_LOG_CRITICAL), "CRITICAL");
    ck_assert_str_eq(weft_log_level_name(WEFT_LOG_OFF), "OFF");
    ck_assert_str_eq(weft_log_level_name((weft_log_level)35), "WARNING");
}
END_TEST

START_TEST(level_from_environment_unknown_is_info)
{
    setenv("WEFT_LOG_LEVEL", "chatty", 1);
    ck_assert_int_eq(weft_log_get_level(), WEFT_LOG_INFO);
}
END_TEST

static int log_named(void *p)
{
    (void)p;
    weft_info("from a thread");
    return 0;
}

START_TEST(thread_names_of_weft_foreign_and_main)
{
    char *lines[8], name[64], msg[64];
    weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
    weft_thread *t;
    to_temp();
    o.name = "worker-2";
    ck_assert_rc(weft_thread_start(&t, log_named, NULL, &o), 0);
    ck_assert_rc(weft_thread_join(t, NULL, WEFT_FOREVER), 0);
    ck_assert_rc(tt_join(tt_start(log_named, NULL)), 0);
    weft_info("from main");
    char *buf = slurp(path, NULL);
    ck_assert_int_eq(split(buf, lines, 8), 3);
    parse(lines[0], NULL, name, msg);
    ck_assert_str_eq(name, "worker-2");
    ck_assert_str_eq(msg, "from a thread");
    parse(lines[1], NULL, name, NULL);
    unsigned n;
    ck_assert_msg(sscanf(name, "Dummy-%u", &n) == 1, "name %s", name);
    parse(lines[2], NULL, name, NULL);
    ck_assert_str_eq(name, "MainThread");
    free(buf);
}
END_TEST

START_TEST(set_file_appends_and_switches)
{
    char p2[64];
    snprintf(path, sizeof path, "/tmp/weft-log-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "existing\n", 9), 9);
    close(fd);
    ck_assert_rc(weft_log_set_file(path), 0);
    weft_info("one");
    snprintf(p2, sizeof p2, "/tmp/weft-log2-XXXXXX");
    fd = mkstemp(p2);
    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(p2); /* set_file creates it */
    ck_assert_rc(weft_log_set_file(p2), 0);
    weft_info("two");
    ck_assert_rc(weft_log_set_file(path), 0);
    weft_info("three");
    char *a = slurp(path, NULL), *b = slurp(p2, NULL), *lines[8];
    ck_assert_int_eq(strncmp(a, "existing\n", 9), 0);
    ck_assert_int_eq(split(a, lines, 8), 3);
    ck_assert_ptr_nonnull(strstr(lines[1], "] one"));
    ck_assert_ptr_nonnull(strstr(lines[2], "] three"));
    ck_assert_int_eq(split(b, lines, 8), 1);
    ck_assert_ptr_nonnull(strstr(lines[0], "] two"));
    struct stat st;
    ck_assert_int_eq(stat(p2, &st), 0);
    mode_t um = umask(0);
    umask(um);
    ck_assert_int_eq(st.st_mode & 0777, 0644 & ~um);
    free(a);
    free(b);
    unlink(p2);
    ck_assert_rc(weft_log_set_file("/nonexistent-dir/x.log"), -ENOENT);
    ck_assert_rc(weft_log_set_file(NULL), -EINVAL);
}
END_TEST

START_TEST(set_fd_validates_and_minus_one_restores_stderr)
{
    int p[2], saved;
    char buf[512];
    ck_assert_rc(weft_log_set_fd(-2), -EINVAL);
    ck_assert_rc(weft_log_set_fd(987), -EINVAL); /* not open */
    ck_assert_int_eq(pipe(p), 0);
    saved = dup(2);
    ck_assert_int_eq(dup2(p[1], 2), 2);
    to_temp();
    weft_info("to file");
    ck_assert_rc(weft_log_set_fd(-1), 0);
    weft_info("to stderr");
    dup2(saved, 2);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "] to stderr\n"));
    ck_assert_ptr_null(strstr(buf, "to file"));
    close(p[0]);
    char *f = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(f, "] to file\n"));
    ck_assert_ptr_null(strstr(f, "to stderr"));
    free(f);
}
END_TEST

START_TEST(long_lines_are_cut_with_newline)
{
    static char big[3 * WEFT_LOG_LINE_MAX];
    size_t len;
    memset(big, 'x', sizeof big - 1);
    to_temp();
    weft_info("%s", big);
    weft_info("short");
    char *buf = slurp(path, &len);
    char *nl = strchr(buf, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_int_eq(nl - buf + 1, WEFT_LOG_LINE_MAX);
    ck_assert_int_eq(nl[-1], 'x');
    ck_assert_ptr_nonnull(strstr(nl + 1, "] short\n"));
    free(buf);
}
END_TEST

START_TEST(trailing_newline_not_doubled)
{
    size_t len;
    to_temp();
    weft_info("abc\n");
    weft_info("def");
    weft_info("%s", "");
    char *buf = slurp(path, &len);
    ck_assert_ptr_nonnull(strstr(buf, "] abc\n2"));
    ck_assert_ptr_nonnull(strstr(buf, "] def\n2"));
    ck_assert_ptr_null(strstr(buf, "\n\n"));
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    ck_assert_int_eq(lines, 3);
    free(buf);
}
END_TEST

enum { WRITERS = 8 };

static int writer(void *p)
{
    int id = (int)(intptr_t)p;
    int n = 300 * (int)test_scale();
    char pad[600];
    for (int i = 0; i < n; i++) {
        int w = (i * 37 + id * 11) % (int)sizeof pad;
        memset(pad, 'a' + id, (size_t)w);
        pad[w] = '\0';
        weft_info("w%d n%d %s", id, i, pad);
    }
    return 0;
}

START_TEST(concurrent_lines_stay_whole)
{
    weft_thread *t[WRITERS];
    size_t len;
    int n = 300 * (int)test_scale();
    static int seen[WRITERS];
    to_temp();
    for (int i = 0; i < WRITERS; i++) {
        weft_thread_opts o = WEFT_THREAD_OPTS_DEFAULT;
        char name[32];
        snprintf(name, sizeof name, "writer-%d", i);
        o.name = name;
        ck_assert_rc(weft_thread_start(&t[i], writer, (void *)(intptr_t)i,
                                       &o), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        ck_assert_rc(weft_thread_join(t[i], NULL, WEFT_FOREVER), 0);
    char *buf = slurp(path, &len);
    int count = 0;
    char *save = NULL;
    regex_t re;
    ck_assert_int_eq(regcomp(&re, LINE_RE, REG_EXTENDED), 0);
    for (char *l = strtok_r(buf, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[10];
        int id, i, k;
        char name[32];
        ck_assert_msg(regexec(&re, l, 10, m, 0) == 0, "bad line '%s'", l);
        const char *msg = l + m[9].rm_so;
        ck_assert_int_eq(sscanf(msg, "w%d n%d %n", &id, &i, &k), 2);
        ck_assert(id >= 0 && id < WRITERS);
        /* The thread name and every padding byte belong to this writer. */
        snprintf(name, sizeof name, "writer-%d", id);
        ck_assert_int_eq(strncmp(l + m[8].rm_so, name, strlen(name)), 0);
        int w = (i * 37 + id * 11) % 600;
        ck_assert_int_eq((int)strlen(msg + k), w);
        for (int j = 0; j < w; j++)
            ck_assert_int_eq(msg[k + j], 'a' + id);
        ck_assert_int_eq(i, seen[id]); /* in order, none lost */
        seen[id]++;
        count++;
    }
    regfree(&re);
    ck_assert_int_eq(count, WRITERS * n);
    free(buf);
}
END_TEST

START_TEST(out_of_range_level_is_refused)
{
    weft_log_set_level(WEFT_LOG_ERROR);
    ck_assert_int_eq(weft_log_set_level((weft_log_level)-1), WEFT_LOG_ERROR);
    ck_assert_int_eq(weft_log_get_level(), WEFT_LOG_ERROR);
    ck_assert_int_eq(weft_log_set_level((weft_log_level)(WEFT_LOG_OFF + 1)),
                     WEFT_LOG_ERROR);
    ck_assert_int_eq(weft_log_get_level(), WEFT_LOG_ERROR);
    /* The ends of the range are levels. */
    ck_assert_int_eq(weft_log_set_level((weft_log_level)0), WEFT_LOG_ERROR);
    ck_assert_int_eq(weft_log_set_level(WEFT_LOG_OFF), 0);
    ck_assert_int_eq(weft_log_get_level(), WEFT_LOG_OFF);
}
END_TEST

/* ---- fork while another thread changes the destination ---------------- */

struct switcher {
    atomic_int stop;
    long switches;
};

/* Keeps the logger's setters (and so their lock) busy. */
static int switch_destination(void *p)
{
    struct switcher *sw = p;
    /* No ck_assert here: Check's assertions take a mutex of their own,
     * which a child forked meanwhile would find held. */
    int bad = 0;
    while (!atomic_load(&sw->stop)) {
        bad |= weft_log_set_file(path) != 0;
        bad |= weft_log_set_fd(-1) != 0;
        sw->switches++;
    }
    return bad;
}

/* A child forked while another thread was inside set_fd/set_file used to
 * find the setters' lock held for ever and hang in its own set_fd.  The
 * child has an alarm, so a hang fails the test instead of lingering. */
START_TEST(child_forked_during_a_setter_can_set_the_destination)
{
    struct switcher sw = {0};
    to_temp();
    tt *t = tt_start(switch_destination, &sw);
    for (int i = 0; i < 200; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) { /* nothing from Check in here (see above) */
            alarm(5);
            int rc = weft_log_set_fd(-1);
            rc |= weft_log_set_file(path);
            _exit(rc == 0 ? 0 : 1);
        }
        ck_assert_int_ge(pid, 0);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d: status %#x", i, status);
    }
    atomic_store(&sw.stop, 1);
    ck_assert_rc(tt_join(t), 0);
    ck_assert_int_gt(sw.switches, 0);
}
END_TEST

static int log_from_green(void *p)
{
    (void)p;
    weft_info("from a green thread");
    return 0;
}

START_TEST(green_thread_lines_name_the_green_thread)
{
    char *lines[4], name[64], msg[64];
    weft_green *g;
    weft_green_opts o = {"green-logger", 0};
    to_temp();
    ck_assert_rc(weft_green_spawn(&g, log_from_green, NULL, &o), 0);
    ck_assert_rc(weft_green_join(g, NULL, WEFT_FOREVER), 0);
    char *buf = slurp(path, NULL);
    ck_assert_int_eq(split(buf, lines, 4), 1);
    parse(lines[0], NULL, name, msg);
    ck_assert_str_eq(name, "green-logger"); /* not its worker's name */
    ck_assert_str_eq(msg, "from a green thread");
    free(buf);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *c = tcase_create("log");
    tcase_set_timeout(c, 30);
    tcase_add_checked_fixture(c, NULL, teardown);
    tcase_add_test(c, format_matches);
    tcase_add_test(c, level_filtering);
    tcase_add_test(c, level_from_environment);
    tcase_add_test(c, level_from_environment_debug_and_bad);
    tcase_add_test(c, level_from_environment_unknown_is_info);
    tcase_add_test(c, thread_names_of_weft_foreign_and_main);
    tcase_add_test(c, set_file_appends_and_switches);
    tcase_add_test(c, set_fd_validates_and_minus_one_restores_stderr);
    tcase_add_test(c, long_lines_are_cut_with_newline);
    tcase_add_test(c, trailing_newline_not_doubled);
    tcase_add_test(c, concurrent_lines_stay_whole);
    tcase_add_test(c, out_of_range_level_is_refused);
    tcase_add_test(c, child_forked_during_a_setter_can_set_the_destination);
    tcase_add_test(c, green_thread_lines_name_the_green_thread);
    suite_add_tcase(s, c);
    return s;
}

TEST_MAIN(log_suite)
