/*
 * master: forks the workers and supervises them; never serves a request.
 *
 * Design (nginx's): signals arrive on a signalfd and are acted on in one
 * place; a 100 ms tick does the periodic work (respawns that were delayed by
 * the respawn-loop guard, harakiri, recycling, reload hand-over, mercy
 * deadlines, listen-queue checks). Nothing in the master sleeps or blocks
 * beyond that tick, so a crash loop cannot stall supervision.
 *
 * Worker identity: worker ids 1..processes are logical; each id has one
 * current slot in the scoreboard. A successor is spawned into a new slot
 * before its predecessor (marked SB_RETIRING) exits, so a reload, a harakiri
 * or a recycle leaves no gap in serving; a reload or a max-requests recycle
 * tells the predecessor to drain only once its successor is ready.
 *
 * Generations: at most one is starting at a time. A SIGHUP during a reload
 * (until the new workers are ready and the old ones have exited) is
 * remembered, and all such SIGHUPs together make one more reload after it,
 * so a SIGHUP storm never holds more than 2 x processes workers.
 */
#define _GNU_SOURCE
#include "server/master_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    return ev_clock_ms();
}

static int find_free_slot(master *m)
{
    for (int i = 0; i < m->s->sb->nslots; i++) {
        sb_slot *sl = sb_slot_at(m->s->sb, i);
        if (atomic_load(&sl->state) == SB_FREE && atomic_load(&sl->pid) == 0) return i;
    }
    return -1;
}

/* The app threads each worker takes requests on: `queue` moves it, the
 * others keep `threads`. */
static int active_threads(master *m)
{
    return m->ch.algo == CHEAPER_QUEUE ? m->chs.threads_now : m->s->s.threads;
}

static void spawn(master *m, int id, int is_respawn)
{
    srv *s = m->s;
    int idx = find_free_slot(m);
    if (idx < 0) {
        srv_log("no free worker slot for worker %d; retrying", id);
        m->ids[id].slot = -1;
        m->ids[id].respawn_at = now_ms() + 500;
        return;
    }
    sb_slot *sl = sb_slot_at(s->sb, idx);
    sl->worker_id = id;
    atomic_store(&sl->ready, 0);
    atomic_store(&sl->want_replace, 0);
    atomic_store(&sl->in_flight, 0);
    atomic_store(&sl->busy_threads, 0);
    atomic_store(&sl->conns, 0);
    atomic_store(&sl->held, 0);
    atomic_store(&sl->fresh, 0);
    atomic_store(&sl->waiting, 0);
    atomic_store(&sl->active_threads, active_threads(m));
    atomic_store(&sl->accepting, 0);
    atomic_store(&sl->able, 0);
    atomic_store(&sl->full, 0);
    atomic_store(&sl->requests, 0);
    atomic_store(&sl->tx, 0);
    atomic_store(&sl->exceptions, 0);
    atomic_store(&sl->running_us, 0);
    atomic_store(&sl->avg_rt_us, 0);
    for (int t = 0; t < s->sb->nthreads; t++) {
        atomic_store(&sl->threads[t].requests, 0);
        atomic_store(&sl->threads[t].in_request, 0);
    }
    sl->retire_deadline_ms = 0;
    sl->hup_deadline_ms = 0;
    sl->harakiri_fired = 0;
    sl->hup_pending = 0;
    for (int t = 0; t < s->sb->nthreads; t++) atomic_store(&sl->threads[t].deadline_ms, 0);
    atomic_store(&sl->state, SB_RUNNING);
    pid_t pid = fork();
    if (pid < 0) {
        srv_log("fork for worker %d failed: %s; retrying", id, strerror(errno));
        atomic_store(&sl->state, SB_FREE);
        m->ids[id].slot = -1;
        m->ids[id].respawn_at = now_ms() + 1000;
        return;
    }
    if (pid == 0) {
        close(m->sigfd);
        stats_close(m->stats, 0);
        fifo_close(&m->fifo, 0);
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_UNBLOCK, &all, NULL);
        _exit(worker_main(s, id, idx));
    }
    atomic_store(&sl->pid, pid);
    m->ids[id].slot = idx;
    m->ids[id].spawned_ms = now_ms();
    m->st[id].slot = idx;
    m->st[id].last_spawn = (int64_t)time(NULL);
    if (is_respawn) {
        atomic_fetch_add(&s->sb->respawns, 1);
        m->st[id].respawns++;
    }
    srv_log("worker %d started (pid %d)", id, (int)pid);
}

/* Marks the current instance of a worker id as retiring and starts its
 * successor. hup_when_ready: the old one keeps serving until the successor is
 * ready (or reload-mercy passes), then gets SIGHUP to drain. */
static void replace(master *m, int idx, const char *why, int hup_when_ready)
{
    sb_slot *sl = sb_slot_at(m->s->sb, idx);
    int id = sl->worker_id;
    uint64_t mercy = (uint64_t)m->s->s.mercy * 1000;
    atomic_store(&sl->state, SB_RETIRING);
    sl->retire_deadline_ms = now_ms() + mercy + 1000;
    if (hup_when_ready) {
        sl->hup_pending = 1;
        sl->hup_deadline_ms = now_ms() + mercy;
    }
    srv_log("worker %d (pid %d): %s; starting its successor", id, atomic_load(&sl->pid), why);
    if (m->ids[id].slot == idx && !m->shutting_down) spawn(m, id, 1);
}

/* 1 once the current instance of slot idx's worker id (its successor) is
 * ready to serve. */
