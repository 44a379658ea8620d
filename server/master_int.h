/*
 * master_int: the master's state, shared by master.c (forking, supervision,
 * reloads, cheaper driving), master_fifo.c (the master fifo's commands) and
 * master_touch.c (touch-* files, py-autoreload). Private to those files.
 */
#ifndef SERVER_MASTER_INT_H
#define SERVER_MASTER_INT_H

#include <stdint.h>

#include "server/cheaper.h"
#include "server/core.h"
#include "server/fifo.h"
#include "server/stats.h"
#include "server/sysd.h"
#include "server/touch.h"

typedef struct wid {
    int slot; /* current slot, -1 while waiting for a respawn */
    uint64_t spawned_ms, respawn_at;
    int fails;
} wid;

enum { TOUCH_RELOAD, TOUCH_CHAIN, TOUCH_WORKERS };
#define MAX_TOUCH 16

typedef struct master {
    srv *s;
    int sigfd;
    wid *ids; /* [1..processes] */
    int shutting_down, exit_code;
    uint64_t shutdown_deadline, reload_started, last_queue_check;
    int quit;
    /* Workers of the image before a SIGHUP re-exec: not in this scoreboard;
     * told to drain once this image's workers are ready. */
    int legacy[256];
    int nlegacy, legacy_hup_sent;
    uint64_t legacy_deadline;
    sysd_master sd;   /* Type=notify: readiness sent, watchdog */
    int reloading;    /* a generation is starting or the previous one draining */
    int reload_again; /* a SIGHUP came meanwhile: reload once this one is done */
    /* cheaper: ids above the active ones are cheap (st[id].cheap) */
    stats_worker *st; /* [1..processes]: cheap flag, totals for the stats server */
    cheaper_conf ch;
    cheaper_state chs;
    int active;
    uint64_t last_cheaper;
    double busy_acc;
    int busy_n;
    uint64_t q_sum_prev, q_count_prev; /* queue: the scoreboard's wait totals at the last sample */
    uint64_t app_sum_prev, app_count_prev; /* queue: its handler-time totals then */
    int q_sampled;
    int threads_hinted;  /* queue: the largest threads hint logged so far */
    uint64_t *cpu_prev;  /* queue: CPU ns of each slot's worker at the last sample */
    uint64_t *wait_prev; /* queue: and its threads' ns waiting for a CPU */
    int *cpu_pid;
    int paused;   /* fifo p: workers stopped (SIGSTOP) */
    int chain_id; /* chain reload: the id being replaced now, 0: none */
    /* A chain or workers reload asked for while another reload runs: done after it. */
    int pending_chain, pending_workers;
    stats_srv *stats;
    fifo fifo;
    touch_file touch[MAX_TOUCH];
    int ntouch;
    uint64_t last_touch;
    /* py-autoreload: the source files of the apps the master loaded */
    touch_file *src;
    char **src_paths;
    int nsrc, srccap, src_every_ms;
    uint64_t last_src;
} master;

/* master.c: the actions the fifo and the touch files trigger. */
void master_reload(master *m);      /* SIGHUP's graceful reload (re-exec) */
void master_reload_fork(master *m); /* fresh workers forked from this image */
void master_chain_start(master *m); /* replace the workers one at a time */
void master_shutdown_all(master *m, int sig);
int master_add_worker(master *m, const char *why);   /* cheaper: 0 or -1 */
int master_cheap_worker(master *m, const char *why); /* cheaper: 0 or -1 */
void master_set_paused(master *m, int on);           /* SIGSTOP / SIGCONT the workers */
stats_view master_view(master *m);

/* master_fifo.c */
/* Opens the first `master-fifo` (before the first fork); 0 or -1, logged. */
int master_fifo_open(master *m);
/* Acts on the commands waiting in the fifo. */
void master_fifo_io(master *m);

/* master_touch.c */
/* Reads touch-* and, with py-autoreload, the loaded apps' source files. */
void master_touch_init(master *m);
/* From the master's tick: acts on the files that changed. */
void master_touch_tick(master *m, uint64_t now);
void master_touch_free(master *m);

#endif
