/* logging_threads.c - a logger that names the thread that wrote each line
 * (seed 004: "the name of the thread will be labeled on each log message").
 *
 * Three named workers and the main thread log through one shared logger.
 * Every line carries a timestamp, the level and the thread's name; lines
 * from different threads never interleave, because each is written whole
 * with a single write.  The workers also log at DEBUG, which is filtered out
 * unless WEFT_LOG_LEVEL=debug; a thread weft did not start (created with
 * pthread_create) is named "Dummy-N", as Python names threads it did not
 * start.  With a path argument, the lines are appended to that file instead
 * of stderr.
 *
 * Usage: logging_threads [logfile]
 */
#include <pthread.h>
#include <stdio.h>

#include "weft.h"

static int work(void *arg)
{
    int rounds = *(int *)arg;
    for (int i = 0; i < rounds; i++) {
        weft_debug("doing some work (step %d)", i + 1);
        weft_info("step %d of %d done", i + 1, rounds);
    }
    return 0;
}

static void *foreign(void *arg)
{
    (void)arg;
    weft_info("hello from a thread weft did not start");
    return NULL;
}

int main(int argc, char **argv)
{
    static int rounds = 3;
    const char *names[] = {"reader", "parser", "writer"};
    weft_thread *ts[3];
    pthread_t p;

    if (argc > 1 && weft_log_set_file(argv[1]) != 0) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 1;
    }
    weft_info("starting %d workers", 3);
    for (int i = 0; i < 3; i++) {
        weft_thread_opts o = {names[i], 0, 0};
        if (weft_thread_start(&ts[i], work, &rounds, &o) != 0)
            return 1;
    }
    pthread_create(&p, NULL, foreign, NULL);
    pthread_join(p, NULL);
    for (int i = 0; i < 3; i++)
        weft_thread_join(ts[i], NULL, WEFT_FOREVER);
    weft_warning("all workers done");
    return 0;
}
