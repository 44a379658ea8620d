/*
 * sysd: aiserve under systemd, through libsystemd: readiness and status
 * notifications (Type=notify), the watchdog, and socket activation
 * (LISTEN_FDS). Every call is a no-op outside systemd.
 */
#ifndef AISERVE_SERVER_SYSD_H
#define AISERVE_SERVER_SYSD_H

#include <stdint.h>

/* Sends a notification ("READY=1", "STATUS=...", "STOPPING=1", ...) when
 * NOTIFY_SOCKET is set. printf-style; the caller needs no result. */
void sysd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Interval at which the watchdog wants WATCHDOG=1 (half of WatchdogSec), in
 * ms; 0 when no watchdog is asked for this process. */
uint64_t sysd_watchdog_ms(void);

/* Sockets passed by socket activation. sysd_passed_take gives the fd of the
 * listening socket that serves addr (HOST:PORT, :PORT, a unix path or
 * @abstract), or -1; each fd is given once. */
typedef struct {
    int n;         /* sockets passed (fds 3 .. 3+n-1) */
    int taken[64]; /* 1 once given to an address */
} sysd_passed;

/* Collects the passed sockets (and clears LISTEN_* so children do not see
 * them). Returns their count, 0 outside socket activation. */
int sysd_passed_collect(sysd_passed *p);
int sysd_passed_take(sysd_passed *p, const char *addr);
/* The passed sockets no address took, for a warning; closes them. Returns
 * how many there were and names the first in first[firstlen]. */
int sysd_passed_close_rest(sysd_passed *p, char *first, unsigned firstlen);

/* The master's side of Type=notify, called from its tick: READY=1 (with a
 * STATUS line) the first time every worker serves, WATCHDOG=1 every half
 * watchdog interval while the master's loop runs. */
typedef struct {
    int ready_sent;
    uint64_t watchdog_ms, watchdog_next_ms;
} sysd_master;

void sysd_master_init(sysd_master *sm);
void sysd_master_tick(sysd_master *sm, uint64_t now_ms, int all_ready, int processes);
#endif
