#define _GNU_SOURCE
#include "ini.h"

#include "err.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define INI_MAX_DEPTH 10
/* An expanded value may not grow past this: %(a)%(a)... on line after line
 * would otherwise double the memory with every line. */
#define INI_MAX_VALUE (64 * 1024)
#define INI_MAX_FILE  (64u << 20)

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) return -1;
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

typedef struct var {
    char *name, *value;
    int is_key; /* a key read earlier (else a set-placeholder) */
} var;

/* One file being read: what its %-variables expand to. */
typedef struct file_ctx {
    const char *name; /* as given (or resolved, for includes): used in messages */
    char *abs;        /* absolute path */
    const char *spec_section;
    struct file_ctx *top;
} file_ctx;

typedef struct reader {
    ini_cb cb;
    void *ud;
    char *err;
    size_t errlen;
    const char *sections; /* the default list */
    var *vars;
    size_t nvars, capvars;
    int depth;
    long long t_us; /* %t / %T: once per read, like uWSGI's start time */
} reader;

static int read_text(reader *r, const char *text, size_t len, file_ctx *fc, const char *sections);

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static void trim(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && is_space(s[*b])) (*b)++;
    while (*e > *b && is_space(s[*e - 1])) (*e)--;
}

static int fail(reader *r, const file_ctx *fc, int line, const char *fmt, const char *arg)
{
    char what[512];
    snprintf(what, sizeof(what), fmt, arg);
    if (line) return err_fmt(r->err, r->errlen, "%s:%d: %s", fc->name, line, what);
    return err_fmt(r->err, r->errlen, "%s: %s", fc->name, what);
}

/* ---- variables: keys read so far and set-placeholder definitions ---- */

static int var_set(reader *r, const char *name, size_t nlen, const char *value, int is_key)
{
    if (r->nvars == r->capvars) {
        size_t cap = r->capvars ? r->capvars * 2 : 32;
        var *v = realloc(r->vars, cap * sizeof(*v));
        if (!v) return -1;
        r->vars = v;
        r->capvars = cap;
    }
    var *v = &r->vars[r->nvars];
    v->name = strndup(name, nlen);
    v->value = strdup(value);
    v->is_key = is_key;
    if (!v->name || !v->value) {
        free(v->name);
        free(v->value);
        return -1;
    }
    r->nvars++;
    return 0;
}

static const var *var_get(const reader *r, const char *name, size_t nlen)
{
    for (size_t i = r->nvars; i-- > 0;)
        if (strlen(r->vars[i].name) == nlen && !memcmp(r->vars[i].name, name, nlen))
            return &r->vars[i];
    return NULL;
}

/* ---- %-variables of a file ---- */

static const char *base_name(const char *abs)
{
    const char *slash = strrchr(abs, '/');
    return slash ? slash + 1 : abs;
}

