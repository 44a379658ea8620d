/*
 * log: the access log, one line per request, written with one write() so
 * lines from several threads and processes never interleave (O_APPEND when
 * logto names a file).
 */
#define _GNU_SOURCE
#include "server/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Copies s into dst for a CLF field, replacing quotes and control bytes. */
static size_t clf_field(char *dst, size_t cap, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[j++] = (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) ? '?' : (char)ch;
    }
    dst[j] = 0;
    return j;
}

void log_access(srv_conn *c)
{
    const app_request *r = &c->ar;
    const srv *s = c->w->srv;
    char line[2048], method[32], uri[1024], tbuf[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    uint64_t us = ev_clock_us() - c->t_start_us;
    if (r->method)
        clf_field(method, sizeof(method), r->method, r->method_len);
    else
        strcpy(method, "-");
    if (r->uri)
        clf_field(uri, sizeof(uri), r->uri, r->uri_len);
    else
        strcpy(uri, "-");
    int n;
    if (s->s.log_json) {
        strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof(line),
                     "{\"time\":\"%s.%03ldZ\",\"remote\":\"%s\",\"method\":\"%s\",\"uri\":\"%s\","
                     "\"protocol\":\"%s\",\"status\":%d,\"bytes\":%llu,\"duration_ms\":%.3f,"
                     "\"worker\":%d,\"pid\":%d%s%s%s}\n",
                     tbuf, ts.tv_nsec / 1000000, c->remote, method, uri,
                     r->protocol ? r->protocol : "-", c->status, (unsigned long long)c->bytes_sent,
                     (double)us / 1000.0, c->w->id, (int)getpid(),
                     c->request_id[0] ? ",\"request_id\":\"" : "", c->request_id,
                     c->request_id[0] ? "\"" : "");
    } else {
        strftime(tbuf, sizeof(tbuf), "%d/%b/%Y:%H:%M:%S +0000", &tm);
        n = snprintf(line, sizeof(line), "%s - - [%s] \"%s %s %s\" %d %llu%s%s\n", c->remote, tbuf,
                     method, uri, r->protocol ? r->protocol : "-", c->status,
                     (unsigned long long)c->bytes_sent, c->request_id[0] ? " rid=" : "",
                     c->request_id);
    }
    if (n <= 0) return;
    if (n >= (int)sizeof(line)) {
        n = (int)sizeof(line);
        line[n - 1] = '\n';
    }
    ssize_t w = write(s->logfd, line, (size_t)n);
    (void)w;
}
