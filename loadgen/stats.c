#include "loadgen/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http1.h"
#include "loadgen/tls.h"

lg_stats *lg_stats_create(size_t nentries)
{
    lg_stats *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->nentries = nentries;
    s->e = calloc(nentries ? nentries : 1, sizeof(*s->e));
    if (!s->e) {
        free(s);
        return NULL;
    }
    for (int k = 0; k < LG_ST_NPHASES; k++)
        if (!(s->st[k] = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG))) {
            lg_stats_free(s);
            return NULL;
        }
    for (size_t i = 0; i < nentries; i++) {
        s->e[i].lat = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG);
        s->e[i].svc = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG);
        if (!s->e[i].lat || !s->e[i].svc) {
            lg_stats_free(s);
            return NULL;
        }
    }
    return s;
}

void lg_stats_free(lg_stats *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nentries; i++) {
        hist_free(s->e[i].lat);
        hist_free(s->e[i].svc);
    }
    for (int k = 0; k < LG_ST_NPHASES; k++) hist_free(s->st[k]);
    free(s->e);
    free(s);
}

void lg_stats_reset(lg_stats *s)
{
    for (size_t i = 0; i < s->nentries; i++) {
        lg_estat *e = &s->e[i];
        hist_reset(e->lat);
        hist_reset(e->svc);
        e->nreq = e->nfail = e->bytes = e->late = 0;
    }
    s->nerrs = 0;
    s->dropped = 0;
    if (s->st_n)
        for (int k = 0; k < LG_ST_NPHASES; k++) hist_reset(s->st[k]);
    s->st_n = 0;
}

static lg_err *find_err(lg_stats *s, int entry, int kind, int code)
{
    for (size_t i = 0; i < s->nerrs; i++) {
        lg_err *e = &s->errs[i];
        if (e->entry == entry && e->kind == kind && e->code == code) return e;
    }
    if (s->nerrs < LG_MAX_ERRS) {
        lg_err *e = &s->errs[s->nerrs++];
        *e = (lg_err){.entry = entry, .kind = kind, .code = code};
        return e;
    }
    /* Full: lump the rest into one "other" row (the last slot). */
    lg_err *e = &s->errs[LG_MAX_ERRS - 1];
    e->kind = LG_ERR_OTHER;
    e->code = 0;
    return e;
}

static void err_add(lg_stats *s, const lg_err *src)
{
    lg_err *e = find_err(s, src->entry, src->kind, src->code);
    if (e->count == 0 || src->first < e->first) e->first = src->first;
    if (src->last > e->last) e->last = src->last;
    e->count += src->count;
}

void lg_stats_error(lg_stats *s, int entry, int kind, int code, int64_t now_s)
{
    lg_err one = {
        .entry = entry, .kind = kind, .code = code, .count = 1, .first = now_s, .last = now_s};
    err_add(s, &one);
}

void lg_stats_add(lg_stats *dst, const lg_stats *src)
{
    size_t n = dst->nentries < src->nentries ? dst->nentries : src->nentries;
    for (size_t i = 0; i < n; i++) {
        lg_estat *d = &dst->e[i];
        const lg_estat *e = &src->e[i];
        if (!e->nreq) continue;
        hist_add(d->lat, e->lat);
        hist_add(d->svc, e->svc);
        d->nreq += e->nreq;
        d->nfail += e->nfail;
        d->bytes += e->bytes;
        d->late += e->late;
    }
    for (size_t i = 0; i < src->nerrs; i++) err_add(dst, &src->errs[i]);
    dst->dropped += src->dropped;
    if (src->st_n) { /* servers without Server-Timing cost nothing here */
        for (int k = 0; k < LG_ST_NPHASES; k++) hist_add(dst->st[k], src->st[k]);
        dst->st_n += src->st_n;
    }
}

void lg_err_format(int kind, int code, char *out, size_t len)
{
    switch (kind) {
    case LG_ERR_REFUSED:
        snprintf(out, len, "ConnectionRefusedError(111, 'Connection refused')");
        break;
    case LG_ERR_CONNECT:
        if (code == 0)
            snprintf(out, len, "ConnectionError('name resolution failed')");
        else
            snprintf(out, len, "ConnectionError(%d, '%s')", code, strerror(code));
        break;
    case LG_ERR_TIMEOUT:
        snprintf(out, len,
                 code == 2 ? "ConnectTimeout('TLS handshake timed out')"
                 : code    ? "ReadTimeout('response timed out')"
                           : "ConnectTimeout('connect timed out')");
        break;
    case LG_ERR_RESET:
        snprintf(out, len, "ConnectionResetError(104, 'Connection reset by peer')");
        break;
    case LG_ERR_CLOSED:
        snprintf(out, len, "RemoteDisconnected('Remote end closed connection without response')");
        break;
    case LG_ERR_PROTOCOL:
        snprintf(out, len, "ProtocolError('%s')",
                 code == 1   ? "bad chunked encoding"
                 : code == 2 ? "response head too large"
                             : "malformed response head");
        break;
    case LG_ERR_STATUS:
        snprintf(out, len, "HTTPError('%d %s Error: %s')", code, code >= 500 ? "Server" : "Client",
                 http1_reason(code));
        break;
    case LG_ERR_CHECK:
        if (code == 1)
            snprintf(out, len, "CheckFailed('body does not contain expect_body')");
        else
            snprintf(out, len, "CheckFailed('status %d not in expect_status')", code);
        break;
    case LG_ERR_ABORTED:
        snprintf(out, len, "StopTimeout('still in flight when the stop timeout expired')");
        break;
    case LG_ERR_TLS: {
        char why[256];
        lg_tls_err_format(code, why, sizeof(why));
        snprintf(out, len, "SSLError('%s')", why);
        break;
    }
    default: snprintf(out, len, "OtherError('too many distinct errors')"); break;
    }
}
