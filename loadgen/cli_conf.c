/*
 * Config files and LOCUST_* variables, the way Locust's configargparse
 * (1.5, DefaultConfigFileParser) reads them; see cli_conf.h for precedence.
 */
#define _GNU_SOURCE
#include "loadgen/cli_conf.h"

#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/json.h"
#include "loadgen/cli.h"

#define CONF_MAX_BYTES (1 << 20)

/* Python's str.isspace() for ASCII: what strip() and \s take. */
static int is_ws(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* ---- one config file ---- */

void cli_conf_free(cli_conf *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].key);
        for (size_t k = 0; k < c->items[i].nvals; k++) free(c->items[i].vals[k]);
        free(c->items[i].vals);
    }
    free(c->items);
    c->items = NULL;
    c->n = 0;
}

/* The value part of the line regex
 *   ^KEY\s*(?:([:=\s])\s*(['"]?)(?P<value>.+?)?\2)?\s*(?:\s[;#]\s*.*?\s*)?$
 * on r[0..n) (the line after the key, stripped at the end). The value is as
 * short as possible such that what follows is nothing or blanks then ; or #
 * (a comment); a leading quote must be matched by the same quote. Sets *vs,
 * *vn; *vs NULL when the value group did not match (`key ""`). */
typedef struct tail_ok {
    const char *r;
    size_t n;
    const size_t *nonws; /* nonws[i]: first non-blank index >= i */
} tail_ok;

static int comment_or_end(const tail_ok *t, size_t i)
{
    if (i == t->n) return 1;
    if (i > t->n || !is_ws((unsigned char)t->r[i])) return 0;
    size_t j = t->nonws[i];
    return j < t->n && (t->r[j] == ';' || t->r[j] == '#');
}

static void find_value(const tail_ok *t, size_t p, const char **vs, size_t *vn)
{
    const char *r = t->r;
    if (r[p] == '"' || r[p] == '\'') {
        char q = r[p];
        for (size_t len = 1; p + 1 + len < t->n; len++) {
            if (r[p + 1 + len] == q && comment_or_end(t, p + 2 + len)) {
                *vs = r + p + 1;
                *vn = len;
                return;
            }
        }
        if (p + 1 < t->n && r[p + 1] == q && comment_or_end(t, p + 2)) {
            *vs = NULL; /* "" or '': the value group is empty */
            return;
        }
    }
    size_t len = 1;
    while (!comment_or_end(t, p + len)) len++;
    *vs = r + p;
    *vn = len;
}

/* Splits one stripped, non-comment line into key and value (value "true"
 * for a bare key). 0 or -1 (the line does not match). */
static int split_line(const char *l, size_t n, size_t *keylen, const char **vs, size_t *vn,
                      size_t *nonws)
{
    size_t k = 0;
    while (k < n && !is_ws((unsigned char)l[k]) && !strchr(":=;#", l[k])) k++;
    if (k == 0) return -1;
    *keylen = k;
    const char *r = l + k;
    size_t rn = n - k;
    if (rn == 0) {
        *vs = "true";
        *vn = 4;
        return 0;
    }
    size_t next = rn;
    for (size_t i = rn; i-- > 0;) {
        if (!is_ws((unsigned char)r[i])) next = i;
        nonws[i] = next;
    }
    nonws[rn] = rn;
    tail_ok t = {r, rn, nonws};
    size_t w = nonws[0];
    if (r[w] == ':' || r[w] == '=') {
        size_t p = nonws[w + 1];
        *vs = NULL;
        if (p < rn) find_value(&t, p, vs, vn);
        if (!*vs) *vs = "", *vn = 0; /* "key =" and "key = ''": empty */
        return 0;
    }
    if (w == 0) return -1; /* "key;x", "key#x" */
    find_value(&t, w, vs, vn);
    if (!*vs && r[w - 1] == ' ') *vs = "true", *vn = 4; /* `key ""`: as a bare key */
    if (!*vs) *vs = "", *vn = 0;                        /* but "key\t''" is empty */
    return 0;
}

static char *strip_dup(const char *s, size_t n)
{
    while (n && is_ws((unsigned char)*s)) s++, n--;
    while (n && is_ws((unsigned char)s[n - 1])) n--;
    return strndup(s, n);
}

/* "[...]": a JSON array (its strings unescaped, other scalars as Python's
 * str() spells them), else the old "[a, b]" form split at commas. */