static int successor_ready(master *m, int idx)
{
    int cur = m->ids[sb_slot_at(m->s->sb, idx)->worker_id].slot;
    return cur >= 0 && cur != idx && atomic_load(&sb_slot_at(m->s->sb, cur)->ready);
}

static void reap(master *m)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        int idx = -1;
        for (int i = 0; i < m->s->sb->nslots && idx < 0; i++)
            if (atomic_load(&sb_slot_at(m->s->sb, i)->pid) == pid) idx = i;
        if (idx < 0) {
            for (int i = 0; i < m->nlegacy; i++) {
                if (m->legacy[i] != pid) continue;
                m->legacy[i] = m->legacy[--m->nlegacy];
                srv_log("previous worker (pid %d) exited", (int)pid);
                break;
            }
            continue;
        }
        sb_slot *sl = sb_slot_at(m->s->sb, idx);
        int id = sl->worker_id, retiring = atomic_load(&sl->state) == SB_RETIRING;
        stats_worker *sw = &m->st[id];
        sw->requests_done += atomic_load(&sl->requests);
        sw->tx_done += atomic_load(&sl->tx);
        sw->exceptions_done += atomic_load(&sl->exceptions);
        sw->running_done += atomic_load(&sl->running_us);
        if (sw->slot == idx) sw->slot = -1;
        char how[64];
        if (WIFSIGNALED(st))
            snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(st));
        else
            snprintf(how, sizeof(how), "exited with code %d", WEXITSTATUS(st));
        atomic_store(&sl->state, SB_FREE);
        atomic_store(&sl->pid, 0);
        if (retiring || m->shutting_down) {
            srv_log("worker %d (pid %d) %s", id, (int)pid, how);
            continue;
        }
        if (m->ids[id].slot != idx) continue;
        /* It asked to be replaced (max-requests, a memory limit) and exited
         * before the tick saw the request: a recycle, not a crash, so the
         * respawn-loop guard neither counts nor delays it. */
        if (atomic_load(&sl->want_replace)) {
            srv_log("worker %d (pid %d) %s after asking to be recycled; starting its successor", id,
                    (int)pid, how);
            m->ids[id].slot = -1;
            spawn(m, id, 1);
            continue;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 3 && m->s->s.need_app) {
            srv_log("worker %d (pid %d) could not load its app and need-app is set: shutting down",
                    id, (int)pid);
            m->exit_code = 1;
            m->shutting_down = 1;
            m->shutdown_deadline = now_ms() + (uint64_t)m->s->s.mercy * 1000;
            for (int i = 0; i < m->s->sb->nslots; i++) {
                int p = atomic_load(&sb_slot_at(m->s->sb, i)->pid);
                if (p > 0) kill(p, SIGTERM);
            }
            continue;
        }
        /* Respawn-loop guard: a worker that dies soon after its start waits
         * longer each time (100 ms doubling, at most 10 s); the master keeps
         * running meanwhile. */
        wid *w = &m->ids[id];
        uint64_t now = now_ms();
        w->fails = now - w->spawned_ms < 2000 ? w->fails + 1 : 0;
        uint64_t delay = w->fails ? 100ull << (w->fails > 7 ? 7 : w->fails - 1) : 0;
        if (delay > 10000) delay = 10000;
        w->slot = -1;
        w->respawn_at = now + delay;
        srv_log("worker %d (pid %d) %s; respawning%s", id, (int)pid, how,
                delay ? " after a delay (respawn-loop guard)" : "");
        if (!delay) spawn(m, id, 1);
    }
}

static void check_harakiri(master *m, int idx, uint64_t now)
{
    srv *s = m->s;
    sb_slot *sl = sb_slot_at(s->sb, idx);
    int stuck = 0;
    for (int t = 0; t < s->sb->nthreads; t++) {
        uint64_t d = atomic_load(&sl->threads[t].deadline_ms);
        if (!d || now <= d) continue;
        stuck++;
        if (sl->harakiri_fired) continue;
        uint64_t started = atomic_load(&sl->threads[t].started_ms);
        srv_log("HARAKIRI: worker %d (pid %d) thread %d: \"%s\" running for %.1f s (harakiri = %d)",
                sl->worker_id, atomic_load(&sl->pid), t, sl->threads[t].what,
                (double)(now - started) / 1000.0, s->s.harakiri);
    }
    if (!stuck) return;
    if (!sl->harakiri_fired) {
        sl->harakiri_fired = 1;
        atomic_fetch_add(&s->sb->harakiris, 1);
        m->st[sl->worker_id].harakiris++;
        if (atomic_load(&sl->state) == SB_RUNNING) replace(m, idx, "harakiri", 0);
        /* Other requests of this worker get to finish: stop its accepting. */
        if (atomic_load(&sl->in_flight) > stuck) kill(atomic_load(&sl->pid), SIGHUP);
    }
    if (atomic_load(&sl->in_flight) <= stuck && sl->harakiri_fired == 1) {
        sl->harakiri_fired = 2;
        kill(atomic_load(&sl->pid), SIGKILL);
    }
}

static void check_listen_queue(master *m, uint64_t now)
{
    if (now - m->last_queue_check < 1000) return;
    m->last_queue_check = now;
    for (int i = 0; i < m->s->nlisten; i++) {
        struct tcp_info ti;
        socklen_t tl = sizeof(ti);
        memset(&ti, 0, sizeof(ti));
        if (m->s->listen_fds[i] < 0 ||
            getsockopt(m->s->listen_fds[i], IPPROTO_TCP, TCP_INFO, &ti, &tl))
            continue;
        if (ti.tcpi_sacked && ti.tcpi_unacked >= ti.tcpi_sacked)
            srv_log("warning: listen queue of %s is full (%u/%u): raise listen or add workers",
                    m->s->listen_names[i], ti.tcpi_unacked, ti.tcpi_sacked);
    }
}

