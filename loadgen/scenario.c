/*
 * Scenario file parser (format: docs/scenario.md). One pass over the lines:
 * a section header opens a class, a task or an on_start request; key = value
 * lines fill it in. Every error names file:line and stops the parse; the half
 * built scenario is freed by the caller path (scenario_free handles partial
 * state).
 */
#define _GNU_SOURCE
#include "loadgen/scenario_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loadgen/url.h"

#define LG_BODY_FILE_MAX (64 << 20) /* bodies are held in memory, once */

/* Parse state: where we are and what the current section fills. */
typedef struct parser {
    scenario *sc;
    const char *file;
    char *dir; /* directory of the file, for body_file paths */
    int line;
    char *err;
    size_t errlen;
    enum { SEC_NONE, SEC_SETTINGS, SEC_USER, SEC_TASK, SEC_ON_START } sec;
    sc_class *cls;
    sc_request *req;
    int cls_line;
} parser;

static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(parser *p, const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->file, p->line);
    if (n < 0 || (size_t)n >= p->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static void tmpl_free(sc_tmpl *t)
{
    for (size_t i = 0; i < t->nparts; i++) {
        free(t->parts[i].text);
        free(t->parts[i].choices);
    }
    free(t->parts);
    free(t->text);
    memset(t, 0, sizeof(*t));
}

void sc_request_free(sc_request *r)
{
    tmpl_free(&r->path);
    for (size_t i = 0; i < r->nheaders; i++) tmpl_free(&r->headers[i]);
    free(r->headers);
    tmpl_free(&r->body);
    free(r->body_file);
    free(r->expect);
    free(r->contains);
    free(r->name);
    free(r->path_raw);
    for (size_t i = 0; i < r->ntags; i++) free(r->tags[i]);
    free(r->tags);
}

void sc_class_free(sc_class *c)
{
    for (size_t t = 0; t < c->ntasks; t++) sc_request_free(&c->tasks[t]);
    for (size_t t = 0; t < c->non_start; t++) sc_request_free(&c->on_start[t]);
    free(c->tasks);
    free(c->on_start);
    free(c->name);
    free(c->host);
}

void scenario_free(scenario *sc)
{
    if (!sc) return;
    for (size_t i = 0; i < sc->nclasses; i++) sc_class_free(&sc->classes[i]);
    free(sc->classes);
    free(sc->entries);
    free(sc->source);
    free(sc->host);
    free(sc);
}

/* ---- templates: literal text with ${...} substitutions ---- */

static int add_part(sc_tmpl *t, sc_part part)
{
    sc_part *n = realloc(t->parts, (t->nparts + 1) * sizeof(*n));
    if (!n) return -ENOMEM;
    t->parts = n;
    t->parts[t->nparts++] = part;
    return 0;
}

static int parse_int64(const char *s, int64_t *out)
{
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || e == s || *trim(e)) return -1;
    *out = v;
    return 0;
}

static int parse_subst(parser *p, sc_tmpl *t, char *expr)
{
    sc_part part = {0};
    char *open = strchr(expr, '(');
    if (!open) {
        expr = trim(expr);
        if (!strcmp(expr, "user_id"))
            part.kind = SC_USER_ID;
        else if (!strcmp(expr, "seq"))
            part.kind = SC_SEQ;
        else
            return perr(p, "unknown substitution '${%s}' (want randint, choice, user_id, seq)",
                        expr);
        return add_part(t, part);
    }
    char *close = strrchr(expr, ')');
    if (!close || close < open || *trim(close + 1))
        return perr(p, "substitution '${%s}' lacks a closing ')'", expr);
    *open = '\0';
    *close = '\0';
    char *fn = trim(expr), *args = open + 1;
    if (!strcmp(fn, "randint")) {
        char *comma = strchr(args, ',');
        if (!comma) return perr(p, "randint needs two integers: randint(lo, hi)");
        *comma = '\0';
        part.kind = SC_RANDINT;
        if (parse_int64(trim(args), &part.lo) || parse_int64(trim(comma + 1), &part.hi))
            return perr(p, "randint needs two integers: randint(lo, hi)");
        if (part.lo > part.hi) return perr(p, "randint(lo, hi) with lo > hi");
        return add_part(t, part);
    }
    if (!strcmp(fn, "choice")) {
        part.kind = SC_CHOICE;
        size_t n = 1;
        for (char *c = args; *c; c++) n += *c == ',';
        part.choices = calloc(n, sizeof(char *));
        part.text = strdup(args);
        if (!part.choices || !part.text) {
            free(part.choices);
            free(part.text);
            return perr(p, "out of memory");
        }
        size_t k = 0;
        for (char *tok = part.text, *next; tok; tok = next) {
            next = strchr(tok, ',');
            if (next) *next++ = '\0';
            part.choices[k++] = trim(tok);
        }
        part.len = k;
        if (add_part(t, part)) return perr(p, "out of memory");
        return 0;
    }
    return perr(p, "unknown substitution function '%s' (want randint or choice)", fn);
}

