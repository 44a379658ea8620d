/*
 * dist/wire: see wire.h.
 */
#include "loadgen/dist/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/hist.h"
#include "loadgen/scenario_int.h"
#include "loadgen/stats.h"

int64_t dist_round_ms(double ms)
{
    /* nearbyint rounds half to even in the default mode, as Python's round() */
    if (ms < 100) return (int64_t)nearbyint(ms);
    if (ms < 1000) return (int64_t)nearbyint(ms / 10) * 10;
    if (ms < 10000) return (int64_t)nearbyint(ms / 100) * 100;
    return (int64_t)nearbyint(ms / 1000) * 1000;
}

void dist_pack_class_counts(dist_pack *p, const scenario *sc, const int *counts)
{
    size_t nc = scenario_class_count(sc);
    msgpack_pack_map(&p->pk, (uint32_t)nc);
    for (size_t k = 0; k < nc; k++) {
        dist_pack_str(p, scenario_class_name(sc, k));
        msgpack_pack_int64(&p->pk, counts ? counts[k] : 0);
    }
}

void dist_error_key(const char *method, const char *name, const char *error, char out[65])
{
    char text[1024];
    int n = snprintf(text, sizeof(text), "%s.%s.'%s'", method, name, error);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof(text)) n = sizeof(text) - 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text, (size_t)n, md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < len && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

static void kv_str(dist_pack *p, const char *k, const char *v)
{
    dist_pack_str(p, k);
    dist_pack_str(p, v);
}

static void kv_u64(dist_pack *p, const char *k, uint64_t v)
{
    dist_pack_str(p, k);
    msgpack_pack_uint64(&p->pk, v);
}

static void kv_f64(dist_pack *p, const char *k, double v)
{
    dist_pack_str(p, k);
    msgpack_pack_double(&p->pk, v);
}

/* {second: count} of column i of the delta's per-second counts. */
static void pack_per_sec(dist_pack *p, const runner_delta *d, const uint64_t *col, size_t i)
{
    size_t w = d ? d->nentries + 1 : 1, n = 0;
    for (size_t k = 0; d && k < d->nsec; k++) n += col[k * w + i] != 0;
    msgpack_pack_map(&p->pk, (uint32_t)n);
    for (size_t k = 0; d && k < d->nsec; k++) {
        if (!col[k * w + i]) continue;
        msgpack_pack_int64(&p->pk, d->sec[k]);
        msgpack_pack_uint64(&p->pk, col[k * w + i]);
    }
}

