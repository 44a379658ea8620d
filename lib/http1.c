/*
 * Design: a cursor walks the buffer byte by byte with a bounds check before
 * every read, so running off the end means "incomplete", never an over-read
 * (the guard-page test in http1_test.c holds us to that). Character classes
 * are 256-entry tables: one load per byte on the hot path.
 */
#include "http1.h"

#include <string.h>

#include "pct.h"

/* 1: tchar (RFC 9110 token); 2: field-value / target byte (VCHAR, obs-text). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_vchar(unsigned char c)
{
    return (c > 0x20 && c < 0x7f) || c >= 0x80;
}

static int is_value_char(unsigned char c)
{
    return is_vchar(c) || c == ' ' || c == '\t';
}

/* A control character other than HTAB (CR and LF included). */
static int is_ctl(unsigned char c)
{
    return !is_value_char(c) && c < 0x80;
}

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

/* Consumes a line ending (CRLF or bare LF). 0, or HTTP1_BAD / HTTP1_INCOMPLETE. */
static int eat_eol(cursor *c)
{
    if (c->p == c->end) return HTTP1_INCOMPLETE;
    if (*c->p == '\r') {
        c->p++;
        if (c->p == c->end) return HTTP1_INCOMPLETE;
        if (*c->p != '\n') return HTTP1_BAD;
        c->p++;
        return 0;
    }
    if (*c->p == '\n') {
        c->p++;
        return 0;
    }
    return HTTP1_BAD;
}

/* "HTTP/1.x" -> minor version x. */
static int eat_version(cursor *c, int *minor)
{
    static const char pfx[] = "HTTP/1.";
    for (size_t i = 0; i < sizeof(pfx) - 1; i++, c->p++) {
        if (c->p == c->end) return HTTP1_INCOMPLETE;
        if (*c->p != pfx[i]) return HTTP1_BAD;
    }
    if (c->p == c->end) return HTTP1_INCOMPLETE;
    if (*c->p != '0' && *c->p != '1') return HTTP1_BAD;
    *minor = *c->p++ - '0';
    return 0;
}

static int eat_header_line(cursor *c, http1_header *h)
{
    const char *name = c->p;
    while (c->p < c->end && tchar[(unsigned char)*c->p]) c->p++;
    if (c->p == c->end) return HTTP1_INCOMPLETE;
    /* Empty names, obs-fold (a leading space) and "name :" all end here. */
    if (c->p == name || *c->p != ':') return HTTP1_BAD;
    h->name = name;
    h->name_len = (size_t)(c->p - name);
    c->p++;
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
    const char *val = c->p;
    while (c->p < c->end && is_value_char((unsigned char)*c->p)) c->p++;
    if (c->p == c->end) return HTTP1_INCOMPLETE;
    const char *vend = c->p;
    while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    h->value = val;
    h->value_len = (size_t)(vend - val);
    return eat_eol(c);
}

static int eat_headers(cursor *c, http1_header *headers, size_t max, size_t *n)
{
    *n = 0;
    for (;;) {
        if (c->p == c->end) return HTTP1_INCOMPLETE;
        if (*c->p == '\r' || *c->p == '\n') return eat_eol(c);
        http1_header scratch;
        int rc = eat_header_line(c, *n < max ? &headers[*n] : &scratch);
        if (rc) return rc;
        (*n)++;
    }
}

/* With last_len > 0 the caller already saw buf[0..last_len) end without a
 * blank line: if the new bytes do not complete the head either, skip the
 * reparse. Looks back 3 bytes so a CRLFCRLF split across reads is found. */
static int head_may_end(const char *buf, size_t len, size_t last_len)
{
    if (last_len == 0) return 1;
    size_t i = last_len > 3 ? last_len - 3 : 0;
    for (; i < len; i++) {
        if (buf[i] != '\n') continue;
        if (i + 1 < len && buf[i + 1] == '\n') return 1;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') return 1;
    }
    return 0;
}

static int finish(const char *buf, cursor *c, int rc, size_t n, size_t max)
{
    if (rc) return rc;
    if (n > max) return HTTP1_TOO_MANY_HEADERS;
    return (int)(c->p - buf);
}

