/*
 * dist/msg: Locust 2.x's wire message, msgpack-encoded as the 3-array
 * (type, data, node_id) (locust/rpc/protocol.py), plus the packing helpers
 * the master and worker use to build the data maps.
 *
 * Decoding is defensive: a message from a peer is bytes from the network.
 * dist_msg_decode() first walks the bytes with its own bounds-checked scanner
 * (container counts may not exceed the bytes left, nesting is limited to
 * DIST_MAX_DEPTH, the size to DIST_MAX_MSG) and only then hands them to
 * msgpack-c, so a hostile header such as "array of 2^32 elements" never
 * reaches an allocation. A message that fails is logged and dropped by the
 * caller; nothing a peer sends may crash the process.
 *
 * Ownership: a decoded dist_msg owns its msgpack zone; dist_msg_free().
 */
#ifndef LOADGEN_DIST_MSG_H
#define LOADGEN_DIST_MSG_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define DIST_MAX_MSG   (64u << 20) /* bytes; also the sockets' ZMQ_MAXMSGSIZE */
#define DIST_MAX_DEPTH 24

typedef struct dist_msg {
    char type[64];
    char node_id[256];
    msgpack_object data; /* nil when the peer sent None */
    msgpack_unpacked u;  /* owns what data points into */
} dist_msg;

/* 0, or -1 with a message in err (m is then empty: dist_msg_free is a no-op). */
int dist_msg_decode(const void *p, size_t len, dist_msg *m, char *err, size_t errlen);
void dist_msg_free(dist_msg *m);

/* The structural check alone: 0 when p holds exactly one well-formed msgpack
 * object within the limits above, else -1 with a message. */
int dist_msgpack_check(const uint8_t *p, size_t len, char *err, size_t errlen);

/* ---- reading data ---- */

/* The value of key in a map (string keys), or NULL. */
const msgpack_object *dist_map_get(const msgpack_object *map, const char *key);
/* A number (int, uint or float) as double; 0 ok, -1 not a number. */
int dist_obj_num(const msgpack_object *o, double *out);
/* An integer (int, uint, or an integral float) as int64; 0 ok, -1 otherwise. */
int dist_obj_int(const msgpack_object *o, int64_t *out);
/* A string copied into out (NUL-terminated, truncated); 0 ok, -1 not a string. */
int dist_obj_str(const msgpack_object *o, char *out, size_t len);
/* 1 when o is a string equal to s. */
int dist_obj_streq(const msgpack_object *o, const char *s);

/* ---- building messages ---- */

typedef struct dist_pack {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} dist_pack;

void dist_pack_init(dist_pack *p);
void dist_pack_free(dist_pack *p);
/* Starts a message: the 3-array, its type; the caller then packs the data
 * object, then dist_pack_end() packs node_id. */
void dist_pack_begin(dist_pack *p, const char *type);
void dist_pack_end(dist_pack *p, const char *node_id);
void dist_pack_str(dist_pack *p, const char *s);
void dist_pack_strn(dist_pack *p, const char *s, size_t n);

#endif