/* Parses value into t. `$$` is a literal '$'; `${...}` a substitution. */
static int parse_tmpl(parser *p, sc_tmpl *t, const char *value, size_t vlen)
{
    buf lit = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < vlen && rc == 0; i++) {
        if (value[i] == '$' && i + 1 < vlen && value[i + 1] == '$') {
            rc = buf_append(&lit, "$", 1);
            i++;
        } else if (value[i] == '$' && i + 1 < vlen && value[i + 1] == '{') {
            const char *end = memchr(value + i, '}', vlen - i);
            if (!end) {
                rc = perr(p, "unterminated '${' in '%.*s'", (int)vlen, value);
                break;
            }
            if (lit.len) {
                sc_part part = {.kind = SC_LIT, .text = lit.data, .len = lit.len};
                if (add_part(t, part)) {
                    rc = perr(p, "out of memory");
                    break;
                }
                lit = (buf)BUF_INIT;
            }
            char *expr = strndup(value + i + 2, (size_t)(end - value) - i - 2);
            rc = expr ? parse_subst(p, t, expr) : perr(p, "out of memory");
            free(expr);
            i = (size_t)(end - value);
        } else {
            rc = buf_append(&lit, value + i, 1);
        }
    }
    if (rc == 0 && (lit.len || t->nparts == 0)) {
        if (buf_reserve(&lit, 1)) rc = -ENOMEM;
        sc_part part = {.kind = SC_LIT, .text = lit.data, .len = lit.len};
        if (rc == 0 && add_part(t, part) == 0)
            lit = (buf)BUF_INIT;
        else
            rc = perr(p, "out of memory");
    }
    buf_free(&lit);
    if (rc) return -1;
    t->is_static = t->nparts == 1 && t->parts[0].kind == SC_LIT;
    if (t->is_static) {
        t->text = t->parts[0].text;
        t->len = t->parts[0].len;
        t->parts[0].text = NULL;
        t->parts[0].len = 0;
    }
    return 0;
}

/* ---- values ---- */

/* A quoted value "..." keeps its spaces and understands \n \r \t \\ \". */
static int unquote(parser *p, char *v, size_t *len)
{
    size_t n = strlen(v);
    if (n < 2 || v[0] != '"' || v[n - 1] != '"') {
        *len = n;
        return 0;
    }
    size_t o = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        char c = v[i];
        if (c == '\\' && i + 2 < n) {
            c = v[++i];
            switch (c) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case '\\':
            case '"': break;
            default: return perr(p, "unknown escape '\\%c' in quoted value", c);
            }
        }
        v[o++] = c;
    }
    v[o] = '\0';
    *len = o;
    return 0;
}

static int parse_number(parser *p, const char *key, const char *v, double lo, double *out)
{
    char *e;
    errno = 0;
    double d = strtod(v, &e);
    if (errno || e == v || *trim(e) || !isfinite(d) || d < lo)
        return perr(p, "%s must be a number >= %g, not '%s'", key, lo, v);
    *out = d;
    return 0;
}