static int all_current_ready(master *m)
{
    for (int id = 1; id <= m->s->s.processes; id++) {
        int idx = m->ids[id].slot;
        if (m->st[id].cheap) continue;
        if (idx < 0 || !atomic_load(&sb_slot_at(m->s->sb, idx)->ready)) return 0;
    }
    return 1;
}

/* evil-reload-on-rss between requests: a request that keeps allocating is
 * stopped within a tick, not only when it ends. */
static void check_evil_rss(master *m, int idx)
{
    srv *s = m->s;
    sb_slot *sl = sb_slot_at(s->sb, idx);
    char path[64], b[128];
    snprintf(path, sizeof(path), "/proc/%d/statm", atomic_load(&sl->pid));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, b, sizeof(b) - 1);
    close(fd);
    long vsz, rss;
    if (n <= 0) return;
    b[n] = 0;
    if (sscanf(b, "%ld %ld", &vsz, &rss) != 2) return;
    int64_t mb = (int64_t)rss * sysconf(_SC_PAGESIZE) >> 20;
    if (mb <= s->s.evil_reload_on_rss_mb) return;
    srv_log("worker %d (pid %d): RSS %lld MiB over evil-reload-on-rss (%lld MiB): killing it",
            sl->worker_id, atomic_load(&sl->pid), (long long)mb,
            (long long)s->s.evil_reload_on_rss_mb);
    atomic_store(&sl->want_replace, 1);
    if (atomic_load(&sl->state) == SB_RUNNING && !m->shutting_down)
        replace(m, idx, "evil-reload-on-rss", 0);
    kill(atomic_load(&sl->pid), SIGKILL);
}

/* The reload is over once the new generation is ready (or reload-mercy has
 * passed: a generation that never gets ready must not block the SIGHUP that
 * brings the fix) and the old one has exited; a SIGHUP that came meanwhile
 * starts the next one now. */
static void check_reload_done(master *m)
{
    if (!m->reloading || m->shutting_down || m->nlegacy) return;
    if (!all_current_ready(m) && now_ms() - m->reload_started <= (uint64_t)m->s->s.mercy * 1000)
        return;
    for (int i = 0; i < m->s->sb->nslots; i++) {
        sb_slot *sl = sb_slot_at(m->s->sb, i);
        if (atomic_load(&sl->pid) > 0 && atomic_load(&sl->state) == SB_RETIRING) return;
    }
    m->reloading = 0;
    if (m->reload_again) {
        m->reload_again = 0;
        srv_log("SIGHUP: the reload is done; starting the one asked for meanwhile");
        master_reload(m);
    }
}

/* ---- cheaper: adding and removing workers ---- */

/* The master is the one writer of each slot's active_threads; a worker whose
 * count rises wakes its waiting threads at its next dispatch or tick. */
static void publish_threads(master *m)
{
    int n = active_threads(m);
    for (int id = 1; id <= m->s->s.processes; id++) {
        int idx = m->ids[id].slot;
        if (idx >= 0) atomic_store(&sb_slot_at(m->s->sb, idx)->active_threads, n);
    }
}

static void publish_active(master *m)
{
    atomic_store(&m->s->sb->active, m->active);
}

/* Starts the lowest cheap worker id; 0 or -1 when all run. */
int master_add_worker(master *m, const char *why)
{
    for (int id = 1; id <= m->s->s.processes; id++) {
        if (!m->st[id].cheap) continue;
        m->st[id].cheap = 0;
        m->active++;
        publish_active(m);
        srv_log("cheaper (%s): adding worker %d (%d of at most %d running)", why, id, m->active,
                m->s->s.processes);
        m->ids[id].fails = 0;
        spawn(m, id, 0);
        return 0;
    }
    return -1;
}

/* Removes a worker like a reload removes one: it stops accepting, finishes
 * what it holds and exits (reload-mercy bounds it), so no request fails.
 * The idle one with the highest id goes first (the busiest last). */
int master_cheap_worker(master *m, const char *why)
{
    int pick = 0, pick_busy = 1 << 30;
    for (int id = m->s->s.processes; id >= 1; id--) {
        if (m->st[id].cheap) continue;
        int idx = m->ids[id].slot;
        int busy = idx >= 0 ? atomic_load(&sb_slot_at(m->s->sb, idx)->in_flight) : -1;
        if (busy < pick_busy) pick = id, pick_busy = busy;
    }
    if (!pick || m->active <= 1) return -1;
    int idx = m->ids[pick].slot;
    m->st[pick].cheap = 1;
    m->active--;
    publish_active(m);
    m->ids[pick].slot = -1;
    srv_log("cheaper (%s): removing worker %d (%d running, at least %d)", why, pick, m->active,
            m->ch.min ? m->ch.min : 1);
    if (idx >= 0) {
        sb_slot *sl = sb_slot_at(m->s->sb, idx);
        int pid = atomic_load(&sl->pid);
        atomic_store(&sl->state, SB_RETIRING);
        sl->hup_pending = 0;
        sl->retire_deadline_ms = now_ms() + (uint64_t)m->s->s.mercy * 1000 + 1000;
        if (pid > 0 && m->paused) kill(pid, SIGCONT);
        if (pid > 0) kill(pid, SIGHUP);
    }
    return 0;
}

/* The CPU time of all a process's threads and their time waiting for a CPU
 * (ready, not running: the scheduler's run queue), ns, from each thread's
 * /proc schedstat. 0, or -1 when the process is gone. */
