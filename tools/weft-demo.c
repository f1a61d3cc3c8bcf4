/* weft-demo.c - the demonstration: runs the seed programs written with weft
 * and shows what each prints, with a line saying what to look for.
 *
 * Usage: weft-demo EXAMPLES_DIR   (make demo passes the right folder)
 *
 * Each example checks its own result and exits non-zero if it is wrong; the
 * demo reports that and exits non-zero too.
 */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

struct demo {
    const char *prog;
    const char *args[4];
    const char *what;
};

static const struct demo demos[] = {
    {"counter", {NULL}, "threads increment a counter guarded by a lock "
                        "(seed 004): the total is exact"},
    {"hasher", {NULL}, "the hashing race (seed 001) and the DataHasher that "
                       "fixes it by keeping its own lock"},
    {"producer_consumer", {NULL}, "producer and consumer through a bounded "
                                  "queue, stopped by an event; shutdown "
                                  "drains it, nothing lost"},
    {"barrier", {NULL}, "threads released together by a barrier, three "
                        "rounds"},
    {"connection_pool", {NULL}, "a bounded semaphore limits a pool of "
                                "connections"},
    {"logging_threads", {NULL}, "one logger, every line names its thread"},
    {"green_agent", {NULL}, "the seed's agent: a green pool processes a stream "
                            "of updates with bounded concurrency"},
    {"green_mixed_queue", {NULL}, "green threads and OS threads on both sides "
                                  "of one queue"},
    {"green_sleepers", {"100000", "500", NULL},
     "100,000 green threads sleeping at once, on small guarded stacks"},
    {"green_selfish", {NULL}, "five selfish green threads that never yield "
                              "(eventlet's never end): the monitor hands "
                              "them to spare workers, every counter "
                              "advances and the program ends when told"},
    {"green_echo", {NULL}, "a green echo server and green clients on "
                           "loopback, a green thread per connection"},
    {"green_idle_connections", {NULL},
     "10,000 idle connections, each held by a green thread: the resident "
     "memory per connection"},
    {"green_ctrl_c", {"self", NULL},
     "a program that stops cleanly on Ctrl-C while a green thread computes "
     "(here it sends itself the SIGINT)"},
    {"process_fib", {NULL}, "the seed's Fibonacci computation fanned out over "
                            "a process pool, checked against a serial run"},
    {"process_crash", {NULL}, "process-pool tasks that crash, exit or overrun "
                              "their timeout fail alone; the pool goes on and "
                              "no process is left behind"},
};

static int run(const char *dir, const struct demo *d)
{
    char path[4096];
    char *argv[6];
    pid_t pid;
    int status, n = 0;

    snprintf(path, sizeof path, "%s/%s", dir, d->prog);
    argv[n++] = path;
    for (int i = 0; d->args[i]; i++)
        argv[n++] = (char *)d->args[i];
    argv[n] = NULL;
    printf("\n=== %s: %s\n", d->prog, d->what);
    fflush(stdout);
    if (posix_spawn(&pid, path, NULL, NULL, argv, environ) != 0) {
        printf("cannot run %s\n", path);
        return -1;
    }
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("=== %s FAILED (status %d)\n", d->prog, status);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/release/examples";
    int failed = 0;
    size_t n = sizeof demos / sizeof demos[0];

    printf("weft demonstration: the seed programs, written with weft\n");
    for (size_t i = 0; i < n; i++)
        failed += run(dir, &demos[i]) != 0;
    printf("\n%zu programs run, %d failed\n", n, failed);
    return failed ? 1 : 0;
}