static int parse_wait(parser *p, sc_class *c, char *v)
{
    char *open = strchr(v, '('), *close = strrchr(v, ')');
    if (!open || !close || close < open || *trim(close + 1))
        return perr(p,
                    "wait_time must be between(a, b), constant(x), constant_pacing(x) "
                    "or constant_throughput(r), not '%s'",
                    v);
    *open = *close = '\0';
    char *fn = trim(v), *args = open + 1;
    char *comma = strchr(args, ',');
    if (comma) *comma = '\0';
    double a, b = 0;
    if (!strcmp(fn, "between")) {
        if (!comma) return perr(p, "between needs two numbers: between(min, max)");
        if (parse_number(p, "between's min", trim(args), 0, &a) ||
            parse_number(p, "between's max", trim(comma + 1), 0, &b))
            return -1;
        if (a > b) return perr(p, "between(min, max) with min > max");
        c->wait = SC_WAIT_BETWEEN;
    } else {
        if (comma) return perr(p, "%s takes one number", fn);
        if (!strcmp(fn, "constant"))
            c->wait = SC_WAIT_CONSTANT;
        else if (!strcmp(fn, "constant_pacing"))
            c->wait = SC_WAIT_PACING;
        else if (!strcmp(fn, "constant_throughput"))
            c->wait = SC_WAIT_PACING;
        else
            return perr(p, "unknown wait_time function '%s'", fn);
        if (parse_number(p, fn, trim(args), 0, &a)) return -1;
        if (!strcmp(fn, "constant_throughput")) {
            if (a <= 0) return perr(p, "constant_throughput(r) needs r > 0");
            a = 1.0 / a;
        }
    }
    c->wait_a = a;
    c->wait_b = b;
    return 0;
}

static int parse_bool(parser *p, const char *key, const char *v, int *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
        *out = 0;
    else
        return perr(p, "%s must be true or false, not '%s'", key, v);
    return 0;
}

static int check_host(parser *p, const char *v)
{
    lg_url u;
    char e[300];
    if (lg_url_parse(v, &u, e, sizeof(e))) return perr(p, "host: %s", e);
    return 0;
}

static int read_file(parser *p, const char *name, char **out, size_t *len)
{
    char path[4096];
    if (name[0] == '/' || !p->dir)
        snprintf(path, sizeof(path), "%s", name);
    else
        snprintf(path, sizeof(path), "%s/%s", p->dir, name);
    struct stat sb;
    if (stat(path, &sb) < 0) return perr(p, "body_file '%s': %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return perr(p, "body_file '%s' is not a regular file", path);
    if (sb.st_size > LG_BODY_FILE_MAX)
        return perr(p, "body_file '%s' is larger than %d MiB", path, LG_BODY_FILE_MAX >> 20);
    FILE *f = fopen(path, "rb");
    if (!f) return perr(p, "body_file '%s': %s", path, strerror(errno));
    buf b = BUF_INIT;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&b, chunk, n)) rc = perr(p, "body_file '%s': out of memory", path);
    if (ferror(f)) rc = perr(p, "body_file '%s': read error", path);
    fclose(f);
    if (rc) {
        buf_free(&b);
        return -1;
    }
    *out = b.data ? b.data : strdup("");
    *len = b.len;
    return 0;
}

static int parse_expect(parser *p, sc_request *r, char *v)
{
    for (char *tok = strtok(v, " ,"); tok; tok = strtok(NULL, " ,")) {
        char *e;
        long code = strtol(tok, &e, 10);
        if (*e || code < 100 || code > 599)
            return perr(p, "expect_status: '%s' is not a status code (100..599)", tok);
        int *n = realloc(r->expect, (r->nexpect + 1) * sizeof(int));
        if (!n) return perr(p, "out of memory");
        r->expect = n;
        r->expect[r->nexpect++] = (int)code;
    }
    if (!r->nexpect) return perr(p, "expect_status needs at least one status code");
    return 0;
}

