/*
 * dist/wire: the data maps of Locust's messages as aiload builds them
 * (locust/stats.py StatsEntry.serialize, StatsError.serialize,
 * runners.py WorkerRunner): a worker's "stats" report from a runner_delta,
 * and the helpers shared by both sides.
 *
 * Response times travel as Locust keeps them: a {rounded ms: count} dict
 * (round to 1 ms below 100 ms, 10 ms below 1 s, 100 ms below 10 s, 1 s
 * above; Python's round-half-even), so a Locust master merges aiload's
 * reports exactly as its own workers'. Each entry also carries
 * "aiload_hist": [[value_us, count], ...], the full-precision histogram
 * (slot lowest-equivalent values), plus "aiload_sum_us"; a Locust master
 * ignores both (it keeps only StatsEntryDict's keys).
 */
#ifndef LOADGEN_DIST_WIRE_H
#define LOADGEN_DIST_WIRE_H

#include "loadgen/dist/msg.h"
#include "loadgen/runner.h"
#include "loadgen/scenario.h"

/* Locust's bucket of a response time in milliseconds. */
int64_t dist_round_ms(double ms);

/* Packs {class name: count, ...} in scenario order. */
void dist_pack_class_counts(dist_pack *p, const scenario *sc, const int *counts);

/* Packs the data map of a worker's "stats" message: stats (entries with
 * requests or failures), stats_total, errors, user_classes_count and
 * user_count. d may be NULL (nothing recorded). start_time: Unix time the
 * worker's test started. -ENOMEM or 0. */
int dist_pack_report(dist_pack *p, const scenario *sc, const runner_delta *d, double start_time,
                     const int *class_users, int user_count);

/* Master: reads a worker's "stats" data map into out (same nentries as sc):
 * entries are matched to sc's rows by (method, name); aiload_hist is used
 * when present (exact), else Locust's rounded buckets (each recorded at its
 * bucket's value). Errors map back to aiload's error kinds (aiload_kind /
 * aiload_code from aiload workers; "HTTPError('NNN ...')" from Locust's;
 * anything else counts as other). class_users (scenario order) and
 * *user_count get user_classes_count / user_count. Rows the scenario lacks
 * are counted in *unknown and skipped. 0, or -1 with err when the map is not
 * a report at all. */
struct lg_stats;
int dist_parse_report(const scenario *sc, const msgpack_object *data, struct lg_stats *out,
                      int *class_users, int *user_count, size_t *unknown, char *err, size_t errlen);

/* Locust's "exception" data {"msg": str, "traceback": str or None}: both
 * copied (NUL-terminated; an embedded NUL ends the text) into *msg and *tb,
 * the caller frees. 0, -EINVAL with err (not that shape), -ENOMEM. */
int dist_parse_exception(const msgpack_object *data, char **msg, char **tb, char *err,
                         size_t errlen);

/* aiload's open-model share in spawn ("aiload_open"): {"rate": r, "stages":
 * [[duration, rate], ...], "elapsed": s}, at most DIST_OPEN_MAX_STAGES
 * stages, numbers finite and >= 0, durations > 0. 0, or -EINVAL with err. */
#define DIST_OPEN_MAX_STAGES 62 /* the runner's 64, less the 2 a re-split adds */
int dist_parse_open(const msgpack_object *o, double *rate, runner_stage *stages, size_t *nstages,
                    double *elapsed, char *err, size_t errlen);

/* The "errors" key of a report: sha256 hex of Locust's "method.name.'error'". */
void dist_error_key(const char *method, const char *name, const char *error, char out[65]);

#endif
