/*
 * multipart.c: find "--boundary" at the body start or after CRLF, read the
 * part's header lines up to the empty line, then search for the next
 * "\r\n--boundary"; what follows it is "--" (the end) or CRLF (another part,
 * after optional transport padding: spaces and tabs).
 */
#define _GNU_SOURCE /* memmem */
#include "lib/multipart.h"

#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HEADER_MAX 8192 /* bytes of header lines per part */

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Finds parameter `key` in a header value "a; k1=v1; k2=\"v 2\"" (case-
 * insensitive key). Quoted values lose their quotes; a backslash inside
 * quotes keeps the next character in place (we do not unescape: the raw
 * bytes point into the body). Returns 1 when found. */
static int param(const char *v, size_t n, const char *key, const char **out, size_t *olen)
{
    size_t klen = strlen(key), i = 0;
    while (i < n) {
        /* skip to after the next ';' that is not inside quotes */
        bool q = false;
        while (i < n && (q || v[i] != ';')) {
            if (v[i] == '"') q = !q;
            if (q && v[i] == '\\' && i + 1 < n) i++;
            i++;
        }
        if (i >= n) return 0;
        i++;
        while (i < n && is_space(v[i])) i++;
        if (n - i > klen && !strncasecmp(v + i, key, klen) && v[i + klen] == '=') {
            i += klen + 1;
            if (i < n && v[i] == '"') {
                size_t s = ++i;
                while (i < n && v[i] != '"') {
                    if (v[i] == '\\' && i + 1 < n) i++;
                    i++;
                }
                if (i >= n) return 0; /* unterminated quote */
                *out = v + s, *olen = i - s;
            } else {
                size_t s = i;
                while (i < n && v[i] != ';' && !is_space(v[i])) i++;
                *out = v + s, *olen = i - s;
            }
            return 1;
        }
    }
    return 0;
}

int multipart_boundary(const char *ctype, size_t len, const char **boundary, size_t *blen)
{
    static const char mt[] = "multipart/form-data";
    size_t i = 0;
    while (i < len && is_space(ctype[i])) i++;
    if (len - i < sizeof(mt) - 1 || strncasecmp(ctype + i, mt, sizeof(mt) - 1)) return -EINVAL;
    i += sizeof(mt) - 1;
    while (i < len && is_space(ctype[i])) i++;
    if (i < len && ctype[i] != ';') return -EINVAL;
    const char *b;
    size_t n;
    /* param() starts after a ';': hand it the rest from that ';' on */
    if (!param(ctype + i, len - i, "boundary", &b, &n) || n == 0 || n > MULTIPART_BOUNDARY_MAX)
        return -EINVAL;
    *boundary = b, *blen = n;
    return 0;
}

/* Reads the header lines of one part from p (up to the empty line); sets
 * the fields of part and returns the offset of the content, or -1. */
static long read_headers(const char *p, size_t n, multipart_part *part, char *err, size_t errlen,
                         size_t base)
{
    size_t i = 0;
    for (;;) {
        const char *eol = memmem(p + i, n - i, "\r\n", 2);
        if (!eol || (size_t)(eol - p) > HEADER_MAX) {
            err_fmt_rc(err, errlen, -EINVAL, "part at byte %zu: headers %s", base,
                       eol ? "longer than 8 KiB" : "not ended by an empty line");
            return -1;
        }
        size_t ll = (size_t)(eol - (p + i));
        const char *line = p + i;
        i += ll + 2;
        if (ll == 0) return (long)i;
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line) {
            err_fmt_rc(err, errlen, -EINVAL, "part at byte %zu: header line without a name", base);
            return -1;
        }
        size_t nl = (size_t)(colon - line), vs = nl + 1;
        while (vs < ll && is_space(line[vs])) vs++;
        const char *v = line + vs;
        size_t vl = ll - vs;
        while (vl && is_space(v[vl - 1])) vl--;
        if (nl == 19 && !strncasecmp(line, "Content-Disposition", 19)) {
            if (vl < 9 || strncasecmp(v, "form-data", 9) ||
                (vl > 9 && v[9] != ';' && !is_space(v[9]))) {
                err_fmt_rc(err, errlen, -EINVAL,
                           "part at byte %zu: Content-Disposition is not form-data", base);
                return -1;
            }
            param(v, vl, "name", &part->name, &part->name_len);
            param(v, vl, "filename", &part->filename, &part->filename_len);
        } else if (nl == 12 && !strncasecmp(line, "Content-Type", 12)) {
            part->ctype = v, part->ctype_len = vl;
        }
    }
}

int multipart_parse(const char *body, size_t len, const char *boundary, size_t blen,
                    multipart_part *parts, int max, char *err, size_t errlen)
{
    if (blen == 0 || blen > MULTIPART_BOUNDARY_MAX)
        return err_fmt_rc(err, errlen, -EINVAL, "bad boundary length %zu", blen);
    char delim[MULTIPART_BOUNDARY_MAX + 4] = "\r\n--";
    memcpy(delim + 4, boundary, blen);
    size_t dl = blen + 4;
    /* The first boundary: at the very start, or after CRLF in the preamble. */
    size_t pos;
    if (len >= dl - 2 && !memcmp(body, delim + 2, dl - 2)) {
        pos = dl - 2;
    } else {
        const char *f = memmem(body, len, delim, dl);
        if (!f) return err_fmt_rc(err, errlen, -EINVAL, "no --boundary line: not this form's body");
        pos = (size_t)(f - body) + dl;
    }
    int n = 0;
    for (;;) {
        /* after a boundary: "--" ends the body, else padding then CRLF starts a part */
        if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-') return n;
        while (pos < len && is_space(body[pos])) pos++;
        if (len - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n')
            return err_fmt_rc(err, errlen, -EINVAL, "byte %zu: a boundary must end its line", pos);
        pos += 2;
        if (n == max) return err_fmt_rc(err, errlen, -E2BIG, "more than %d parts", max);
        multipart_part *p = &parts[n];
        memset(p, 0, sizeof(*p));
        long h = read_headers(body + pos, len - pos, p, err, errlen, pos);
        if (h < 0) return -EINVAL;
        size_t start = pos + (size_t)h;
        const char *end = memmem(body + start, len - start, delim, dl);
        if (!end)
            return err_fmt_rc(err, errlen, -EINVAL,
                              "part %d (from byte %zu) has no closing boundary: truncated upload?",
                              n + 1, start);
        p->data = body + start;
        p->len = (size_t)(end - p->data);
        n++;
        pos = (size_t)(end - body) + dl;
    }
}