static int bad_path_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) return 1;
    return 0;
}

/* The rendered path must be one token: no spaces or control bytes in the
 * literal text or in any choice (spaces inside ${...} are fine). */
static int check_path(parser *p, const sc_tmpl *t)
{
    int bad = t->is_static && bad_path_text(t->text, t->len);
    for (size_t i = 0; i < t->nparts && !bad; i++) {
        const sc_part *q = &t->parts[i];
        if (q->kind == SC_LIT) bad = bad_path_text(q->text, q->len);
        for (size_t k = 0; q->kind == SC_CHOICE && k < q->len && !bad; k++)
            bad = bad_path_text(q->choices[k], strlen(q->choices[k]));
    }
    return bad ? perr(p, "path has a space or control character") : 0;
}

static int method_ok(const char *m)
{
    if (!*m || strlen(m) >= 16) return 0;
    for (; *m; m++)
        if (!isupper((unsigned char)*m)) return 0;
    return 1;
}

static int request_key(parser *p, sc_request *r, const char *key, char *v, size_t vlen)
{
    if (!strcmp(key, "method")) {
        if (!method_ok(v))
            return perr(p, "method must be an upper-case token like GET, not '%s'", v);
        strcpy(r->method, v);
    } else if (!strcmp(key, "path")) {
        if (v[0] != '/') return perr(p, "path must start with '/', not '%s'", v);
        tmpl_free(&r->path);
        free(r->path_raw);
        r->path_raw = strndup(v, vlen);
        if (!r->path_raw) return perr(p, "out of memory");
        if (parse_tmpl(p, &r->path, v, vlen)) return -1;
        return check_path(p, &r->path);
    } else if (!strcmp(key, "header")) {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v) return perr(p, "header must be 'Name: value', not '%s'", v);
        for (const char *c = v; c < colon; c++)
            if (!isgraph((unsigned char)*c)) return perr(p, "bad character in header name");
        for (const char *c = v; *c; c++)
            if (*c == '\r' || *c == '\n') return perr(p, "header value has a line break");
        sc_tmpl *n = realloc(r->headers, (r->nheaders + 1) * sizeof(*n));
        if (!n) return perr(p, "out of memory");
        r->headers = n;
        memset(&r->headers[r->nheaders], 0, sizeof(sc_tmpl));
        return parse_tmpl(p, &r->headers[r->nheaders++], v, vlen);
    } else if (!strcmp(key, "body")) {
        if (r->body_file) return perr(p, "body and body_file are both set");
        tmpl_free(&r->body);
        r->has_body = 1;
        return parse_tmpl(p, &r->body, v, vlen);
    } else if (!strcmp(key, "body_file")) {
        if (r->has_body && !r->body_file) return perr(p, "body and body_file are both set");
        free(r->body_file);
        r->body_file = NULL;
        r->has_body = 1;
        return read_file(p, v, &r->body_file, &r->body_file_len);
    } else if (!strcmp(key, "expect_status")) {
        return parse_expect(p, r, v);
    } else if (!strcmp(key, "expect_body")) {
        if (!vlen) return perr(p, "expect_body is empty");
        free(r->contains);
        r->contains = strndup(v, vlen);
        r->contains_len = vlen;
    } else if (!strcmp(key, "weight") && p->sec == SEC_TASK) {
        return parse_number(p, "weight", v, 0, &r->weight);
    } else if (!strcmp(key, "tags") && p->sec == SEC_TASK) {
        int rc = sc_tags_add(r, v);
        if (rc == -EINVAL) return perr(p, "tags needs at least one tag: tags = a, b");
        return rc ? perr(p, "out of memory") : 0;
    } else if (!strcmp(key, "tags")) {
        return perr(p, "tags belong to a [task]: on_start requests are never filtered");
    } else if (!strcmp(key, "name")) {
        if (!vlen || vlen >= sizeof(((sc_entry *)0)->name))
            return perr(p, "name must be 1..255 bytes");
        free(r->name);
        r->name = strndup(v, vlen);
        if (!r->name) return perr(p, "out of memory");
    } else {
        return perr(p, "unknown key '%s' in [%s]", key, p->sec == SEC_TASK ? "task" : "on_start");
    }
    return 0;
}

