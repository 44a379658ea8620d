/*
 * pyship: encoder and incremental decoder of the --processes sample stream.
 */
#include "loadgen/py/pyship.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pyship_put_entry(buf *b, uint32_t row, const char *method, const char *name)
{
    uint16_t ml = (uint16_t)strnlen(method, 15), nl = (uint16_t)strnlen(name, 1023);
    int rc = buf_append(b, "E", 1);
    rc |= buf_append(b, &row, 4);
    rc |= buf_append(b, &ml, 2);
    rc |= buf_append(b, method, ml);
    rc |= buf_append(b, &nl, 2);
    rc |= buf_append(b, name, nl);
    return rc ? -ENOMEM : 0;
}

int pyship_put_record(buf *b, uint32_t row, int64_t lat_us, int64_t svc_us, uint64_t bytes,
                      const char *error)
{
    size_t el = error ? strnlen(error, PYSHIP_MAX_ERROR) : 0;
    uint16_t el16 = (uint16_t)el;
    int rc = buf_append(b, "R", 1);
    rc |= buf_append(b, &row, 4);
    rc |= buf_append(b, &lat_us, 8);
    rc |= buf_append(b, &svc_us, 8);
    rc |= buf_append(b, &bytes, 8);
    rc |= buf_append(b, &el16, 2);
    if (el) rc |= buf_append(b, error, el);
    return rc ? -ENOMEM : 0;
}

int pyship_put_json(buf *b, const char *text, size_t len)
{
    uint32_t l = (uint32_t)len;
    int rc = buf_append(b, "J", 1);
    rc |= buf_append(b, &l, 4);
    rc |= buf_append(b, text, len);
    return rc ? -ENOMEM : 0;
}

/* One record at p[0..n): its length, 0 when incomplete, or -errno. */
static ssize_t one(pyship_peer *pe, pystats *st, const char *p, size_t n, int64_t now,
                   void (*on_json)(void *, const char *, size_t), void *ctx)
{
    if (n < 1) return 0;
    if (p[0] == 'E') {
        uint32_t id;
        uint16_t ml, nl;
        if (n < 7) return 0;
        memcpy(&id, p + 1, 4);
        memcpy(&ml, p + 5, 2);
        if (ml > 15 || id >= PYSHIP_MAX_ROWS) return -EINVAL;
        if (n < 9 + (size_t)ml) return 0;
        memcpy(&nl, p + 7 + ml, 2);
        if (nl > 1023) return -EINVAL;
        size_t len = 9 + (size_t)ml + nl;
        if (n < len) return 0;
        char method[16], name[1024];
        memcpy(method, p + 7, ml);
        method[ml] = 0;
        memcpy(name, p + 9 + ml, nl);
        name[nl] = 0;
        if (id >= pe->nmap) {
            size_t cap = (size_t)id + 64;
            int *m = realloc(pe->map, cap * sizeof(int));
            if (!m) return -ENOMEM;
            for (size_t i = pe->nmap; i < cap; i++) m[i] = -1;
            pe->map = m;
            pe->nmap = cap;
        }
        int e = pystats_entry(st, method, name);
        if (e < 0) return e;
        pe->map[id] = e;
        return (ssize_t)len;
    }
    if (p[0] == 'R') {
        uint32_t id;
        int64_t lat, svc;
        uint64_t bytes;
        uint16_t el;
        if (n < 31) return 0;
        memcpy(&id, p + 1, 4);
        memcpy(&lat, p + 5, 8);
        memcpy(&svc, p + 13, 8);
        memcpy(&bytes, p + 21, 8);
        memcpy(&el, p + 29, 2);
        if (el > PYSHIP_MAX_ERROR || id >= pe->nmap || pe->map[id] < 0) return -EINVAL;
        size_t len = 31 + (size_t)el;
        if (n < len) return 0;
        char err[PYSHIP_MAX_ERROR + 1];
        memcpy(err, p + 31, el);
        err[el] = 0;
        int rc = pystats_record(st, pe->map[id], lat, svc, bytes, el ? err : NULL, now);
        return rc ? rc : (ssize_t)len;
    }
    if (p[0] == 'J') {
        uint32_t jl;
        if (n < 5) return 0;
        memcpy(&jl, p + 1, 4);
        if (jl > (1u << 24)) return -EINVAL;
        if (n < 5 + (size_t)jl) return 0;
        if (on_json) on_json(ctx, p + 5, jl);
        return (ssize_t)(5 + jl);
    }
    return -EINVAL;
}

int pyship_ingest(pyship_peer *pe, pystats *st, const char *data, size_t len, int64_t now_ns,
                  void (*on_json)(void *ctx, const char *text, size_t len), void *ctx)
{
    if (len && buf_append(&pe->rest, data, len)) return -ENOMEM;
    size_t off = 0;
    for (;;) {
        ssize_t k = one(pe, st, pe->rest.data + off, pe->rest.len - off, now_ns, on_json, ctx);
        if (k < 0) return (int)k;
        if (k == 0) break;
        off += (size_t)k;
    }
    buf_consume(&pe->rest, off);
    return 0;
}

void pyship_peer_free(pyship_peer *pe)
{
    buf_free(&pe->rest);
    free(pe->map);
    pe->map = NULL;
    pe->nmap = 0;
}
