/*
 * servertiming: the phases of a response's Server-Timing header (W3C Server
 * Timing: `name;dur=MS;desc="..."`, comma separated). aiload splits a
 * request's time into network+client, server queue and app (compute): the
 * metric "queue" (also "wait") is the queue, "app" (also "compute",
 * "inference", "handler") the app; other metrics are ignored. Parsed only
 * when a response carries the header.
 */
#ifndef LOADGEN_SERVERTIMING_H
#define LOADGEN_SERVERTIMING_H

#include <stddef.h>
#include <stdint.h>

enum { LG_ST_NET, LG_ST_QUEUE, LG_ST_APP, LG_ST_NPHASES };
#define LG_ST_HAVE_QUEUE 1
#define LG_ST_HAVE_APP   2

/* Adds the durations (microseconds) found in value to *queue_us / *app_us
 * (a metric repeated, or a header repeated, adds up). Returns the LG_ST_HAVE_*
 * bits of what was found; malformed parts are skipped, never read past len. */
int lg_st_parse(const char *value, size_t len, int64_t *queue_us, int64_t *app_us);

/* "network+client", "server queue", "app" */
const char *lg_st_phase_name(int phase);

#endif
