/*
 * Design: reading happens in two passes. Pass one collects every (key, value,
 * where, source) from the ini file, then the environment, then the flags, in
 * that order; pass two applies them. The split exists because `strict` may
 * appear anywhere (even after the unknown option it should excuse), and
 * because flags must override the file whatever their position.
 *
 * Precedence: command line > environment (AISERVE_* > UWSGI_*) > ini >
 * default. Scalars: the last value applied wins, and the collection order is
 * the precedence order. Lists: items accumulate within one source; the first
 * item from a higher source drops the items of lower ones, so
 * `aiserve app.ini --http=:5601` serves on :5601 only.
 */
#include "server/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/ini.h"

#define KB 1024
#define MB (1024 * 1024)

#define CORE(type, f) CFG_BIND(cfg_core, type, f)

const cfg_option cfg_core_options[] = {
    {"http", "http-socket", CORE(CFG_LIST, http), NULL, 0, 0,
     "address to serve HTTP on: [host]:port or a unix socket path (repeatable); workers speak "
     "HTTP themselves"},
    {"socket", "uwsgi-socket", CORE(CFG_LIST, socket), NULL, 0, 0,
     "address to serve the uwsgi protocol on, for nginx's uwsgi_pass: [host]:port or a unix "
     "socket path (repeatable)"},
    {"chmod-socket", NULL, CORE(CFG_STR, chmod_socket), NULL, 0, 0,
     "octal permissions of unix sockets, e.g. 660 (unset: as the umask leaves them)"},
    {"vacuum", NULL, CORE(CFG_BOOL, vacuum), "false", 0, 0, "remove unix socket files at exit"},
    {"master", NULL, CORE(CFG_BOOL, master), "true", 0, 0,
     "accepted for uWSGI compatibility: a master always supervises the workers"},
    {"processes", "workers", CORE(CFG_INT, processes), "1", 1, 512, "number of worker processes"},
    {"threads", NULL, CORE(CFG_INT, threads), "1", 1, 1024,
     "app threads per worker (for blocking handlers)"},
    {"enable-threads", NULL, CORE(CFG_BOOL, enable_threads), "true", 0, 0,
     "accepted; threads always work"},
    {"listen", NULL, CORE(CFG_INT, listen), "1024", 1, 1 << 20,
     "listen backlog; above net.core.somaxconn it is clamped with a warning"},
    {"need-app", NULL, CORE(CFG_BOOL, need_app), "false", 0, 0,
     "refuse to start when no app loads"},
    {"lazy-apps", NULL, CORE(CFG_BOOL, lazy_apps), "false", 0, 0,
     "load apps in each worker after fork"},
    {"harakiri", NULL, CORE(CFG_INT, harakiri), "0", 0, 86400,
     "seconds a request may run before its worker is replaced (0: off)"},
    {"max-requests", NULL, CORE(CFG_INT, max_requests), "0", 0, 1LL << 40,
     "recycle a worker gracefully after this many requests (0: never)"},
    {"max-requests-delta", NULL, CORE(CFG_INT, max_requests_delta), "0", 0, 1LL << 30,
     "add (worker id - 1) x delta to max-requests, so workers do not recycle together"},
    {"reload-on-rss", NULL, CORE(CFG_INT, reload_on_rss), "0", 0, 1 << 30,
     "recycle a worker gracefully once its RSS exceeds this many MiB, checked after each "
     "request (0: off)"},
    {"evil-reload-on-rss", NULL, CORE(CFG_INT, evil_reload_on_rss), "0", 0, 1 << 30,
     "kill a worker at once when its RSS exceeds this many MiB, checked after each request and "
     "by the master every 100 ms (0: off)"},
    {"limit-as", NULL, CORE(CFG_INT, limit_as), "0", 0, 1 << 30,
     "limit each worker's address space to this many MiB (allocations beyond fail) and recycle "
     "a worker that exceeds it after a request (0: off)"},
    {"max-connections", "worker-connections", CORE(CFG_INT, max_connections), "4096", 1, 1 << 20,
     "connections one worker holds open at most (idle ones cost no thread); beyond it new ones "
     "wait in the listen queue"},
    {"buffer-size", NULL, CORE(CFG_SIZE, buffer_size), "8k", 512, 1 * MB,
     "largest request head (request line + headers); larger gets 431"},
    {"limit-post", NULL, CORE(CFG_SIZE, limit_post), "0", 0, 0,
     "largest request body; larger gets 413 (0: no limit)"},
    {"post-buffering", NULL, CORE(CFG_SIZE, post_buffering), "1m", 0, 1024LL * MB,
     "bodies up to this size are read before the handler runs; larger ones stream"},
    {"socket-timeout", NULL, CORE(CFG_INT, socket_timeout), "30", 1, 3600,
     "seconds a slow client may take to send a head or body chunk, or to read"},
    {"http-keepalive", NULL, CORE(CFG_INT, http_keepalive), "15", 0, 3600,
     "seconds an idle keep-alive connection is kept (0: close after each response)"},
    {"die-on-term", NULL, CORE(CFG_BOOL, die_on_term), "false", 0, 0,
     "accepted; SIGTERM always drains and exits"},
    {"reload-mercy", "worker-reload-mercy", CORE(CFG_INT, reload_mercy), "30", 1, 3600,
     "seconds in-flight requests get to finish on reload or shutdown"},
    {"pidfile", NULL, CORE(CFG_STR, pidfile), NULL, 0, 0,
     "write the master's pid here (removed at exit)"},
    {"auto-procname", NULL, CORE(CFG_BOOL, auto_procname), "false", 0, 0,
     "name the processes in ps: 'aiserve master', 'aiserve worker N'"},
    {"procname-prefix", NULL, CORE(CFG_STR, procname_prefix), NULL, 0, 0,
     "text put before the process names (implies auto-procname)"},
    {"procname-prefix-spaced", NULL, CORE(CFG_STR, procname_prefix_spaced), NULL, 0, 0,
     "as procname-prefix, followed by a space"},
    {"uid", NULL, CORE(CFG_STR, uid), NULL, 0, 0, "user (name or id) to run as after binding"},
    {"gid", NULL, CORE(CFG_STR, gid), NULL, 0, 0, "group (name or id) to run as after binding"},
    {"chdir", NULL, CORE(CFG_STR, chdir), NULL, 0, 0, "directory to change to before loading apps"},
    {"env", NULL, CORE(CFG_LIST, env), NULL, 0, 0, "KEY=VALUE set in the environment (repeatable)"},
    {"static-map", NULL, CORE(CFG_LIST, static_map), NULL, 0, 0,
     "/prefix=/directory: serve files under the prefix (repeatable)"},
    {"mount", NULL, CORE(CFG_LIST, mount), NULL, 0, 0,
     "/prefix=target: mount an app at a path (repeatable)"},
    {"disable-logging", NULL, CORE(CFG_BOOL, disable_logging), "false", 0, 0, "no access log"},
    {"logto", NULL, CORE(CFG_STR, logto), NULL, 0, 0, "append logs to this file instead of stderr"},
    {"log-format", NULL, CORE(CFG_STR, log_format), "clf", 0, 0,
     "access log format: clf (common log) or json"},
    {"strict", NULL, CORE(CFG_BOOL, strict), "true", 0, 0,
     "unknown options refuse start-up (false: warn)"},
    {"hello-route", NULL, CORE(CFG_STR, hello_route), "/hello", 0, 0,
     "path of the built-in hello handler ('': off)"},
    {"health-route", NULL, CORE(CFG_STR, health_route), "/health", 0, 0,
     "prefix of /live and /ready ('': off)"},
    {"metrics-route", NULL, CORE(CFG_STR, metrics_route), "/metrics", 0, 0,
     "path of Prometheus metrics ('': off)"},
    {"delay-route", NULL, CORE(CFG_STR, delay_route), "/delay", 0, 0,
     "prefix of the httpbin-style delay ('': off)"},
    {"sleep-route", NULL, CORE(CFG_STR, sleep_route), "", 0, 0,
     "prefix of /{seconds}: a blocking sleep on an app thread, for tests ('': off)"},
    {"builtins", NULL, CORE(CFG_LIST, builtins), NULL, 0, 0,
     "built-ins the http/socket listeners serve: auto (unset: each where no app route covers "
     "its path), or hello,health,metrics,delay,sleep|all|none (served ahead of the apps)"},
    {"https", NULL, CORE(CFG_LIST, https), NULL, 0, 0,
     "TLS listener, uWSGI's syntax: addr,cert,key[,ciphers][,client_ca] (repeatable; TLS "
     "1.2/1.3, ALPN http/1.1; client_ca checks client certificates, '!ca' requires "
     "one); the files are read again on reload (SIGHUP)"},
    {"auth-token-file", NULL, CORE(CFG_STR, auth_token_file), NULL, 0, 0,
     "file of bearer tokens, one a line ('#' comments): the model endpoints then need "
     "'Authorization: Bearer <token>' (401 otherwise); read again on reload"},
    {"auth-apps", NULL, CORE(CFG_BOOL, auth_apps), "false", 0, 0,
     "the apps' routes need a bearer token too (with auth-token-file)"},
    {"rate-limit", NULL, CORE(CFG_STR, rate_limit), NULL, 0, 0,
     "requests per client address: N/s or N/m, optionally ',burst=B' (token bucket per "
     "worker; 429 with Retry-After beyond it; health checks are exempt)"},
    {"max-connections-per-ip", NULL, CORE(CFG_INT, max_connections_per_ip), "0", 0, 1000000,
     "open connections one client address may hold, over all workers (0: no cap; beyond it "
     "the first request gets 429 and the connection closes)"},
    {"request-id", NULL, CORE(CFG_BOOL, request_id), "false", 0, 0,
     "take the client's X-Request-Id (1..64 of [A-Za-z0-9._:+/=-]) or make one; it is "
     "logged, returned and given to apps as HTTP_X_REQUEST_ID"},
    {"admin", NULL, CORE(CFG_LIST, admin), NULL, 0, 0,
     "address of an admin listener that serves the built-ins only (health, metrics, ...): "
     "[host]:port or a unix socket path (repeatable)"},
    {"cheaper", NULL, CORE(CFG_INT, cheaper), "0", 0, 512,
     "adaptive worker count: the fewest workers to keep (below processes, the most); 0: off"},
    {"cheaper-initial", NULL, CORE(CFG_INT, cheaper_initial), "0", 0, 512,
     "workers started first (0: cheaper)"},
    {"cheaper-step", NULL, CORE(CFG_INT, cheaper_step), "1", 1, 512, "workers added at once"},
    {"cheaper-overload", NULL, CORE(CFG_INT, cheaper_overload), "3", 1, 3600,
     "spare: all-busy seconds before adding; backlog: queue threshold; busyness: window (s)"},
    {"cheaper-algo", NULL, CORE(CFG_STR, cheaper_algo), "spare", 0, 0,
     "spare, spare2, backlog, busyness or manual (master-fifo + and - only)"},
    {"cheaper-idle", NULL, CORE(CFG_INT, cheaper_idle), "10", 1, 3600,
     "spare2: seconds with more than cheaper idle workers before removing one"},
    {"cheaper-busyness-min", NULL, CORE(CFG_INT, cheaper_busyness_min), "25", 0, 100,
     "busyness: remove below this %"},
    {"cheaper-busyness-max", NULL, CORE(CFG_INT, cheaper_busyness_max), "50", 0, 100,
     "busyness: add above this %"},
    {"cheaper-busyness-multiplier", NULL, CORE(CFG_INT, cheaper_busyness_multiplier), "10", 1, 1000,
     "busyness: low windows in a row before removing a worker"},
    {"cheaper-busyness-penalty", NULL, CORE(CFG_INT, cheaper_busyness_penalty), "2", 0, 1000,
     "busyness: added to the multiplier when a worker is added soon after one was removed"},
    {"cheaper-busyness-backlog-alert", NULL, CORE(CFG_INT, cheaper_busyness_backlog_alert), "33", 0,
     1 << 20, "busyness: waiting requests that add workers at once (0: off)"},
    {"cheaper-busyness-backlog-step", NULL, CORE(CFG_INT, cheaper_busyness_backlog_step), "1", 1,
     512, "busyness: workers added on a backlog alert"},
    {"cheaper-queue-target-ms", NULL, CORE(CFG_INT, cheaper_queue_target_ms), "100", 1, 3600000,
     "queue: the wait for an app thread (ms) above which workers are added"},
    {"cheaper-threads-initial", NULL, CORE(CFG_INT, cheaper_threads_initial), "0", 0, 1 << 20,
     "queue: app threads a worker runs requests on at start, 1..threads (default: threads)"},
    {"cheaper-rss-limit-soft", NULL, CORE(CFG_SIZE, cheaper_rss_limit_soft), "0", 0, 0,
     "no worker is added while the workers' total RSS is above this (0: off)"},
    {"cheaper-rss-limit-hard", NULL, CORE(CFG_SIZE, cheaper_rss_limit_hard), "0", 0, 0,
     "a worker is removed while the workers' total RSS is above this (0: off)"},
    {"server-timing", NULL, CORE(CFG_BOOL, server_timing), "false", 0, 0,
     "add a Server-Timing header (queue: wait for an app thread, app: handler until the head)"},
    {"stats", "stats-server", CORE(CFG_STR, stats), NULL, 0, 0,
     "serve uWSGI's stats JSON here, one document per connection: host:port or a unix path"},
    {"stats-http", NULL, CORE(CFG_BOOL, stats_http), "false", 0, 0,
     "frame the stats JSON as an HTTP response"},
    {"master-fifo", NULL, CORE(CFG_LIST, master_fifo), NULL, 0, 0,
     "control fifo of the master (uWSGI's one-letter commands; the first one given is used)"},
    {"py-autoreload", "python-autoreload", CORE(CFG_INT, py_autoreload), "0", 0, 3600,
     "development: every N seconds, reload when a file of a module the master imported "
     "changed (0: off)"},
    {"touch-reload", NULL, CORE(CFG_LIST, touch_reload), NULL, 0, 0,
     "graceful reload when this file's mtime changes"},
    {"touch-chain-reload", NULL, CORE(CFG_LIST, touch_chain_reload), NULL, 0, 0,
     "chain reload (one worker at a time) when this file's mtime changes"},
    {"touch-workers-reload", NULL, CORE(CFG_LIST, touch_workers_reload), NULL, 0, 0,
     "reload the workers only (fork from the master) when this file's mtime changes"},
    CFG_END(cfg_core),
};

