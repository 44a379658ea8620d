/*
 * json.c: one iterative pass over the text with an explicit container stack
 * (no recursion, so depth costs no C stack). Numbers are only validated here;
 * they are converted on demand (json_num_*), with an exact fast path for the
 * short decimals that tensors are usually written with.
 */
#include "json.h"

#include "err.h"
#include "pct.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    json_doc *doc;
    const char *s;
    size_t len;
    size_t pos;
    uint32_t max_tokens;
    int nonfinite; /* json_limits.allow_nonfinite */
    char *err;
    size_t errlen;
} parser;

static int fail(parser *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser *p, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vfmt_rc(p->err, p->errlen, rc, fmt, ap);
    va_end(ap);
    if (p->err && p->errlen) {
        size_t n = strlen(p->err);
        if (n + 1 < p->errlen) snprintf(p->err + n, p->errlen - n, " at byte %zu", p->pos);
    }
    return rc;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int add_tok(parser *p, json_type type, size_t start)
{
    json_doc *d = p->doc;
    if (d->n >= p->max_tokens)
        return fail(p, -E2BIG, "too many JSON values (limit %u)", p->max_tokens);
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        if (cap > p->max_tokens) cap = p->max_tokens;
        json_tok *t = realloc(d->tok, (size_t)cap * sizeof(*t));
        if (!t) return fail(p, -ENOMEM, "out of memory");
        d->tok = t;
        d->cap = cap;
    }
    json_tok *t = &d->tok[d->n];
    *t = (json_tok){.type = type, .start = (uint32_t)start, .next = d->n + 1};
    return (int)d->n++;
}

static int lit(parser *p, const char *word, json_type type)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, -EINVAL, "invalid literal");
    int i = add_tok(p, type, p->pos);
    if (i < 0) return i;
    p->doc->tok[i].len = (uint32_t)n;
    p->pos += n;
    return 0;
}

/* NaN, Infinity or -Infinity as a number token (allow_nonfinite). */
static int nonfinite(parser *p, const char *word)
{
    int rc = lit(p, word, JSON_NUMBER);
    if (!rc) p->doc->tok[p->doc->n - 1].flags = JSON_TOK_NONFINITE;
    return rc;
}

static int digits(parser *p)
{
    size_t s = p->pos;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    return p->pos > s;
}

static int number(parser *p)
{
    size_t start = p->pos;
    uint32_t flags = JSON_TOK_INTEGER;
    if (p->s[p->pos] == '-') p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            return fail(p, -EINVAL, "number with a leading zero");
    } else if (!digits(p)) {
        return fail(p, -EINVAL, "expected a value");
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        flags = 0;
        if (!digits(p)) return fail(p, -EINVAL, "expected digits after the decimal point");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        flags = 0;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (!digits(p)) return fail(p, -EINVAL, "expected digits in the exponent");
    }
    int i = add_tok(p, JSON_NUMBER, start);
    if (i < 0) return i;
    p->doc->tok[i].len = (uint32_t)(p->pos - start);
    p->doc->tok[i].flags = flags;
    return 0;
}

static int hex4(const char *s)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int d = pct_hexval((unsigned char)s[k]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    if (avail < n) return 0;
    unsigned cp = c & (0xffu >> (n + 1));
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

static int escape(parser *p)
{
    /* p->pos is at the backslash */
    if (p->pos + 1 >= p->len) return fail(p, -EINVAL, "unterminated string");
    char c = p->s[p->pos + 1];
    if (strchr("\"\\/bfnrt", c) && c) {
        p->pos += 2;
        return 0;
    }
    if (c != 'u') return fail(p, -EINVAL, "invalid escape in string");
    if (p->len - p->pos < 6) return fail(p, -EINVAL, "truncated \\u escape");
    int u = hex4(p->s + p->pos + 2);
    if (u < 0) return fail(p, -EINVAL, "invalid \\u escape");
    p->pos += 6;
    if (u >= 0xdc00 && u <= 0xdfff) return fail(p, -EINVAL, "lone low surrogate in string");
    if (u >= 0xd800 && u <= 0xdbff) {
        if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, -EINVAL, "lone high surrogate in string");
        int lo = hex4(p->s + p->pos + 2);
        if (lo < 0xdc00 || lo > 0xdfff) return fail(p, -EINVAL, "lone high surrogate in string");
        p->pos += 6;
    }
    return 0;
}

