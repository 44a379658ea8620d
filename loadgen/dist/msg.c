/*
 * dist/msg: see msg.h. The scanner is ours (bounds first); msgpack-c does
 * the decoding into objects and the packing.
 */
#include "loadgen/dist/msg.h"

#include <stdio.h>
#include <string.h>

typedef struct scan {
    const uint8_t *p;
    size_t len, off;
    const char *why;
} scan;

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* Skips n raw bytes. */
static int skip(scan *s, uint64_t n)
{
    if (n > s->len - s->off) {
        s->why = "truncated";
        return -1;
    }
    s->off += (size_t)n;
    return 0;
}

/* Reads an n-byte big-endian length. */
static int length(scan *s, int n, uint64_t *out)
{
    if ((size_t)n > s->len - s->off) {
        s->why = "truncated";
        return -1;
    }
    *out = be(s->p + s->off, n);
    s->off += (size_t)n;
    return 0;
}

static int object(scan *s, int depth);

/* items objects follow; each takes at least one byte, so a count above the
 * bytes left is a lie (and would make msgpack-c allocate for it). */
static int items(scan *s, uint64_t items, int depth)
{
    if (depth >= DIST_MAX_DEPTH) {
        s->why = "nested too deeply";
        return -1;
    }
    if (items > s->len - s->off) {
        s->why = "container count exceeds the message";
        return -1;
    }
    for (uint64_t i = 0; i < items; i++)
        if (object(s, depth + 1)) return -1;
    return 0;
}

static int object(scan *s, int depth)
{
    if (s->off >= s->len) {
        s->why = "truncated";
        return -1;
    }
    uint8_t t = s->p[s->off++];
    uint64_t n;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return 0;
    if (t >= 0x80 && t <= 0x8f) return items(s, 2ull * (t & 0x0f), depth);
    if (t >= 0x90 && t <= 0x9f) return items(s, t & 0x0f, depth);
    if (t >= 0xa0 && t <= 0xbf) return skip(s, t & 0x1f);
    switch (t) {
    case 0xc4:
    case 0xc5:
    case 0xc6: /* bin 8/16/32 */
    case 0xd9:
    case 0xda:
    case 0xdb: /* str 8/16/32 */ {
        int w = t <= 0xc6 ? 1 << (t - 0xc4) : 1 << (t - 0xd9);
        return length(s, w, &n) ? -1 : skip(s, n);
    }
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32: length, type byte, data */
        return length(s, 1 << (t - 0xc7), &n) ? -1 : skip(s, n + 1);
    case 0xca: return skip(s, 4);
    case 0xcb: return skip(s, 8);
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf: return skip(s, 1u << (t - 0xcc));
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: return skip(s, 1u << (t - 0xd0));
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext: type + 2^k bytes */ return skip(s, 1 + (1u << (t - 0xd4)));
    case 0xdc:
    case 0xdd: return length(s, t == 0xdc ? 2 : 4, &n) ? -1 : items(s, n, depth);
    case 0xde:
    case 0xdf: return length(s, t == 0xde ? 2 : 4, &n) ? -1 : items(s, 2 * n, depth);
    default: /* 0xc1: never used */ s->why = "invalid type byte"; return -1;
    }
}

int dist_msgpack_check(const uint8_t *p, size_t len, char *err, size_t errlen)
{
    if (len > DIST_MAX_MSG) {
        snprintf(err, errlen, "message of %zu bytes exceeds the %u-byte limit", len, DIST_MAX_MSG);
        return -1;
    }
    scan s = {.p = p, .len = len};
    if (object(&s, 0)) {
        snprintf(err, errlen, "malformed msgpack at byte %zu: %s", s.off, s.why);
        return -1;
    }
    if (s.off != len) {
        snprintf(err, errlen, "%zu bytes of extra data after the message", len - s.off);
        return -1;
    }
    return 0;
}