/* ---- sections ---- */

static sc_class *find_class(scenario *sc, const char *name)
{
    for (size_t i = 0; i < sc->nclasses; i++)
        if (!strcmp(sc->classes[i].name, name)) return &sc->classes[i];
    return NULL;
}

static sc_class *add_class(parser *p, const char *name)
{
    scenario *sc = p->sc;
    sc_class *n = realloc(sc->classes, (sc->nclasses + 1) * sizeof(*n));
    if (!n) return NULL;
    sc->classes = n;
    sc_class *c = &sc->classes[sc->nclasses];
    memset(c, 0, sizeof(*c));
    c->name = strdup(name);
    if (!c->name) return NULL;
    c->weight = 1;
    c->wait = SC_WAIT_CONSTANT;
    sc->nclasses++;
    p->cls_line = p->line;
    return c;
}

static sc_request *add_request(sc_request **arr, size_t *n, int line)
{
    sc_request *a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (!a) return NULL;
    *arr = a;
    sc_request *r = &a[(*n)++];
    memset(r, 0, sizeof(*r));
    strcpy(r->method, "GET");
    r->weight = 1;
    r->line = line;
    r->entry = -1;
    return r;
}

static int finish_request(parser *p, sc_request *r)
{
    if (!r->path_raw) {
        p->line = r->line;
        return perr(p, "request has no path");
    }
    return 0;
}

static int finish_section(parser *p)
{
    if ((p->sec == SEC_TASK || p->sec == SEC_ON_START) && p->req) return finish_request(p, p->req);
    return 0;
}

/* "[user NAME]", "[task]", "[task NAME]", "[on_start NAME]", "[settings]". */
static int open_section(parser *p, char *inside)
{
    if (finish_section(p)) return -1;
    char *kind = trim(inside), *name = kind + strcspn(kind, " \t");
    if (*name) *name++ = '\0';
    name = trim(name);
    p->req = NULL;
    if (!strcmp(kind, "settings")) {
        if (*name) return perr(p, "[settings] takes no name");
        p->sec = SEC_SETTINGS;
        return 0;
    }
    if (!strcmp(kind, "user")) {
        if (!*name) return perr(p, "[user] needs a class name: [user NAME]");
        if (find_class(p->sc, name)) return perr(p, "user class '%s' is defined twice", name);
        p->cls = add_class(p, name);
        if (!p->cls) return perr(p, "out of memory");
        p->sec = SEC_USER;
        return 0;
    }
    if (strcmp(kind, "task") && strcmp(kind, "on_start"))
        return perr(p, "unknown section [%s] (want settings, user, task or on_start)", kind);
    sc_class *c = *name ? find_class(p->sc, name) : p->cls;
    if (*name && !c) return perr(p, "[%s %s]: no user class '%s' above", kind, name, name);
    if (!c) {
        /* A file of tasks only: they belong to one implicit class. */
        c = add_class(p, "User");
        if (!c) return perr(p, "out of memory");
    }
    p->cls = c;
    int is_task = !strcmp(kind, "task");
    p->sec = is_task ? SEC_TASK : SEC_ON_START;
    p->req = is_task ? add_request(&c->tasks, &c->ntasks, p->line)
                     : add_request(&c->on_start, &c->non_start, p->line);
    if (!p->req) return perr(p, "out of memory");
    return 0;
}

static int settings_key(parser *p, const char *key, char *v)
{
    if (strcmp(key, "host")) return perr(p, "unknown key '%s' in [settings] (want host)", key);
    if (check_host(p, v)) return -1;
    free(p->sc->host);
    p->sc->host = strdup(v);
    return p->sc->host ? 0 : perr(p, "out of memory");
}