static int task_times(int pid, uint64_t *run, uint64_t *wait)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[96], b[128];
        snprintf(p, sizeof(p), "/proc/%d/task/%.16s/schedstat", pid, e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, b, sizeof(b) - 1);
        close(fd);
        unsigned long long r, w;
        if (n <= 0) continue;
        b[n] = 0;
        if (sscanf(b, "%llu %llu", &r, &w) == 2) *run += r, *wait += w;
    }
    closedir(d);
    return 0;
}

/* queue: since the last sample, the mean wait for an app thread (-1: no
 * request took one), the requests finished and their mean handler time, and
 * the cores' worth of CPU the workers used and waited for. */
static void queue_sample(master *m, cheaper_sample *sm, double dt)
{
    sb *b = m->s->sb;
    uint64_t sum = 0, count = 0, run_ns = 0, wait_ns = 0, app_sum = 0, app_count = 0;
    for (int i = 0; i < b->nslots; i++) {
        sb_slot *sl = sb_slot_at(b, i);
        sum += atomic_load(&sl->queue_sum_us);
        app_sum += atomic_load(&sl->app_sum_us);
        for (int k = 0; k < SRV_NBUCKETS; k++) {
            count += atomic_load(&sl->queue_hist[k]);
            app_count += atomic_load(&sl->app_hist[k]);
        }
        int pid = atomic_load(&sl->pid);
        uint64_t run = 0, wait = 0;
        if (pid <= 0 || task_times(pid, &run, &wait)) continue;
        if (m->cpu_pid[i] == pid && run >= m->cpu_prev[i] && wait >= m->wait_prev[i]) {
            run_ns += run - m->cpu_prev[i];
            wait_ns += wait - m->wait_prev[i];
        }
        m->cpu_pid[i] = pid;
        m->cpu_prev[i] = run;
        m->wait_prev[i] = wait;
    }
    sm->queue_ms = count > m->q_count_prev
                       ? (double)(sum - m->q_sum_prev) / 1000.0 / (double)(count - m->q_count_prev)
                       : -1;
    sm->done = app_count > m->app_count_prev ? (int)(app_count - m->app_count_prev) : 0;
    sm->service_ms = sm->done ? (double)(app_sum - m->app_sum_prev) / 1000.0 / sm->done : -1;
    m->q_sum_prev = sum;
    m->q_count_prev = count;
    m->app_sum_prev = app_sum;
    m->app_count_prev = app_count;
    sm->dt = m->q_sampled ? dt : 0;
    m->q_sampled = 1;
    sm->cpu = dt > 0 ? (double)run_ns / 1e9 / dt : 0;
    sm->runq = dt > 0 ? (double)wait_ns / 1e9 / dt : 0;
}

static int64_t workers_rss(master *m)
{
    int64_t total = 0;
    long pg = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < m->s->sb->nslots; i++) {
        int pid = atomic_load(&sb_slot_at(m->s->sb, i)->pid);
        char path[64], b[128];
        if (pid <= 0) continue;
        snprintf(path, sizeof(path), "/proc/%d/statm", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, b, sizeof(b) - 1);
        close(fd);
        long vsz, rss;
        if (n <= 0) continue;
        b[n] = 0;
        if (sscanf(b, "%ld %ld", &vsz, &rss) == 2) total += (int64_t)rss * pg;
    }
    return total;
}

/* The listen queues' connections (TCP_INFO) plus the requests the workers
 * have read and queued for a thread (our workers accept everything up to
 * max-connections, so the wait is mostly in their FIFOs). */
static int backlog_now(master *m, int waiting)
{
    srv *s = m->s;
    for (int i = 0; i < s->nlisten; i++) {
        struct tcp_info ti;
        socklen_t tl = sizeof(ti);
        memset(&ti, 0, sizeof(ti));
        if (s->listen_fds[i] >= 0 && !s->listen_unix[i] &&
            !getsockopt(s->listen_fds[i], IPPROTO_TCP, TCP_INFO, &ti, &tl))
            waiting += (int)ti.tcpi_unacked;
    }
    return waiting;
}

/* Each tick samples how busy the app threads are; each second the algorithm
 * decides on the second's mean (`queue`: every tick, on the tick's figures).
 * Not while a reload, a shutdown or a pause is under way: those change the
 * workers themselves. */