static int parse_list(const char *v, size_t n, cli_conf_item *it, char *why, size_t whylen)
{
    json_doc d;
    if (json_parse(&d, v, n, NULL, NULL, 0) == 0 && d.n && d.tok[0].type == JSON_ARRAY) {
        int rc = 0;
        it->vals = calloc(d.tok[0].count ? d.tok[0].count : 1, sizeof(char *));
        if (!it->vals) rc = -ENOMEM;
        for (uint32_t i = 1; !rc && i < d.n; i = d.tok[i].next) {
            const json_tok *t = &d.tok[i];
            char *s = NULL;
            if (t->type == JSON_STRING) {
                s = malloc(t->len + 1); /* unescaping never grows the text */
                if (s && json_str_copy(&d, (int)i, s, t->len + 1) < 0) {
                    free(s);
                    rc = err_fmt(why, whylen, "a list item holds a NUL character");
                    break;
                }
            } else if (t->type == JSON_NUMBER) {
                s = strndup(d.src + t->start, t->len);
            } else if (t->type <= JSON_TRUE) {
                static const char *py[] = {"None", "False", "True"};
                s = strdup(py[t->type]);
            } else {
                rc = err_fmt(why, whylen, "nested lists or objects are not supported");
                break;
            }
            if (!s) rc = -ENOMEM;
            if (!rc) it->vals[it->nvals++] = s;
        }
        json_doc_free(&d);
        if (rc == -ENOMEM) err_fmt(why, whylen, "out of memory");
        return rc ? -1 : 0;
    }
    size_t parts = 1;
    for (size_t i = 1; i + 1 < n; i++) parts += v[i] == ',';
    if (!(it->vals = calloc(parts, sizeof(char *)))) return err_fmt(why, whylen, "out of memory");
    for (size_t i = 1; i < n;) {
        size_t e = i;
        while (e < n - 1 && v[e] != ',') e++;
        if (!(it->vals[it->nvals++] = strip_dup(v + i, e - i)))
            return err_fmt(why, whylen, "out of memory");
        i = e + 1;
    }
    return 0;
}

static cli_conf_item *item_for(cli_conf *c, const char *key, size_t keylen)
{
    for (size_t i = 0; i < c->n; i++) {
        cli_conf_item *it = &c->items[i];
        if (strlen(it->key) == keylen && !memcmp(it->key, key, keylen)) {
            for (size_t k = 0; k < it->nvals; k++) free(it->vals[k]);
            free(it->vals);
            it->vals = NULL;
            it->nvals = 0;
            return it;
        }
    }
    cli_conf_item *n = realloc(c->items, (c->n + 1) * sizeof(*n));
    if (!n) return NULL;
    c->items = n;
    cli_conf_item *it = &c->items[c->n];
    memset(it, 0, sizeof(*it));
    if (!(it->key = strndup(key, keylen))) return NULL;
    c->n++;
    return it;
}

static int parse_line(cli_conf *c, const char *l, size_t n, size_t *nonws, char *why, size_t whylen,
                      cli_conf_item **out)
{
    size_t keylen, vn;
    const char *vs;
    *out = NULL;
    if (memchr(l, '\0', n)) return err_fmt(why, whylen, "NUL byte in the line");
    if (split_line(l, n, &keylen, &vs, &vn, nonws))
        return err_fmt(why, whylen, "unexpected line '%.*s' (want key = value)",
                       n > 80 ? 80 : (int)n, l);
    cli_conf_item *it = item_for(c, l, keylen);
    if (!it) return err_fmt(why, whylen, "out of memory");
    *out = it;
    it->is_list = vn >= 2 && vs[0] == '[' && vs[vn - 1] == ']';
    if (it->is_list) return parse_list(vs, vn, it, why, whylen);
    if (!(it->vals = calloc(1, sizeof(char *))) || !(it->vals[0] = strndup(vs, vn)))
        return err_fmt(why, whylen, "out of memory");
    it->nvals = 1;
    return 0;
}

int cli_conf_parse(const char *text, size_t len, const char *name, cli_conf *c, char *err,
                   size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (len > CONF_MAX_BYTES) return err_fmt(err, errlen, "%s: larger than 1 MiB", name);
    size_t *nonws = malloc((len + 1) * sizeof(size_t));
    if (!nonws) return err_fmt(err, errlen, "%s: out of memory", name);
    int line = 0, rc = 0;
    /* Python reads text files with universal newlines: \n, \r\n and \r. */
    for (size_t i = 0; i < len && !rc; line++) {
        size_t e = i;
        while (e < len && text[e] != '\n' && text[e] != '\r') e++;
        const char *l = text + i;
        size_t n = e - i;
        i = e + (e < len && text[e] == '\r' && e + 1 < len && text[e + 1] == '\n' ? 2 : 1);
        while (n && is_ws((unsigned char)*l)) l++, n--;
        while (n && is_ws((unsigned char)l[n - 1])) n--;
        if (!n || *l == '#' || *l == ';' || *l == '[' || (n >= 3 && !memcmp(l, "---", 3))) continue;
        char why[256];
        cli_conf_item *it;
        if (parse_line(c, l, n, nonws, why, sizeof(why), &it)) {
            rc = err_fmt(err, errlen, "%s:%d: %s", name, line + 1, why);
        } else {
            it->line = line + 1;
        }
    }
    free(nonws);
    if (rc) cli_conf_free(c);
    return rc;
}

