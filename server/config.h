/*
 * config: aiserve's option table and the values read from an ini file (via
 * lib/ini), the environment and the command line.
 *
 * Every option is one cfg_option table entry, bound to a field of a struct:
 * the core's table (config.c) fills cfg_core; each app kind brings its own
 * table and struct (app_kind.options in app.h) and the reader merges the
 * tables, so adding an option is adding an entry and a field. Values are
 * validated against the entry's type while reading; any error names the
 * option, the reason and where it came from ("app.ini:12", "--processes" or
 * "environment UWSGI_PROCESSES"). Code reads the typed structs
 * (cfg_core_values(c)->harakiri), never an option by its name.
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

/* A list option's items, in order; v is NULL when there are none. */
typedef struct cfg_list {
    const char *const *v;
    size_t n;
} cfg_list;

/* One option, bound (nginx's ngx_command_t style) to a field of the struct
 * its table fills: the reader parses the value and stores it at off, so code
 * reads o->harakiri instead of looking a name up. The field's type follows
 * the option's: CFG_BOOL int; CFG_INT int or int64_t (bounds within the
 * field); CFG_SIZE int64_t; CFG_STR const char * (NULL: unset); CFG_LIST
 * cfg_list. Write entries with CFG_BIND, which refuses a misspelt field or
 * one of the wrong type at compile time, and end a table with CFG_END. */
typedef struct cfg_option {
    const char *name;  /* "processes"; NULL ends a table */
    const char *alias; /* "workers", several as "virtualenv|venv", or NULL */
    cfg_type type;
    size_t off;        /* offsetof the field; in the ending entry: sizeof the struct */
    size_t width;      /* sizeof the field */
    const char *field; /* the field's name, "max_requests" (for the table test) */
    const char *def;   /* default as text ("1", "8k", "false"), or NULL for unset */
    int64_t min, max;  /* bounds for CFG_INT / CFG_SIZE (both 0: no bounds) */
    const char *help;  /* one line for --help and docs/config.md */
} cfg_option;

/* The field types each option type may bind to (1: allowed). */
#define CFG_FIELD_OK_CFG_BOOL(T, f) _Generic(((T *)0)->f, int : 1, default : 0)
#define CFG_FIELD_OK_CFG_INT(T, f)  _Generic(((T *)0)->f, int : 1, int64_t : 1, default : 0)
#define CFG_FIELD_OK_CFG_SIZE(T, f) _Generic(((T *)0)->f, int64_t : 1, default : 0)
#define CFG_FIELD_OK_CFG_STR(T, f)  _Generic(((T *)0)->f, const char * : 1, default : 0)
#define CFG_FIELD_OK_CFG_LIST(T, f) _Generic(((T *)0)->f, cfg_list : 1, default : 0)
/* type, off, width and field of an entry for field f of struct T: a field T lacks,
 * or one whose type does not fit the option type, does not compile (a
 * negative array size). */
#define CFG_BIND(T, type, f)                                                                       \
    type, offsetof(T, f) + 0 * sizeof(char[CFG_FIELD_OK_##type(T, f) ? 1 : -1]),                   \
        sizeof(((T *)0)->f), #f
/* clang-format off */
#define CFG_END(T) {.name = NULL, .off = sizeof(T)}
/* clang-format on */

typedef struct cfg cfg;

/* The core's option values (table cfg_core_options in config.c): one field
 * per option, named after it with '_' for '-'. */
typedef struct cfg_core {
    cfg_list http;
    cfg_list socket;
    const char *chmod_socket;
    int vacuum;
    int master;
    int processes;
    int threads;
    int enable_threads;
    int listen;
    int need_app;
    int lazy_apps;
    int harakiri;
    int64_t max_requests;
    int64_t max_requests_delta;
    int64_t reload_on_rss;
    int64_t evil_reload_on_rss;
    int64_t limit_as;
    int max_connections;
    int64_t buffer_size;
    int64_t limit_post;
    int64_t post_buffering;
    int socket_timeout;
    int http_keepalive;
    int die_on_term;
    int reload_mercy;
    const char *pidfile;
    int auto_procname;
    const char *procname_prefix;
    const char *procname_prefix_spaced;
    const char *uid;
    const char *gid;
    const char *chdir;
    cfg_list env;
    cfg_list static_map;
    cfg_list mount;
    int disable_logging;
    const char *logto;
    const char *log_format;
    int strict;
    const char *hello_route;
    const char *health_route;
    const char *metrics_route;
    const char *delay_route;
    const char *sleep_route;
    cfg_list builtins;
    cfg_list https;
    const char *auth_token_file;
    int auth_apps;
    const char *rate_limit;
    int max_connections_per_ip;
    int request_id;
    cfg_list admin;
    int cheaper;
    int cheaper_initial;
    int cheaper_step;
    int cheaper_overload;
    const char *cheaper_algo;
    int cheaper_idle;
    int cheaper_busyness_min;
    int cheaper_busyness_max;
    int cheaper_busyness_multiplier;
    int cheaper_busyness_penalty;
    int cheaper_busyness_backlog_alert;
    int cheaper_busyness_backlog_step;
    int cheaper_queue_target_ms;
    int cheaper_threads_initial; /* 0: threads */
    int64_t cheaper_rss_limit_soft;
    int64_t cheaper_rss_limit_hard;
    int server_timing;
    const char *stats;
    int stats_http;
    cfg_list master_fifo;
    int py_autoreload;
    cfg_list touch_reload;
    cfg_list touch_chain_reload;
    cfg_list touch_workers_reload;
} cfg_core;

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

/* The values of one table's options, filled by cfg_load: a struct of the
 * type the table binds (cfg_core for cfg_core_options; a kind's own for its
 * table), or NULL for a table not loaded. */
const void *cfg_values(const cfg *c, const cfg_option *table);
const cfg_core *cfg_core_values(const cfg *c);
/* Where the value of field (a pointer into a cfg_values struct) came from
 * ("app.ini:12", "--mount", "environment UWSGI_MOUNT", "default"); i picks a
 * list item (0 for scalars). For error messages: cfg_where(c, &o->mount, i). */
const char *cfg_where(const cfg *c, const void *field, size_t i);
/* The name of the option bound to field ("processes"), for messages of code
 * that applies a struct's fields in a table of its own; "?" for no option. */
const char *cfg_name(const cfg *c, const void *field);
/* 1 if field's value was given (in the file, the environment or a flag). */
int cfg_is_set(const cfg *c, const void *field);
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
