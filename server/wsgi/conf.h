/*
 * wsgi_conf: the options of a WSGI app (uWSGI's names), parsed and checked
 * before anything touches CPython. Pure C, so the config reader can validate a
 * file without starting an interpreter.
 *
 * Ownership: a wsgi_conf owns every string it holds; wsgi_conf_free() releases
 * them. Setters copy their arguments.
 */
#ifndef SERVER_WSGI_CONF_H
#define SERVER_WSGI_CONF_H

#include <stddef.h>

/* Where one app comes from: a module ("pkg.mod") or a file, plus the callable. */
typedef struct wsgi_target {
    char *module;   /* dotted module name, or NULL */
    char *file;     /* path of a .py file (wsgi-file), or NULL */
    char *callable; /* attribute name; never NULL once resolved */
} wsgi_target;

/* One mount point: requests under prefix go to target, prefix becomes SCRIPT_NAME. */
typedef struct wsgi_mount {
    char *prefix; /* "" for the root app, else "/a/b" without a trailing slash */
    wsgi_target target;
} wsgi_mount;

typedef struct wsgi_conf {
    char *module;    /* `module`, may carry ":callable" */
    char *wsgi_file; /* `wsgi-file` */
    char *callable;  /* `callable`; NULL means "application" */
    char *chdir;
    char *home; /* `home` / `virtualenv`: a venv whose site-packages join sys.path */
    char **pythonpath;
    size_t npythonpath;
    char **env; /* "KEY=VALUE" */
    size_t nenv;
    wsgi_mount *mounts; /* explicit `mount` entries, in file order */
    size_t nmounts;
    int need_app;   /* exit when an app cannot be loaded (default on) */
    int lazy_apps;  /* import in each worker after fork */
    int threads;    /* per worker, for wsgi.multithread */
    int processes;  /* for wsgi.multiprocess */
    int fork_probe; /* check in a throw-away child whether importing starts threads */
} wsgi_conf;

void wsgi_conf_init(wsgi_conf *c);
void wsgi_conf_free(wsgi_conf *c);

/*
 * The string options, one setter each: checks value and stores a copy (the
 * repeatable ones, pythonpath, env and mount, append). opt is the option's
 * name for the message. Returns 0, or -EINVAL with a message in err, or
 * -ENOMEM. The kind (app.c) calls them from a table bound to the fields of
 * its option structs, so there is no lookup by name to misspell; the typed
 * options (need_app, lazy_apps, threads, processes, fork_probe) are already
 * parsed and checked by the config reader and are assigned directly.
 * module is checked against callable, so set callable first.
 */
typedef int (*wsgi_conf_setter)(wsgi_conf *c, const char *opt, const char *value, char *err,
                                size_t errlen);
int wsgi_conf_module(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen);
int wsgi_conf_wsgi_file(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen);
int wsgi_conf_callable(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen);
int wsgi_conf_chdir(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen);
int wsgi_conf_home(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen);
int wsgi_conf_pythonpath(wsgi_conf *c, const char *opt, const char *value, char *err,
                         size_t errlen);
int wsgi_conf_env(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen);
int wsgi_conf_mount(wsgi_conf *c, const char *opt, const char *value, char *err, size_t errlen);

/* Whether the configuration names any app at all. */
int wsgi_conf_has_app(const wsgi_conf *c);

/*
 * Builds the full mount list: the explicit mounts plus the root app from
 * module/wsgi-file (prefix ""), sorted longest prefix first so the first match
 * wins. Returns the count, or -ENOMEM / -EINVAL (message in err). The caller
 * frees the array with wsgi_mounts_free().
 */
int wsgi_conf_mounts(const wsgi_conf *c, wsgi_mount **out, char *err, size_t errlen);
void wsgi_mounts_free(wsgi_mount *m, size_t n);

/*
 * Parses "pkg.mod:callable", "pkg.mod" or "path/to/file.py[:callable]" into t
 * (copies; free with wsgi_target_free). A spec ending in ".py" or containing a
 * '/' is a file. default_callable is used when the spec names none.
 */
int wsgi_target_parse(wsgi_target *t, const char *spec, const char *default_callable, char *err,
                      size_t errlen);
void wsgi_target_free(wsgi_target *t);

/*
 * Finds the mount for a decoded path: returns its index, or -1. *script_len is
 * set to the length of the prefix (the SCRIPT_NAME); the rest is PATH_INFO.
 * A prefix matches at a segment boundary only ("/app" matches "/app" and
 * "/app/x", never "/apple").
 */
int wsgi_mount_match(const wsgi_mount *m, size_t n, const char *path, size_t path_len,
                     size_t *script_len);

#endif