/* ---- argument vectors ---- */

void cli_args_free(cli_args *a)
{
    for (int i = 0; i < a->argc; i++) free(a->argv[i]);
    free(a->argv);
    memset(a, 0, sizeof(*a));
}

/* Inserts n owned strings at position at (-1: the end). */
static int args_insert(cli_args *a, int at, char **s, size_t n)
{
    if ((size_t)a->argc + n + 1 > a->cap) {
        size_t cap = (a->argc + n + 1) * 2;
        char **v = realloc(a->argv, cap * sizeof(char *));
        if (!v) return -ENOMEM;
        a->argv = v;
        a->cap = cap;
    }
    if (at < 0) at = a->argc;
    memmove(a->argv + at + n, a->argv + at, (size_t)(a->argc - at) * sizeof(char *));
    memcpy(a->argv + at, s, n * sizeof(char *));
    a->argc += (int)n;
    a->argv[a->argc] = NULL;
    return 0;
}

static int args_push(cli_args *a, const char *s)
{
    char *d = strdup(s);
    if (!d) return -ENOMEM;
    if (args_insert(a, -1, &d, 1)) {
        free(d);
        return -ENOMEM;
    }
    return 0;
}

static int args_pushf(cli_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int args_pushf(cli_args *a, const char *fmt, ...)
{
    char *d;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&d, fmt, ap);
    va_end(ap);
    if (n < 0) return -ENOMEM;
    if (args_insert(a, -1, &d, 1)) {
        free(d);
        return -ENOMEM;
    }
    return 0;
}

/* configargparse's already_on_command_line: "--users", "-u" or "--users=5"
 * among the arguments so far (argv[0] is the program). */
static int already_given(const cli_args *a, const char *lname, const char *sname)
{
    for (int i = 1; i < a->argc; i++) {
        const char *s = a->argv[i];
        size_t n = s[0] == '-' && strchr(s, '=') ? (size_t)(strchr(s, '=') - s) : strlen(s);
        if ((strlen(lname) == n && !memcmp(s, lname, n)) ||
            (sname && strlen(sname) == n && !memcmp(s, sname, n)))
            return 1;
    }
    return 0;
}

/* Moves the arguments of src in front of (or, when any takes several
 * values, behind) those of dst, as configargparse does so that "--tags a b"
 * cannot swallow a positional UserClass. src is emptied. */
static int args_merge(cli_args *dst, cli_args *src, int behind)
{
    if (!src->argc) return 0;
    if (args_insert(dst, behind ? -1 : 1, src->argv, (size_t)src->argc)) return -ENOMEM;
    src->argc = 0;
    return 0;
}

/* One key = value as command-line arguments (configargparse's
 * convert_item_to_command_line_arg). */