/* One StatsEntryDict. lat may be NULL (no requests). */
static int pack_entry(dist_pack *p, const char *name, const char *method, const hist *lat,
                      uint64_t nreq, uint64_t nfail, uint64_t bytes, const runner_delta *d,
                      size_t col, double start_time)
{
    uint64_t n = lat ? hist_count(lat) : 0;
    msgpack_pack_map(&p->pk, 16);
    kv_str(p, "name", name);
    kv_str(p, "method", method);
    dist_pack_str(p, "last_request_timestamp");
    if (d && d->last_ts > 0 && nreq)
        msgpack_pack_double(&p->pk, d->last_ts);
    else
        msgpack_pack_nil(&p->pk);
    kv_f64(p, "start_time", start_time);
    kv_u64(p, "num_requests", nreq);
    kv_u64(p, "num_none_requests", 0);
    kv_u64(p, "num_failures", nfail);
    kv_f64(p, "total_response_time", n ? (double)hist_sum(lat) / 1000.0 : 0);
    kv_f64(p, "max_response_time", n ? (double)hist_max(lat) / 1000.0 : 0);
    dist_pack_str(p, "min_response_time");
    if (n)
        msgpack_pack_double(&p->pk, (double)hist_min(lat) / 1000.0);
    else
        msgpack_pack_nil(&p->pk);
    kv_u64(p, "total_content_length", bytes);

    /* Locust's rounded buckets: adjacent slots often share one, so count first */
    size_t cur = 0, nb = 0;
    int64_t v, last = -1;
    uint64_t c;
    while (lat && hist_next(lat, &cur, &v, &c)) {
        int64_t mid = v + (hist_highest_equivalent(lat, v) - v) / 2;
        int64_t b = dist_round_ms((double)mid / 1000.0);
        nb += b != last;
        last = b;
    }
    dist_pack_str(p, "response_times");
    msgpack_pack_map(&p->pk, (uint32_t)nb);
    cur = 0;
    last = -1;
    uint64_t acc = 0;
    while (lat && hist_next(lat, &cur, &v, &c)) {
        int64_t mid = v + (hist_highest_equivalent(lat, v) - v) / 2;
        int64_t b = dist_round_ms((double)mid / 1000.0);
        if (b != last && last >= 0) {
            msgpack_pack_int64(&p->pk, last);
            msgpack_pack_uint64(&p->pk, acc);
            acc = 0;
        }
        last = b;
        acc += c;
    }
    if (last >= 0) {
        msgpack_pack_int64(&p->pk, last);
        msgpack_pack_uint64(&p->pk, acc);
    }
    dist_pack_str(p, "num_reqs_per_sec");
    pack_per_sec(p, d, d ? d->sec_nreq : NULL, col);
    dist_pack_str(p, "num_fail_per_sec");
    pack_per_sec(p, d, d ? d->sec_nfail : NULL, col);

    /* the slots; the first pair carries the exact min and the last the exact
     * max as its value (each lies in its slot), so the master's min and max
     * are exact too (a lone slot holding both is sent as two pairs) */
    size_t ns = 0;
    cur = 0;
    while (lat && hist_next(lat, &cur, &v, &c)) ns++;
    int64_t mn = lat ? hist_min(lat) : 0, mx = lat ? hist_max(lat) : 0;
    int split = ns == 1 && n >= 2 && mn != mx;
    dist_pack_str(p, "aiload_hist");
    msgpack_pack_array(&p->pk, (uint32_t)(ns + (size_t)split));
    cur = 0;
    for (size_t i = 0; lat && hist_next(lat, &cur, &v, &c); i++) {
        if (split) {
            msgpack_pack_array(&p->pk, 2);
            msgpack_pack_int64(&p->pk, mn);
            msgpack_pack_uint64(&p->pk, c - 1);
            msgpack_pack_array(&p->pk, 2);
            msgpack_pack_int64(&p->pk, mx);
            msgpack_pack_uint64(&p->pk, 1);
            continue;
        }
        msgpack_pack_array(&p->pk, 2);
        msgpack_pack_int64(&p->pk, i == ns - 1 ? mx : i == 0 ? mn : v);
        msgpack_pack_uint64(&p->pk, c);
    }
    kv_u64(p, "aiload_sum_us", lat ? hist_sum(lat) : 0);
    return 0;
}

int dist_pack_report(dist_pack *p, const scenario *sc, const runner_delta *d, double start_time,
                     const int *class_users, int user_count)
{
    const lg_stats *st = d ? d->st : NULL;
    size_t ne = sc->nentries, nrows = 0;
    hist *agg = hist_create(LG_HIST_LOWEST, LG_HIST_HIGHEST, LG_HIST_SIG);
    if (!agg) return -ENOMEM;
    uint64_t tr = 0, tf = 0, tb = 0;
    for (size_t i = 0; st && i < ne; i++) {
        const lg_estat *e = &st->e[i];
        nrows += e->nreq || e->nfail;
        tr += e->nreq;
        tf += e->nfail;
        tb += e->bytes;
        if (e->nreq) hist_add(agg, e->lat);
    }
    msgpack_pack_map(&p->pk, 5);
    dist_pack_str(p, "stats");
    msgpack_pack_array(&p->pk, (uint32_t)nrows);
    for (size_t i = 0; st && i < ne; i++) {
        const lg_estat *e = &st->e[i];
        if (!e->nreq && !e->nfail) continue;
        pack_entry(p, sc->entries[i].name, sc->entries[i].method, e->nreq ? e->lat : NULL, e->nreq,
                   e->nfail, e->bytes, d, i, start_time);
    }
    dist_pack_str(p, "stats_total");
    pack_entry(p, "Aggregated", "", tr ? agg : NULL, tr, tf, tb, d, ne, start_time);
    hist_free(agg);

    dist_pack_str(p, "errors");
    size_t nerr = st ? st->nerrs : 0;
    msgpack_pack_map(&p->pk, (uint32_t)nerr);
    for (size_t k = 0; k < nerr; k++) {
        const lg_err *er = &st->errs[k];
        char text[256], key[65];
        lg_err_format(er->kind, er->code, text, sizeof(text));
        const char *name =
            er->entry >= 0 && (size_t)er->entry < ne ? sc->entries[er->entry].name : "";
        const char *method =
            er->entry >= 0 && (size_t)er->entry < ne ? sc->entries[er->entry].method : "";
        dist_error_key(method, name, text, key);
        dist_pack_str(p, key);
        msgpack_pack_map(&p->pk, 6);
        kv_str(p, "name", name);
        kv_str(p, "method", method);
        kv_str(p, "error", text);
        kv_u64(p, "occurrences", er->count);
        dist_pack_str(p, "aiload_kind");
        msgpack_pack_int64(&p->pk, er->kind);
        dist_pack_str(p, "aiload_code");
        msgpack_pack_int64(&p->pk, er->code);
    }
    dist_pack_str(p, "user_classes_count");
    dist_pack_class_counts(p, sc, class_users);
    dist_pack_str(p, "user_count");
    msgpack_pack_int64(&p->pk, user_count);
    return 0;
}