int http1_parse_request(const char *buf, size_t len, size_t last_len, http1_request *req,
                        http1_header *headers, size_t max_headers)
{
    if (!head_may_end(buf, len, last_len)) return HTTP1_INCOMPLETE;
    if (len > 0x7fffffff) return HTTP1_BAD;
    cursor c = {buf, buf + len};
    /* RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the
     * request-line (clients have sent an extra CRLF after a POST body). A few
     * are skipped; a stream of them is not a request. */
    for (int i = 0; c.p < c.end && (*c.p == '\r' || *c.p == '\n'); i++) {
        if (i == HTTP1_MAX_LEADING_EMPTY) return HTTP1_BAD;
        int rc = eat_eol(&c);
        if (rc) return rc;
    }
    const char *m = c.p;
    while (c.p < c.end && tchar[(unsigned char)*c.p]) c.p++;
    if (c.p == c.end) return HTTP1_INCOMPLETE;
    if (c.p == m || *c.p != ' ') return HTTP1_BAD;
    req->method = m;
    req->method_len = (size_t)(c.p - m);
    c.p++;
    const char *t = c.p;
    while (c.p < c.end && is_vchar((unsigned char)*c.p)) c.p++;
    if (c.p == c.end) return HTTP1_INCOMPLETE;
    if (c.p == t || *c.p != ' ') return HTTP1_BAD;
    req->target = t;
    req->target_len = (size_t)(c.p - t);
    c.p++;
    int rc = eat_version(&c, &req->minor_version);
    if (rc) return rc;
    rc = eat_eol(&c);
    if (rc) return rc;
    size_t n;
    rc = eat_headers(&c, headers, max_headers, &n);
    req->num_headers = n < max_headers ? n : max_headers;
    return finish(buf, &c, rc, n, max_headers);
}

int http1_parse_response(const char *buf, size_t len, size_t last_len, http1_response *res,
                         http1_header *headers, size_t max_headers)
{
    if (!head_may_end(buf, len, last_len)) return HTTP1_INCOMPLETE;
    if (len > 0x7fffffff) return HTTP1_BAD;
    cursor c = {buf, buf + len};
    int rc = eat_version(&c, &res->minor_version);
    if (rc) return rc;
    if (c.p == c.end) return HTTP1_INCOMPLETE;
    if (*c.p++ != ' ') return HTTP1_BAD;
    int status = 0;
    for (int i = 0; i < 3; i++, c.p++) {
        if (c.p == c.end) return HTTP1_INCOMPLETE;
        if (*c.p < '0' || *c.p > '9') return HTTP1_BAD;
        status = status * 10 + (*c.p - '0');
    }
    if (status < 100) return HTTP1_BAD;
    res->status = status;
    if (c.p == c.end) return HTTP1_INCOMPLETE;
    if (*c.p == ' ')
        c.p++;
    else if (*c.p != '\r' && *c.p != '\n')
        return HTTP1_BAD;
    const char *r = c.p;
    while (c.p < c.end && is_value_char((unsigned char)*c.p)) c.p++;
    if (c.p == c.end) return HTTP1_INCOMPLETE;
    res->reason = r;
    res->reason_len = (size_t)(c.p - r);
    rc = eat_eol(&c);
    if (rc) return rc;
    size_t n;
    rc = eat_headers(&c, headers, max_headers, &n);
    res->num_headers = n < max_headers ? n : max_headers;
    return finish(buf, &c, rc, n, max_headers);
}

int http1_parse_headers(const char *buf, size_t len, size_t last_len, http1_header *headers,
                        size_t max_headers, size_t *num_headers)
{
    /* A lone blank line is a complete (empty) block; head_may_end needs a
     * preceding line, so check that case first. */
    if (last_len && !(len && (buf[0] == '\n' || (len > 1 && buf[0] == '\r' && buf[1] == '\n'))) &&
        !head_may_end(buf, len, last_len))
        return HTTP1_INCOMPLETE;
    if (len > 0x7fffffff) return HTTP1_BAD;
    cursor c = {buf, buf + len};
    size_t n;
    int rc = eat_headers(&c, headers, max_headers, &n);
    *num_headers = n < max_headers ? n : max_headers;
    return finish(buf, &c, rc, n, max_headers);
}

/* ---- chunked decoder ---- */

enum {
    CH_SIZE = 0,   /* reading the hex chunk size */
    CH_EXT,        /* skipping a chunk extension up to LF */
    CH_SIZE_LF,    /* CR seen after the size line, LF expected */
    CH_DATA,       /* copying payload */
    CH_DATA_CR,    /* payload done, CRLF expected */
    CH_DATA_LF,    /* CR seen after the payload */
    CH_TRAILER,    /* at the start of a trailer line (or the final blank line) */
    CH_TRAILER_IN, /* inside a trailer line */
    CH_TRAILER_LF, /* CR seen in a trailer line, LF expected */
    CH_END_LF,     /* CR of the final blank line seen */
    CH_DONE,
};

static int overhead_ok(const http1_chunked *d)
{
    if (d->max_overhead) return d->_overhead <= d->max_overhead;
    return d->_overhead < 100 * 1024 || d->_overhead <= 3 * d->_payload;
}