static int string(parser *p)
{
    p->pos++; /* opening quote */
    size_t start = p->pos;
    uint32_t flags = 0;
    for (;;) {
        if (p->pos >= p->len) return fail(p, -EINVAL, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') break;
        if (c < 0x20) return fail(p, -EINVAL, "control character in string");
        if (c == '\\') {
            flags |= JSON_TOK_ESCAPED;
            int rc = escape(p);
            if (rc) return rc;
            continue;
        }
        size_t n = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
        if (!n) return fail(p, -EINVAL, "invalid UTF-8 in string");
        p->pos += n;
    }
    int i = add_tok(p, JSON_STRING, start);
    if (i < 0) return i;
    p->doc->tok[i].len = (uint32_t)(p->pos - start);
    p->doc->tok[i].flags = flags;
    p->pos++; /* closing quote */
    return 0;
}

/* Parses one scalar, or opens a container (pushed on stack). */
static int value(parser *p, uint32_t *stack, uint32_t *depth, uint32_t max_depth)
{
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, -EINVAL, "unexpected end of JSON");
    char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[': {
        if (*depth >= max_depth) return fail(p, -E2BIG, "JSON nested deeper than %u", max_depth);
        int i = add_tok(p, c == '{' ? JSON_OBJECT : JSON_ARRAY, p->pos);
        if (i < 0) return i;
        stack[(*depth)++] = (uint32_t)i;
        p->pos++;
        return 0;
    }
    case '"': return string(p);
    case 't': return lit(p, "true", JSON_TRUE);
    case 'f': return lit(p, "false", JSON_FALSE);
    case 'n': return lit(p, "null", JSON_NULL);
    case 'N':
    case 'I':
        if (p->nonfinite) return nonfinite(p, c == 'N' ? "NaN" : "Infinity");
        return fail(p, -EINVAL, "expected a value");
    default:
        if (c == '-' && p->nonfinite && p->pos + 1 < p->len && p->s[p->pos + 1] == 'I')
            return nonfinite(p, "-Infinity");
        if (c == '-' || (c >= '0' && c <= '9')) return number(p);
        return fail(p, -EINVAL, "expected a value");
    }
}

static void close_container(parser *p, uint32_t idx)
{
    json_tok *t = &p->doc->tok[idx];
    t->next = p->doc->n;
    p->pos++;
    t->len = (uint32_t)(p->pos - t->start);
}

/* An object member starts with a key and a colon; p->pos is at the key. */
static int member_key(parser *p, uint32_t obj)
{
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, -EINVAL, "expected a string key");
    int rc = string(p);
    if (rc) return rc;
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, -EINVAL, "expected ':'");
    p->pos++;
    p->doc->tok[obj].count++; /* by index: string() may have moved the array */
    return 0;
}

static int parse_all(parser *p, uint32_t *stack, uint32_t max_depth)
{
    uint32_t depth = 0;
    int rc = value(p, stack, &depth, max_depth);
    bool fresh = depth > 0; /* the top container has no element yet */
    while (!rc && depth > 0) {
        json_tok *top = &p->doc->tok[stack[depth - 1]];
        bool is_obj = top->type == JSON_OBJECT;
        char closer = is_obj ? '}' : ']';
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, -EINVAL, "unexpected end of JSON");
        char c = p->s[p->pos];
        if (c == closer) {
            close_container(p, stack[--depth]);
            fresh = false;
            continue;
        }
        if (!fresh) {
            if (c != ',') return fail(p, -EINVAL, "expected ',' or '%c'", closer);
            p->pos++;
        }
        if (is_obj) {
            rc = member_key(p, stack[depth - 1]);
            if (rc) return rc;
        } else {
            top->count++;
        }
        uint32_t before = depth;
        rc = value(p, stack, &depth, max_depth);
        fresh = depth > before;
    }
    return rc;
}