static int convert(cli_args *out, int kind, const char *lname, const char *where, const char *what,
                   char *const *vals, size_t nvals, int is_list, char *err, size_t errlen)
{
    if (kind == CLI_K_FLAG) {
        const char *v = is_list ? NULL : vals[0];
        if (v && (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1")))
            return args_push(out, lname) ? err_fmt(err, errlen, "out of memory") : 0;
        if (v && (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))) return 0;
        return err_fmt(err, errlen,
                       "%sUnexpected value for %s: '%s'. Expecting 'true', 'false', 'yes', 'no', "
                       "'1' or '0'",
                       where, what, v ? v : "[...]");
    }
    int rc = 0;
    if (!is_list) {
        rc = args_pushf(out, "%s=%s", lname, vals[0]);
    } else if (kind == CLI_K_MANY) {
        rc = args_push(out, lname);
        for (size_t i = 0; i < nvals && !rc; i++) rc = args_push(out, vals[i]);
    } else if (kind == CLI_K_REPEAT) {
        for (size_t i = 0; i < nvals && !rc; i++) rc = args_pushf(out, "%s=%s", lname, vals[i]);
    } else {
        return err_fmt(err, errlen, "%s%s takes one value, not a list", where, what);
    }
    return rc ? err_fmt(err, errlen, "out of memory") : 0;
}

/* ---- the environment ---- */

/* Locust 2.12's variables, in the order of its parser's actions (the order
 * of the arguments they add). Its other LOCUST_* variables (distributed
 * mode, logging, the web UI's TLS) name features aiload has not. */
static const struct {
    const char *var, *opt;
} env_vars[] = {
    {"LOCUST_LOCUSTFILE", "locustfile"},
    {"LOCUST_HOST", "host"},
    {"LOCUST_USERS", "users"},
    {"LOCUST_SPAWN_RATE", "spawn-rate"},
    {"LOCUST_RUN_TIME", "run-time"},
    {"LOCUST_WEB_HOST", "web-host"},
    {"LOCUST_WEB_PORT", "web-port"},
    {"LOCUST_HEADLESS", "headless"},
    {"LOCUST_AUTOSTART", "autostart"},
    {"LOCUST_AUTOQUIT", "autoquit"},
    {"LOCUST_HEADFUL", "headful"},
    {"LOCUST_WEB_AUTH", "web-auth"},
    {"LOCUST_TAGS", "tags"},
    {"LOCUST_EXCLUDE_TAGS", "exclude-tags"},
    {"LOCUST_CSV", "csv"},
    {"LOCUST_CSV_FULL_HISTORY", "csv-full-history"},
    {"LOCUST_ONLY_SUMMARY", "only-summary"},
    {"LOCUST_RESET_STATS", "reset-stats"},
    {"LOCUST_HTML", "html"},
    {"LOCUST_EXIT_CODE_ON_ERROR", "exit-code-on-error"},
    {"LOCUST_STOP_TIMEOUT", "stop-timeout"},
    /* distributed mode (loadgen/dist): Locust's names, e.g. in its Helm chart */
    {"LOCUST_MODE_MASTER", "master"},
    {"LOCUST_MASTER_BIND_HOST", "master-bind-host"},
    {"LOCUST_MASTER_BIND_PORT", "master-bind-port"},
    {"LOCUST_EXPECT_WORKERS", "expect-workers"},
    {"LOCUST_EXPECT_WORKERS_MAX_WAIT", "expect-workers-max-wait"},
    {"LOCUST_MODE_WORKER", "worker"},
    {"LOCUST_MASTER_NODE_HOST", "master-host"},
    {"LOCUST_MASTER_NODE_PORT", "master-port"},
};

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (!strncmp(*envp, name, n) && (*envp)[n] == '=') return *envp + n + 1;
    return NULL;
}

/* A variable's value: a "[a, b]" list only for options taking several. */
static int env_args(const cli_args *args, char *const *envp, cli_args *out, int *many, char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
        const char *v = env_get(envp, env_vars[i].var), *lname, *sname;
        if (!v) continue;
        int kind = cli_option_lookup(env_vars[i].opt, &lname, &sname);
        if (kind < 0 || already_given(args, lname, sname)) continue;
        cli_conf_item it = {0};
        char why[256];
        size_t vn = strlen(v);
        int rc;
        if (kind == CLI_K_MANY && vn >= 2 && v[0] == '[' && v[vn - 1] == ']') {
            it.is_list = 1;
            rc = parse_list(v, vn, &it, why, sizeof(why));
            if (rc) err_fmt(err, errlen, "%s: %s", env_vars[i].var, why);
            if (!rc)
                rc = convert(out, kind, lname, "", env_vars[i].var, it.vals, it.nvals, 1, err,
                             errlen);
            for (size_t k = 0; k < it.nvals; k++) free(it.vals[k]);
            free(it.vals);
        } else {
            char *vals[] = {(char *)v};
            rc = convert(out, kind, lname, "", env_vars[i].var, vals, 1, 0, err, errlen);
        }
        if (kind == CLI_K_MANY) *many = 1;
        if (rc) return -1;
    }
    return 0;
}

/* ---- the files ---- */

/* Locust options aiload has no use for: a shared locust.conf may set them. */
static const char *const locust_only[] = {
    "tls-cert",   "tls-key", "class-picker",    "print-stats",          "skip-log-setup",
    "loglevel",   "logfile", "show-task-ratio", "show-task-ratio-json", "enable-rebalancing",
    "hatch-rate", "config",
};

static int locust_only_key(const char *key)
{
    if (!strncmp(key, "--", 2)) key += 2;
    for (size_t i = 0; i < sizeof(locust_only) / sizeof(locust_only[0]); i++)
        if (!strcmp(key, locust_only[i])) return 1;
    return 0;
}

