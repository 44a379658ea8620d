/*
 * stats: the stats document and its non-blocking server (see stats.h).
 */
#define _GNU_SOURCE
#include "server/stats.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/sock_diag.h>
#include <time.h>
#include <unistd.h>

#ifndef AISERVE_VERSION
#define AISERVE_VERSION "0"
#endif

#define STATS_MAX_CLIENTS 32
#define STATS_CLIENT_MS   5000 /* a client gets this long to read its document */

typedef struct stats_client {
    int fd;
    int draining; /* written and shut for writing: reading until EOF */
    buf out;
    size_t off;
    uint64_t deadline;
} stats_client;

struct stats_srv {
    int fd, http;
    char *path; /* unix socket file, or NULL */
    char addr[1024];
    stats_client c[STATS_MAX_CLIENTS];
    int nc;
};

static void statm(int pid, uint64_t *rss, uint64_t *vsz)
{
    char path[64], b[128];
    *rss = *vsz = 0;
    snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, b, sizeof(b) - 1);
    close(fd);
    unsigned long long v, r;
    if (n <= 0) return;
    b[n] = 0;
    if (sscanf(b, "%llu %llu", &v, &r) != 2) return;
    long pg = sysconf(_SC_PAGESIZE);
    *rss = r * (uint64_t)pg;
    *vsz = v * (uint64_t)pg;
}

static void queue_of(int fd, unsigned *q, unsigned *max)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    *q = *max = 0;
    if (fd >= 0 && !getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl)) {
        *q = ti.tcpi_unacked;
        *max = ti.tcpi_sacked;
    }
}

/* Connections the kernel dropped at a full listen queue (uWSGI's
 * listen_queue_errors): the listener's own drop count (SO_MEMINFO's
 * SK_MEMINFO_DROPS, which tcp_listendrop raises for every SYN or handshake
 * refused at a full accept queue), since the socket was made, so it counts
 * each lost connection, only this socket's, and across a reload that keeps
 * the socket. /proc/net/netstat's ListenOverflows counts every listener of
 * the namespace, and uWSGI's own figure counts the seconds it saw the queue
 * full, not the connections lost. */
static uint64_t listen_drops(int fd)
{
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t ml = sizeof(mem);
    memset(mem, 0, sizeof(mem));
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &ml) ||
        ml <= SK_MEMINFO_DROPS * sizeof(uint32_t))
        return 0;
    return mem[SK_MEMINFO_DROPS];
}

static void render_worker(const stats_view *v, int id, buf *out, int *waiting_total)
{
    srv *s = v->s;
    const stats_worker *w = &v->w[id];
    sb_slot *sl = w->slot >= 0 ? sb_slot_at(s->sb, w->slot) : NULL;
    int pid = sl ? atomic_load(&sl->pid) : 0;
    if (pid <= 0) sl = NULL;
    uint64_t req = 0, tx = 0, exc = 0, run = 0, avg = 0, rss = 0, vsz = 0;
    int in_flight = 0, waiting = 0, conns = 0, accepting = 0, active_threads = 0;
    if (sl) {
        req = atomic_load(&sl->requests);
        tx = atomic_load(&sl->tx);
        exc = atomic_load(&sl->exceptions);
        run = atomic_load(&sl->running_us);
        avg = atomic_load(&sl->avg_rt_us);
        in_flight = atomic_load(&sl->in_flight);
        waiting = atomic_load(&sl->waiting);
        active_threads = atomic_load(&sl->active_threads);
        if (active_threads <= 0 || active_threads > s->sb->nthreads)
            active_threads = s->sb->nthreads;
        conns = atomic_load(&sl->conns);
        accepting = atomic_load(&sl->ready) && atomic_load(&sl->state) == SB_RUNNING;
        statm(pid, &rss, &vsz);
    }
    *waiting_total += waiting;
    const char *status = w->cheap || !sl ? "cheap"
                         : v->paused     ? "pause"
                         : in_flight > 0 ? "busy"
                                         : "idle";
    buf_printf(out,
               "%s{\"id\":%d,\"pid\":%d,\"accepting\":%d,\"requests\":%llu,"
               "\"delta_requests\":%llu,\"exceptions\":%llu,\"harakiri_count\":%d,\"signals\":0,"
               "\"signal_queue\":0,\"status\":\"%s\",\"rss\":%llu,\"vsz\":%llu,"
               "\"running_time\":%llu,\"last_spawn\":%lld,\"respawn_count\":%d,\"tx\":%llu,"
               "\"avg_rt\":%llu,\"waiting\":%d,\"conns\":%d,\"in_flight\":%d,\"active_threads\":%d,"
               "\"apps\":[],"
               "\"cores\":[",
               id > 1 ? "," : "", id, pid, accepting, (unsigned long long)(w->requests_done + req),
               (unsigned long long)req, (unsigned long long)(w->exceptions_done + exc),
               w->harakiris, status, (unsigned long long)rss, (unsigned long long)vsz,
               (unsigned long long)(w->running_done + run), (long long)w->last_spawn, w->respawns,
               (unsigned long long)(w->tx_done + tx), (unsigned long long)avg, waiting, conns,
               in_flight, active_threads);
    for (int t = 0; t < s->sb->nthreads; t++) {
        uint64_t tr = sl ? atomic_load(&sl->threads[t].requests) : 0;
        int inr = sl ? atomic_load(&sl->threads[t].in_request) : 0;
        buf_printf(out,
                   "%s{\"id\":%d,\"requests\":%llu,\"static_requests\":0,\"routed_requests\":0,"
                   "\"offloaded_requests\":0,\"write_errors\":0,\"read_errors\":0,"
                   "\"in_request\":%d,\"vars\":[],\"req_info\":{}}",
                   t ? "," : "", t, (unsigned long long)tr, inr);
    }
    buf_puts(out, "]}");
}

