/*
 * scenario: the parsed, validated, immutable description of what simulated
 * users do (docs/scenario.md): user classes with weight, host and wait time;
 * tasks with weight, method, path template, headers, body, stats name and
 * checks; on_start requests; sequential task lists.
 *
 * A scenario is built once (from a file, or from a URL for the wrk-like quick
 * mode) and then only read, by any number of threads at once.
 * Ownership: scenario_free() releases everything the scenario holds.
 */
#ifndef LOADGEN_SCENARIO_H
#define LOADGEN_SCENARIO_H

#include <stddef.h>

#include "lib/buf.h"

typedef struct scenario scenario;

/* Options of the quick mode (no scenario file): one class, one task. */
typedef struct scenario_quick {
    const char *url;            /* http://host[:port]/path[?query] */
    const char *method;         /* NULL: GET */
    const char *const *headers; /* "Name: value" strings */
    size_t nheaders;
    const char *body_file; /* NULL: no body */
} scenario_quick;

/* Parses a scenario file. On error returns NULL and writes "file:line: what"
 * into err (a NUL-terminated message, truncated to errlen). */
scenario *scenario_load(const char *path, char *err, size_t errlen);

/* Parses scenario text held in memory; name is used in messages as the file. */
scenario *scenario_parse(const char *text, size_t len, const char *name, char *err, size_t errlen);

/* Builds the one-task scenario of the quick mode. NULL + message on error. */
scenario *scenario_from_quick(const scenario_quick *q, char *err, size_t errlen);

void scenario_free(scenario *sc);

/* The default host of the scenario (the first class's host, or the file's
 * [settings] host), or NULL when none is set and -H must be given. */
const char *scenario_host(const scenario *sc);

/* Number of user classes and their names (for a class picker or reports). */
size_t scenario_class_count(const scenario *sc);
const char *scenario_class_name(const scenario *sc, size_t i);

/* What the command line changes in a scenario before a run: Locust's
 * -T/--tags, -E/--exclude-tags and --equal-weights. The strings are borrowed;
 * each may hold several tags separated by commas or spaces. */
typedef struct scenario_options {
    const char *const *tags;         /* keep only tasks with at least one of these */
    size_t ntags;                    /* 0: no include filter */
    const char *const *exclude_tags; /* drop tasks with any of these */
    size_t nexclude_tags;
    int equal_weights;          /* every task of a class, and every class, equally likely */
    const char *const *classes; /* Locust's positional UserClass arguments: keep only these */
    size_t nclasses;            /* 0: every class */
} scenario_options;

/* Applies o to sc in place, once, after parsing and before sc is handed to a
 * runner (from then on it is immutable). Tasks failing the tag filters are
 * removed (the rest keep file order; on_start requests are never filtered);
 * a class left without a task is removed, as are its stats rows. Notes for the
 * user (a class removed, a tag no task has) are appended to notes, one line
 * each (notes may be NULL). Classes not named in o->classes go first.
 * Returns 0; -ENOENT when a named class does not exist or no class would keep
 * a task (err names them, sc is unchanged); -ENOMEM (sc is then only fit for
 * scenario_free). */
int scenario_apply_options(scenario *sc, const scenario_options *o, buf *notes, char *err,
                           size_t errlen);

/* Splits n users over the classes as Locust does: classes with a fixed_count
 * are filled first (while n is below the sum of the fixed counts, they share
 * it in proportion to their fixed_count, ties to the earlier class); the rest
 * goes to the other classes by weight (largest remainder). per_class has
 * scenario_class_count() slots. Returns the number of users placed: less than
 * n only when no weighted class can take the surplus. */
int scenario_split_users(const scenario *sc, int n, int *per_class);

/* The fixed_count of class i (0: the class is weighted). */
int scenario_class_fixed_count(const scenario *sc, size_t i);

/* The file the scenario came from ("(quick)" for the quick mode). */
const char *scenario_source(const scenario *sc);

#endif