struct cfg_val {
    const cfg_option *opt;
    size_t tab; /* index of opt's table in cfg.tabs */
    int set;
    char *str;
    char *where;
    int64_t num;
    char **items;
    char **item_where;
    size_t nitems;
    int src; /* enum cfg_src of the value (of every item, for lists) */
};

/* One option table and the struct its values are bound into. */
struct cfg_tab {
    const cfg_option *opts;
    size_t size; /* of the struct: the ending entry's off */
    void *values;
};

struct cfg {
    struct cfg_val *v;
    size_t n;
    struct cfg_tab *tabs;
    size_t ntabs;
    char *file;  /* the spec given: "app.ini" or "app.ini:section" */
    char *path;  /* its file */
    char **msgs; /* notes and warnings for the caller to print */
    size_t nmsgs;
};

/* Where a value comes from, lowest first: a higher source replaces what a
 * lower one gave, list options included (their items accumulate only within
 * one source). */
enum cfg_src { SRC_DEFAULT, SRC_INI, SRC_ENV_UWSGI, SRC_ENV_AISERVE, SRC_FLAG };

typedef struct pending {
    char *key, *value, *where;
    int bare;        /* a flag with no value: true for booleans */
    int src;         /* enum cfg_src */
    int placeholder; /* an ini key some %(key) used */
} pending;