/* Appends the magic variable c of file fc; 1 if c is no such variable. */
static int put_magic(reader *r, sbuf *out, const file_ctx *fc, char c)
{
    const file_ctx *f = (c >= 'A' && c <= 'Z' && c != 'U' && c != 'G' && c != 'T') ? fc->top : fc;
    const char *abs = f->abs, *base = base_name(abs);
    const char *dot = strrchr(base, '.');
    char num[64];
    switch (c) {
    case 'd':
    case 'D': return sb_put(out, abs, (size_t)(base - abs));
    case 'p':
    case 'P': return sb_put(out, abs, strlen(abs));
    case 's':
    case 'S': return sb_put(out, base, strlen(base));
    case 'n':
    case 'N': return sb_put(out, base, dot ? (size_t)(dot - base) : strlen(base));
    case 'e':
    case 'E': return sb_put(out, dot ? dot + 1 : "", dot ? strlen(dot + 1) : 0);
    case 'c':
    case 'C': {
        /* the directory's own name: between the last two '/' */
        const char *end = base - 1, *b = end;
        while (b > abs && b[-1] != '/') b--;
        return end > abs ? sb_put(out, b, (size_t)(end - b)) : 0;
    }
    case 'o':
    case 'O': return sb_put(out, f->top->name, strlen(f->top->name));
    case 'x':
    case 'X':
        if (sb_put(out, f->name, strlen(f->name))) return -1;
        return f->spec_section[0]
                   ? (sb_put(out, ":", 1) || sb_put(out, f->spec_section, strlen(f->spec_section)))
                   : 0;
    case 'h':
        if (gethostname(num, sizeof(num))) num[0] = 0;
        num[sizeof(num) - 1] = 0;
        break;
    case 'k': snprintf(num, sizeof(num), "%ld", sysconf(_SC_NPROCESSORS_ONLN)); break;
    case 'u': snprintf(num, sizeof(num), "%u", (unsigned)getuid()); break;
    case 'g': snprintf(num, sizeof(num), "%u", (unsigned)getgid()); break;
    case 'U': {
        struct passwd *pw = getpwuid(getuid());
        if (pw) return sb_put(out, pw->pw_name, strlen(pw->pw_name));
        snprintf(num, sizeof(num), "%u", (unsigned)getuid());
        break;
    }
    case 'G': {
        struct group *gr = getgrgid(getgid());
        if (gr) return sb_put(out, gr->gr_name, strlen(gr->gr_name));
        snprintf(num, sizeof(num), "%u", (unsigned)getgid());
        break;
    }
    case 't': snprintf(num, sizeof(num), "%lld", r->t_us / 1000000); break;
    case 'T': snprintf(num, sizeof(num), "%lld", r->t_us); break;
    case '%': return sb_put(out, "%", 1);
    default: return 1;
    }
    return sb_put(out, num, strlen(num));
}

/* Expands $(ENV), %(name) and %c in v[0..n) into out. 0, or -1 with err. */
static int expand(reader *r, const file_ctx *fc, int line, const char *v, size_t n, sbuf *out)
{
    out->len = 0;
    if (sb_put(out, "", 0)) goto nomem;
    for (size_t i = 0; i < n;) {
        const char *close = NULL;
        if ((v[i] == '$' || v[i] == '%') && i + 1 < n && v[i + 1] == '(')
            close = memchr(v + i + 2, ')', n - i - 2);
        if (close) {
            const char *name = v + i + 2;
            size_t nl = (size_t)(close - name);
            if (v[i] == '$') {
                char env[256];
                if (nl < sizeof(env)) {
                    memcpy(env, name, nl);
                    env[nl] = 0;
                    const char *val = getenv(env);
                    if (val && sb_put(out, val, strlen(val))) goto nomem;
                }
            } else {
                const var *var = var_get(r, name, nl);
                if (!var) {
                    char nm[128];
                    snprintf(nm, sizeof(nm), "%.*s", (int)(nl < 100 ? nl : 100), name);
                    return fail(r, fc, line,
                                "%%(%s): no option or placeholder of that name is set above "
                                "(set-placeholder = NAME=VALUE defines one)",
                                nm);
                }
                if (sb_put(out, var->value, strlen(var->value))) goto nomem;
                if (var->is_key) {
                    /* tell the caller the key served as a placeholder */
                    int rc = r->cb(r->ud, var->name, NULL, fc->name, line);
                    if (rc) return rc;
                }
            }
            i = (size_t)(close - v) + 1;
        } else if (v[i] == '%' && i + 1 < n) {
            int rc = put_magic(r, out, fc, v[i + 1]);
            if (rc < 0) goto nomem;
            if (rc > 0 && sb_put(out, v + i, 2)) goto nomem;
            i += 2;
        } else {
            if (sb_put(out, v + i, 1)) goto nomem;
            i++;
        }
        if (out->len > INI_MAX_VALUE)
            return fail(r, fc, line, "value longer than %s bytes after expansion", "65536");
    }
    return 0;
nomem:
    return fail(r, fc, line, "%s", "out of memory");
}

/* ---- files ---- */

static char *absolute(const char *path)
{
    char *abs = realpath(path, NULL);
    if (abs) return abs;
    if (path[0] == '/') return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd))) return strdup(path);
    size_t n = strlen(cwd) + strlen(path) + 2;
    abs = malloc(n);
    if (abs) snprintf(abs, n, "%s/%s", cwd, path);
    return abs;
}

