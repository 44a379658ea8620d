/*
 * http1: an HTTP/1.x message-head parser and a chunked-body decoder, in the
 * style of picohttpparser.
 *
 * Contract of the head parsers:
 *   - zero-copy: every string handed back is a pointer + length into the
 *     caller's buffer, valid as long as that buffer is; nothing is
 *     NUL-terminated;
 *   - zero-alloc and stateless: on more input, call again with the whole head
 *     so far; pass the length given on the previous call as last_len (0 the
 *     first time) so the parser only rescans the new bytes for the end of the
 *     head (a cheap slowloris defence);
 *   - the parser never reads buf[len] or beyond;
 *   - returns the length of the head in bytes (> 0, including the blank line),
 *     HTTP1_INCOMPLETE (-2) when the head has not ended yet, HTTP1_BAD (-1) on
 *     malformed input, HTTP1_TOO_MANY_HEADERS (-3) when the head is
 *     well-formed but has more than max_headers header lines.
 *
 * Leniency: bare LF line endings are accepted (RFC 9112 §2.2), and so are up
 * to HTTP1_MAX_LEADING_EMPTY empty lines before the request-line (§2.2: a
 * server SHOULD ignore at least one; more is HTTP1_BAD); obsolete line
 * folding, whitespace before the colon, control characters in values, and
 * non-token characters in the method or header names are rejected (they are
 * the request-smuggling vectors).
 */
#ifndef HTTP1_H
#define HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP1_MAX_LEADING_EMPTY 8

enum {
    HTTP1_BAD = -1,
    HTTP1_INCOMPLETE = -2,
    HTTP1_TOO_MANY_HEADERS = -3,
};

typedef struct http1_header {
    const char *name; /* as sent (case preserved) */
    size_t name_len;
    const char *value; /* leading and trailing spaces/tabs trimmed */
    size_t value_len;
} http1_header;

typedef struct http1_request {
    const char *method;
    size_t method_len;
    const char *target; /* the raw request-target, e.g. "/a/b?x=1" */
    size_t target_len;
    int minor_version;  /* 0 or 1 (HTTP/1.0 or HTTP/1.1) */
    size_t num_headers; /* entries filled in the caller's header array */
} http1_request;

typedef struct http1_response {
    int minor_version;
    int status; /* 100..999 */
    const char *reason;
    size_t reason_len;
    size_t num_headers;
} http1_response;

/* Parses a request head: "METHOD SP target SP HTTP/1.x CRLF *(header CRLF) CRLF".
 * headers[0..max_headers) receives the header lines. */
int http1_parse_request(const char *buf, size_t len, size_t last_len, http1_request *req,
                        http1_header *headers, size_t max_headers);

/* Parses a response head: "HTTP/1.x SP 3DIGIT [SP reason] CRLF *(header CRLF) CRLF". */
int http1_parse_response(const char *buf, size_t len, size_t last_len, http1_response *res,
                         http1_header *headers, size_t max_headers);

/* Parses a header block alone (e.g. chunked trailers), up to and including
 * the blank line. Same return convention. */
int http1_parse_headers(const char *buf, size_t len, size_t last_len, http1_header *headers,
                        size_t max_headers, size_t *num_headers);

/*
 * Chunked transfer-coding decoder. The state is caller-owned: zero it (or use
 * HTTP1_CHUNKED_INIT) before the first call of a body. Fields starting with an
 * underscore are private.
 *
 * http1_decode_chunked() decodes in place: it is given buf[0..*len) (the next
 * raw bytes of the body) and rewrites that region so that buf[0..*len) on
 * return holds only payload bytes. It returns
 *   HTTP1_INCOMPLETE (-2): all input was consumed, the body has not ended;
 *   HTTP1_BAD (-1):        malformed framing (bad hex, a chunk size of
 *                          more than 15 hex digits, missing CRLF, NUL in a
 *                          trailer, or too much framing: see max_overhead);
 *   n >= 0:                the body ended (last chunk and trailers read);
 *                          the n bytes right after the payload, i.e.
 *                          buf[*len .. *len + n), were not part of the body
 *                          (the next pipelined request begins there).
 * Trailers are consumed and ignored. Chunk extensions are skipped; a CR in
 * an extension or a trailer that is not followed by LF, and any other control
 * character there but HTAB, is HTTP1_BAD (a bare CR is a smuggling vector).
 */