typedef struct collect {
    pending *p;
    size_t n, cap;
} collect;

static int collect_add(collect *c, const char *key, const char *value, const char *where, int bare,
                       int src)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        pending *p = realloc(c->p, cap * sizeof(*p));
        if (!p) return -ENOMEM;
        c->p = p;
        c->cap = cap;
    }
    pending *e = &c->p[c->n];
    e->key = strdup(key);
    e->value = strdup(value ? value : "");
    e->where = strdup(where);
    e->bare = bare;
    e->src = src;
    e->placeholder = 0;
    if (!e->key || !e->value || !e->where) {
        free(e->key);
        free(e->value);
        free(e->where);
        return -ENOMEM;
    }
    c->n++;
    return 0;
}

static void collect_free(collect *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->p[i].key);
        free(c->p[i].value);
        free(c->p[i].where);
    }
    free(c->p);
}

/* ---- value parsers ---- */

int cfg_parse_bool(const char *s, int *out)
{
    if (!*s) return *out = 1, 0; /* uWSGI: "master =" sets the flag */
    static const char *const yes[] = {"true", "1", "yes", "on", "y", NULL};
    static const char *const no[] = {"false", "0", "no", "off", "n", NULL};
    for (int i = 0; yes[i]; i++) {
        if (!strcasecmp(s, yes[i])) return *out = 1, 0;
        if (!strcasecmp(s, no[i])) return *out = 0, 0;
    }
    return -1;
}

int cfg_parse_int(const char *s, int64_t *out)
{
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || s[0] == ' ' || s[0] == '+') return -1;
    *out = v;
    return 0;
}