/* Reads a regular file whole; NULL with errno (EINVAL: not a regular file,
 * EFBIG: too large). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        errno = EINVAL;
        return NULL;
    }
    size_t cap = 4096, n;
    char *text = malloc(cap);
    *len = 0;
    while (text && (n = fread(text + *len, 1, cap - *len, f)) > 0) {
        *len += n;
        if (*len < cap) continue;
        char *t = cap < INI_MAX_FILE ? realloc(text, cap * 2) : NULL;
        if (!t) errno = cap < INI_MAX_FILE ? ENOMEM : EFBIG;
        if (!t) free(text);
        text = t;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (text && bad) {
        free(text);
        text = NULL;
        errno = EIO;
    }
    return text;
}

char *ini_split_spec(const char *spec, char *section, size_t seclen)
{
    section[0] = 0;
    struct stat st;
    const char *colon = strrchr(spec, ':'), *slash = strrchr(spec, '/');
    if (!colon || (slash && colon < slash) || !colon[1] || stat(spec, &st) == 0)
        return strdup(spec);
    snprintf(section, seclen, "%s", colon + 1);
    return strndup(spec, (size_t)(colon - spec));
}

static int read_spec(reader *r, const char *spec, const file_ctx *from, int line, file_ctx *top)
{
    char section[128];
    char *path = ini_split_spec(spec, section, sizeof(section));
    if (!path) return fail(r, from ? from : top, line, "%s", "out of memory");
    /* Includes resolve from the including file's directory first (so a file
     * works wherever it is run from), then from the current directory as
     * uWSGI does. */
    char *tried = NULL;
    if (from && path[0] != '/') {
        const char *base = base_name(from->abs);
        size_t n = (size_t)(base - from->abs) + strlen(path) + 1;
        tried = malloc(n);
        if (tried) {
            snprintf(tried, n, "%.*s%s", (int)(base - from->abs), from->abs, path);
            if (access(tried, F_OK) == 0) {
                free(path);
                path = tried;
                tried = NULL;
            }
        }
    }
    free(tried);
    size_t len;
    char *text = slurp(path, &len);
    if (!text) {
        int e = errno;
        char what[PATH_MAX + 128];
        snprintf(what, sizeof(what), "cannot read '%s': %s", path,
                 e == EINVAL  ? "not a regular file"
                 : e == EFBIG ? "larger than 64 MiB"
                              : strerror(e));
        int rc =
            from ? fail(r, from, line, "%s", what) : (snprintf(r->err, r->errlen, "%s", what), -1);
        free(path);
        return rc;
    }
    file_ctx fc = {.name = path, .abs = absolute(path), .spec_section = section};
    fc.top = top ? top : &fc;
    int rc = fc.abs ? read_text(r, text, len, &fc, section[0] ? section : r->sections)
                    : fail(r, &fc, 0, "%s", "out of memory");
    free(fc.abs);
    free(text);
    free(path);
    return rc;
}