static void cheaper_tick(master *m, uint64_t now)
{
    srv *s = m->s;
    if (m->ch.algo == CHEAPER_OFF) return;
    int busy = 0, threads_busy = 0, waiting = 0;
    for (int id = 1; id <= s->s.processes; id++) {
        int idx = m->ids[id].slot;
        if (m->st[id].cheap || idx < 0) continue;
        sb_slot *sl = sb_slot_at(s->sb, idx);
        if (atomic_load(&sl->in_flight) > 0) busy++;
        int b = atomic_load(&sl->held);
        threads_busy += b > s->s.threads ? s->s.threads : b;
        waiting += atomic_load(&sl->waiting);
    }
    m->busy_acc += m->active ? (double)threads_busy / ((double)m->active * s->s.threads) : 0;
    m->busy_n++;
    int is_queue = m->ch.algo == CHEAPER_QUEUE;
    if (now - m->last_cheaper < (is_queue ? 100 : 1000)) return;
    double dt = (double)(now - m->last_cheaper) / 1000.0;
    m->last_cheaper = now;
    cheaper_sample sm = {
        .active = m->active, .busy = busy, .busy_frac = m->busy_n ? m->busy_acc / m->busy_n : 0};
    m->busy_acc = 0;
    m->busy_n = 0;
    if (m->shutting_down || m->reloading || m->paused || m->chain_id) {
        m->q_sampled = 0; /* the next sample starts afresh */
        return;
    }
    sm.backlog = backlog_now(m, waiting);
    sm.running = threads_busy;
    if (m->ch.rss_soft || m->ch.rss_hard) sm.rss = workers_rss(m);
    if (is_queue) queue_sample(m, &sm, dt);
    int threads_was = m->chs.threads_now;
    int d = cheaper_decide(&m->ch, &m->chs, &sm);
    char why[160];
    snprintf(why, sizeof(why), "%s", cheaper_algo_name(m->ch.algo));
    if (is_queue && (d || m->chs.threads_now != threads_was)) {
        /* The figures it decided on, with the time to the ms: bench and
         * operators can line the decisions up with the load. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        const cheaper_state *q = &m->chs;
        snprintf(why, sizeof(why),
                 "queue at .%03ld s: %.0f req/s, handler %.1f ms (CPU %.1f ms, %.1f with the "
                 "run-queue wait: %s), %d waiting, wait %.1f ms, need %.2f, peak %.2f",
                 ts.tv_nsec / 1000000, q->rate, q->svc_ms, q->cpu_ms, q->want_ms,
                 q->cpu_bound ? "computing" : "waiting", sm.backlog, sm.queue_ms, q->need,
                 q->need_hi);
    }
    if (is_queue && m->chs.threads_now != threads_was) {
        publish_threads(m);
        srv_log("cheaper (%s): %s threads to %d per worker (%d running, threads = %d)", why,
                m->chs.threads_now > threads_was ? "raising" : "lowering", m->chs.threads_now,
                m->active, s->s.threads);
    }
    for (int i = 0; i < d; i++)
        if (master_add_worker(m, why)) break;
    if (d < 0) master_cheap_worker(m, why);
    if (is_queue && m->chs.threads_hint > m->threads_hinted) {
        m->threads_hinted = m->chs.threads_hint;
        srv_log("cheaper (queue): requests wait on I/O past %d processes of %d threads; "
                "threads = %d would serve them (%.0f req/s x %.1f ms)",
                s->s.processes, s->s.threads, m->chs.threads_hint, m->chs.rate, m->chs.svc_ms);
    }
}

/* ---- chain reload: one worker at a time ---- */

static void chain_next(master *m, int after)
{
    for (int id = after + 1; id <= m->s->s.processes; id++) {
        int idx = m->ids[id].slot;
        if (m->st[id].cheap || idx < 0) continue;
        m->chain_id = id;
        replace(m, idx, "chain reload", 1);
        return;
    }
    m->chain_id = 0;
    srv_log("chain reload done");
}

void master_chain_start(master *m)
{
    if (m->shutting_down) return;
    if (m->chain_id || m->reloading) {
        if (!m->pending_chain) srv_log("chain reload: another reload is under way; queued");
        m->pending_chain = 1;
        return;
    }
    srv_log("chain reload: replacing the workers one at a time");
    chain_next(m, 0);
}

/* The next worker goes once the current one's successor is ready and its
 * predecessor has been told to drain. */
static void chain_tick(master *m)
{
    if (!m->chain_id && !m->reloading && !m->shutting_down) {
        if (m->pending_workers) {
            m->pending_workers = 0;
            master_reload_fork(m);
        } else if (m->pending_chain) {
            m->pending_chain = 0;
            master_chain_start(m);
        }
    }
    if (!m->chain_id) return;
    int idx = m->ids[m->chain_id].slot;
    if (idx >= 0 && !atomic_load(&sb_slot_at(m->s->sb, idx)->ready)) return;
    for (int i = 0; i < m->s->sb->nslots; i++) {
        sb_slot *sl = sb_slot_at(m->s->sb, i);
        if (sl->worker_id == m->chain_id && atomic_load(&sl->pid) > 0 && sl->hup_pending) return;
    }
    chain_next(m, m->chain_id);
}

void master_set_paused(master *m, int on)
{
    m->paused = on;
    srv_log("master fifo: %s", on ? "pausing the workers" : "resuming the workers");
    for (int i = 0; i < m->s->sb->nslots; i++) {
        int pid = atomic_load(&sb_slot_at(m->s->sb, i)->pid);
        if (pid > 0) kill(pid, on ? SIGSTOP : SIGCONT);
    }
}

stats_view master_view(master *m)
{
    return (stats_view){.s = m->s,
                        .w = m->st,
                        .paused = m->paused,
                        .algo = cheaper_algo_name(m->ch.algo),
                        .active = m->active,
                        .min = m->ch.algo ? m->ch.min : m->s->s.processes,
                        .max = m->s->s.processes};
}

static void tick(master *m)
{
    srv *s = m->s;
    uint64_t now = now_ms();
    int live = 0, ready = all_current_ready(m);
    for (int id = 1; id <= s->s.processes && !m->shutting_down; id++)
        if (!m->st[id].cheap && m->ids[id].slot < 0 && now >= m->ids[id].respawn_at)
            spawn(m, id, 1);
    for (int i = 0; i < s->sb->nslots; i++) {
        sb_slot *sl = sb_slot_at(s->sb, i);
        int pid = atomic_load(&sl->pid);
        if (pid <= 0) continue;
        live++;
        int state = atomic_load(&sl->state);
        if (state == SB_RUNNING && atomic_load(&sl->want_replace) && !m->shutting_down)
            replace(m, i, "recycling", 1);
        if (s->s.harakiri) check_harakiri(m, i, now);
        if (s->s.evil_reload_on_rss_mb) check_evil_rss(m, i);
        /* Reload, recycle: the old worker is told to drain once its successor serves. */
        if (sl->hup_pending && (successor_ready(m, i) || now > sl->hup_deadline_ms)) {
            sl->hup_pending = 0;
            sl->retire_deadline_ms = now + (uint64_t)s->s.mercy * 1000 + 1000;
            kill(pid, SIGHUP);
        }
        if (atomic_load(&sl->state) == SB_RETIRING && sl->retire_deadline_ms &&
            now > sl->retire_deadline_ms && !sl->hup_pending) {
            srv_log("worker %d (pid %d): mercy over, killing it", sl->worker_id, pid);
            sl->retire_deadline_ms = 0;
            kill(pid, SIGKILL);
        }
        if (m->shutting_down && now > m->shutdown_deadline) kill(pid, SIGKILL);
    }
    if (m->nlegacy && !m->legacy_hup_sent &&
        (ready || now - m->reload_started > (uint64_t)s->s.mercy * 1000)) {
        for (int i = 0; i < m->nlegacy; i++) kill(m->legacy[i], SIGHUP);
        m->legacy_hup_sent = 1;
        m->legacy_deadline = now + (uint64_t)s->s.mercy * 1000 + 1000;
    }
    if (m->nlegacy && ((m->legacy_hup_sent && now > m->legacy_deadline) ||
                       (m->shutting_down && now > m->shutdown_deadline))) {
        for (int i = 0; i < m->nlegacy; i++) kill(m->legacy[i], SIGKILL);
        m->legacy_deadline = UINT64_MAX;
    }
    check_listen_queue(m, now);
    cheaper_tick(m, now);
    chain_tick(m);
    master_touch_tick(m, now);
    sysd_master_tick(&m->sd, now, ready, m->active);
    check_reload_done(m);
    if (m->shutting_down && live == 0 && m->nlegacy == 0) m->quit = 1;
}

/* Fallback reload without re-exec: fresh workers forked from this image. */
void master_reload_fork(master *m)
{
    srv_log("SIGHUP: graceful reload: starting %d new workers", m->s->s.processes);
    m->reload_started = now_ms();
    m->reloading = 1;
    for (int id = 1; id <= m->s->s.processes; id++) {
        int idx = m->ids[id].slot;
        if (m->st[id].cheap) continue;
        if (idx >= 0) {
            sb_slot *sl = sb_slot_at(m->s->sb, idx);
            atomic_store(&sl->state, SB_RETIRING);
            sl->hup_pending = 1;
            sl->hup_deadline_ms = m->reload_started + (uint64_t)m->s->s.mercy * 1000;
        }
        spawn(m, id, 1);
    }
}

/* SIGHUP: re-executes the binary like uWSGI, so the ini, the app code and the
 * models are read afresh, keeping the listen sockets (handed over by fd) and
 * the running workers, which drain once the new image's workers are ready.
 * A configuration that no longer loads refuses the reload and keeps serving. */
void master_reload(master *m)
{
    srv *s = m->s;
    const cfg_option *tables[SRV_MAX_APPS + 2];
    char err[1024], fds[1024] = "", pids[2048] = "";
    int argc = 0;
    if (m->reloading) {
        if (!m->reload_again)
            srv_log("SIGHUP: a reload is under way; one more follows once it is done");
        m->reload_again = 1;
        return;
    }
    while (s->argv[argc]) argc++;
    srv_option_tables(s->kinds, tables, SRV_MAX_APPS + 2);
    /* The command line may name the ini relative to where we started (chdir
     * has moved us since); the new image starts there again too. */
    const char *dir = cfg_core_values(s->cfg)->chdir;
    if (s->start_cwd && chdir(s->start_cwd) < 0)
        srv_log("SIGHUP: cannot return to %s", s->start_cwd);
    cfg *probe;
    int bad = cfg_load(argc - 1, s->argv + 1, tables, &probe, err, sizeof(err));
    if (!bad && srv_check_files(probe, err, sizeof(err))) { /* certificates, tokens */
        cfg_free(probe);
        bad = 1;
    }
    if (bad) {
        srv_log("SIGHUP: reload refused, the configuration does not load: %s", err);
        if (dir && chdir(dir) < 0) srv_log("SIGHUP: cannot return to %s", dir);
        return;
    }
    cfg_free(probe);
    size_t fl = 0, pl = 0;
    for (int i = 0; i < s->nlisten; i++) {
        fcntl(s->listen_fds[i], F_SETFD, 0);
        fl += (size_t)snprintf(fds + fl, sizeof(fds) - fl, "%s%d=%s", i ? ";" : "",
                               s->listen_fds[i], s->listen_names[i]);
    }
    for (int i = 0; i < s->sb->nslots && pl < sizeof(pids) - 16; i++) {
        int pid = atomic_load(&sb_slot_at(s->sb, i)->pid);
        if (pid > 0) pl += (size_t)snprintf(pids + pl, sizeof(pids) - pl, "%d,", pid);
    }
    for (int i = 0; i < m->nlegacy && pl < sizeof(pids) - 16; i++)
        pl += (size_t)snprintf(pids + pl, sizeof(pids) - pl, "%d,", m->legacy[i]);
    setenv("AISERVE_LISTEN_FDS", fds, 1);
    setenv("AISERVE_OLD_WORKERS", pids, 1);
    srv_log("SIGHUP: graceful reload: re-executing; the running workers drain once the new ones "
            "are ready");
    /* The new image keeps this pid and says READY=1 once its workers serve. */
    sysd_notify("RELOADING=1\nSTATUS=reloading");
    stats_keep_across_exec(m->stats, 1);
    execv("/proc/self/exe", s->argv);
    stats_keep_across_exec(m->stats, 0);
    srv_log("SIGHUP: re-exec failed (%s); reloading the workers only", strerror(errno));
    unsetenv("AISERVE_LISTEN_FDS");
    unsetenv("AISERVE_OLD_WORKERS");
    for (int i = 0; i < s->nlisten; i++) fcntl(s->listen_fds[i], F_SETFD, FD_CLOEXEC);
    if (dir && chdir(dir) < 0) srv_log("SIGHUP: cannot return to %s", dir);
    m->sd.ready_sent = 0;
    master_reload_fork(m);
}

static void adopt_legacy(master *m)
{
    const char *env = getenv("AISERVE_OLD_WORKERS");
    for (const char *p = env; p && *p && m->nlegacy < 256;) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        if (pid > 0) m->legacy[m->nlegacy++] = (int)pid;
        p = *end == ',' ? end + 1 : end;
    }
    if (m->nlegacy)
        srv_log("reloaded: %d previous workers drain once the new ones are ready", m->nlegacy);
    unsetenv("AISERVE_OLD_WORKERS");
    m->reload_started = now_ms();
    m->reloading = m->nlegacy > 0;
}

void master_shutdown_all(master *m, int sig)
{
    srv *s = m->s;
    if (sig == SIGQUIT) {
        srv_log("SIGQUIT: immediate shutdown");
        for (int i = 0; i < s->sb->nslots; i++) {
            int pid = atomic_load(&sb_slot_at(s->sb, i)->pid);
            if (pid > 0) kill(pid, SIGKILL);
        }
        for (int i = 0; i < m->nlegacy; i++) kill(m->legacy[i], SIGKILL);
        m->shutting_down = 1;
        m->quit = 1;
        return;
    }
    if (m->shutting_down) return;
    sysd_notify("STOPPING=1\nSTATUS=draining");
    srv_log("%s: graceful shutdown: finishing in-flight requests (mercy %d s)",
            sig == SIGINT ? "SIGINT" : "SIGTERM", s->s.mercy);
    m->shutting_down = 1;
    /* The workers close their copies as they begin draining; once the last
     * copy is closed the kernel refuses new connections at once, so a load
     * balancer fails over instead of waiting out the drain. */
    for (int i = 0; i < s->nlisten; i++) {
        if (s->listen_fds[i] >= 0) close(s->listen_fds[i]);
        s->listen_fds[i] = -1;
    }
    m->shutdown_deadline = now_ms() + (uint64_t)s->s.mercy * 1000 + 1000;
    for (int i = 0; i < s->sb->nslots; i++) {
        sb_slot *sl = sb_slot_at(s->sb, i);
        int pid = atomic_load(&sl->pid);
        sl->hup_pending = 0;
        if (pid > 0) kill(pid, SIGTERM);
    }
    for (int i = 0; i < m->nlegacy; i++) kill(m->legacy[i], SIGTERM);
}

/* The core settings only the process model reads, taken from the config
 * before the first fork. max-connections is capped by the fd limit (main
 * raised the soft limit to the hard one), leaving room for the listen
 * sockets, app files and a worker's own descriptors. */
static void process_settings(srv *s)
{
    srv_settings *st = &s->s;
    const cfg_core *o = cfg_core_values(s->cfg);
    st->max_connections = o->max_connections;
    st->server_timing = o->server_timing;
    st->evil_reload_on_rss_mb = o->evil_reload_on_rss;
    st->limit_as_mb = o->limit_as;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        long room = (long)rl.rlim_cur - 128;
        if (room < 16) room = 16;
        if (st->max_connections > room) {
            srv_log("warning: max-connections = %d is above what the fd limit (%ld) allows: "
                    "using %ld",
                    st->max_connections, (long)rl.rlim_cur, room);
            st->max_connections = (int)room;
        }
    }
}