int json_parse(json_doc *doc, const char *src, size_t len, const json_limits *lim, char *err,
               size_t errlen)
{
    *doc = (json_doc){.src = src, .src_len = len};
    uint32_t max_depth = lim && lim->max_depth ? lim->max_depth : 64;
    parser p = {.doc = doc, .s = src, .len = len, .err = err, .errlen = errlen};
    p.max_tokens = lim && lim->max_tokens ? lim->max_tokens : 1u << 24;
    p.nonfinite = lim && lim->allow_nonfinite;
    if (err && errlen) err[0] = '\0';
    if (len >= UINT32_MAX) return fail(&p, -E2BIG, "JSON text over 4 GiB");
    /* Pre-size for tensor-like text (about one value per 8 bytes), within the
     * limit, so big arrays do not pay for a dozen reallocations. */
    size_t guess = len / 8 + 64;
    if (guess > p.max_tokens) guess = p.max_tokens;
    if (guess > 64) {
        doc->tok = malloc(guess * sizeof(json_tok));
        if (doc->tok) doc->cap = (uint32_t)guess;
    }
    uint32_t small[64];
    uint32_t *stack = max_depth <= 64 ? small : malloc(max_depth * sizeof(*stack));
    if (!stack) return fail(&p, -ENOMEM, "out of memory");
    int rc = parse_all(&p, stack, max_depth);
    if (stack != small) free(stack);
    if (!rc) {
        skip_ws(&p);
        if (p.pos != len) rc = fail(&p, -EINVAL, "unexpected bytes after the JSON value");
    }
    if (rc) json_doc_free(doc);
    return rc;
}

void json_doc_free(json_doc *doc)
{
    free(doc->tok);
    doc->tok = NULL;
    doc->n = doc->cap = 0;
}

/* ---- reading ---- */

/* Decodes the escape at s (a backslash), appending UTF-8 to out; returns bytes read. */
static size_t unescape_one(const char *s, char *out, size_t *olen)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *f = strchr(from, s[1]);
    if (s[1] != 'u' && f) {
        out[(*olen)++] = to[f - from];
        return 2;
    }
    unsigned cp = (unsigned)hex4(s + 2);
    size_t used = 6;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)hex4(s + 8) - 0xdc00);
        used = 12;
    }
    if (cp < 0x80) {
        out[(*olen)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*olen)++] = (char)(0xc0 | (cp >> 6));
        out[(*olen)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*olen)++] = (char)(0xe0 | (cp >> 12));
        out[(*olen)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*olen)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*olen)++] = (char)(0xf0 | (cp >> 18));
        out[(*olen)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*olen)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*olen)++] = (char)(0x80 | (cp & 0x3f));
    }
    return used;
}

int json_str_copy(const json_doc *doc, int i, char *out, size_t cap)
{
    if (i < 0 || (uint32_t)i >= doc->n || doc->tok[i].type != JSON_STRING || cap == 0)
        return -EINVAL;
    const json_tok *t = &doc->tok[i];
    const char *s = doc->src + t->start;
    size_t olen = 0;
    for (size_t k = 0; k < t->len;) {
        if (olen + 4 >= cap && olen + (t->len - k) >= cap) return -E2BIG;
        if (s[k] == '\\') {
            char tmp[4];
            size_t n = 0;
            k += unescape_one(s + k, tmp, &n);
            if (olen + n >= cap) return -E2BIG;
            for (size_t m = 0; m < n; m++) {
                if (tmp[m] == '\0') return -EINVAL;
                out[olen++] = tmp[m];
            }
        } else {
            if (olen + 1 >= cap) return -E2BIG;
            out[olen++] = s[k++];
        }
    }
    out[olen] = '\0';
    return (int)olen;
}