int stats_render(const stats_view *v, buf *out)
{
    srv *s = v->s;
    unsigned qsum = 0;
    uint64_t drops = 0;
    int load = 0;
    for (int i = 0; i < s->sb->nslots; i++) {
        sb_slot *sl = sb_slot_at(s->sb, i);
        if (atomic_load(&sl->pid) > 0) load += atomic_load(&sl->in_flight);
    }
    char cwd[1024];
    if (!getcwd(cwd, sizeof(cwd))) strcpy(cwd, "");
    buf sockets = BUF_INIT;
    for (int i = 0; i < s->nlisten; i++) {
        unsigned q = 0, mx = 0;
        if (!s->listen_unix[i]) {
            queue_of(s->listen_fds[i], &q, &mx);
            drops += listen_drops(s->listen_fds[i]);
        }
        qsum += q;
        buf_printf(&sockets, "%s{\"name\":", i ? "," : "");
        buf_json_str(&sockets, s->listen_names[i], strlen(s->listen_names[i]));
        buf_printf(&sockets,
                   ",\"proto\":\"%s\",\"queue\":%u,\"max_queue\":%u,\"shared\":0,"
                   "\"can_offload\":0}",
                   s->listen_proto[i] == SRV_PROTO_UWSGI ? "uwsgi" : "http", q, mx);
    }
    buf_printf(out,
               "{\"version\":\"%s\",\"listen_queue\":%u,\"listen_queue_errors\":%llu,"
               "\"signal_queue\":0,\"load\":%d,\"pid\":%d,\"uid\":%d,\"gid\":%d,\"cwd\":",
               AISERVE_VERSION, qsum, (unsigned long long)drops, load, (int)getpid(), (int)getuid(),
               (int)getgid());
    buf_json_str(out, cwd, strlen(cwd));
    buf_puts(out, ",\"locks\":[],\"sockets\":[");
    buf_append(out, sockets.data, sockets.len);
    buf_free(&sockets);
    buf_puts(out, "],\"workers\":[");
    int waiting = 0;
    for (int id = 1; id <= s->s.processes; id++) render_worker(v, id, out, &waiting);
    buf_puts(out, "],\"models\":[");
    for (int i = 0; i < s->napps; i++) {
        if (!s->apps[i].loaded || !s->apps[i].kind->stats_json) continue;
        size_t before = out->len;
        int sep = out->data[out->len - 1] != '[';
        if (sep) buf_puts(out, ",");
        s->apps[i].kind->stats_json(s->apps[i].state, out);
        if (sep && out->len == before + 1) out->len = before; /* it wrote nothing */
    }
    return buf_printf(out,
                      "],\"aiserve\":{\"cheaper\":\"%s\",\"active\":%d,\"min\":%d,\"max\":%d,"
                      "\"paused\":%d,\"threads\":%d,\"waiting\":%d,\"respawns\":%llu,"
                      "\"harakiris\":%llu}}\n",
                      v->algo, v->active, v->min, v->max, v->paused, s->s.threads, waiting,
                      (unsigned long long)atomic_load(&s->sb->respawns),
                      (unsigned long long)atomic_load(&s->sb->harakiris));
}

/* ---- the server ---- */

