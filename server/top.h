/*
 * top: `aiserve top ADDR` (or `aiserve --top ADDR`), a uwsgitop-like view of
 * a stats server, refreshed every second.
 */
#ifndef SERVER_TOP_H
#define SERVER_TOP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define TOP_MAX_WORKERS 512

/* Requests per worker id at the previous frame, for the rates. */
typedef struct top_prev {
    uint64_t requests[TOP_MAX_WORKERS + 1];
    double t; /* seconds, monotonic; 0: no previous frame */
} top_prev;

/* Renders one frame of the stats document doc (JSON, or an HTTP response
 * carrying it) at time now into out, and records the counts in prev.
 * 0, or -1 with a message in out. */
int top_render(const char *doc, size_t len, top_prev *prev, double now, buf *out);
/* argv after "top": ADDR [--once]. Returns the exit code. */
int top_main(int argc, char **argv);

#endif