bool json_str_eq(const json_doc *doc, int i, const char *str)
{
    if (i < 0 || (uint32_t)i >= doc->n || doc->tok[i].type != JSON_STRING) return false;
    const json_tok *t = &doc->tok[i];
    size_t n = strlen(str);
    if (!(t->flags & JSON_TOK_ESCAPED))
        return t->len == n && memcmp(doc->src + t->start, str, n) == 0;
    if (t->len < n) return false;
    char tmp[256];
    if (n >= sizeof(tmp)) return false;
    int got = json_str_copy(doc, i, tmp, sizeof(tmp));
    return got >= 0 && (size_t)got == n && memcmp(tmp, str, n) == 0;
}

int json_obj_get(const json_doc *doc, int obj, const char *key)
{
    if (obj < 0 || (uint32_t)obj >= doc->n || doc->tok[obj].type != JSON_OBJECT) return -1;
    uint32_t k = (uint32_t)obj + 1;
    for (uint32_t m = 0; m < doc->tok[obj].count; m++) {
        uint32_t v = k + 1;
        if (json_str_eq(doc, (int)k, key)) return (int)v;
        k = doc->tok[v].next;
    }
    return -1;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * Splits a JSON number token (already validated by the tokenizer) into sign,
 * significand m (at most max_digits significant digits, leading zeros
 * skipped) and decimal exponent e, so that the value is m * 10^e. Returns
 * false when it has more digits or a huge exponent: the slow path's job.
 */
static bool scan_decimal(const char *s, size_t len, int max_digits, bool *negp, uint64_t *mp,
                         int *ep)
{
    size_t k = 0;
    bool neg = s[0] == '-';
    if (neg) k++;
    uint64_t m = 0;
    int nd = 0, e = 0;
    for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
        if (m == 0 && s[k] == '0') continue;
        if (++nd > max_digits) return false;
        m = m * 10 + (uint64_t)(s[k] - '0');
    }
    if (k < len && s[k] == '.') {
        for (k++; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
            e--;
            if (m == 0 && s[k] == '0') continue;
            if (++nd > max_digits) return false;
            m = m * 10 + (uint64_t)(s[k] - '0');
        }
    }
    if (k < len) {
        k++; /* e or E */
        bool eneg = false;
        if (s[k] == '+' || s[k] == '-') eneg = s[k++] == '-';
        int x = 0;
        for (; k < len; k++) {
            if (x > 10000) return false;
            x = x * 10 + (s[k] - '0');
        }
        e += eneg ? -x : x;
    }
    *negp = neg;
    *mp = m;
    *ep = m == 0 ? 0 : e;
    return true;
}

/*
 * Clinger's fast path: a decimal with at most 15 significant digits and a
 * power of ten within 10^±22 is m * 10^e or m / 10^e with both operands exact
 * doubles, so one correctly rounded IEEE operation gives the exact result.
 * Returns false when the number needs the slow path.
 */
static bool fast_f64(const char *s, size_t len, double *out)
{
    bool neg;
    uint64_t m;
    int e;
    if (!scan_decimal(s, len, 15, &neg, &m, &e)) return false;
    double v = (double)m;
    if (e < -22 || e > 22) return false;
    v = e < 0 ? v / pow10_exact[-e] : v * pow10_exact[e];
    *out = neg ? -v : v;
    return true;
}

/* The value of a NaN/Infinity/-Infinity token. */
static double nonfinite_value(const json_tok *t, const char *src)
{
    return src[t->start] == 'N' ? NAN : src[t->start] == '-' ? -INFINITY : INFINITY;
}

int json_num_f64(const json_doc *doc, int i, double *out)
{
    if (i < 0 || (uint32_t)i >= doc->n || doc->tok[i].type != JSON_NUMBER) return -EINVAL;
    const json_tok *t = &doc->tok[i];
    if (t->flags & JSON_TOK_NONFINITE) return *out = nonfinite_value(t, doc->src), 0;
    const char *s = doc->src + t->start;
    if (fast_f64(s, t->len, out)) return 0;
    char small[64];
    char *tmp = t->len < sizeof(small) ? small : malloc(t->len + 1);
    if (!tmp) return -ENOMEM;
    memcpy(tmp, s, t->len);
    tmp[t->len] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    int rc = errno == ERANGE && isinf(v) ? -ERANGE : 0;
    if (tmp != small) free(tmp);
    *out = v;
    return rc;
}

