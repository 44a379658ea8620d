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

/* The file the scenario came from ("(quick)" for the quick mode). */
const char *scenario_source(const scenario *sc);

#endif
