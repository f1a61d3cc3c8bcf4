/* forkserver.c - the forkserver: a fresh, single-threaded copy of the
 * program that forks the pool's workers, and the parent's call that starts
 * it.
 *
 * Why: fork() in a threaded program copies only the calling thread; any
 * lock another thread held (malloc's, stdio's, the user's) stays held
 * forever in the child.  So workers are never forked from the parent.  The
 * parent posix_spawns /proc/self/exe (vfork+exec inside glibc: safe from a
 * threaded program) with WEFT_FORKSERVER=<fd> in its environment.  In that
 * new image, fs_ctor below (a constructor of this file, which a static
 * link always pulls in because weft_process_pool_create calls
 * weft__forkserver_spawn) sees the variable and runs the server loop, then
 * _exits: main and the constructors that would have run after it never
 * run.  With libweft.so the constructor runs when the library is loaded,
 * before the program's own.
 *   (Rejected: one forkserver per process shared by every pool.  A server
 *   per pool makes a pool's end the server's end (EOF on its socket) and
 *   needs no reference count or registry of pools.)
 *
 * The loop, single-threaded, polls two fds: the parent's socket
 * (SEQPACKET: FORK requests) and a signalfd for SIGCHLD (blocked).  A FORK
 * makes a socketpair, forks, and sends the parent its end plus a pidfd of
 * the child (SCM_RIGHTS), so the parent can kill that worker without a
 * pid-reuse race.  Each child reaped is reported as EXITED with its wait
 * status: that is how the parent learns a signal's number or an exit code.
 * At EOF from the parent (the pool shut down, or the parent died) the
 * server SIGKILLs any worker left, reaps them all and exits.  Workers get
 * PR_SET_PDEATHSIG(SIGKILL): if the server dies, they die too.
 *
 * State: the server's is its own (one thread); spawn is reentrant.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process/process.h"

#define FS_ENV "WEFT_FORKSERVER"

extern char **environ;

/* ---- the server (in the exec'd image) -------------------------------- */

static pid_t *kids; /* live workers, for the final SIGKILL */
static size_t nkids, capkids;

static void kids_add(pid_t pid)
{
    if (nkids == capkids) {
        size_t cap = capkids ? capkids * 2 : 16;
        pid_t *k = realloc(kids, cap * sizeof *k);
        if (k == NULL)
            return; /* only the final SIGKILL misses it; EOF still ends it */
        kids = k;
        capkids = cap;
    }
    kids[nkids++] = pid;
}

static void kids_remove(pid_t pid)
{
    for (size_t i = 0; i < nkids; i++) {
        if (kids[i] == pid) {
            kids[i] = kids[--nkids];
            return;
        }
    }
}

/* Fork one worker for token; tell the parent. */
static void fork_worker(int sock, int sfd, const sigset_t *old,
                        uint64_t token)
{
    weft__fs_msg m = {WEFT__FS_FORKED, 0, token, 0, 0};
    pid_t server = getpid(), pid;
    int sv[2], fds[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        m.err = -errno;
        weft__fs_send(sock, &m, NULL, 0);
        return;
    }
    pid = fork();
    if (pid == 0) {
        close(sock);
        close(sfd);
        close(sv[0]);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, old, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != server)
            _exit(0); /* the server died before PDEATHSIG was armed */
        weft__process_worker_main(sv[1]);
    }
    close(sv[1]);
    if (pid < 0) {
        m.err = -errno;
        close(sv[0]);
        weft__fs_send(sock, &m, NULL, 0);
        return;
    }
    kids_add(pid);
    m.pid = pid;
    fds[0] = sv[0];
    fds[1] = (int)pidfd_open(pid, 0); /* -1 on an old kernel: kill by pid */
    weft__fs_send(sock, &m, fds, 2);
    close(sv[0]);
    if (fds[1] >= 0)
        close(fds[1]);
}

/* Reap every child that has ended and report it. */
static void reap(int sock)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        kids_remove(pid);
        weft__fs_msg m = {WEFT__FS_EXITED, 0, 0, pid, status};
        weft__fs_send(sock, &m, NULL, 0);
    }
}

__attribute__((noreturn)) static void serve(int sock)
{
    sigset_t chld, old;
    int sfd;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        _exit(122);
    for (;;) {
        struct pollfd pf[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0) {
            }
            reap(sock);
        }
        if (pf[0].revents) {
            weft__fs_msg m;
            int fds[2];
            int rc = weft__fs_recv(sock, &m, fds);
            for (int i = 0; i < 2; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
            if (rc == -EAGAIN || rc == -EINTR)
                continue;
            if (rc != 0)
                break; /* EOF: the pool is done, or the parent died */
            if (m.type == WEFT__FS_FORK)
                fork_worker(sock, sfd, &old, m.token);
        }
    }
    for (size_t i = 0; i < nkids; i++)
        kill(kids[i], SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
    }
    _exit(0);
}

/* Runs in every image that links weft; does nothing unless this image is a
 * forkserver. */
__attribute__((constructor)) static void fs_ctor(void)
{
    const char *s = getenv(FS_ENV);
    char *end;
    long fd;

    if (s == NULL)
        return;
    fd = strtol(s, &end, 10);
    unsetenv(FS_ENV);
    if (*end != '\0' || fd < 3 || fd > 1000 ||
        fcntl((int)fd, F_GETFD) < 0)
        return; /* not ours: carry on as the program */
    /* Keep only stdio and the socket: the workers must not hold the
     * parent's other descriptors (pipes would never see EOF). */
    if (fd != 3) {
        if (dup2((int)fd, 3) < 0)
            _exit(123);
        fd = 3;
    }
    close_range(4, ~0u, 0);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);
    serve(3);
}

/* ---- the parent's side -------------------------------------------------- */

int weft__forkserver_spawn(pid_t *pid, int *sock)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    char var[32];
    char *argv[] = {"weft-forkserver", NULL};
    size_t n = 0, k = 0;
    char **envp;
    int sv[2], target, rc;

    for (char **e = environ; e && *e; e++)
        n++;
    envp = malloc((n + 2) * sizeof *envp);
    if (envp == NULL)
        return -ENOMEM;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        rc = -errno;
        free(envp);
        return rc;
    }
    /* dup2 onto another number clears CLOEXEC in the child only. */
    target = sv[1] == 3 ? 4 : 3;
    snprintf(var, sizeof var, FS_ENV "=%d", target);
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], FS_ENV "=", sizeof FS_ENV) != 0)
            envp[k++] = environ[i];
    envp[k++] = var;
    envp[k] = NULL;

    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], target);
    posix_spawnattr_init(&at);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    rc = -posix_spawn(pid, "/proc/self/exe", &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return rc;
    }
    *sock = sv[0];
    return 0;
}