#if LDBL_MANT_DIG >= 64
static const long double pow10_ld[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,
                                       1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L,
                                       1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L, 1e23L,
                                       1e24L, 1e25L, 1e26L, 1e27L}; /* 5^27 < 2^64: all exact */

/* m * 10^e with m < 10^19 and |e| <= 27, both operands exact in 64 bits. */
static bool fast_f32(const char *s, size_t len, float *out)
{
    bool neg;
    uint64_t m;
    int e;
    if (!scan_decimal(s, len, 19, &neg, &m, &e)) return false;
    if (e < -27 || e > 27) return false;
    long double v = (long double)m;
    v = e < 0 ? v / pow10_ld[-e] : v * pow10_ld[e];
    float f = (float)v;
    *out = neg ? -f : f;
    return true;
}
#else
static bool fast_f32(const char *s, size_t len, float *out)
{
    (void)s, (void)len, (void)out;
    return false;
}
#endif

int json_num_f32(const json_doc *doc, int i, float *out)
{
    if (i < 0 || (uint32_t)i >= doc->n || doc->tok[i].type != JSON_NUMBER) return -EINVAL;
    const json_tok *t = &doc->tok[i];
    if (t->flags & JSON_TOK_NONFINITE) return *out = (float)nonfinite_value(t, doc->src), 0;
    if (!fast_f32(doc->src + t->start, t->len, out)) {
        char small[64];
        char *tmp = t->len < sizeof(small) ? small : malloc(t->len + 1);
        if (!tmp) return -ENOMEM;
        memcpy(tmp, doc->src + t->start, t->len);
        tmp[t->len] = '\0';
        *out = strtof(tmp, NULL);
        if (tmp != small) free(tmp);
    }
    return isinf(*out) ? -ERANGE : 0;
}

int json_num_u64(const json_doc *doc, int i, uint64_t *out)
{
    if (i < 0 || (uint32_t)i >= doc->n || doc->tok[i].type != JSON_NUMBER) return -EINVAL;
    const json_tok *t = &doc->tok[i];
    if (!(t->flags & JSON_TOK_INTEGER)) return -EINVAL;
    const char *s = doc->src + t->start;
    if (s[0] == '-') return t->len == 2 && s[1] == '0' ? (*out = 0, 0) : -ERANGE;
    uint64_t v = 0;
    for (uint32_t k = 0; k < t->len; k++) {
        uint64_t d = (uint64_t)(s[k] - '0');
        if (v > (UINT64_MAX - d) / 10) return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int json_num_i64(const json_doc *doc, int i, int64_t *out)
{
    if (i < 0 || (uint32_t)i >= doc->n || doc->tok[i].type != JSON_NUMBER) return -EINVAL;
    const json_tok *t = &doc->tok[i];
    if (!(t->flags & JSON_TOK_INTEGER)) return -EINVAL;
    const char *s = doc->src + t->start;
    bool neg = s[0] == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (uint32_t k = neg; k < t->len; k++) {
        uint64_t d = (uint64_t)(s[k] - '0');
        if (v > (lim - d) / 10) return -ERANGE;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---- writing ---- */

int json_fmt_f32(char *out, float v)
{
    if (!isfinite(v)) return (int)(memcpy(out, "null", 5), 4);
    /* 9 significant digits always round-trip a float; %g drops trailing zeros. */
    return snprintf(out, 16, "%.9g", (double)v);
}

int json_fmt_f64(char *out, double v)
{
    if (!isfinite(v)) return (int)(memcpy(out, "null", 5), 4);
    return snprintf(out, 32, "%.17g", v);
}