/* ---- the master's side ---- */

static int entry_index(const scenario *sc, const msgpack_object *e)
{
    char method[16], name[256];
    if (dist_obj_str(dist_map_get(e, "method"), method, sizeof(method)) ||
        dist_obj_str(dist_map_get(e, "name"), name, sizeof(name)))
        return -1;
    for (size_t i = 0; i < sc->nentries; i++)
        if (!strcmp(sc->entries[i].method, method) && !strcmp(sc->entries[i].name, name))
            return (int)i;
    return -1;
}

/* Records a histogram given as [[value_us, count], ...]; -1 when malformed. */
static int read_aiload_hist(const msgpack_object *a, hist *lat, hist *svc, uint64_t *n)
{
    if (a->type != MSGPACK_OBJECT_ARRAY) return -1;
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *pair = &a->via.array.ptr[i];
        int64_t v, c;
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
            dist_obj_int(&pair->via.array.ptr[0], &v) ||
            dist_obj_int(&pair->via.array.ptr[1], &c) || v < 0 || c < 0)
            return -1;
        hist_record_n(lat, v, (uint64_t)c);
        hist_record_n(svc, v, (uint64_t)c);
        *n += (uint64_t)c;
    }
    return 0;
}

static int read_buckets(const msgpack_object *m, hist *lat, hist *svc, uint64_t *n)
{
    if (m->type != MSGPACK_OBJECT_MAP) return -1;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        double ms;
        int64_t c;
        if (dist_obj_num(&m->via.map.ptr[i].key, &ms) || dist_obj_int(&m->via.map.ptr[i].val, &c) ||
            c < 0 || !(ms >= 0) || ms > 3.6e6)
            continue;
        hist_record_n(lat, (int64_t)(ms * 1000), (uint64_t)c);
        hist_record_n(svc, (int64_t)(ms * 1000), (uint64_t)c);
        *n += (uint64_t)c;
    }
    return 0;
}

static void read_error(const scenario *sc, const msgpack_object *e, lg_stats *out, int64_t now)
{
    int entry = entry_index(sc, e);
    int64_t occ, kind, code;
    if (entry < 0 || dist_obj_int(dist_map_get(e, "occurrences"), &occ) || occ <= 0) return;
    if (!dist_obj_int(dist_map_get(e, "aiload_kind"), &kind) &&
        !dist_obj_int(dist_map_get(e, "aiload_code"), &code) && kind >= 0 && kind <= LG_ERR_OTHER &&
        code >= INT32_MIN && code <= INT32_MAX) {
    } else {
        char text[256];
        kind = LG_ERR_OTHER;
        code = 0;
        int c;
        if (!dist_obj_str(dist_map_get(e, "error"), text, sizeof(text)) &&
            sscanf(text, "HTTPError('%d ", &c) == 1 && c >= 100 && c <= 999) {
            kind = LG_ERR_STATUS;
            code = c;
        }
    }
    lg_err one = {.entry = entry,
                  .kind = (int)kind,
                  .code = (int)code,
                  .count = (uint64_t)occ,
                  .first = now,
                  .last = now};
    /* lg_stats_add merges error rows; a one-row lg_stats carries this one */
    lg_stats tmp = {.nentries = 0, .e = NULL, .nerrs = 1};
    tmp.errs[0] = one;
    lg_stats_add(out, &tmp);
}