/* One framing byte; returns 0 to go on, or HTTP1_BAD. */
static int chunk_frame_byte(http1_chunked *d, unsigned char ch)
{
    switch (d->_state) {
    case CH_SIZE: {
        int v = pct_hexval(ch);
        if (v >= 0) {
            if (++d->_hexdigits > 15) return HTTP1_BAD;
            d->_left = d->_left * 16 + (uint64_t)v;
            return 0;
        }
        if (d->_hexdigits == 0) return HTTP1_BAD;
        if (ch == ';' || ch == ' ' || ch == '\t')
            d->_state = CH_EXT;
        else if (ch == '\r')
            d->_state = CH_SIZE_LF;
        else if (ch == '\n')
            d->_state = d->_left ? CH_DATA : CH_TRAILER;
        else
            return HTTP1_BAD;
        return 0;
    }
    case CH_EXT:
        /* A CR must end the line: a bare CR is read as a line end by some
         * parsers and not by others, which is how a smuggled request hides. */
        if (ch == '\r')
            d->_state = CH_SIZE_LF;
        else if (ch == '\n')
            d->_state = d->_left ? CH_DATA : CH_TRAILER;
        else if (is_ctl(ch))
            return HTTP1_BAD;
        return 0;
    case CH_SIZE_LF:
        if (ch != '\n') return HTTP1_BAD;
        d->_state = d->_left ? CH_DATA : CH_TRAILER;
        return 0;
    case CH_DATA_CR:
        if (ch == '\r')
            d->_state = CH_DATA_LF;
        else if (ch == '\n')
            d->_state = CH_SIZE;
        else
            return HTTP1_BAD;
        d->_hexdigits = 0;
        return 0;
    case CH_DATA_LF:
        if (ch != '\n') return HTTP1_BAD;
        d->_state = CH_SIZE;
        return 0;
    case CH_TRAILER:
        if (ch == '\r')
            d->_state = CH_END_LF;
        else if (ch == '\n')
            d->_state = CH_DONE;
        else if (is_ctl(ch))
            return HTTP1_BAD;
        else
            d->_state = CH_TRAILER_IN;
        return 0;
    case CH_TRAILER_IN:
        if (ch == '\r')
            d->_state = CH_TRAILER_LF;
        else if (ch == '\n')
            d->_state = CH_TRAILER;
        else if (is_ctl(ch))
            return HTTP1_BAD;
        return 0;
    case CH_TRAILER_LF:
        if (ch != '\n') return HTTP1_BAD;
        d->_state = CH_TRAILER;
        return 0;
    case CH_END_LF:
        if (ch != '\n') return HTTP1_BAD;
        d->_state = CH_DONE;
        return 0;
    default: return HTTP1_BAD;
    }
}

ssize_t http1_decode_chunked(http1_chunked *dec, char *buf, size_t *len)
{
    size_t src = 0, dst = 0, n = *len;
    if (dec->_state == CH_DONE) {
        *len = 0;
        return (ssize_t)n;
    }
    while (src < n) {
        if (dec->_state == CH_DATA) {
            size_t avail = n - src;
            size_t take = dec->_left < avail ? (size_t)dec->_left : avail;
            if (dst != src) memmove(buf + dst, buf + src, take);
            dst += take;
            src += take;
            dec->_left -= take;
            dec->_payload += take;
            if (dec->_left == 0) dec->_state = CH_DATA_CR;
            continue;
        }
        dec->_overhead++;
        if (chunk_frame_byte(dec, (unsigned char)buf[src++]) || !overhead_ok(dec)) {
            *len = dst;
            return HTTP1_BAD;
        }
        if (dec->_state == CH_DONE) {
            size_t rest = n - src;
            if (rest && dst != src) memmove(buf + dst, buf + src, rest);
            *len = dst;
            return (ssize_t)rest;
        }
    }
    *len = dst;
    return HTTP1_INCOMPLETE;
}

int http1_chunked_done(const http1_chunked *dec)
{
    return dec->_state == CH_DONE;
}

/* ---- request paths ---- */

/* Removes dot-segments in place from p[0..n), which starts with '/'. Every
 * segment is copied left (never right: the write index stays behind the read
 * index), so no second buffer is needed. Returns the new length, or -1 when
 * ".." has nothing left to remove. */
static long remove_dot_segments(char *p, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        size_t s = r + 1, e = s;
        while (e < n && p[e] != '/') e++;
        size_t sl = e - s;
        int last = e == n;
        if (sl == 1 && p[s] == '.') {
            if (last) p[w++] = '/'; /* "/a/." is "/a/" */
        } else if (sl == 2 && p[s] == '.' && p[s + 1] == '.') {
            if (w == 0) return -1;
            while (p[w - 1] != '/') w--; /* p[0] is '/': stops there at the latest */
            w--;
            if (last) p[w++] = '/';
        } else {
            p[w++] = '/';
            memmove(p + w, p + s, sl);
            w += sl;
        }
        r = e;
    }
    return (long)w;
}