int dist_msg_decode(const void *p, size_t len, dist_msg *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (dist_msgpack_check(p, len, err, errlen)) return -1;
    msgpack_unpacked_init(&m->u);
    size_t off = 0;
    if (msgpack_unpack_next(&m->u, p, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        snprintf(err, errlen, "msgpack decoding failed");
        goto fail;
    }
    const msgpack_object *o = &m->u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3) {
        snprintf(err, errlen, "not a (type, data, node_id) array");
        goto fail;
    }
    const msgpack_object *v = o->via.array.ptr;
    if (v[0].type != MSGPACK_OBJECT_STR || v[0].via.str.size == 0 ||
        v[0].via.str.size >= sizeof(m->type)) {
        snprintf(err, errlen, "message type is not a short string");
        goto fail;
    }
    if (v[2].type == MSGPACK_OBJECT_STR) {
        if (v[2].via.str.size >= sizeof(m->node_id)) {
            snprintf(err, errlen, "node id longer than %zu bytes", sizeof(m->node_id) - 1);
            goto fail;
        }
        dist_obj_str(&v[2], m->node_id, sizeof(m->node_id));
    } else if (v[2].type != MSGPACK_OBJECT_NIL) {
        snprintf(err, errlen, "node id is not a string");
        goto fail;
    }
    dist_obj_str(&v[0], m->type, sizeof(m->type));
    if (memchr(m->type, 0, v[0].via.str.size) || memchr(m->node_id, 0, strlen(m->node_id))) {
        snprintf(err, errlen, "NUL byte in type or node id");
        goto fail;
    }
    m->data = v[1];
    return 0;
fail:
    msgpack_unpacked_destroy(&m->u);
    memset(m, 0, sizeof(*m));
    return -1;
}

void dist_msg_free(dist_msg *m)
{
    if (m->u.zone) msgpack_unpacked_destroy(&m->u);
    memset(m, 0, sizeof(*m));
}

/* ---- reading ---- */

int dist_obj_streq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           !memcmp(o->via.str.ptr, s, n);
}

const msgpack_object *dist_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (dist_obj_streq(&map->via.map.ptr[i].key, key)) return &map->via.map.ptr[i].val;
    return NULL;
}

int dist_obj_num(const msgpack_object *o, double *out)
{
    if (!o) return -1;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    default: return -1;
    }
}

int dist_obj_int(const msgpack_object *o, int64_t *out)
{
    if (!o) return -1;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)o->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = o->via.i64; return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* Locust's float-valued counts (e.g. rounded times) come as floats */
        if (!(o->via.f64 >= -9.2e18 && o->via.f64 <= 9.2e18)) return -1;
        *out = (int64_t)o->via.f64;
        return (double)*out == o->via.f64 ? 0 : -1;
    default: return -1;
    }
}

int dist_obj_str(const msgpack_object *o, char *out, size_t len)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || !len) return -1;
    size_t n = o->via.str.size < len - 1 ? o->via.str.size : len - 1;
    memcpy(out, o->via.str.ptr, n);
    out[n] = 0;
    return 0;
}

/* ---- packing ---- */

void dist_pack_init(dist_pack *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

void dist_pack_free(dist_pack *p)
{
    msgpack_sbuffer_destroy(&p->sb);
}

void dist_pack_strn(dist_pack *p, const char *s, size_t n)
{
    msgpack_pack_str(&p->pk, n);
    msgpack_pack_str_body(&p->pk, s, n);
}

void dist_pack_str(dist_pack *p, const char *s)
{
    dist_pack_strn(p, s, strlen(s));
}

void dist_pack_begin(dist_pack *p, const char *type)
{
    msgpack_sbuffer_clear(&p->sb);
    msgpack_pack_array(&p->pk, 3);
    dist_pack_str(p, type);
}

void dist_pack_end(dist_pack *p, const char *node_id)
{
    dist_pack_str(p, node_id);
}
