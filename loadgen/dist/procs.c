/*
 * dist/procs: see procs.h. fork() in a threaded process is followed at once
 * by exec, with only async-signal-safe calls between.
 */
#define _GNU_SOURCE
#include "loadgen/dist/procs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int dist_procs_spawn(int n, int port, char *const argv[], pid_t *pids)
{
    char val[16];
    snprintf(val, sizeof(val), "%d", port);
    if (setenv(DIST_PROCS_ENV, val, 1)) return 0; /* inherited by the children only */
    pid_t parent = getpid();
    int started = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent) _exit(1); /* the parent already died */
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        pids[i] = pid > 0 ? pid : 0;
        started += pid > 0;
    }
    unsetenv(DIST_PROCS_ENV);
    return started;
}

void dist_procs_reap(pid_t *pids, int n, int timeout_ms)
{
    struct timespec nap = {0, 20000000L};
    for (int waited = 0;; waited += 20) {
        int left = 0;
        for (int i = 0; i < n; i++) {
            if (pids[i] <= 0) continue;
            if (waitpid(pids[i], NULL, WNOHANG) == pids[i])
                pids[i] = 0;
            else
                left++;
        }
        if (!left) return;
        if (waited >= timeout_ms) break;
        nanosleep(&nap, NULL);
    }
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
}

int dist_procs_master_port(void)
{
    const char *v = getenv(DIST_PROCS_ENV);
    int p = v ? atoi(v) : 0;
    return p > 0 && p < 65536 ? p : 0;
}

void dist_procs_apply(cli_opts *o)
{
    if (!o->processes) return;
    if (o->processes < 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->processes = n > 0 ? (int)(n < 1024 ? n : 1024) : 1;
    }
    int port = dist_procs_master_port();
    if (port) {
        o->worker = 1;
        o->master = 0;
        o->master_host = "127.0.0.1";
        o->master_port = port;
        if (!o->threads) o->threads = 1; /* the processes spread over the cores */
    } else {
        o->master = 1;
        o->master_bind_host = "127.0.0.1";
        o->master_bind_port = 0;
        o->expect_workers = o->processes;
    }
}