int cfg_parse_size(const char *s, int64_t *out)
{
    if (*s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    int shift = 0;
    switch (*end) {
    case 0: break;
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default: return -1;
    }
    /* 64k, 64kb, 64KiB */
    if (shift && (*end == 'i' || *end == 'I') && (end[1] == 'b' || end[1] == 'B')) end++;
    if (shift && (*end == 'b' || *end == 'B')) end++;
    if (*end) return -1;
    if (v > (1ULL << (62 - shift))) return -1;
    *out = (int64_t)(v << shift);
    return 0;
}

/* ---- lookup ---- */

/* Steps through the '|'-separated aliases in *p: the next one's start and
 * length, or NULL after the last. */
static const char *next_alias(const char **p, size_t *len)
{
    const char *a = *p;
    if (!a || !*a) return NULL;
    const char *bar = strchr(a, '|');
    *len = bar ? (size_t)(bar - a) : strlen(a);
    *p = bar ? bar + 1 : NULL;
    return a;
}

static int has_name_n(const cfg_option *o, const char *name, size_t n)
{
    if (strlen(o->name) == n && !memcmp(o->name, name, n)) return 1;
    const char *p = o->alias, *a;
    size_t len;
    while ((a = next_alias(&p, &len)))
        if (len == n && !memcmp(a, name, n)) return 1;
    return 0;
}

static struct cfg_val *find_n(const cfg *c, const char *name, size_t n)
{
    for (size_t i = 0; i < c->n; i++)
        if (has_name_n(c->v[i].opt, name, n)) return &c->v[i];
    return NULL;
}

static struct cfg_val *find(const cfg *c, const char *name)
{
    return find_n(c, name, strlen(name));
}

/* 1 if o's name or any alias is already taken by an option in c. */
static int clashes(const cfg *c, const cfg_option *o)
{
    if (find(c, o->name)) return 1;
    const char *p = o->alias, *a;
    size_t len;
    while ((a = next_alias(&p, &len)))
        if (find_n(c, a, len)) return 1;
    return 0;
}

/* Parses and stores one value; -1 with a message naming where and why. */
static void drop_items(struct cfg_val *v)
{
    for (size_t j = 0; j < v->nitems; j++) {
        free(v->items[j]);
        free(v->item_where[j]);
    }
    v->nitems = 0;
    if (v->items) v->items[0] = NULL;
}

static int apply(struct cfg_val *v, const char *value, const char *where, int bare, int src,
                 char *err, size_t errlen)
{
    const cfg_option *o = v->opt;
    int64_t num = 0;
    if (bare && o->type != CFG_BOOL) {
        snprintf(err, errlen, "%s: option '%s' needs a value", where, o->name);
        return -1;
    }
    switch (o->type) {
    case CFG_BOOL: {
        int b = 1;
        if (!bare && cfg_parse_bool(value, &b)) {
            snprintf(err, errlen, "%s: option '%s': '%s' is not a boolean (true/false/yes/no/1/0)",
                     where, o->name, value);
            return -1;
        }
        num = b;
        break;
    }
    case CFG_INT:
    case CFG_SIZE:
        if ((o->type == CFG_INT ? cfg_parse_int : cfg_parse_size)(value, &num)) {
            snprintf(err, errlen, "%s: option '%s': '%s' is not %s", where, o->name, value,
                     o->type == CFG_INT ? "an integer" : "a size (e.g. 8k, 10M)");
            return -1;
        }
        if ((o->min || o->max) && (num < o->min || num > o->max)) {
            snprintf(err, errlen, "%s: option '%s': %s is out of range [%lld, %lld]", where,
                     o->name, value, (long long)o->min, (long long)o->max);
            return -1;
        }
        break;
    case CFG_STR:
    case CFG_LIST: break;
    }
    char *s = strdup(bare ? "true" : value), *w = strdup(where);
    if (!s || !w) goto nomem;
    if (o->type == CFG_LIST) {
        if (src > v->src) drop_items(v); /* a higher source replaces the list */
        char **it = realloc(v->items, (v->nitems + 2) * sizeof(char *));
        if (!it) goto nomem;
        v->items = it;
        char **iw = realloc(v->item_where, (v->nitems + 2) * sizeof(char *));
        if (!iw) goto nomem;
        v->item_where = iw;
        v->items[v->nitems] = s;
        v->item_where[v->nitems] = w;
        v->nitems++;
        v->items[v->nitems] = NULL;
    } else {
        free(v->str);
        free(v->where);
        v->str = s;
        v->where = w;
    }
    v->num = num;
    v->src = src;
    return 0;
nomem:
    free(s);
    free(w);
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* The field width an option type binds to (CFG_INT: either). */
static int width_fits(const cfg_option *o)
{
    switch (o->type) {
    case CFG_BOOL: return o->width == sizeof(int);
    case CFG_INT:
        if (o->width == sizeof(int64_t)) return 1;
        /* an int field needs bounds an int holds */
        return o->width == sizeof(int) && (o->min || o->max) && o->min >= INT_MIN &&
               o->max <= INT_MAX;
    case CFG_SIZE: return o->width == sizeof(int64_t);
    case CFG_STR: return o->width == sizeof(const char *);
    case CFG_LIST: return o->width == sizeof(cfg_list);
    }
    return 0;
}

static int build(const cfg_option *const *tables, cfg *c, char *err, size_t errlen)
{
    size_t n = 0, nt = 0;
    for (; tables[nt]; nt++)
        for (const cfg_option *o = tables[nt]; o->name; o++) n++;
    c->v = calloc(n ? n : 1, sizeof(*c->v));
    c->tabs = calloc(nt ? nt : 1, sizeof(*c->tabs));
    if (!c->v || !c->tabs) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t t = 0; t < nt; t++) {
        const cfg_option *end = tables[t];
        while (end->name) end++;
        struct cfg_tab *tab = &c->tabs[c->ntabs++];
        tab->opts = tables[t];
        tab->size = end->off;
        if (!(tab->values = calloc(1, tab->size ? tab->size : 1)))
            return snprintf(err, errlen, "out of memory"), -1;
        for (const cfg_option *o = tables[t]; o->name; o++) {
            /* programmer errors in a table, caught at the first start */
            if (o->off + o->width > tab->size || !width_fits(o)) {
                snprintf(err, errlen, "option '%s': its field does not fit its type or table",
                         o->name);
                return -1;
            }
            if (clashes(c, o)) {
                snprintf(err, errlen, "option '%s' is defined twice", o->name);
                return -1;
            }
            struct cfg_val *v = &c->v[c->n++];
            v->opt = o;
            v->tab = t;
            if (o->def && o->type != CFG_LIST &&
                apply(v, o->def, "default", 0, SRC_DEFAULT, err, errlen))
                return -1;
        }
    }
    return 0;
}

/* Stores every value into its table's struct, at its option's field. */
static void bind_all(cfg *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cfg_val *v = &c->v[i];
        const cfg_option *o = v->opt;
        char *field = (char *)c->tabs[v->tab].values + o->off;
        int b = (int)v->num;
        cfg_list l = {v->nitems ? (const char *const *)v->items : NULL, v->nitems};
        switch (o->type) {
        case CFG_BOOL: memcpy(field, &b, sizeof(b)); break;
        case CFG_INT:
        case CFG_SIZE:
            if (o->width == sizeof(int))
                memcpy(field, &b, sizeof(b));
            else
                memcpy(field, &v->num, sizeof(v->num));
            break;
        case CFG_STR: memcpy(field, &v->str, sizeof(v->str)); break;
        case CFG_LIST: memcpy(field, &l, sizeof(l)); break;
        }
    }
}