typedef struct http1_chunked {
    uint64_t _left;     /* payload bytes left in the current chunk */
    uint64_t _overhead; /* framing bytes seen (size lines, CRLFs, trailers) */
    /* Framing bytes allowed (size lines, extensions, CRLFs, trailers). 0: the
     * default rule, which fails once framing passes 100 KiB and 3x the payload
     * (a flood of tiny chunks); otherwise a hard cap in bytes. */
    uint64_t max_overhead;
    uint64_t _payload;
    int _state;
    int _hexdigits;
} http1_chunked;

#define HTTP1_CHUNKED_INIT                                                                         \
    {                                                                                              \
        0, 0, 0, 0, 0, 0                                                                           \
    }

ssize_t http1_decode_chunked(http1_chunked *dec, char *buf, size_t *len);

/* 1 once the decoder has seen the end of the body. */
int http1_chunked_done(const http1_chunked *dec);

/* ---- request rules (RFC 9110, RFC 9112 §6) ---- */

/* What http1_check_request found. status 0: the head may be served; else the
 * status to answer with and reason, its message ("bad request",
 * "unsupported transfer-encoding", "request body too large", "expectation
 * failed"). The other fields are set whenever status is 0 or 413. */
typedef struct http1_check {
    int status;             /* 0, 400, 413, 417 or 501 */
    const char *reason;     /* NULL when status is 0 */
    int64_t content_length; /* -1: no Content-Length */
    int chunked;            /* Transfer-Encoding: chunked (the body is chunked) */
    int expect_continue;    /* Expect: 100-continue */
    int close;              /* the connection closes after the response */
    const char *host;       /* the Host value (NULL if none), not NUL-terminated */
    size_t host_len;
} http1_check;

/* Applies the rules every server of this project holds a request head to:
 *   - Content-Length must be a valid length, and repeated only with the same
 *     value (else 400: a smuggling vector);
 *   - Transfer-Encoding at most once (400) and only "chunked" (501); with a
 *     Content-Length (400, §6.1), or in HTTP/1.0 (400);
 *   - HTTP/1.1 needs exactly one Host, HTTP/1.0 at most one (400);
 *   - Expect only "100-continue" (417);
 *   - a Content-Length above max_body (> 0; 0: no limit) is 413.
 * The first rule broken, in header order, decides (the Host and §6.1 rules
 * after all headers, the size last). Connection: close / keep-alive set close
 * (HTTP/1.0 closes unless keep-alive). */
void http1_check_request(const http1_request *req, const http1_header *headers, int64_t max_body,
                         http1_check *out);

/* 1 if the method m[0..len) is exactly lit: methods are case-sensitive
 * (RFC 9110 §9.1), so "get" is not GET. */
int http1_method_is(const char *m, size_t len, const char *lit);

/* ---- request paths ---- */

/* Percent-decodes the path in[0..n) into out (room for n + 1 bytes; the
 * result is NUL-terminated, *out_len excludes the NUL) and, when it starts
 * with '/', removes its dot-segments (RFC 3986 §5.2.4) from the decoded form,
 * so "%2e%2e" and a "%2f" separator count as the characters they encode: the
 * path a router and an app see has no "." or ".." segment left. Returns 0;
 * HTTP1_BAD for a malformed escape or %00; HTTP1_PATH_ABOVE_ROOT when a ".."
 * would climb above "/" ("/../x", "/a/../../x"), which is refused rather than
 * clamped (as nginx answers it: 400). */
#define HTTP1_PATH_ABOVE_ROOT (-4)
int http1_decode_path(const char *in, size_t n, char *out, size_t *out_len);

/* ---- helpers for both sides ---- */

/* Case-insensitive comparison of s[0..len) with the NUL-terminated lit. */
int http1_token_eq(const char *s, size_t len, const char *lit);

/* The first header named name (case-insensitive), or NULL. */
const http1_header *http1_find_header(const http1_header *headers, size_t n, const char *name);

/* Parses a Content-Length value: 1*DIGIT, no sign, no spaces, at most 18
 * digits. Returns the value, or -1 if it is not a valid length. */
int64_t http1_parse_length(const char *s, size_t len);

/* The parser's own character rules, for text that arrives by other means
 * (the uwsgi protocol's variables): a non-empty RFC 9110 token; a non-empty
 * request-target of visible ASCII or obs-text; a field value (VCHAR, obs-text,
 * SP, HTAB; no CR, LF or other controls). */
int http1_is_token(const char *s, size_t len);
int http1_is_target(const char *s, size_t len);
int http1_is_field_value(const char *s, size_t len);

/* 1 if the comma-separated header value contains the token tok
 * (case-insensitive), e.g. "keep-alive, Upgrade" contains "upgrade". */
int http1_value_has_token(const char *v, size_t len, const char *tok);

/* The standard reason phrase for a status code ("Unknown" if none). */
const char *http1_reason(int status);

#endif
