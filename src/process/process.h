/* process.h - the internal interface of the process pool layer (src/process/).
 *
 * Three kinds of process take part:
 *   - the parent: the user's program; a pool's manager thread (pool.c,
 *     manager.c) talks to the forkserver and to every worker;
 *   - the forkserver (forkserver.c): /proc/self/exe executed anew, caught by
 *     weft's constructor before main; it forks workers on request, passes
 *     each one's socket and pidfd back with SCM_RIGHTS, and reports each
 *     worker's exit status;
 *   - a worker (worker.c): a child of the forkserver that runs tasks.
 *
 * Wire formats (wire.c).  Parent <-> forkserver: one SOCK_SEQPACKET socket,
 * one fixed-size struct weft__fs_msg per packet.  Parent <-> worker: one
 * SOCK_STREAM socket per worker carrying frames: a struct weft__frame
 * header, then len bytes written with weft_bytes put/get:
 *   INIT   parent->worker  str module, u64 offset, blob arg
 *   INITR  worker->parent  i64 rc, blob message
 *   TASK   parent->worker  str module, u64 offset, u64 n, n x blob input
 *   RESULT worker->parent  u64 n, n x (i64 rc, blob output-or-message)
 *   QUIT   parent->worker  (empty): exit now
 * A frame's body is at most WEFT__FRAME_MAX bytes.
 */
#ifndef WEFT_PROCESS_INTERNAL_H
#define WEFT_PROCESS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "weft/error.h"
#include "weft/process.h"
#include "weft/time.h"

/* ---- registry.c ------------------------------------------------------- */

#define WEFT__PROC_NAME_MAX 64
#define WEFT__PROC_MODULE_MAX 512

/* One registered function, as the parent knows it.  Entries are never
 * removed or changed once published, so a pointer to one stays valid. */
typedef struct weft__proc_entry {
    char name[WEFT__PROC_NAME_MAX];
    char module[WEFT__PROC_MODULE_MAX]; /* dl_iterate_phdr's name; "" for
                                           the main program */
    uint64_t offset;                    /* from the module's base */
    weft_process_fn fn;
} weft__proc_entry;

/* The entry registered as name, or NULL.  Any thread. */
const weft__proc_entry *weft__process_lookup(const char *name);

/* In a worker: the function at offset in the module called module, or
 * NULL if that module is not loaded here.  Single-threaded (worker only). */
weft_process_fn weft__process_resolve(const char *module, uint64_t offset);

/* ---- wire.c ------------------------------------------------------------ */

enum {
    WEFT__FRAME_INIT = 1,
    WEFT__FRAME_INITR = 2,
    WEFT__FRAME_TASK = 3,
    WEFT__FRAME_RESULT = 4,
    WEFT__FRAME_QUIT = 5,
};

#define WEFT__FRAME_MAX (UINT64_C(1) << 34) /* 16 GiB: a sanity bound */

typedef struct weft__frame {
    uint32_t type;
    uint32_t magic; /* WEFT__FRAME_MAGIC: catches a desynchronised stream */
    uint64_t len;   /* bytes of body that follow */
} weft__frame;

#define WEFT__FRAME_MAGIC 0x77656674u /* "weft" */

/* Start a frame of type in b (b is cleared): reserves the header.  Then
 * put the body with weft_bytes_put_*, and weft__frame_end patches the
 * length in.  0 or -ENOMEM. */
int weft__frame_begin(weft_bytes *b, uint32_t type);
void weft__frame_end(weft_bytes *b);

/* Start a TASK frame for entry with n inputs (append each with
 * weft_bytes_put_blob, then weft__frame_end).  0 or -ENOMEM. */
int weft__frame_task(weft_bytes *b, const weft__proc_entry *entry,
                     uint64_t n);

/* A blocking whole write on a socket, retried on EINTR and short
 * transfers (the worker's and the forkserver's side; each reads through
 * its own buffer).  0 or -errno (-EPIPE: the peer is gone). */
int weft__io_write_full(int fd, const void *p, size_t n);

/* Parent <-> forkserver packets. */
enum {
    WEFT__FS_FORK = 1,   /* parent: fork a worker for token */
    WEFT__FS_FORKED = 2, /* server: pid (0 on failure, err) + fds
                            [socket, pidfd or none] */
    WEFT__FS_EXITED = 3, /* server: pid ended with wait status */
};

typedef struct weft__fs_msg {
    uint32_t type;
    int32_t err;     /* FORKED: 0 or -errno of the failed fork */
    uint64_t token;  /* FORK/FORKED: the parent's name for the worker */
    int32_t pid;
    int32_t status;  /* EXITED: waitpid's status */
} weft__fs_msg;

/* Send m with up to two fds (fds[i] < 0: none).  0 or -errno. */
int weft__fs_send(int sock, const weft__fs_msg *m, const int *fds, int nfds);
/* Receive one packet: 0 with fds[0..2] (-1 where none came; the fds are
 * CLOEXEC); -EPIPE at EOF; -EAGAIN on a non-blocking socket with nothing
 * there; another -errno. */
int weft__fs_recv(int sock, weft__fs_msg *m, int fds[2]);

/* ---- forkserver.c ------------------------------------------------------ */

/* Spawn a forkserver (posix_spawn of /proc/self/exe): *pid, and *sock the
 * parent's end of its SEQPACKET socket (CLOEXEC).  0 or -errno. */
int weft__forkserver_spawn(pid_t *pid, int *sock);

/* ---- worker.c ---------------------------------------------------------- */

/* The worker's life: serve frames on fd until QUIT or EOF, then _exit.
 * Never returns. */
__attribute__((noreturn)) void weft__process_worker_main(int fd);

/* ---- pool.c (for map.c) -------------------------------------------------- */

/* Queue a prebuilt TASK frame (taken from *frame on success, which is left
 * empty) of nitems inputs for entry.  chunk: the future's value is the
 * RESULT body (u64 n, n x (i64 rc, blob)) rather than one output.  As
 * weft_process_pool_submit otherwise. */
int weft__process_submit_frame(weft_process_pool *p,
                               const weft__proc_entry *entry,
                               weft_bytes *frame, uint64_t nitems, bool chunk,
                               int64_t timeout_ns, weft_future **out,
                               int64_t deadline);

int weft__process_pool_max_workers(const weft_process_pool *p);

#endif
