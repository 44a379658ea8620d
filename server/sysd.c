/*
 * sysd: systemd's readiness protocol and socket activation. libsystemd does
 * the protocol; this file decides which passed socket serves which configured
 * address.
 */
#define _GNU_SOURCE
#include "server/sysd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

void sysd_notify(const char *fmt, ...)
{
    if (!getenv("NOTIFY_SOCKET")) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sd_notify(0, msg);
}

uint64_t sysd_watchdog_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0) return 0;
    return usec / 2000 ? usec / 2000 : 1;
}

int sysd_passed_collect(sysd_passed *p)
{
    memset(p, 0, sizeof(*p));
    int n = sd_listen_fds(1);
    if (n <= 0) return 0;
    p->n = n > (int)(sizeof(p->taken) / sizeof(p->taken[0]))
               ? (int)(sizeof(p->taken) / sizeof(p->taken[0]))
               : n;
    return p->n;
}

/* 1 if addr names a TCP address whose host is empty or a wildcard: then any
 * passed socket on that port serves it (systemd's ListenStream=8000 binds
 * [::]:8000 dual-stack, which a configured ":8000" or "0.0.0.0:8000" means). */
static int tcp_matches(int fd, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon) return 0;
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host)) return 0;
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    long port = strtol(colon + 1, NULL, 10);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return 0;
    int fport = ss.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                : ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : -1;
    if (fport != port) return 0;
    if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*")) return 1;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(host, colon + 1, &hints, &res)) return 0;
    int ok = 0;
    for (struct addrinfo *ai = res; ai && !ok; ai = ai->ai_next)
        ok = sd_is_socket_sockaddr(fd, SOCK_STREAM, ai->ai_addr, ai->ai_addrlen, 1) > 0;
    freeaddrinfo(res);
    return ok;
}

int sysd_passed_take(sysd_passed *p, const char *addr)
{
    int is_unix = addr[0] == '@' || (strchr(addr, '/') && !strchr(addr, ':'));
    for (int i = 0; i < p->n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        if (p->taken[i]) continue;
        int ok;
        if (is_unix) {
            /* sd_is_socket_unix compares abstract names with their leading NUL */
            size_t len = strlen(addr);
            char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
            if (len >= sizeof(path)) continue;
            memcpy(path, addr, len);
            if (addr[0] == '@') path[0] = 0;
            ok = sd_is_socket_unix(fd, SOCK_STREAM, 1, path, len) > 0;
        } else {
            ok = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0 && tcp_matches(fd, addr);
        }
        if (ok) {
            /* systemd passes sockets in blocking mode; the workers accept
             * until EAGAIN and must never block there. */
            int fl = fcntl(fd, F_GETFL);
            if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
            p->taken[i] = 1;
            return fd;
        }
    }
    return -1;
}

int sysd_passed_close_rest(sysd_passed *p, char *first, unsigned firstlen)
{
    int n = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->taken[i]) continue;
        int fd = SD_LISTEN_FDS_START + i;
        if (!n && firstlen) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            char h[INET6_ADDRSTRLEN] = "?";
            int port = 0;
            if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
                if (ss.ss_family == AF_INET) {
                    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, h, sizeof(h));
                    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
                } else if (ss.ss_family == AF_INET6) {
                    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h, sizeof(h));
                    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
                }
            }
            snprintf(first, firstlen, "fd %d (%s port %d)", fd, h, port);
        }
        close(fd);
        p->taken[i] = 1;
        n++;
    }
    return n;
}

void sysd_master_init(sysd_master *sm)
{
    memset(sm, 0, sizeof(*sm));
    sm->watchdog_ms = sysd_watchdog_ms();
}

void sysd_master_tick(sysd_master *sm, uint64_t now_ms, int all_ready, int processes)
{
    if (all_ready && !sm->ready_sent) {
        sysd_notify("READY=1\nSTATUS=serving: %d worker(s) ready\nMAINPID=%d", processes,
                    (int)getpid());
        sm->ready_sent = 1;
    }
    if (sm->watchdog_ms && now_ms >= sm->watchdog_next_ms) {
        sysd_notify("WATCHDOG=1");
        sm->watchdog_next_ms = now_ms + sm->watchdog_ms;
    }
}