static int user_key(parser *p, const char *key, char *v)
{
    sc_class *c = p->cls;
    if (!strcmp(key, "weight")) return parse_number(p, "weight", v, 0, &c->weight);
    if (!strcmp(key, "wait_time")) return parse_wait(p, c, v);
    if (!strcmp(key, "fixed_count")) {
        double n;
        if (parse_number(p, "fixed_count", v, 0, &n)) return -1;
        if (n != floor(n) || n > 10000000)
            return perr(p, "fixed_count must be a whole number 0..10000000, not '%s'", v);
        c->fixed_count = (int)n;
        return 0;
    }
    if (!strcmp(key, "sequential")) return parse_bool(p, "sequential", v, &c->sequential);
    if (!strcmp(key, "host")) {
        if (check_host(p, v)) return -1;
        free(c->host);
        c->host = strdup(v);
        return c->host ? 0 : perr(p, "out of memory");
    }
    return perr(
        p, "unknown key '%s' in [user %s] (want weight, fixed_count, wait_time, sequential, host)",
        key, c->name);
}

static int parse_line(parser *p, char *line)
{
    char *s = trim(line);
    if (!*s || *s == '#' || *s == ';') return 0;
    if (*s == '[') {
        char *close = strchr(s, ']');
        if (!close || *trim(close + 1)) return perr(p, "section header must be '[kind name]'");
        *close = '\0';
        return open_section(p, s + 1);
    }
    char *eq = strchr(s, '=');
    if (!eq) return perr(p, "expected 'key = value' or a [section], got '%s'", s);
    *eq = '\0';
    char *key = trim(s), *v = trim(eq + 1);
    size_t vlen = 0;
    if (unquote(p, v, &vlen)) return -1;
    switch (p->sec) {
    case SEC_NONE: return perr(p, "'%s' outside any section", key);
    case SEC_SETTINGS: return settings_key(p, key, v);
    case SEC_USER: return user_key(p, key, v);
    default: return request_key(p, p->req, key, v, vlen);
    }
}

/* ---- after the parse: validate classes, assign stats entries ---- */

int sc_entry_of(scenario *sc, const char *method, const char *name)
{
    for (size_t i = 0; i < sc->nentries; i++)
        if (!strcmp(sc->entries[i].method, method) && !strcmp(sc->entries[i].name, name))
            return (int)i;
    sc_entry *n = realloc(sc->entries, (sc->nentries + 1) * sizeof(*n));
    if (!n) return -1;
    sc->entries = n;
    sc_entry *e = &sc->entries[sc->nentries];
    memset(e, 0, sizeof(*e));
    snprintf(e->method, sizeof(e->method), "%s", method);
    snprintf(e->name, sizeof(e->name), "%s", name);
    return (int)sc->nentries++;
}

static int assign_entries(parser *p, sc_request *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sc_request *r = &rs[i];
        r->entry = sc_entry_of(p->sc, r->method, r->name ? r->name : r->path_raw);
        if (r->entry < 0) return perr(p, "out of memory");
    }
    return 0;
}

static int finish(parser *p)
{
    if (finish_section(p)) return -1;
    scenario *sc = p->sc;
    if (!sc->nclasses) return perr(p, "no user class and no task: nothing to run");
    double wsum = 0;
    for (size_t i = 0; i < sc->nclasses; i++) {
        sc_class *c = &sc->classes[i];
        if (!c->ntasks) {
            p->line = p->cls_line;
            return perr(p, "user class '%s' has no [task]", c->name);
        }
        c->total_weight = 0;
        for (size_t t = 0; t < c->ntasks; t++) c->total_weight += c->tasks[t].weight;
        if (c->total_weight <= 0 && !c->sequential) {
            p->line = c->tasks[0].line;
            return perr(p, "every task of '%s' has weight 0", c->name);
        }
        wsum += c->fixed_count ? 1 : c->weight; /* a fixed class always gets users */
        if (assign_entries(p, c->on_start, c->non_start) || assign_entries(p, c->tasks, c->ntasks))
            return -1;
    }
    if (wsum <= 0) {
        p->line = p->cls_line;
        return perr(p, "every user class has weight 0 and no fixed_count");
    }
    return 0;
}