int dist_parse_report(const scenario *sc, const msgpack_object *data, lg_stats *out,
                      int *class_users, int *user_count, size_t *unknown, char *err, size_t errlen)
{
    const msgpack_object *stats = dist_map_get(data, "stats");
    if (!stats || stats->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(err, errlen, "stats report without a stats list");
        return -1;
    }
    int64_t now = (int64_t)time(NULL);
    for (uint32_t i = 0; i < stats->via.array.size; i++) {
        const msgpack_object *e = &stats->via.array.ptr[i];
        int idx = entry_index(sc, e);
        if (idx < 0) {
            (*unknown)++;
            continue;
        }
        lg_estat *es = &out->e[idx];
        int64_t nreq = 0, nfail = 0, bytes = 0;
        dist_obj_int(dist_map_get(e, "num_requests"), &nreq);
        dist_obj_int(dist_map_get(e, "num_failures"), &nfail);
        dist_obj_int(dist_map_get(e, "total_content_length"), &bytes);
        if (nreq < 0 || nfail < 0 || bytes < 0) continue;
        uint64_t n = 0;
        const msgpack_object *ah = dist_map_get(e, "aiload_hist");
        const msgpack_object *rt = dist_map_get(e, "response_times");
        int64_t sum_us;
        if (ah && !read_aiload_hist(ah, es->lat, es->svc, &n)) {
            /* exact mean: the sum of the original values (es is fresh per report) */
            if (!dist_obj_int(dist_map_get(e, "aiload_sum_us"), &sum_us) && sum_us >= 0 &&
                n == hist_count(es->lat))
                hist_set_sum(es->lat, (uint64_t)sum_us);
        } else if (rt) {
            read_buckets(rt, es->lat, es->svc, &n);
        }
        es->nreq += (uint64_t)nreq;
        es->nfail += (uint64_t)nfail;
        es->bytes += (uint64_t)bytes;
    }
    const msgpack_object *errs = dist_map_get(data, "errors");
    for (uint32_t i = 0; errs && errs->type == MSGPACK_OBJECT_MAP && i < errs->via.map.size; i++)
        read_error(sc, &errs->via.map.ptr[i].val, out, now);
    const msgpack_object *ucc = dist_map_get(data, "user_classes_count");
    size_t nc = scenario_class_count(sc);
    for (size_t k = 0; k < nc; k++) {
        int64_t v = 0;
        if (dist_obj_int(dist_map_get(ucc, scenario_class_name(sc, k)), &v) || v < 0 ||
            v > 10000000)
            v = 0;
        class_users[k] = (int)v;
    }
    int64_t uc = 0;
    if (dist_obj_int(dist_map_get(data, "user_count"), &uc) || uc < 0 || uc > 100000000) uc = 0;
    *user_count = (int)uc;
    return 0;
}

int dist_parse_exception(const msgpack_object *data, char **msg, char **tb, char *err,
                         size_t errlen)
{
    const msgpack_object *mo = dist_map_get(data, "msg"), *to = dist_map_get(data, "traceback");
    *msg = *tb = NULL;
    if (!mo || mo->type != MSGPACK_OBJECT_STR) {
        snprintf(err, errlen, "no msg string");
        return -EINVAL;
    }
    if (to && to->type != MSGPACK_OBJECT_STR && to->type != MSGPACK_OBJECT_NIL) {
        snprintf(err, errlen, "traceback is not a string");
        return -EINVAL;
    }
    size_t ml = mo->via.str.size, tl = to && to->type == MSGPACK_OBJECT_STR ? to->via.str.size : 0;
    *msg = malloc(ml + 1);
    *tb = malloc(tl + 1);
    if (!*msg || !*tb) {
        free(*msg);
        free(*tb);
        *msg = *tb = NULL;
        return -ENOMEM;
    }
    memcpy(*msg, mo->via.str.ptr, ml);
    (*msg)[ml] = 0;
    if (tl) memcpy(*tb, to->via.str.ptr, tl);
    (*tb)[tl] = 0;
    return 0;
}

static int open_num(const msgpack_object *o, double *out)
{
    return !dist_obj_num(o, out) && isfinite(*out) && *out >= 0 && *out < 1e9 ? 0 : -1;
}

int dist_parse_open(const msgpack_object *o, double *rate, runner_stage *stages, size_t *nstages,
                    double *elapsed, char *err, size_t errlen)
{
    const msgpack_object *sv = dist_map_get(o, "stages");
    if (!o || o->type != MSGPACK_OBJECT_MAP || open_num(dist_map_get(o, "rate"), rate) ||
        open_num(dist_map_get(o, "elapsed"), elapsed) || !sv || sv->type != MSGPACK_OBJECT_ARRAY ||
        sv->via.array.size > DIST_OPEN_MAX_STAGES) {
        snprintf(err, errlen, "spawn message with a malformed aiload_open");
        return -EINVAL;
    }
    size_t n = sv->via.array.size;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &sv->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
            open_num(&e->via.array.ptr[0], &stages[i].duration_s) ||
            open_num(&e->via.array.ptr[1], &stages[i].target) || !(stages[i].duration_s > 0)) {
            snprintf(err, errlen, "spawn message with a malformed aiload_open stage %zu", i + 1);
            return -EINVAL;
        }
    }
    *nstages = n;
    return 0;
}
