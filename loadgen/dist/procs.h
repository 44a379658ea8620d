/*
 * dist/procs: `aiload --processes N`: the process becomes a master bound to
 * 127.0.0.1 and starts N copies of itself (the same command line, via
 * /proc/self/exe) as its local workers, on the same protocol, so one box's
 * cores all generate load. A child knows it is a worker by the environment
 * variable DIST_PROCS_ENV (the master's port); it dies with its parent
 * (PR_SET_PDEATHSIG).
 */
#ifndef LOADGEN_DIST_PROCS_H
#define LOADGEN_DIST_PROCS_H

#include <sys/types.h>

#include "loadgen/cli.h"

#define DIST_PROCS_ENV "AILOAD_PROCESSES_MASTER_PORT"

/* Starts n workers running argv (NULL-terminated) with DIST_PROCS_ENV=port.
 * pids gets n entries (0 where a fork failed). Returns how many started. */
int dist_procs_spawn(int n, int port, char *const argv[], pid_t *pids);

/* Waits up to timeout_ms for the children to exit, then kills the rest
 * (SIGKILL) and reaps them. */
void dist_procs_reap(pid_t *pids, int n, int timeout_ms);

/* In a child: the master's port from the environment, or 0. */
int dist_procs_master_port(void);

/* With --processes: turns o into the master's options (loopback, an
 * ephemeral port, --expect-workers N) or, in a child, a worker's (its
 * master's port, one load thread unless --threads was given); -1 becomes
 * the number of online cores. No-op without --processes. */
void dist_procs_apply(cli_opts *o);

#endif
