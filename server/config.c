/*
 * Design: reading happens in two passes. Pass one collects every (key, value,
 * where) from the ini file and then the flags, in order; pass two applies
 * them. The split exists because `strict` may appear anywhere (even after the
 * unknown option it should excuse), and because flags must override the file
 * whatever their position.
 */
#include "server/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/ini.h"

#define KB 1024
#define MB (1024 * 1024)

const cfg_option cfg_core_options[] = {
    {"http", "http-socket", CFG_LIST, NULL, 0, 0,
     "address to serve HTTP on: [host]:port or a unix socket path (repeatable); workers speak "
     "HTTP themselves"},
    {"socket", "uwsgi-socket", CFG_LIST, NULL, 0, 0,
     "address to serve the uwsgi protocol on, for nginx's uwsgi_pass: [host]:port or a unix "
     "socket path (repeatable)"},
    {"chmod-socket", NULL, CFG_STR, NULL, 0, 0,
     "octal permissions of unix sockets, e.g. 660 (unset: as the umask leaves them)"},
    {"vacuum", NULL, CFG_BOOL, "false", 0, 0, "remove unix socket files at exit"},
    {"master", NULL, CFG_BOOL, "true", 0, 0,
     "accepted for uWSGI compatibility: a master always supervises the workers"},
    {"processes", "workers", CFG_INT, "1", 1, 512, "number of worker processes"},
    {"threads", NULL, CFG_INT, "1", 1, 1024, "app threads per worker (for blocking handlers)"},
    {"enable-threads", NULL, CFG_BOOL, "true", 0, 0, "accepted; threads always work"},
    {"listen", NULL, CFG_INT, "1024", 1, 1 << 20,
     "listen backlog; above net.core.somaxconn it is clamped with a warning"},
    {"need-app", NULL, CFG_BOOL, "false", 0, 0, "refuse to start when no app loads"},
    {"lazy-apps", NULL, CFG_BOOL, "false", 0, 0, "load apps in each worker after fork"},
    {"harakiri", NULL, CFG_INT, "0", 0, 86400,
     "seconds a request may run before its worker is replaced (0: off)"},
    {"max-requests", NULL, CFG_INT, "0", 0, 1LL << 40,
     "recycle a worker gracefully after this many requests (0: never)"},
    {"max-requests-delta", NULL, CFG_INT, "0", 0, 1LL << 30,
     "add (worker id - 1) x delta to max-requests, so workers do not recycle together"},
    {"reload-on-rss", NULL, CFG_INT, "0", 0, 1 << 30,
     "recycle a worker gracefully once its RSS exceeds this many MiB, checked after each "
     "request (0: off)"},
    {"evil-reload-on-rss", NULL, CFG_INT, "0", 0, 1 << 30,
     "kill a worker at once when its RSS exceeds this many MiB, checked after each request and "
     "by the master every 100 ms (0: off)"},
    {"limit-as", NULL, CFG_INT, "0", 0, 1 << 30,
     "limit each worker's address space to this many MiB (allocations beyond fail) and recycle "
     "a worker that exceeds it after a request (0: off)"},
    {"max-connections", "worker-connections", CFG_INT, "4096", 1, 1 << 20,
     "connections one worker holds open at most (idle ones cost no thread); beyond it new ones "
     "wait in the listen queue"},
    {"buffer-size", NULL, CFG_SIZE, "8k", 512, 1 * MB,
     "largest request head (request line + headers); larger gets 431"},
    {"limit-post", NULL, CFG_SIZE, "0", 0, 0,
     "largest request body; larger gets 413 (0: no limit)"},
    {"post-buffering", NULL, CFG_SIZE, "1m", 0, 1024LL * MB,
     "bodies up to this size are read before the handler runs; larger ones stream"},
    {"socket-timeout", NULL, CFG_INT, "30", 1, 3600,
     "seconds a slow client may take to send a head or body chunk, or to read"},
    {"http-keepalive", NULL, CFG_INT, "15", 0, 3600,
     "seconds an idle keep-alive connection is kept (0: close after each response)"},
    {"die-on-term", NULL, CFG_BOOL, "false", 0, 0, "accepted; SIGTERM always drains and exits"},
    {"reload-mercy", "worker-reload-mercy", CFG_INT, "30", 1, 3600,
     "seconds in-flight requests get to finish on reload or shutdown"},
    {"pidfile", NULL, CFG_STR, NULL, 0, 0, "write the master's pid here (removed at exit)"},
    {"uid", NULL, CFG_STR, NULL, 0, 0, "user (name or id) to run as after binding"},
    {"gid", NULL, CFG_STR, NULL, 0, 0, "group (name or id) to run as after binding"},
    {"chdir", NULL, CFG_STR, NULL, 0, 0, "directory to change to before loading apps"},
    {"env", NULL, CFG_LIST, NULL, 0, 0, "KEY=VALUE set in the environment (repeatable)"},
    {"static-map", NULL, CFG_LIST, NULL, 0, 0,
     "/prefix=/directory: serve files under the prefix (repeatable)"},
    {"mount", NULL, CFG_LIST, NULL, 0, 0, "/prefix=target: mount an app at a path (repeatable)"},
    {"disable-logging", NULL, CFG_BOOL, "false", 0, 0, "no access log"},
    {"logto", NULL, CFG_STR, NULL, 0, 0, "append logs to this file instead of stderr"},
    {"log-format", NULL, CFG_STR, "clf", 0, 0, "access log format: clf (common log) or json"},
    {"strict", NULL, CFG_BOOL, "true", 0, 0, "unknown options refuse start-up (false: warn)"},
    {"hello-route", NULL, CFG_STR, "/hello", 0, 0, "path of the built-in hello handler ('': off)"},
    {"health-route", NULL, CFG_STR, "/health", 0, 0, "prefix of /live and /ready ('': off)"},
    {"metrics-route", NULL, CFG_STR, "/metrics", 0, 0, "path of Prometheus metrics ('': off)"},
    {"delay-route", NULL, CFG_STR, "/delay", 0, 0, "prefix of the httpbin-style delay ('': off)"},
    {"sleep-route", NULL, CFG_STR, "", 0, 0,
     "prefix of /{seconds}: a blocking sleep on an app thread, for tests ('': off)"},
    {NULL, NULL, 0, NULL, 0, 0, NULL},
};