scenario *scenario_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    parser p = {.file = name, .err = err, .errlen = errlen};
    if (errlen) err[0] = '\0';
    p.sc = calloc(1, sizeof(scenario));
    char *copy = strndup(text, len);
    if (!p.sc || !copy) {
        snprintf(err, errlen, "%s: out of memory", name);
        free(copy);
        free(p.sc);
        return NULL;
    }
    p.sc->source = strdup(name);
    const char *slash = strrchr(name, '/');
    p.dir = slash ? strndup(name, (size_t)(slash - name)) : NULL;
    if (memchr(text, '\0', len)) {
        p.line = 1;
        perr(&p, "file contains a NUL byte (binary file?)");
        goto fail;
    }
    char *save = NULL, *line = copy;
    for (char *nl; line; line = nl) {
        nl = strchr(line, '\n');
        if (nl) *nl++ = '\0';
        p.line++;
        if (parse_line(&p, line)) goto fail;
    }
    (void)save;
    if (finish(&p)) goto fail;
    free(copy);
    free(p.dir);
    return p.sc;
fail:
    free(copy);
    free(p.dir);
    scenario_free(p.sc);
    return NULL;
}

scenario *scenario_load(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf b = BUF_INIT;
    char chunk[16384];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (b.len > (16u << 20) || buf_append(&b, chunk, n)) rc = -1; /* 16 MiB of text at most */
    fclose(f);
    if (rc) {
        snprintf(err, errlen, "%s: too large or out of memory", path);
        buf_free(&b);
        return NULL;
    }
    scenario *sc = scenario_parse(b.data ? b.data : "", b.len, path, err, errlen);
    buf_free(&b);
    return sc;
}

scenario *scenario_from_quick(const scenario_quick *q, char *err, size_t errlen)
{
    lg_url u;
    if (lg_url_parse(q->url, &u, err, errlen)) return NULL;
    buf text = BUF_INIT;
    int rc = buf_printf(&text, "[settings]\nhost = %s://%s\n[user quick]\n[task]\nmethod = %s\n",
                        u.tls ? "https" : "http", u.authority, q->method ? q->method : "GET");
    /* The path goes in literally: quick mode does no substitutions. */
    buf path = BUF_INIT;
    for (const char *c = u.path; *c; c++)
        rc |= *c == '$' ? buf_puts(&path, "$$") : buf_append(&path, c, 1);
    rc |= buf_printf(&text, "path = %s\nname = %s\n", path.data, u.path);
    for (size_t i = 0; i < q->nheaders; i++) {
        if (strchr(q->headers[i], '\n')) {
            snprintf(err, errlen, "--header '%s' has a line break", q->headers[i]);
            rc = -1;
        }
        rc |= buf_printf(&text, "header = %s\n", q->headers[i]);
    }
    if (q->body_file) rc |= buf_printf(&text, "body_file = %s\n", q->body_file);
    buf_free(&path);
    if (rc) {
        if (!err[0]) snprintf(err, errlen, "out of memory");
        buf_free(&text);
        return NULL;
    }
    char e2[512];
    scenario *sc = scenario_parse(text.data, text.len, "(command line)", e2, sizeof(e2));
    if (!sc) snprintf(err, errlen, "%s", e2 + (strncmp(e2, "(command line):", 15) ? 0 : 15));
    buf_free(&text);
    return sc;
}

const char *scenario_host(const scenario *sc)
{
    if (sc->host) return sc->host;
    return sc->nclasses && sc->classes[0].host ? sc->classes[0].host : NULL;
}

size_t scenario_class_count(const scenario *sc)
{
    return sc->nclasses;
}

const char *scenario_class_name(const scenario *sc, size_t i)
{
    return i < sc->nclasses ? sc->classes[i].name : NULL;
}

const char *scenario_source(const scenario *sc)
{
    return sc->source;
}
