/*
 * stats: the counters and histograms of one set of stats entries. A worker
 * thread records into its own lg_stats on the hot path (no locks, no
 * allocation); once a second it hands them over and the runner merges them
 * with lg_stats_add(). Latencies are microseconds.
 */
#ifndef LOADGEN_STATS_H
#define LOADGEN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/hist.h"
#include "loadgen/servertiming.h"

#define LG_HIST_LOWEST  1LL
#define LG_HIST_HIGHEST 3600000000LL /* 1 h in us */
#define LG_HIST_SIG     3
#define LG_MAX_ERRS     128   /* distinct (entry, error) pairs per thread before "other" */
#define LG_LATE_US      10000 /* a request sent this long after its intended start is late */

/* Error classes, in the order of the end-of-run report. */
typedef enum lg_err_kind {
    LG_ERR_REFUSED,  /* connect: ECONNREFUSED */
    LG_ERR_CONNECT,  /* connect: other errno (code = errno), or DNS */
    LG_ERR_TIMEOUT,  /* code 0: connect timed out, 1: response timed out, 2: TLS handshake */
    LG_ERR_RESET,    /* ECONNRESET / EPIPE while sending or reading */
    LG_ERR_CLOSED,   /* the server closed the connection before the response ended */
    LG_ERR_PROTOCOL, /* malformed response (code: 0 head, 1 chunked framing, 2 head too big) */
    LG_ERR_STATUS,   /* HTTP status (code = status) */
    LG_ERR_CHECK,    /* a failed check: code 1 body contains, else the unexpected status */
    LG_ERR_ABORTED,  /* still in flight when the stop timeout expired */
    LG_ERR_TLS,      /* TLS handshake, certificate or record error (code: see loadgen/tls.h) */
    LG_ERR_OTHER,    /* the error table overflowed */
} lg_err_kind;

typedef struct lg_err {
    int entry;
    int kind;
    int code;
    uint64_t count;
    int64_t first, last; /* Unix seconds */
} lg_err;

typedef struct lg_estat {
    hist *lat; /* corrected: from the intended start */
    hist *svc; /* uncorrected: from the actual start */
    uint64_t nreq, nfail, bytes, late;
} lg_estat;

typedef struct lg_stats {
    size_t nentries;
    lg_estat *e;
    lg_err errs[LG_MAX_ERRS];
    size_t nerrs;
    uint64_t dropped; /* open model: arrivals never sent */
    /* Server-Timing split of the service time, all entries together: only
     * successful responses that carried the header (st_n of them) */
    hist *st[LG_ST_NPHASES];
    uint64_t st_n;
} lg_stats;

lg_stats *lg_stats_create(size_t nentries);
void lg_stats_free(lg_stats *s);
void lg_stats_reset(lg_stats *s);
/* dst += src (same nentries). */
void lg_stats_add(lg_stats *dst, const lg_stats *src);

/* Hot path. lat_us/svc_us: latency from intended/actual start. */
static inline void lg_stats_record(lg_stats *s, int entry, int64_t lat_us, int64_t svc_us,
                                   uint64_t bytes, int failed)
{
    lg_estat *e = &s->e[entry];
    hist_record(e->lat, lat_us);
    hist_record(e->svc, svc_us);
    e->nreq++;
    e->nfail += failed != 0;
    e->bytes += bytes;
    e->late += lat_us - svc_us > LG_LATE_US;
}

/* A response with Server-Timing: the server's queue and app time (us) out of
 * its service time; the rest is network and client. */
static inline void lg_stats_timing(lg_stats *s, int64_t svc_us, int64_t queue_us, int64_t app_us)
{
    int64_t net = svc_us - queue_us - app_us;
    hist_record(s->st[LG_ST_NET], net > 0 ? net : 0);
    hist_record(s->st[LG_ST_QUEUE], queue_us);
    hist_record(s->st[LG_ST_APP], app_us);
    s->st_n++;
}

void lg_stats_error(lg_stats *s, int entry, int kind, int code, int64_t now_s);

/* Locust-style error text, e.g. "HTTPError('404 Client Error: Not Found')". */
void lg_err_format(int kind, int code, char *out, size_t len);

#endif
