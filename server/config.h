/*
 * config: aiserve's option table and the values read from an ini file (via
 * lib/ini), the environment and the command line.
 *
 * Every option is one cfg_option table entry. The core has its table
 * (config.c); each app kind brings its own (app_kind.options in app.h) and the
 * reader merges them, so adding an option is adding an entry. Values are
 * validated against the entry's type while reading; any error names the
 * option, the reason and where it came from ("app.ini:12", "--processes" or
 * "environment UWSGI_PROCESSES").
 *
 * Ownership: a cfg owns every string it hands out; they live until cfg_free.
 * A cfg is read-only after cfg_load and may be read from any thread.
 */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum cfg_type {
    CFG_BOOL, /* true/false, 1/0, yes/no, on/off; bare "--flag" or empty means true */
    CFG_INT,  /* decimal integer within [min, max] */
    CFG_SIZE, /* bytes with an optional k/m/g suffix (1024-based): 64k, 10M, 1GiB */
    CFG_STR,  /* any text; the last occurrence wins */
    CFG_LIST, /* repeated keys accumulate, in order, within one source (env, mount) */
} cfg_type;

typedef struct cfg_option {
    const char *name;  /* "processes"; NULL ends a table */
    const char *alias; /* "workers", several as "virtualenv|venv", or NULL */
    cfg_type type;
    const char *def;  /* default as text ("1", "8k", "false"), or NULL for unset */
    int64_t min, max; /* bounds for CFG_INT / CFG_SIZE (both 0: no bounds) */
    const char *help; /* one line for --help and docs/config.md */
} cfg_option;

typedef struct cfg cfg;

/* The core's options (config.c). */
extern const cfg_option cfg_core_options[];

/* Reads argv (program name excluded): an optional ini path as the first
 * non-flag argument or --ini FILE, then --name=value / --name value / --flag;
 * and the environment: UWSGI_NAME=value / AISERVE_NAME=value for any known
 * option (UWSGI_INI / AISERVE_INI name the file when argv does not).
 * Precedence: flags > AISERVE_* > UWSGI_* > ini > default; a list option given
 * by a higher source replaces the lower sources' items (repeats within one
 * source accumulate). tables is a NULL-terminated array of option tables.
 * Returns 0 and *out, or -1 with a message in err ("app.ini:12: option
 * 'processes': 'x' is not an integer"), or -2 when a fault is in a
 * command-line flag (a usage error: the program exits 2). Every fault of one
 * run is reported, one per line ('\n'-separated; every unknown key with its
 * file:line and the closest known name), so err may hold several lines. --help and
 * --version are not handled here. */
int cfg_load(int argc, char **argv, const cfg_option *const *tables, cfg **out, char *err,
             size_t errlen);
void cfg_free(cfg *c);

/* Value accessors; name may be an alias. Unknown names are programmer errors
 * (they return 0/NULL). */
const char *cfg_str(const cfg *c, const char *name); /* NULL if unset */
int64_t cfg_int(const cfg *c, const char *name);     /* INT, SIZE, BOOL (0/1) */
int cfg_bool(const cfg *c, const char *name);
int cfg_is_set(const cfg *c, const char *name); /* given in the file or a flag */
/* List values: *n items, each NUL-terminated; NULL if none. */
const char *const *cfg_list(const cfg *c, const char *name, size_t *n);
/* Where a value came from ("app.ini:12", "--mount", "environment UWSGI_MOUNT",
 * "default"); i picks a list item (0 for scalars). For error messages of app
 * kinds. */
const char *cfg_where(const cfg *c, const char *name, size_t i);
/* The ini file given (without its ":section"), or NULL. */
const char *cfg_file(const cfg *c);
/* Notes and warnings of the load ("note: app.ini:4: 'thunder-lock' has no
 * meaning here (...); ignored", "warning: ...: unknown option ..." with
 * strict = false), one line each, for the caller to print once. */
const char *const *cfg_messages(const cfg *c, size_t *n);

/* Writes the --help text, wrapped at 100 columns: the core's table
 * (tables[0]) in groups (server, processes, logging), then each further table
 * under titles[i] (titles may be NULL). */
void cfg_print_help(const cfg_option *const *tables, const char *const *titles, void *file);

/* The value parsers, exposed for tests and app kinds. 0 or -1. */
int cfg_parse_bool(const char *s, int *out);
int cfg_parse_size(const char *s, int64_t *out);
int cfg_parse_int(const char *s, int64_t *out);

#endif
