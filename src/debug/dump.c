/* dump.c - the dump: every weft OS thread and green thread, one line each,
 * with its state, what it waits on, for how long, and (for a green thread)
 * where it was spawned; weft_dump writes it to a stream.
 *
 * Design.  The dump is formatted from a snapshot (snapshot.c) into memory
 * (open_memstream) and then written in one piece, so no lock is held while
 * writing to a stream that may block, and the SIGQUIT path can hand the
 * whole text to the logger's destination.  The dump never follows a
 * pointer it read from another thread (a lock's owner, say): the object
 * may be gone by now.  The deadlock report, taken when nothing can run,
 * does (deadlock.c).
 * Locking: none beyond the snapshot's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "debug/debug.h"
#include "green/green.h"
#include "park/park.h"
#include "weft/debug.h"

static const char *green_state(uint32_t rs)
{
    switch (rs) {
    case WEFT__G_RUNNABLE:
        return "runnable";
    case WEFT__G_RUNNING:
    case WEFT__G_NOTIFIED:
        return "running";
    case WEFT__G_PARKING:
    case WEFT__G_PARKED:
        return "parked";
    case WEFT__G_DEAD:
        return "exiting";
    case WEFT__G_EXITED:
        return "exited, not joined";
    default:
        return "?";
    }
}

/* " for 1.234 ms" or " (start not recorded)", and the deadline if any. */
static void print_times(FILE *f, const weft__dbg_entry *x, int64_t now)
{
    if (x->since > 0 && now >= x->since)
        fprintf(f, ", for %.3f ms", (double)(now - x->since) / 1e6);
    if (x->deadline >= 0)
        fprintf(f, ", deadline in %.3f ms",
                (double)(x->deadline - now) / 1e6);
    else
        fprintf(f, ", no deadline");
}

/* What x waits on, e.g. "lock 0x5571..." or "event 0x... (join of green
 * thread 'worker')": obj is only compared, never followed. */
void weft__dbg_print_what(FILE *f, const weft__dbg_snap *s,
                       const weft__dbg_entry *x)
{
    fprintf(f, "%s", x->what ? x->what : "?");
    if (x->obj != NULL)
        fprintf(f, " %p", x->obj);
    for (int i = 0; x->obj != NULL && i < s->n; i++)
        if (s->e[i].done == x->obj)
            fprintf(f, " (join of %s thread '%s')",
                    s->e[i].kind == WEFT__DBG_GREEN ? "green" : "OS",
                    s->e[i].name);
}

/* The waiting part of a line: parked in a wait (not claimed yet), or
 * running. */
static void print_wait(FILE *f, const weft__dbg_snap *s,
                       const weft__dbg_entry *x)
{
    bool in_wait = x->waiter != NULL && !x->claimed &&
                   (x->state == WEFT__W_WAITING ||
                    x->state == WEFT__W_SLEEPING);

    if (!in_wait)
        return;
    fprintf(f, " on ");
    weft__dbg_print_what(f, s, x);
    print_times(f, x, s->at);
    if (x->cancelled)
        fprintf(f, ", cancelled");
}

void weft__dbg_print_entry(FILE *f, const weft__dbg_snap *s,
                           const weft__dbg_entry *x)
{
    bool in_wait = x->waiter != NULL && !x->claimed &&
                   (x->state == WEFT__W_WAITING ||
                    x->state == WEFT__W_SLEEPING);

    if (x->kind == WEFT__DBG_GREEN) {
        fprintf(f, "  green thread '%s' id %llu (spawned at %s): %s", x->name,
                (unsigned long long)x->id, x->site ? x->site : "?",
                x->run_state == WEFT__G_PARKED && in_wait
                    ? "waiting"
                    : green_state(x->run_state));
        if (x->run_state == WEFT__G_PARKED ||
            x->run_state == WEFT__G_PARKING)
            print_wait(f, s, x);
        fputc('\n', f);
        return;
    }
    fprintf(f, "  OS thread '%s' id %llu tid %ld%s%s%s%s%s: ", x->name,
            (unsigned long long)x->id, x->tid,
            x->main && x->id == 0 ? " (not adopted)" : "",
            x->daemon ? " daemon" : "",
            x->worker ? " [green worker]" : "",
            x->system ? " [runtime]" : "", x->self ? " [dumping]" : "");
    if (x->waiter == NULL)
        fprintf(f, "running (no wait seen yet)");
    else if (in_wait) {
        fprintf(f, x->state == WEFT__W_SLEEPING ? "waiting" : "about to wait");
        print_wait(f, s, x);
    } else
        fprintf(f, "running");
    fputc('\n', f);
}

char *weft__dbg_format_dump(const weft__dbg_snap *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int nos = 0, ngreen = 0;

    if (f == NULL)
        return NULL;
    for (int i = 0; i < s->n; i++)
        s->e[i].kind == WEFT__DBG_OS ? nos++ : ngreen++;
    fprintf(f, "weft dump at %.6f s (monotonic): %d OS threads, %d green "
            "threads%s\n", (double)s->at / 1e9, nos, ngreen,
            s->oom ? " (out of memory: list incomplete)" : "");
    for (int i = 0; i < s->n; i++)
        weft__dbg_print_entry(f, s, &s->e[i]);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int weft_dump(FILE *f)
{
    weft__dbg_snap s;
    char *text;
    int rc = 0;

    if (f == NULL)
        return -EINVAL;
    (void)weft__dbg_snap_take(&s); /* an incomplete list says so */
    text = weft__dbg_format_dump(&s);
    weft__dbg_snap_free(&s);
    if (text == NULL)
        return -ENOMEM;
    if (fputs(text, f) == EOF || fflush(f) == EOF)
        rc = -EIO;
    free(text);
    return rc;
}