static int ini_entry(void *ud, const char *key, const char *value, const char *file, int line)
{
    collect *c = ud;
    if (!value) {
        /* `key` served as a %(key) placeholder: if it is no option, it is a
         * uWSGI custom option (project = x), not a typo */
        for (size_t i = 0; i < c->n; i++)
            if (!strcmp(c->p[i].key, key)) c->p[i].placeholder = 1;
        return 0;
    }
    char where[1200];
    snprintf(where, sizeof(where), "%s:%d", file, line);
    return collect_add(ud, key, value, where, 0, SRC_INI) ? -ENOMEM : 0;
}

/* uWSGI options that real-world ini files carry and that mean nothing to
 * aiserve (or that it does not offer): accepted with any value and a note, so
 * such a file loads under strict. */
static const struct noop {
    const char *name;
    int takes_value; /* on the command line: "--cheaper 2"; else a bare flag */
    const char *why;
} noops[] = {
    {"thunder-lock", 0, "workers wait on the listen sockets with EPOLLEXCLUSIVE: no herd to lock"},
    {"ignore-sigpipe", 0, "SIGPIPE is always ignored"},
    {"ignore-write-errors", 0, "write errors to vanished clients are never logged"},
    {"disable-write-exception", 0,
     "not offered: write() to a vanished client raises OSError('client disconnected')"},
    {"memory-report", 0, "not offered: worker RSS is watched by reload-on-rss"},
    {"no-orphans", 0, "workers always die with the master (PR_SET_PDEATHSIG)"},
    {"log-x-forwarded-for", 0, "not offered: the access log shows the peer address"},
    {"log-4xx", 0, "not offered: the access log has every request (disable-logging: none)"},
    {"log-5xx", 0, "not offered: the access log has every request (disable-logging: none)"},
    {"log-slow", 1, "not offered: the access log has duration_ms with log-format = json"},
    {"log-date", 0, "server messages always carry a timestamp"},
    {"logdate", 0, "server messages always carry a timestamp"},
    {"log-master", 0, "the master writes all logs already"},
    {"max-worker-lifetime", 1, "not offered: use max-requests or reload-on-rss"},
    {"offload-threads", 1, "static files go out with sendfile from the worker's event loop"},
    {"harakiri-verbose", 0, "harakiri always logs the request it stopped"},
    {NULL, 0, NULL},
};

static const struct noop *find_noop(const char *name)
{
    for (const struct noop *n = noops; n->name; n++)
        if (!strcmp(n->name, name)) return n;
    return NULL;
}

/* Splits argv into the ini path and (key, value) flags. The option table
 * decides whether "--opt" takes the next argument: booleans never do. */
static int read_args(const cfg *c, int argc, char **argv, collect *flags, char **file, char *err,
                     size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) {
            if (*file) return snprintf(err, errlen, "unexpected argument '%s'", a), -1;
            if (!(*file = strdup(a))) return snprintf(err, errlen, "out of memory"), -1;
            continue;
        }
        char key[128], where[160];
        const char *eq = strchr(a + 2, '=');
        size_t kl = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (kl >= sizeof(key)) return snprintf(err, errlen, "option '%.40s...' too long", a), -1;
        memcpy(key, a + 2, kl);
        key[kl] = 0;
        snprintf(where, sizeof(where), "--%s", key);
        const char *val = eq ? eq + 1 : NULL;
        if (!strcmp(key, "ini")) {
            if (!val && i + 1 < argc) val = argv[++i];
            if (!val || !*val) return snprintf(err, errlen, "--ini needs a file"), -1;
            if (*file) return snprintf(err, errlen, "more than one ini file given"), -1;
            if (!(*file = strdup(val))) return snprintf(err, errlen, "out of memory"), -1;
            continue;
        }
        const struct cfg_val *v = find(c, key);
        int bare = 0;
        if (!val) {
            const struct noop *no = v ? NULL : find_noop(key);
            if ((v && v->opt->type == CFG_BOOL) || (no && !no->takes_value))
                bare = 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                bare = 1; /* apply() reports "needs a value" for known options */
        }
        if (collect_add(flags, key, val, where, bare, SRC_FLAG))
            return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