static int in_list(const char *list, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = list; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == n && !memcmp(p, s, n)) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* End of the value in s[b..e): the first ';' or '#' after a space or tab. */
static size_t value_end(const char *s, size_t b, size_t e)
{
    for (size_t i = b; i < e; i++)
        if ((s[i] == ';' || s[i] == '#') && i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
            return i;
    return e;
}

typedef struct line_state {
    char section[128];
    int chosen; /* the current section is one to read */
    sbuf key, val;
} line_state;

static int do_line(reader *r, file_ctx *fc, const char *sections, line_state *ls, const char *s,
                   size_t n, int lineno)
{
    size_t b = 0, e = n;
    trim(s, &b, &e);
    if (b == e || s[b] == '#' || s[b] == ';') return 0;
    if (memchr(s + b, 0, e - b)) return fail(r, fc, lineno, "%s", "NUL byte in line");
    if (s[b] == '[') {
        const char *close = memchr(s + b, ']', e - b);
        size_t after = close ? (size_t)(close - s) + 1 : e;
        while (after < e && is_space(s[after])) after++;
        if (!close || (after < e && s[after] != ';' && s[after] != '#'))
            return fail(r, fc, lineno, "%s", "malformed section header");
        size_t nb = b + 1, ne = (size_t)(close - s);
        trim(s, &nb, &ne);
        if (nb == ne) return fail(r, fc, lineno, "%s", "empty section name");
        snprintf(ls->section, sizeof(ls->section), "%.*s", (int)(ne - nb), s + nb);
        ls->chosen = in_list(sections, ls->section);
        return 0;
    }
    const char *eq = memchr(s + b, '=', e - b);
    if (!eq) return fail(r, fc, lineno, "%s", "expected 'key = value'");
    size_t kb = b, ke = (size_t)(eq - s), vb = ke + 1, ve = value_end(s, ke + 1, e);
    trim(s, &kb, &ke);
    trim(s, &vb, &ve);
    if (kb == ke) return fail(r, fc, lineno, "%s", "missing key before '='");
    if (!ls->chosen) return 0;
    ls->key.len = 0;
    if (sb_put(&ls->key, s + kb, ke - kb)) return fail(r, fc, lineno, "%s", "out of memory");
    int xrc = expand(r, fc, lineno, s + vb, ve - vb, &ls->val);
    if (xrc) return xrc;
    const char *key = ls->key.s, *val = ls->val.s;
    if (!strcmp(key, "ini") || !strcmp(key, "include")) {
        if (!*val) return fail(r, fc, lineno, "'%s' needs a file", key);
        if (r->depth >= INI_MAX_DEPTH)
            return fail(r, fc, lineno, "includes nest deeper than %s (a cycle?)", "10");
        /* the recursion reuses nothing of ls: copy the spec */
        char *spec = strdup(val);
        if (!spec) return fail(r, fc, lineno, "%s", "out of memory");
        r->depth++;
        int rc = read_spec(r, spec, fc, lineno, fc->top);
        r->depth--;
        free(spec);
        return rc;
    }
    if (!strcmp(key, "set-placeholder") || !strcmp(key, "set-ph")) {
        const char *veq = strchr(val, '=');
        if (!veq || veq == val)
            return fail(r, fc, lineno, "%s", "set-placeholder takes NAME=VALUE");
        if (var_set(r, val, (size_t)(veq - val), veq + 1, 0))
            return fail(r, fc, lineno, "%s", "out of memory");
        return 0;
    }
    if (var_set(r, key, strlen(key), val, 1)) return fail(r, fc, lineno, "%s", "out of memory");
    return r->cb(r->ud, key, val, fc->name, lineno);
}

static int read_text(reader *r, const char *text, size_t len, file_ctx *fc, const char *sections)
{
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        text += 3;
        len -= 3;
    }
    line_state ls = {.section = ""};
    int lineno = 0, rc = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        rc = do_line(r, fc, sections, &ls, text + pos, n, lineno);
        pos += n + 1;
    }
    free(ls.key.s);
    free(ls.val.s);
    return rc;
}

static void reader_init(reader *r, const char *sections, ini_cb cb, void *ud, char *err,
                        size_t errlen)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    *r = (reader){.cb = cb,
                  .ud = ud,
                  .err = err,
                  .errlen = errlen,
                  .sections = sections,
                  .t_us = (long long)tv.tv_sec * 1000000 + tv.tv_usec};
}

static void reader_free(reader *r)
{
    for (size_t i = 0; i < r->nvars; i++) {
        free(r->vars[i].name);
        free(r->vars[i].value);
    }
    free(r->vars);
}

int ini_read(const char *spec, const char *sections, ini_cb cb, void *ud, char *err, size_t errlen)
{
    reader r;
    reader_init(&r, sections, cb, ud, err, errlen);
    int rc = read_spec(&r, spec, NULL, 0, NULL);
    reader_free(&r);
    return rc;
}

int ini_read_string(const char *text, size_t len, const char *name, const char *sections, ini_cb cb,
                    void *ud, char *err, size_t errlen)
{
    reader r;
    reader_init(&r, sections, cb, ud, err, errlen);
    file_ctx fc = {.name = name, .abs = absolute(name), .spec_section = ""};
    fc.top = &fc;
    int rc = fc.abs ? read_text(&r, text, len, &fc, sections)
                    : (snprintf(err, errlen, "%s: out of memory", name), -1);
    free(fc.abs);
    reader_free(&r);
    return rc;
}