/* Reads a whole file, also a pipe (--config <(...)), up to 1 MiB. */
static int read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return err_fmt(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
    buf b = BUF_INIT;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > CONF_MAX_BYTES)
            rc = err_fmt(err, errlen, "config file %s: larger than 1 MiB", path);
        else if (buf_append(&b, chunk, n))
            rc = err_fmt(err, errlen, "out of memory");
    }
    if (!rc && ferror(f))
        rc = err_fmt(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
    fclose(f);
    if (rc) {
        buf_free(&b);
        return -1;
    }
    *len = b.len;
    *text = b.data; /* NULL for an empty file: cli_conf_parse takes (NULL, 0) */
    return 0;
}

/* Adds the options of one file that the arguments so far do not have. */
static int file_args(cli_args *args, const char *path, buf *notes, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    cli_conf c;
    if (read_file(path, &text, &len, err, errlen)) return -1;
    int rc = cli_conf_parse(text, len, path, &c, err, errlen);
    free(text);
    if (rc) return -1;
    cli_args add = {0};
    int many = 0;
    for (size_t i = 0; i < c.n && !rc; i++) {
        const cli_conf_item *it = &c.items[i];
        const char *lname, *sname;
        int kind = cli_option_lookup(it->key, &lname, &sname);
        if (kind < 0 && locust_only_key(it->key)) {
            if (notes)
                buf_printf(notes, "%s:%d: '%s' is a Locust option aiload has no use for; ignored\n",
                           path, it->line, it->key);
            continue;
        }
        if (kind < 0) {
            rc = err_fmt(err, errlen, "%s:%d: unknown option '%s' (see aiload --help)", path,
                         it->line, it->key);
            break;
        }
        if (already_given(args, lname, sname)) continue;
        char where[512];
        snprintf(where, sizeof(where), "%s:%d: ", path, it->line);
        /* an option with several values makes the file's arguments go last */
        many |= kind == CLI_K_MANY || kind == CLI_K_REPEAT;
        rc = convert(&add, kind, lname, where, it->key, it->vals, it->nvals, it->is_list, err,
                     errlen);
    }
    if (!rc && args_merge(args, &add, many)) rc = err_fmt(err, errlen, "out of memory");
    cli_args_free(&add);
    cli_conf_free(&c);
    return rc;
}

/* --config FILE / --config=FILE among the arguments (the last one wins). */
static const char *config_arg(const cli_args *a)
{
    const char *path = NULL;
    for (int i = 1; i < a->argc; i++) {
        if (!strcmp(a->argv[i], "--config") && i + 1 < a->argc)
            path = a->argv[++i];
        else if (!strncmp(a->argv[i], "--config=", 9))
            path = a->argv[i] + 9;
    }
    return path;
}

static int wants_help(const cli_args *a)
{
    for (int i = 1; i < a->argc; i++)
        if (!strcmp(a->argv[i], "-h") || !strcmp(a->argv[i], "--help")) return 1;
    return 0;
}

int cli_conf_merge(int argc, char **argv, const cli_conf_env *env, cli_args *out, buf *notes,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int rc = 0;
    for (int i = 0; i < argc && !rc; i++) rc = args_push(out, argv[i]);
    if (rc) return err_fmt(err, errlen, "out of memory");
    cli_args add = {0};
    int many = 0;
    rc = env_args(out, env->envp, &add, &many, err, errlen);
    if (!rc && args_merge(out, &add, many)) rc = err_fmt(err, errlen, "out of memory");
    cli_args_free(&add);
    if (rc || wants_help(out)) return rc ? (cli_args_free(out), -1) : 0;
    /* configargparse reads --config first, then ./locust.conf, then
     * ~/.locust.conf, each adding only what is not there yet */
    char *paths[3] = {0};
    const char *cfg = config_arg(out);
    if (cfg && !(paths[0] = strdup(cfg))) rc = -1;
    if (!rc &&
        asprintf(&paths[1], "%s%slocust.conf", env->cwd ? env->cwd : "", env->cwd ? "/" : "") < 0)
        paths[1] = NULL, rc = -1;
    if (!rc && env->home && asprintf(&paths[2], "%s/.locust.conf", env->home) < 0)
        paths[2] = NULL, rc = -1;
    if (rc) err_fmt(err, errlen, "out of memory");
    for (int i = 0; i < 3 && !rc; i++) {
        struct stat st;
        if (!paths[i] || (i > 0 && lstat(paths[i], &st))) continue; /* defaults may be absent */
        rc = file_args(out, paths[i], notes, err, errlen);
    }
    for (int i = 0; i < 3; i++) free(paths[i]);
    if (rc) cli_args_free(out);
    return rc;
}