int http1_decode_path(const char *in, size_t n, char *out, size_t *out_len)
{
    /* The common path has no escape (and no NUL, which pct_decode refuses
     * too): a copy gives what the decoder would. A path with no '.' at all
     * has no dot-segment, and remove_dot_segments would be the identity. */
    long d;
    if (!memchr(in, '%', n) && !memchr(in, 0, n)) {
        memcpy(out, in, n);
        d = (long)n;
    } else {
        d = pct_decode(in, n, out, n, PCT_NO_NUL);
    }
    if (d < 0) return HTTP1_BAD;
    size_t j = (size_t)d;
    if (j && out[0] == '/' && memchr(out, '.', j)) {
        long w = remove_dot_segments(out, j);
        if (w < 0) return HTTP1_PATH_ABOVE_ROOT;
        j = (size_t)w;
    }
    out[j] = 0;
    *out_len = j;
    return 0;
}

/* ---- helpers ---- */

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

int http1_token_eq(const char *s, size_t len, const char *lit)
{
    size_t i = 0;
    for (; i < len; i++) {
        if (!lit[i] || lower((unsigned char)s[i]) != lower((unsigned char)lit[i])) return 0;
    }
    return lit[i] == 0;
}

const http1_header *http1_find_header(const http1_header *headers, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (http1_token_eq(headers[i].name, headers[i].name_len, name)) return &headers[i];
    return NULL;
}

int64_t http1_parse_length(const char *s, size_t len)
{
    if (len == 0 || len > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int http1_is_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!tchar[(unsigned char)s[i]]) return 0;
    return len > 0;
}

int http1_is_target(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_vchar((unsigned char)s[i])) return 0;
    return len > 0;
}

int http1_is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_value_char((unsigned char)s[i])) return 0;
    return 1;
}

int http1_value_has_token(const char *v, size_t len, const char *tok)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < len && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s && http1_token_eq(v + s, e - s, tok)) return 1;
    }
    return 0;
}

const char *http1_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- request rules ---- */

static void refuse(http1_check *out, int status)
{
    out->status = status;
    out->reason = status == 400   ? "bad request"
                  : status == 501 ? "unsupported transfer-encoding"
                  : status == 413 ? "request body too large"
                                  : "expectation failed";
}

/* A header name against a lower-case literal, the length first: most names
 * on the hot path differ in length, and then no byte is compared. */
#define NAME_IS(h, lit)                                                                            \
    ((h)->name_len == sizeof(lit) - 1 && http1_token_eq((h)->name, (h)->name_len, lit))

void http1_check_request(const http1_request *req, const http1_header *headers, int64_t max_body,
                         http1_check *out)
{
    memset(out, 0, sizeof(*out));
    int64_t clen = -1;
    int te = 0, close_tok = 0, keep_tok = 0, hosts = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const http1_header *h = &headers[i];
        if (NAME_IS(h, "content-length")) {
            int64_t v = http1_parse_length(h->value, h->value_len);
            if (v < 0 || (clen >= 0 && v != clen)) return refuse(out, 400); /* smuggling */
            clen = v;
        } else if (NAME_IS(h, "transfer-encoding")) {
            if (te++) return refuse(out, 400);
            if (!http1_token_eq(h->value, h->value_len, "chunked")) return refuse(out, 501);
        } else if (NAME_IS(h, "connection")) {
            close_tok |= http1_value_has_token(h->value, h->value_len, "close");
            keep_tok |= http1_value_has_token(h->value, h->value_len, "keep-alive");
        } else if (NAME_IS(h, "expect")) {
            if (!http1_token_eq(h->value, h->value_len, "100-continue")) return refuse(out, 417);
            out->expect_continue = 1;
        } else if (NAME_IS(h, "host")) {
            hosts++;
            out->host = h->value;
            out->host_len = h->value_len;
        }
    }
    if (te && clen >= 0) return refuse(out, 400); /* RFC 9112 §6.1: a smuggling attempt */
    if (te && req->minor_version == 0) return refuse(out, 400);
    if (req->minor_version == 1 && hosts != 1) return refuse(out, 400);
    if (hosts > 1) return refuse(out, 400);
    out->chunked = te;
    out->content_length = clen;
    out->close = req->minor_version == 0 ? !keep_tok : close_tok;
    if (max_body > 0 && clen > max_body) refuse(out, 413);
}

int http1_method_is(const char *m, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && !memcmp(m, lit, n);
}
