/*
 * proctitle: readable process names in ps, as uWSGI's auto-procname and
 * procname-prefix give them: "aiserve master", "aiserve worker 2", with the
 * prefix in front ("myapp aiserve worker 2").
 *
 * The title replaces the command line the kernel shows (/proc/PID/cmdline,
 * `ps -o args`): it is written over the memory of argv and of the environment
 * strings that follow it, so proctitle_init moves the environment to the heap
 * first and hands back a private copy of argv (the master re-executes itself
 * with it on SIGHUP). prctl(PR_SET_NAME) sets the short name as well (`ps -o
 * comm`, top), cut to the kernel's 15 bytes.
 */
#ifndef SERVER_PROCTITLE_H
#define SERVER_PROCTITLE_H

#include "server/config.h"

/* Called first in main, before anything reads the environment. Returns a
 * NULL-terminated copy of argv (owned by the process) that main uses instead
 * of argv from then on, or argv itself when out of memory (titles stay off). */
char **proctitle_init(int argc, char **argv);

/* Names this process "<prefix>aiserve <role>[ <id>]" (id > 0) when
 * auto-procname is on or a procname prefix is set; otherwise does nothing. */
void proctitle_set(const cfg *c, const char *role, int id);

#endif
