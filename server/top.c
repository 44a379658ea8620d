/*
 * top: reads a stats server once a second and draws a table like uwsgitop.
 * The frame is a pure function of the document (top_render), tested alone.
 */
#define _GNU_SOURCE
#include "server/top.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/json.h"

static int64_t num(const json_doc *d, int obj, const char *key)
{
    int64_t v = 0;
    int i = json_obj_get(d, obj, key);
    if (i >= 0) json_num_i64(d, i, &v);
    return v;
}

static void str(const json_doc *d, int obj, const char *key, char *out, size_t cap)
{
    int i = json_obj_get(d, obj, key);
    out[0] = 0;
    if (i < 0 || json_str_copy(d, i, out, cap) < 0) snprintf(out, cap, "-");
}

int top_render(const char *doc, size_t len, top_prev *prev, double now, buf *out)
{
    const char *body = memmem(doc, len, "\r\n\r\n", 4);
    if (len > 5 && !memcmp(doc, "HTTP/", 5) && body) {
        len -= (size_t)(body + 4 - doc);
        doc = body + 4;
    }
    json_doc d;
    char err[128], version[64], algo[32];
    if (json_parse(&d, doc, len, NULL, err, sizeof(err)))
        return buf_printf(out, "not a stats document: %s\n", err), -1;
    if (d.n == 0 || d.tok[0].type != JSON_OBJECT) {
        json_doc_free(&d);
        return buf_printf(out, "not a stats document: not an object\n"), -1;
    }
    str(&d, 0, "version", version, sizeof(version));
    int ai = json_obj_get(&d, 0, "aiserve");
    snprintf(algo, sizeof(algo), "off");
    if (ai >= 0) str(&d, ai, "cheaper", algo, sizeof(algo));
    int ws = json_obj_get(&d, 0, "workers");
    double dt = prev->t > 0 ? now - prev->t : 0;
    /* First pass: totals for the header. */
    int64_t total_req = 0, running = 0, nworkers = ws >= 0 ? d.tok[ws].count : 0;
    double total_rps = 0;
    for (int i = ws + 1, k = 0; ws >= 0 && k < (int)d.tok[ws].count; k++, i = d.tok[i].next) {
        int64_t id = num(&d, i, "id"), req = num(&d, i, "requests");
        char st[16];
        str(&d, i, "status", st, sizeof(st));
        total_req += req;
        running += strcmp(st, "cheap") != 0;
        if (dt > 0 && id > 0 && id <= TOP_MAX_WORKERS && (uint64_t)req >= prev->requests[id])
            total_rps += (double)((uint64_t)req - prev->requests[id]) / dt;
    }
    buf_printf(out,
               "aiserve %s - pid %lld - load %lld - listen queue %lld - workers %lld/%lld "
               "(cheaper: %s) - requests %lld - %.1f req/s\n\n",
               version, (long long)num(&d, 0, "pid"), (long long)num(&d, 0, "load"),
               (long long)num(&d, 0, "listen_queue"), (long long)running, (long long)nworkers, algo,
               (long long)total_req, total_rps);
    buf_printf(out, "%4s %8s %6s %10s %8s %9s %8s %10s %8s %5s %5s %4s\n", "WID", "PID", "STATUS",
               "REQ", "RPS", "AVG(ms)", "RSS(MB)", "TX(KB)", "EXC", "WAIT", "CONN", "RESP");
    for (int i = ws + 1, k = 0; ws >= 0 && k < (int)d.tok[ws].count; k++, i = d.tok[i].next) {
        int64_t id = num(&d, i, "id"), req = num(&d, i, "requests");
        char st[16];
        str(&d, i, "status", st, sizeof(st));
        double rps = 0;
        if (dt > 0 && id > 0 && id <= TOP_MAX_WORKERS && (uint64_t)req >= prev->requests[id])
            rps = (double)((uint64_t)req - prev->requests[id]) / dt;
        buf_printf(out, "%4lld %8lld %6s %10lld %8.1f %9.2f %8.1f %10.1f %8lld %5lld %5lld %4lld\n",
                   (long long)id, (long long)num(&d, i, "pid"), st, (long long)req, rps,
                   (double)num(&d, i, "avg_rt") / 1000.0,
                   (double)num(&d, i, "rss") / (1024.0 * 1024.0), (double)num(&d, i, "tx") / 1024.0,
                   (long long)num(&d, i, "exceptions"), (long long)num(&d, i, "waiting"),
                   (long long)num(&d, i, "conns"), (long long)num(&d, i, "respawn_count"));
        if (id > 0 && id <= TOP_MAX_WORKERS) prev->requests[id] = (uint64_t)req;
    }
    prev->t = now;
    json_doc_free(&d);
    return 0;
}

static int dial(const char *addr)
{
    if (strchr(addr, '/') || !strchr(addr, ':')) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(addr) >= sizeof(sa.sun_path)) return -1;
        strcpy(sa.sun_path, addr);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
            close(fd);
            fd = -1;
        }
        return fd;
    }
    const char *colon = strrchr(addr, ':');
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host)) return -1;
    memcpy(host, addr, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(hl ? host : "127.0.0.1", colon + 1, &hints, &ai)) return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int fetch(const char *addr, buf *doc)
{
    int fd = dial(addr);
    if (fd < 0) return -errno;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    /* A stats-http server reads no request, but a proxy in front may. */
    char b[16384];
    ssize_t n;
    while ((n = read(fd, b, sizeof(b))) > 0)
        if (buf_append(doc, b, (size_t)n)) break;
    close(fd);
    return n < 0 ? -errno : 0;
}

int top_main(int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help")) {
        fprintf(stderr, "usage: aiserve top ADDR [--once]   (ADDR: host:port or a unix socket "
                        "path of `stats`)\n");
        return 2;
    }
    int once = argc > 1 && !strcmp(argv[1], "--once");
    static top_prev prev;
    for (;;) {
        buf doc = BUF_INIT, frame = BUF_INIT;
        int rc = fetch(argv[0], &doc);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (rc) {
            fprintf(stderr, "aiserve top: cannot read %s: %s\n", argv[0], strerror(-rc));
            buf_free(&doc);
            if (once) return 1;
        } else {
            rc = top_render(doc.data ? doc.data : "", doc.len, &prev,
                            (double)ts.tv_sec + ts.tv_nsec / 1e9, &frame);
            if (!once) fputs("\033[H\033[2J", stdout);
            fwrite(frame.data, 1, frame.len, stdout);
            fflush(stdout);
            buf_free(&doc);
            buf_free(&frame);
            if (once) return rc ? 1 : 0;
        }
        sleep(1);
    }
}
