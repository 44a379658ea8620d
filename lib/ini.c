#include "ini.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Trims s[*b..*e) in place by moving the bounds. */
static void trim(const char *s, size_t *b, size_t *e)
{
    while (*b < *e && is_space(s[*b])) (*b)++;
    while (*e > *b && is_space(s[*e - 1])) (*e)--;
}

/* Handles one line s[0..n); the line is copied to scratch so the callback
 * sees NUL-terminated strings. */
static int do_line(const char *s, size_t n, char *section, size_t seccap, char *scratch, int lineno,
                   const char *name, ini_cb cb, void *ud, char *err, size_t errlen)
{
    size_t b = 0, e = n;
    trim(s, &b, &e);
    if (b == e || s[b] == '#' || s[b] == ';') return 0;
    if (s[b] == '[') {
        if (s[e - 1] != ']' || e - b < 3) {
            snprintf(err, errlen, "%s:%d: malformed section header", name, lineno);
            return -1;
        }
        size_t l = e - b - 2;
        if (l >= seccap) l = seccap - 1;
        memcpy(section, s + b + 1, l);
        section[l] = 0;
        return 0;
    }
    const char *eq = memchr(s + b, '=', e - b);
    if (!eq) {
        snprintf(err, errlen, "%s:%d: expected 'key = value'", name, lineno);
        return -1;
    }
    size_t kb = b, ke = (size_t)(eq - s), vb = ke + 1, ve = e;
    trim(s, &kb, &ke);
    trim(s, &vb, &ve);
    if (kb == ke) {
        snprintf(err, errlen, "%s:%d: missing key before '='", name, lineno);
        return -1;
    }
    memcpy(scratch, s + kb, ke - kb);
    scratch[ke - kb] = 0;
    char *val = scratch + (ke - kb) + 1;
    memcpy(val, s + vb, ve - vb);
    val[ve - vb] = 0;
    if (memchr(s + b, 0, e - b)) {
        snprintf(err, errlen, "%s:%d: NUL byte in line", name, lineno);
        return -1;
    }
    return cb(ud, section, scratch, val, lineno);
}

int ini_parse_string(const char *text, size_t len, const char *name, ini_cb cb, void *ud, char *err,
                     size_t errlen)
{
    char section[128] = "";
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        text += 3;
        len -= 3;
    }
    char *scratch = malloc(len + 2);
    if (!scratch) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    int lineno = 0, rc = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        rc = do_line(text + pos, n, section, sizeof(section), scratch, lineno, name, cb, ud, err,
                     errlen);
        pos += n + 1;
    }
    free(scratch);
    return rc;
}

int ini_parse_file(const char *path, ini_cb cb, void *ud, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    size_t n;
    while (text && (n = fread(text + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *t = cap < (64u << 20) ? realloc(text, cap * 2) : NULL;
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!text || bad) {
        free(text);
        snprintf(err, errlen, "%s: cannot read (too large or I/O error)", path);
        return -1;
    }
    int rc = ini_parse_string(text, len, path, cb, ud, err, errlen);
    free(text);
    return rc;
}