struct cfg_val {
    const cfg_option *opt;
    int set;
    char *str;
    char *where;
    int64_t num;
    char **items;
    char **item_where;
    size_t nitems;
};

struct cfg {
    struct cfg_val *v;
    size_t n;
    char *file;
};

typedef struct pending {
    char *key, *value, *where;
    int bare; /* a flag with no value: true for booleans */
} pending;

typedef struct collect {
    pending *p;
    size_t n, cap;
} collect;

static int collect_add(collect *c, const char *key, const char *value, const char *where, int bare)
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

static const char *type_name(cfg_type t)
{
    switch (t) {
    case CFG_BOOL: return "bool";
    case CFG_INT: return "int";
    case CFG_SIZE: return "size";
    case CFG_STR: return "string";
    case CFG_LIST: return "list";
    }
    return "?";
}

/* Parses and stores one value; -1 with a message naming where and why. */
static int apply(struct cfg_val *v, const char *value, const char *where, int bare, char *err,
                 size_t errlen)
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
    return 0;
nomem:
    free(s);
    free(w);
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int build(const cfg_option *const *tables, cfg *c, char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t t = 0; tables[t]; t++)
        for (const cfg_option *o = tables[t]; o->name; o++) n++;
    c->v = calloc(n ? n : 1, sizeof(*c->v));
    if (!c->v) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t t = 0; tables[t]; t++) {
        for (const cfg_option *o = tables[t]; o->name; o++) {
            if (clashes(c, o)) {
                snprintf(err, errlen, "option '%s' is defined twice", o->name);
                return -1;
            }
            struct cfg_val *v = &c->v[c->n++];
            v->opt = o;
            if (o->def && o->type != CFG_LIST && apply(v, o->def, "default", 0, err, errlen))
                return -1;
        }
    }
    return 0;
}

/* uWSGI's $(NAME) in ini values: the environment variable's value, empty
 * when unset (http = :$(PORT) in containers). Returns a malloc'd string. */
static char *expand_env(const char *v)
{
    size_t cap = strlen(v) + 1, n = 0;
    char *out = malloc(cap);
    for (const char *p = v; out && *p;) {
        const char *close = p[0] == '$' && p[1] == '(' ? strchr(p + 2, ')') : NULL;
        const char *add = p;
        size_t len = 1;
        char name[256];
        if (close && (size_t)(close - p - 2) < sizeof(name)) {
            memcpy(name, p + 2, (size_t)(close - p - 2));
            name[close - p - 2] = 0;
            add = getenv(name);
            len = add ? strlen(add) : 0;
            p = close + 1;
        } else {
            p++;
        }
        if (n + len + 1 > cap) {
            char *t = realloc(out, (cap = (n + len + 1) * 2));
            if (!t) free(out);
            out = t;
            if (!out) break;
        }
        if (len) memcpy(out + n, add, len);
        n += len;
    }
    if (out) out[n] = 0;
    return out;
}

static int ini_entry(void *ud, const char *section, const char *key, const char *value, int line)
{
    collect *c = ud;
    if (strcmp(section, "uwsgi") && strcmp(section, "aiserve")) return 0;
    char where[64];
    snprintf(where, sizeof(where), "%d", line);
    char *v = expand_env(value);
    int rc = v ? collect_add(c, key, v, where, 0) : -ENOMEM;
    free(v);
    return rc ? -ENOMEM : 0;
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
            if (v && v->opt->type == CFG_BOOL)
                bare = 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                bare = 1; /* apply() reports "needs a value" for known options */
        }
        if (collect_add(flags, key, val, where, bare))
            return snprintf(err, errlen, "out of memory"), -1;
    }
    return 0;
}