/* uWSGI's environment form: UWSGI_PROCESSES=4 or AISERVE_PROCESSES=4 sets
 * `processes` (lower-cased, '_' for '-'). Only names of known options count:
 * the environment is shared with everything else in the process tree
 * (AISERVE_BUILD for the tests, the master's own AISERVE_LISTEN_FDS on a
 * reload), so other names under these prefixes are left alone, but for a
 * warning when one is a letter away from an option (UWSGI_PROCESES). UWSGI_* comes
 * first so that AISERVE_* wins over it. UWSGI_INI / AISERVE_INI name the ini
 * file when the command line names none. */
static void suggest(const cfg *c, const char *key, char *out, size_t outlen, size_t *dist);
static int add_msg(cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int read_env(cfg *c, collect *out, char **file, char *err, size_t errlen)
{
    extern char **environ;
    static const char *const prefixes[] = {"UWSGI_", "AISERVE_"};
    for (int pi = 0; pi < 2; pi++) {
        size_t pl = strlen(prefixes[pi]);
        for (char **e = environ; e && *e; e++) {
            const char *eq = strchr(*e, '=');
            if (strncmp(*e, prefixes[pi], pl) || !eq || (size_t)(eq - *e) <= pl) continue;
            char key[128];
            size_t kl = (size_t)(eq - *e) - pl;
            if (kl >= sizeof(key)) continue;
            for (size_t i = 0; i < kl; i++) {
                char ch = (*e)[pl + i];
                key[i] = ch == '_' ? '-' : (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
            }
            key[kl] = 0;
            if (!strcmp(key, "ini")) {
                if (!*file && eq[1] && !(*file = strdup(eq + 1)))
                    return snprintf(err, errlen, "out of memory"), -1;
                continue;
            }
            if (!find(c, key) && !find_noop(key)) {
                char near[128], var[160];
                size_t d;
                suggest(c, key, near, sizeof(near), &d);
                if (!near[0] || d != 1 || kl < 4) continue;
                size_t vl = (size_t)snprintf(var, sizeof(var), "%s", prefixes[pi]);
                for (const char *q = near; *q && vl + 1 < sizeof(var); q++)
                    var[vl++] = *q == '-' ? '_' : (*q >= 'a' && *q <= 'z') ? (char)(*q - 32) : *q;
                var[vl] = 0;
                if (add_msg(c,
                            "warning: environment %.*s: no option '%s' (did you mean %s?); ignored",
                            (int)(eq - *e), *e, key, var))
                    return snprintf(err, errlen, "out of memory"), -1;
                continue;
            }
            char where[160];
            snprintf(where, sizeof(where), "environment %.*s", (int)(eq - *e), *e);
            if (collect_add(out, key, eq + 1, where, 0, pi ? SRC_ENV_AISERVE : SRC_ENV_UWSGI))
                return snprintf(err, errlen, "out of memory"), -1;
        }
    }
    return 0;
}

/* ---- options with no meaning here, unknown options, suggestions ---- */

/* Optimal string alignment distance (edits, counting a swap of neighbours
 * as one), capped: the names compared are short. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAXL = 64 };
    if (la >= MAXL || lb >= MAXL) return (size_t)-1;
    size_t d[MAXL][MAXL];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

static void consider(const char *key, const char *cand, size_t len, const char **best,
                     size_t *best_len, size_t *best_d)
{
    size_t d = edit_distance(key, strlen(key), cand, len);
    if (d < *best_d) {
        *best_d = d;
        *best = cand;
        *best_len = len;
    }
}

/* The known name closest to key (an option, an alias or an accepted uWSGI
 * option), when close enough to be a typo: writes "'name'" into out, or "". */
static void suggest(const cfg *c, const char *key, char *out, size_t outlen, size_t *dist)
{
    const char *best = NULL;
    size_t best_len = 0, best_d = (size_t)-1;
    for (size_t i = 0; i < c->n; i++) {
        const cfg_option *o = c->v[i].opt;
        consider(key, o->name, strlen(o->name), &best, &best_len, &best_d);
        const char *p = o->alias, *a;
        size_t len;
        while ((a = next_alias(&p, &len))) consider(key, a, len, &best, &best_len, &best_d);
    }
    for (const struct noop *n = noops; n->name; n++)
        consider(key, n->name, strlen(n->name), &best, &best_len, &best_d);
    size_t kl = strlen(key), limit = kl / 3 < 1 ? 1 : kl / 3 > 3 ? 3 : kl / 3;
    out[0] = 0;
    if (dist) *dist = best_d;
    if (best && best_d <= limit) snprintf(out, outlen, "%.*s", (int)best_len, best);
}

static int add_msg(cfg *c, const char *fmt, ...)
{
    char line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char **m = realloc(c->msgs, (c->nmsgs + 1) * sizeof(*m));
    if (!m) return -1;
    c->msgs = m;
    if (!(c->msgs[c->nmsgs] = strdup(line))) return -1;
    c->nmsgs++;
    return 0;
}

/* Appends a line to err (lines separated by '\n') if it fits with reserve
 * bytes to spare (room for the closing "... and N more" and count lines). */
static void err_line(char *err, size_t errlen, size_t *used, int *lines, int *dropped,
                     const char *line, size_t reserve)
{
    size_t n = strlen(line);
    if (*used + n + 2 + reserve > errlen) {
        (*dropped)++;
        return;
    }
    if (*lines) err[(*used)++] = '\n';
    memcpy(err + *used, line, n + 1);
    *used += n;
    (*lines)++;
}

static int apply_all(cfg *c, collect *all, char *err, size_t errlen)
{
    int strict = 1;
    for (size_t i = 0; i < all->n; i++) {
        if (strcmp(all->p[i].key, "strict")) continue;
        if (all->p[i].bare || cfg_parse_bool(all->p[i].value, &strict)) strict = 1;
    }
    /* Every fault of the file and the environment is reported in one run;
     * a flag's fault (a usage error, exit 2) wins the return value. */
    size_t used = 0;
    int lines = 0, dropped = 0, rc = 0, unknown = 0;
    err[0] = 0;
    for (size_t i = 0; i < all->n; i++) {
        pending *e = &all->p[i];
        int bad = e->src == SRC_FLAG ? -2 : -1; /* a flag's fault is a usage error */
        struct cfg_val *v = find(c, e->key);
        char line[1400];
        if (!v) {
            if (e->placeholder) continue; /* uWSGI's custom options hold placeholders */
            const struct noop *no = find_noop(e->key);
            if (no) {
                int first = 1;
                for (size_t j = 0; j < i; j++) first &= strcmp(all->p[j].key, e->key) != 0;
                if (first && add_msg(c, "note: %s: '%s' has no meaning here (%s); ignored",
                                     e->where, e->key, no->why))
                    return snprintf(err, errlen, "out of memory"), -1;
                continue;
            }
            char near[128], hint[160] = "";
            suggest(c, e->key, near, sizeof(near), NULL);
            if (near[0]) snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
            if (!strict) {
                if (add_msg(c, "warning: %s: unknown option '%s' ignored%s", e->where, e->key,
                            hint))
                    return snprintf(err, errlen, "out of memory"), -1;
                continue;
            }
            snprintf(line, sizeof(line), "%s: unknown option '%s'%s", e->where, e->key, hint);
            err_line(err, errlen, &used, &lines, &dropped, line, 200);
            unknown++;
            if (rc != -2) rc = bad;
            continue;
        }
        if (apply(v, e->value, e->where, e->bare, e->src, line, sizeof(line))) {
            err_line(err, errlen, &used, &lines, &dropped, line, 200);
            if (rc != -2) rc = bad;
            continue;
        }
        v->set = 1;
    }
    char tail[160];
    if (dropped) {
        snprintf(tail, sizeof(tail), "... and %d more", dropped);
        err_line(err, errlen, &used, &lines, &dropped, tail, 0);
    }
    if (unknown) {
        snprintf(tail, sizeof(tail),
                 "%d unknown option%s (see aiserve --help; strict = false only warns)", unknown,
                 unknown > 1 ? "s" : "");
        err_line(err, errlen, &used, &lines, &dropped, tail, 0);
    }
    return rc;
}

/* Appends src's entries to dst. */
static int collect_move(collect *dst, const collect *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const pending *f = &src->p[i];
        if (collect_add(dst, f->key, f->value, f->where, f->bare, f->src)) return -1;
    }
    return 0;
}

int cfg_load(int argc, char **argv, const cfg_option *const *tables, cfg **out, char *err,
             size_t errlen)
{
    cfg *c = calloc(1, sizeof(*c));
    collect all = {0}, env = {0}, flags = {0};
    int rc = -1;
    if (!c) return snprintf(err, errlen, "out of memory"), -1;
    if (build(tables, c, err, errlen)) goto done;
    if (read_args(c, argc, argv, &flags, &c->file, err, errlen)) {
        rc = -2;
        goto done;
    }
    if (read_env(c, &env, &c->file, err, errlen)) goto done;
    if (c->file) {
        char section[128];
        if (!(c->path = ini_split_spec(c->file, section, sizeof(section)))) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        int r = ini_read(c->file, "uwsgi|aiserve", ini_entry, &all, err, errlen);
        if (r == -ENOMEM) snprintf(err, errlen, "out of memory");
        if (r) goto done;
    }
    if (collect_move(&all, &env) || collect_move(&all, &flags)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    rc = apply_all(c, &all, err, errlen);
    if (!rc) bind_all(c);
done:
    collect_free(&all);
    collect_free(&env);
    collect_free(&flags);
    if (rc)
        cfg_free(c);
    else
        *out = c;
    return rc;
}

void cfg_free(cfg *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        struct cfg_val *v = &c->v[i];
        free(v->str);
        free(v->where);
        drop_items(v);
        free(v->items);
        free(v->item_where);
    }
    free(c->v);
    for (size_t t = 0; t < c->ntabs; t++) free(c->tabs[t].values);
    free(c->tabs);
    free(c->file);
    free(c->path);
    for (size_t i = 0; i < c->nmsgs; i++) free(c->msgs[i]);
    free(c->msgs);
    free(c);
}

const void *cfg_values(const cfg *c, const cfg_option *table)
{
    for (size_t t = 0; t < c->ntabs; t++)
        if (c->tabs[t].opts == table) return c->tabs[t].values;
    return NULL;
}

const cfg_core *cfg_core_values(const cfg *c)
{
    return cfg_values(c, cfg_core_options);
}

/* The value whose field is at field, or NULL. */
static const struct cfg_val *find_field(const cfg *c, const void *field)
{
    uintptr_t p = (uintptr_t)field;
    for (size_t i = 0; i < c->n; i++) {
        const struct cfg_val *v = &c->v[i];
        if (p == (uintptr_t)c->tabs[v->tab].values + v->opt->off) return v;
    }
    return NULL;
}

const char *cfg_where(const cfg *c, const void *field, size_t i)
{
    const struct cfg_val *v = find_field(c, field);
    if (!v) return "?";
    if (v->opt->type == CFG_LIST) return i < v->nitems ? v->item_where[i] : "?";
    return v->where ? v->where : "default";
}

const char *cfg_name(const cfg *c, const void *field)
{
    const struct cfg_val *v = find_field(c, field);
    return v ? v->opt->name : "?";
}

int cfg_is_set(const cfg *c, const void *field)
{
    const struct cfg_val *v = find_field(c, field);
    return v ? v->set : 0;
}

const char *cfg_file(const cfg *c)
{
    return c->path;
}

const char *const *cfg_messages(const cfg *c, size_t *n)
{
    *n = c->nmsgs;
    return (const char *const *)c->msgs;
}

/* ---- --help ---- */

#define HELP_WIDTH 100
#define HELP_COL   34 /* where the description starts */

/* The core table's groups, by option name; what no group names is "Server". */
static const char *const help_processes[] = {"master",
                                             "processes",
                                             "threads",
                                             "enable-threads",
                                             "need-app",
                                             "lazy-apps",
                                             "harakiri",
                                             "max-requests",
                                             "max-requests-delta",
                                             "reload-on-rss",
                                             "reload-mercy",
                                             "die-on-term",
                                             "pidfile",
                                             "auto-procname",
                                             "procname-prefix",
                                             "procname-prefix-spaced",
                                             "uid",
                                             "gid",
                                             "chdir",
                                             "env",
                                             "strict",
                                             "cheaper",
                                             "cheaper-initial",
                                             "cheaper-step",
                                             "cheaper-overload",
                                             "cheaper-algo",
                                             "cheaper-idle",
                                             "cheaper-busyness-min",
                                             "cheaper-busyness-max",
                                             "cheaper-busyness-multiplier",
                                             "cheaper-busyness-penalty",
                                             "cheaper-busyness-backlog-alert",
                                             "cheaper-busyness-backlog-step",
                                             "cheaper-queue-target-ms",
                                             "cheaper-threads-initial",
                                             "cheaper-rss-limit-soft",
                                             "cheaper-rss-limit-hard",
                                             "stats",
                                             "stats-http",
                                             "master-fifo",
                                             "py-autoreload",
                                             "touch-reload",
                                             "touch-chain-reload",
                                             "touch-workers-reload",
                                             NULL};
static const char *const help_logging[] = {"disable-logging", "logto", "log-format", NULL};

static int in_names(const char *const *names, const char *name)
{
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

/* Writes text word-wrapped from column HELP_COL to HELP_WIDTH; *col is where
 * the cursor is. */
static void help_wrap(FILE *f, const char *text, int *col)
{
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        size_t w = strcspn(p, " ");
        if (!w) break;
        if (*col > HELP_COL && *col + 1 + (int)w > HELP_WIDTH) {
            fprintf(f, "\n%*s", HELP_COL, "");
            *col = HELP_COL;
        } else if (*col > HELP_COL) {
            fputc(' ', f);
            (*col)++;
        }
        fprintf(f, "%.*s", (int)w, p);
        *col += (int)w;
        p += w;
    }
}

/* One option: names and type, then the description with its default said
 * once: a help text that already explains the default value ("(0: off)")
 * becomes "(default 0: off)"; one that mentions a default keeps it; others
 * get "(default: X)" when there is a default. */
static void help_option(FILE *f, const cfg_option *o)
{
    char names[160], text[600];
    size_t k = (size_t)snprintf(names, sizeof(names), "  --%s", o->name);
    const char *p = o->alias, *a;
    size_t len;
    while ((a = next_alias(&p, &len)) && k < sizeof(names))
        k += (size_t)snprintf(names + k, sizeof(names) - k, ", --%.*s", (int)len, a);
    if (o->type != CFG_BOOL && k < sizeof(names))
        k += (size_t)snprintf(names + k, sizeof(names) - k, " %s",
                              o->type == CFG_INT    ? "N"
                              : o->type == CFG_SIZE ? "SIZE"
                              : o->type == CFG_LIST ? "VALUE..."
                                                    : "TEXT");
    fputs(names, f);
    int col = (int)strlen(names);
    if (col >= HELP_COL - 1) {
        fprintf(f, "\n%*s", HELP_COL, "");
    } else {
        fprintf(f, "%*s", HELP_COL - col, "");
    }
    col = HELP_COL;
    char probe[64];
    const char *def = o->def && !*o->def ? "''" : o->def;
    snprintf(probe, sizeof(probe), "(%s:", def ? def : "");
    const char *hit = def ? strstr(o->help, probe) : NULL;
    if (hit)
        snprintf(text, sizeof(text), "%.*s(default %s", (int)(hit - o->help), o->help, hit + 1);
    else if (def && !strstr(o->help, "default"))
        snprintf(text, sizeof(text), "%s (default: %s)", o->help, def);
    else
        snprintf(text, sizeof(text), "%s", o->help);
    help_wrap(f, text, &col);
    fputc('\n', f);
}

void cfg_print_help(const cfg_option *const *tables, const char *const *titles, void *file)
{
    FILE *f = file;
    fprintf(f,
            "usage: aiserve [FILE.ini[:section] | --ini FILE] [--option[=value] ...]\n"
            "\n"
            "Every option is also an ini key (in [uwsgi] or [aiserve]) and an environment\n"
            "variable (UWSGI_NAME or AISERVE_NAME: UWSGI_HTTP=:8000). Command line > environment\n"
            "> ini; a list option (VALUE..., repeatable) from a higher source replaces the\n"
            "lower ones'. Booleans take true/false, yes/no, on/off, 1/0 (a bare --flag is true);\n"
            "sizes take k/m/g (1024-based). Details: docs/config.md.\n");
    static const char *const core_groups[] = {"Server", "Processes", "Logging"};
    for (int g = 0; g < 3; g++) {
        fprintf(f, "\n%s:\n", core_groups[g]);
        for (const cfg_option *o = tables[0]; o && o->name; o++) {
            int og = in_names(help_processes, o->name) ? 1
                     : in_names(help_logging, o->name) ? 2
                                                       : 0;
            if (og == g) help_option(f, o);
        }
    }
    for (size_t t = 1; tables[0] && tables[t]; t++) {
        fprintf(f, "\n%s:\n", titles && titles[t] ? titles[t] : "More options");
        for (const cfg_option *o = tables[t]; o->name; o++) help_option(f, o);
    }
    fprintf(f, "\nOther:\n");
    int col = HELP_COL;
    fprintf(f, "  --help%*sthis text\n  --version%*sprint the version\n", HELP_COL - 8, "",
            HELP_COL - 11, "");
    fprintf(f, "  uWSGI options accepted with a note and no effect:\n%*s", HELP_COL, "");
    char list[2048];
    size_t k = 0;
    for (const struct noop *n = noops; n->name && k < sizeof(list); n++)
        k += (size_t)snprintf(list + k, sizeof(list) - k, "%s%s", n->name, n[1].name ? ", " : "");
    help_wrap(f, list, &col);
    fputc('\n', f);
}