/* cheaper, stats, master-fifo, touch-*: read before the first fork. */
static int control_settings(master *m)
{
    srv *s = m->s;
    cfg *c = s->cfg;
    const cfg_core *o = cfg_core_values(c);
    cheaper_conf *ch = &m->ch;
    char err[512];
    m->st = calloc((size_t)s->s.processes + 1, sizeof(stats_worker));
    if (!m->st) return -1;
    for (int id = 0; id <= s->s.processes; id++) m->st[id].slot = -1;
    *ch = (cheaper_conf){
        .min = o->cheaper,
        .max = s->s.processes,
        .initial = o->cheaper_initial,
        .step = o->cheaper_step,
        .overload = o->cheaper_overload,
        .idle = o->cheaper_idle,
        .busy_min = o->cheaper_busyness_min,
        .busy_max = o->cheaper_busyness_max,
        .multiplier = o->cheaper_busyness_multiplier,
        .penalty = o->cheaper_busyness_penalty,
        .backlog_alert = o->cheaper_busyness_backlog_alert,
        .backlog_step = o->cheaper_busyness_backlog_step,
        .rss_soft = o->cheaper_rss_limit_soft,
        .rss_hard = o->cheaper_rss_limit_hard,
        .queue_target_ms = o->cheaper_queue_target_ms,
        .threads = s->s.threads,
        .threads_initial = o->cheaper_threads_initial,
    };
    if (cfg_is_set(c, &o->cheaper_threads_initial) &&
        (ch->threads_initial < 1 || ch->threads_initial > s->s.threads)) {
        srv_log("%s: option 'cheaper-threads-initial': %d must be 1..threads (%d)",
                cfg_where(c, &o->cheaper_threads_initial, 0), ch->threads_initial, s->s.threads);
        return -1;
    }
    cpu_set_t cpus;
    ch->ncpu = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus)
                                                              : (int)sysconf(_SC_NPROCESSORS_ONLN);
    m->cpu_prev = calloc((size_t)s->sb->nslots, sizeof(uint64_t));
    m->wait_prev = calloc((size_t)s->sb->nslots, sizeof(uint64_t));
    m->cpu_pid = calloc((size_t)s->sb->nslots, sizeof(int));
    if (!m->cpu_prev || !m->wait_prev || !m->cpu_pid) return -1;
    m->active = s->s.processes;
    if (ch->min > 0) {
        const char *algo = o->cheaper_algo;
        ch->algo = cheaper_algo_parse(algo ? algo : "spare");
        if (ch->algo < 0) {
            srv_log("%s: option 'cheaper-algo': unknown algorithm '%s' (spare, spare2, backlog, "
                    "busyness, manual, queue)",
                    cfg_where(c, &o->cheaper_algo, 0), algo);
            return -1;
        }
        if (ch->min >= s->s.processes) {
            srv_log("%s: option 'cheaper': %d must be below processes (%d), the most workers",
                    cfg_where(c, &o->cheaper, 0), ch->min, s->s.processes);
            return -1;
        }
        if (ch->initial < ch->min) ch->initial = ch->min;
        if (ch->initial > s->s.processes) ch->initial = s->s.processes;
        m->active = ch->initial;
        for (int id = ch->initial + 1; id <= s->s.processes; id++) m->st[id].cheap = 1;
        cheaper_state_init(&m->chs, ch);
        srv_log("cheaper: %s, %d to %d workers, %d at start", cheaper_algo_name(ch->algo), ch->min,
                s->s.processes, ch->initial);
    }
    publish_active(m);
    const char *addr = o->stats;
    if (!addr || !*addr) stats_drop_inherited();
    if (addr && *addr) {
        m->stats = stats_open(addr, o->stats_http, err, sizeof(err));
        if (!m->stats) {
            srv_log("%s: %s", cfg_where(c, &o->stats, 0), err);
            return -1;
        }
        srv_log("stats server on %s%s", addr, o->stats_http ? " (HTTP)" : "");
    }
    if (master_fifo_open(m)) return -1;
    master_touch_init(m);
    return 0;
}