static int apply_all(cfg *c, collect *all, const char *file, char *err, size_t errlen)
{
    int strict = 1;
    for (size_t i = 0; i < all->n; i++) {
        if (strcmp(all->p[i].key, "strict")) continue;
        if (!all->p[i].bare && cfg_parse_bool(all->p[i].value, &strict)) strict = 1;
        if (all->p[i].bare) strict = 1;
    }
    for (size_t i = 0; i < all->n; i++) {
        pending *e = &all->p[i];
        char where[1200];
        if (e->where[0] == '-')
            snprintf(where, sizeof(where), "%s", e->where);
        else
            snprintf(where, sizeof(where), "%s:%s", file ? file : "?", e->where);
        struct cfg_val *v = find(c, e->key);
        int bad = e->where[0] == '-' ? -2 : -1; /* a flag's fault is a usage error */
        if (!v) {
            if (strict) {
                snprintf(err, errlen,
                         "%s: unknown option '%s' (see aiserve --help; strict = false only warns)",
                         where, e->key);
                return bad;
            }
            fprintf(stderr, "aiserve: warning: %s: unknown option '%s' ignored\n", where, e->key);
            continue;
        }
        if (apply(v, e->value, where, e->bare, err, errlen)) return bad;
        v->set = 1;
    }
    return 0;
}

int cfg_load(int argc, char **argv, const cfg_option *const *tables, cfg **out, char *err,
             size_t errlen)
{
    cfg *c = calloc(1, sizeof(*c));
    collect all = {0}, flags = {0};
    int rc = -1;
    if (!c) return snprintf(err, errlen, "out of memory"), -1;
    if (build(tables, c, err, errlen)) goto done;
    if (read_args(c, argc, argv, &flags, &c->file, err, errlen)) {
        rc = -2;
        goto done;
    }
    if (c->file) {
        int r = ini_parse_file(c->file, ini_entry, &all, err, errlen);
        if (r == -ENOMEM) snprintf(err, errlen, "out of memory");
        if (r) goto done;
    }
    for (size_t i = 0; i < flags.n; i++) {
        pending *f = &flags.p[i];
        if (collect_add(&all, f->key, f->value, f->where, f->bare)) goto done;
    }
    rc = apply_all(c, &all, c->file, err, errlen);
done:
    collect_free(&all);
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
        for (size_t j = 0; j < v->nitems; j++) {
            free(v->items[j]);
            free(v->item_where[j]);
        }
        free(v->items);
        free(v->item_where);
    }
    free(c->v);
    free(c->file);
    free(c);
}

const char *cfg_str(const cfg *c, const char *name)
{
    const struct cfg_val *v = find(c, name);
    return v ? v->str : NULL;
}

int64_t cfg_int(const cfg *c, const char *name)
{
    const struct cfg_val *v = find(c, name);
    return v ? v->num : 0;
}

int cfg_bool(const cfg *c, const char *name)
{
    return cfg_int(c, name) != 0;
}

int cfg_is_set(const cfg *c, const char *name)
{
    const struct cfg_val *v = find(c, name);
    return v ? v->set : 0;
}

const char *const *cfg_list(const cfg *c, const char *name, size_t *n)
{
    const struct cfg_val *v = find(c, name);
    *n = v ? v->nitems : 0;
    return v && v->nitems ? (const char *const *)v->items : NULL;
}

const char *cfg_where(const cfg *c, const char *name, size_t i)
{
    const struct cfg_val *v = find(c, name);
    if (!v) return "?";
    if (v->opt->type == CFG_LIST) return i < v->nitems ? v->item_where[i] : "?";
    return v->where ? v->where : "default";
}

const char *cfg_file(const cfg *c)
{
    return c->file;
}

void cfg_print_help(const cfg_option *const *tables, void *file)
{
    FILE *f = file;
    fprintf(f, "usage: aiserve [FILE.ini | --ini FILE] [--option[=value] ...]\n"
               "Options (also as ini keys in [uwsgi] or [aiserve]; flags override the file):\n");
    for (size_t t = 0; tables[t]; t++) {
        for (const cfg_option *o = tables[t]; o->name; o++) {
            char names[128];
            size_t k = (size_t)snprintf(names, sizeof(names), "--%s", o->name);
            const char *p = o->alias, *a;
            size_t len;
            while ((a = next_alias(&p, &len)) && k < sizeof(names))
                k += (size_t)snprintf(names + k, sizeof(names) - k, ", --%.*s", (int)len, a);
            fprintf(f, "  %-36s %-6s %s (default: %s)\n", names, type_name(o->type), o->help,
                    o->def ? (*o->def ? o->def : "''") : "unset");
        }
    }
    fprintf(f, "  %-36s %-6s %s\n  %-36s %-6s %s\n", "--help", "", "this text", "--version", "",
            "print the version");
}
