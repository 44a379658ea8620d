/*
 * scenario internals, shared by the parser, the request renderer and the
 * worker threads. Everything here is immutable once scenario_load() returns.
 */
#ifndef LOADGEN_SCENARIO_INT_H
#define LOADGEN_SCENARIO_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "loadgen/scenario.h"

/* One piece of a template such as "/item/${randint(1,100)}?u=${user_id}". */
typedef enum sc_part_kind {
    SC_LIT,     /* literal bytes */
    SC_RANDINT, /* ${randint(a,b)}: uniform integer in [a, b] */
    SC_CHOICE,  /* ${choice(x,y,z)}: one of the listed strings */
    SC_USER_ID, /* ${user_id}: the simulated user's number, from 1 */
    SC_SEQ,     /* ${seq}: a per-user counter, from 1 */
} sc_part_kind;

typedef struct sc_part {
    sc_part_kind kind;
    char *text; /* SC_LIT: the bytes; SC_CHOICE: the options, NUL-separated */
    size_t len; /* SC_LIT: byte count; SC_CHOICE: number of options */
    char **choices;
    int64_t lo, hi;
} sc_part;

typedef struct sc_tmpl {
    sc_part *parts;
    size_t nparts;
    int is_static; /* only literals: text/len hold the whole value */
    char *text;
    size_t len;
} sc_tmpl;

typedef enum sc_wait_kind {
    SC_WAIT_CONSTANT,
    SC_WAIT_BETWEEN,
    SC_WAIT_PACING, /* constant_pacing(x) and constant_throughput(1/x) */
} sc_wait_kind;

typedef struct sc_request {
    char method[16];
    sc_tmpl path;
    char *path_raw;   /* the path as written (the default stats name) */
    sc_tmpl *headers; /* each "Name: value" */
    size_t nheaders;
    sc_tmpl body;    /* inline body (may hold substitutions) */
    char *body_file; /* bytes of body_file, if given (then body is empty) */
    size_t body_file_len;
    int has_body;
    char *name;  /* stats name as given, or NULL: the path as written */
    int entry;   /* index into scenario.entries */
    int *expect; /* expected status codes; none: any status < 400 passes */
    size_t nexpect;
    char *contains; /* body must contain this, or NULL */
    size_t contains_len;
    double weight;
    char **tags; /* [task] tags (Locust's @tag), deduplicated; each malloc'd */
    size_t ntags;
    int line; /* where it was declared, for messages */
} sc_request;

typedef struct sc_class {
    char *name;
    double weight;
    int fixed_count; /* > 0: exactly this many users, before the weighted ones */
    char *host;      /* NULL: scenario/CLI host */
    sc_wait_kind wait;
    double wait_a, wait_b; /* seconds */
    int sequential;        /* tasks run in declaration order, looping */
    sc_request *tasks;
    size_t ntasks;
    double total_weight;
    sc_request *on_start;
    size_t non_start;
} sc_class;

typedef struct sc_entry {
    char method[16];
    char name[256];
} sc_entry;

struct scenario {
    char *source;
    char *host;
    sc_class *classes;
    size_t nclasses;
    sc_entry *entries; /* distinct (method, name) stats rows */
    size_t nentries;
};

/* The stats row of (method, name), added when new. Its index, or -1 (OOM). */
int sc_entry_of(scenario *sc, const char *method, const char *name);

/* Adds the tags of a `tags = a, b c` value (space- or comma-separated) to r,
 * skipping ones it has. 0, -EINVAL (no tag in v) or -ENOMEM. */
int sc_tags_add(sc_request *r, const char *v);

/* Frees what r holds (not r itself). */
void sc_request_free(sc_request *r);
/* Frees what a class owns (tasks, on_start requests, strings), not c itself. */
void sc_class_free(sc_class *c);

/* Renders t into out (appending). rng: a xorshift64 state; user_id/seq for the
 * per-user substitutions. Allocation-free once out has grown. 0 or -ENOMEM. */
int sc_render(const sc_tmpl *t, buf *out, uint64_t *rng, uint64_t user_id, uint64_t seq);

/* A xorshift64* step; never returns 0 for a non-zero state. */
uint64_t sc_rand(uint64_t *state);
/* Uniform double in [0, 1). */
double sc_rand01(uint64_t *state);

#endif