int master_run(srv *s)
{
    master m = {.s = s, .sigfd = -1, .fifo = {.rfd = -1, .wfd = -1}};
    process_settings(s);
    if (control_settings(&m)) {
        stats_close(m.stats, 1);
        free(m.st);
        free(m.cpu_prev);
        free(m.wait_prev);
        free(m.cpu_pid);
        return 1;
    }
    /* One eventfd per slot, inherited by every worker: a worker that leaves
     * accepting to another wakes it (worker_update_accept). */
    for (int i = 0; i < s->sb->nslots; i++)
        sb_slot_at(s->sb, i)->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    m.ids = calloc((size_t)s->s.processes + 1, sizeof(wid));
    if (!m.ids) return 1;
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* These signals are ours whatever the launcher ignored: a shell's `cmd &`
     * ignores SIGINT and SIGQUIT, and an ignored SIGCHLD would reap the
     * workers behind waitpid's back. Blocked first, so none is lost between. */
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) signal(sigs[i], SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    m.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (m.sigfd < 0) {
        srv_log("signalfd: %s", strerror(errno));
        return 1;
    }
    adopt_legacy(&m);
    sysd_master_init(&m.sd);
    for (int id = 1; id <= s->s.processes; id++)
        if (!m.st[id].cheap) spawn(&m, id, 0);
    uint64_t next_tick = now_ms() + 100;
    while (!m.quit) {
        struct pollfd p[40] = {{.fd = m.sigfd, .events = POLLIN},
                               {.fd = m.fifo.rfd, .events = POLLIN}};
        int np = 2 + stats_pollfds(m.stats, p + 2, 38);
        uint64_t now = now_ms();
        poll(p, (nfds_t)np, next_tick > now ? (int)(next_tick - now) : 0);
        if (p[1].revents & POLLIN) master_fifo_io(&m);
        if (m.stats) {
            stats_view v = master_view(&m);
            stats_io(m.stats, p + 2, np - 2, &v, now_ms());
        }
        struct signalfd_siginfo si;
        while (read(m.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            switch (si.ssi_signo) {
            case SIGCHLD: break; /* reaped below */
            case SIGHUP:
                if (m.paused) master_set_paused(&m, 0);
                if (!m.shutting_down) master_reload(&m);
                break;
            case SIGTERM:
            case SIGINT:
            case SIGQUIT:
                if (m.paused) master_set_paused(&m, 0);
                master_shutdown_all(&m, (int)si.ssi_signo);
                break;
            default: break;
            }
        }
        reap(&m);
        if (!m.quit && now_ms() >= next_tick) {
            tick(&m);
            next_tick = now_ms() + 100;
        }
    }
    if (m.quit && m.shutting_down) {
        /* SIGQUIT: the workers were SIGKILLed; collect them. */
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    }
    srv_log("master exiting");
    stats_close(m.stats, 1);
    fifo_close(&m.fifo, 1);
    free(m.st);
    free(m.cpu_prev);
    free(m.wait_prev);
    free(m.cpu_pid);
    master_touch_free(&m);
    free(m.ids);
    close(m.sigfd);
    return m.exit_code;
}
