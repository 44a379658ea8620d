/*
 * pyship: the records a --processes child sends its parent through a pipe,
 * so that the parent's statistics are one run's. Every request crosses with
 * its exact timings; rows are named once per child. Native byte order (both
 * ends are the same binary on the same machine):
 *
 *   'E' u32 row, u16 len, method, u16 len, name        a row's first use
 *   'R' u32 row, i64 lat_us, i64 svc_us, u64 bytes, u16 len, error (0: success)
 *   'J' u32 len, text                                   a control message (JSON)
 *
 * The parent's side (pyship_ingest) takes the stream in pieces of any size.
 */
#ifndef LOADGEN_PY_PYSHIP_H
#define LOADGEN_PY_PYSHIP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "loadgen/py/pystats.h"

#define PYSHIP_MAX_ERROR 4000
#define PYSHIP_MAX_ROWS  1000000

int pyship_put_entry(buf *b, uint32_t row, const char *method, const char *name);
int pyship_put_record(buf *b, uint32_t row, int64_t lat_us, int64_t svc_us, uint64_t bytes,
                      const char *error);
int pyship_put_json(buf *b, const char *text, size_t len);

/* One child's stream as the parent reads it. Zero it before the first use. */
typedef struct pyship_peer {
    buf rest; /* a record cut by the pipe, completed by the next piece */
    int *map; /* the child's row -> the parent's row (-1: not named yet) */
    size_t nmap;
} pyship_peer;

/* Appends data and records every whole record into st (at now_ns); calls
 * on_json for each control message. 0, or -EINVAL on a malformed stream
 * (then the peer is unusable), -ENOMEM. */
int pyship_ingest(pyship_peer *pe, pystats *st, const char *data, size_t len, int64_t now_ns,
                  void (*on_json)(void *ctx, const char *text, size_t len), void *ctx);

void pyship_peer_free(pyship_peer *pe);

#endif