static int bind_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return snprintf(err, errlen, "stats: unix socket path too long: %s", path), -1;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return snprintf(err, errlen, "stats: socket: %s", strerror(errno)), -1;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
        snprintf(err, errlen, "stats: cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int bind_tcp(const char *addr, char *err, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host)) return snprintf(err, errlen, "stats: bad address %s", addr), -1;
    memcpy(host, addr, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai;
    int rc = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &ai);
    if (rc) return snprintf(err, errlen, "stats: %s: %s", addr, gai_strerror(rc)), -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
        snprintf(err, errlen, "stats: cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* The socket the previous image kept across its re-exec, if it was for addr. */
static int adopt(const char *addr)
{
    const char *env = getenv("AISERVE_STATS_FD");
    if (!env) return -1;
    char *end;
    long fd = strtol(env, &end, 10);
    int ok = end != env && *end == '=' && !strcmp(end + 1, addr) && fd > 2;
    unsetenv("AISERVE_STATS_FD");
    if (!ok) {
        if (end != env && fd > 2) close((int)fd);
        return -1;
    }
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    fcntl((int)fd, F_SETFL, fcntl((int)fd, F_GETFL) | O_NONBLOCK);
    return (int)fd;
}

void stats_drop_inherited(void)
{
    adopt("");
}

void stats_keep_across_exec(stats_srv *ss, int keep)
{
    if (!ss) return;
    fcntl(ss->fd, F_SETFD, keep ? 0 : FD_CLOEXEC);
    if (!keep) {
        unsetenv("AISERVE_STATS_FD");
        return;
    }
    char v[1200];
    snprintf(v, sizeof(v), "%d=%s", ss->fd, ss->addr);
    setenv("AISERVE_STATS_FD", v, 1);
}

stats_srv *stats_open(const char *addr, int http, char *err, size_t errlen)
{
    stats_srv *ss = calloc(1, sizeof(*ss));
    if (!ss) return snprintf(err, errlen, "out of memory"), NULL;
    ss->http = http;
    snprintf(ss->addr, sizeof(ss->addr), "%s", addr);
    int is_unix = strchr(addr, '/') || !strchr(addr, ':');
    ss->fd = adopt(addr);
    if (ss->fd < 0) ss->fd = is_unix ? bind_unix(addr, err, errlen) : bind_tcp(addr, err, errlen);
    if (ss->fd < 0) {
        free(ss);
        return NULL;
    }
    if (is_unix) ss->path = strdup(addr);
    return ss;
}

int stats_pollfds(stats_srv *ss, struct pollfd *p, int max)
{
    int n = 0;
    if (!ss || max < 1) return 0;
    p[n++] = (struct pollfd){.fd = ss->fd, .events = POLLIN};
    for (int i = 0; i < ss->nc && n < max; i++)
        p[n++] = (struct pollfd){.fd = ss->c[i].fd, .events = ss->c[i].draining ? POLLIN : POLLOUT};
    return n;
}

static void drop(stats_srv *ss, int i)
{
    close(ss->c[i].fd);
    buf_free(&ss->c[i].out);
    ss->c[i] = ss->c[--ss->nc];
    memset(&ss->c[ss->nc], 0, sizeof(ss->c[ss->nc]));
}

/* Writes what the socket takes; 1: done (shut for writing), 0: more later, -1: drop. */
static int pump(stats_client *c)
{
    while (c->off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->off, c->out.len - c->off, MSG_NOSIGNAL);
        if (w < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->off += (size_t)w;
    }
    shutdown(c->fd, SHUT_WR);
    c->draining = 1;
    return 1;
}

static void accept_one(stats_srv *ss, const stats_view *v, uint64_t now)
{
    int fd = accept4(ss->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (ss->nc == STATS_MAX_CLIENTS) { /* full of slow readers: the oldest goes, never wait */
        int old = 0;
        for (int i = 1; i < ss->nc; i++)
            if (ss->c[i].deadline < ss->c[old].deadline) old = i;
        drop(ss, old);
    }
    stats_client *c = &ss->c[ss->nc++];
    *c = (stats_client){.fd = fd, .out = BUF_INIT, .deadline = now + STATS_CLIENT_MS};
    buf doc = BUF_INIT;
    stats_render(v, &doc);
    if (ss->http)
        buf_printf(&c->out,
                   "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                   "%zu\r\nConnection: close\r\n\r\n",
                   doc.len);
    buf_append(&c->out, doc.data, doc.len);
    buf_free(&doc);
    if (pump(c) < 0) drop(ss, ss->nc - 1);
}

void stats_io(stats_srv *ss, const struct pollfd *p, int n, const stats_view *v, uint64_t now)
{
    if (!ss) return;
    /* Clients first, by fd (the array moves as clients go). */
    for (int k = 1; k < n; k++) {
        if (!p[k].revents) continue;
        for (int i = 0; i < ss->nc; i++) {
            stats_client *c = &ss->c[i];
            if (c->fd != p[k].fd) continue;
            if (c->draining) {
                char sink[512];
                ssize_t r = recv(c->fd, sink, sizeof(sink), 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) drop(ss, i);
            } else if (pump(c) < 0) {
                drop(ss, i);
            }
            break;
        }
    }
    for (int i = ss->nc - 1; i >= 0; i--)
        if (now > ss->c[i].deadline) drop(ss, i);
    if (n > 0 && (p[0].revents & POLLIN))
        for (int k = 0; k < 8; k++) accept_one(ss, v, now);
}

void stats_close(stats_srv *ss, int unlink_path)
{
    if (!ss) return;
    while (ss->nc) drop(ss, 0);
    close(ss->fd);
    if (unlink_path && ss->path) unlink(ss->path);
    free(ss->path);
    free(ss);
}
