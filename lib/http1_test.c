#include "lib/http1.h"

#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAXH 16

static int parse_req(const char *s, http1_request *r, http1_header *h)
{
    return http1_parse_request(s, strlen(s), 0, r, h, MAXH);
}

static int str_is(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && !memcmp(p, want, n);
}

Test(http1, request_parses_line_headers_and_returns_head_length)
{
    const char *s = "GET /a/b?x=1 HTTP/1.1\r\nHost: example\r\nX-Y:  v w  \r\n\r\nBODY";
    http1_request r;
    http1_header h[MAXH];
    int n = parse_req(s, &r, h);
    cr_assert_eq(n, (int)(strstr(s, "BODY") - s));
    cr_assert(str_is(r.method, r.method_len, "GET"));
    cr_assert(str_is(r.target, r.target_len, "/a/b?x=1"));
    cr_assert_eq(r.minor_version, 1);
    cr_assert_eq(r.num_headers, 2);
    cr_assert(str_is(h[0].name, h[0].name_len, "Host"));
    cr_assert(str_is(h[1].value, h[1].value_len, "v w"));
}

Test(http1, request_accepts_bare_lf_and_http10)
{
    http1_request r;
    http1_header h[MAXH];
    cr_assert_gt(parse_req("GET / HTTP/1.0\nA: b\n\n", &r, h), 0);
    cr_assert_eq(r.minor_version, 0);
}

Test(http1, every_proper_prefix_of_a_request_is_incomplete)
{
    const char *s = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
    http1_request r;
    http1_header h[MAXH];
    for (size_t i = 0; i < strlen(s); i++)
        cr_assert_eq(http1_parse_request(s, i, 0, &r, h, MAXH), HTTP1_INCOMPLETE, "prefix %zu", i);
    cr_assert_eq(http1_parse_request(s, strlen(s), 0, &r, h, MAXH), (int)strlen(s));
}

Test(http1, last_len_skips_rescanning_until_the_head_ends)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t n = strlen(s);
    http1_request r;
    http1_header h[MAXH];
    cr_assert_eq(http1_parse_request(s, n - 2, 0, &r, h, MAXH), HTTP1_INCOMPLETE);
    cr_assert_eq(http1_parse_request(s, n - 1, n - 2, &r, h, MAXH), HTTP1_INCOMPLETE);
    cr_assert_eq(http1_parse_request(s, n, n - 1, &r, h, MAXH), (int)n);
}

Test(http1, malformed_requests_are_bad)
{
    static const char *const bad[] = {
        "GET  / HTTP/1.1\r\n\r\n",                      /* double space */
        "GET / HTTP/2.0\r\n\r\n",                       /* version */
        "GET / XTTP/1.1\r\n\r\n",                       /* protocol */
        "G(T / HTTP/1.1\r\n\r\n",                       /* non-token method */
        "GET / HTTP/1.1\r\nA : b\r\n\r\n",              /* space before colon */
        "GET / HTTP/1.1\r\n b: c\r\n\r\n",              /* obs-fold */
        "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",           /* control char in value */
        "GET / HTTP/1.1\r\n: b\r\n\r\n",                /* empty name */
        "GET / HTTP/1.1\rX\n\r\n",                      /* CR not before LF */
        "GET /\x7f HTTP/1.1\r\n\r\n",                   /* DEL in target */
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* TLS hello */
    };
    http1_request r;
    http1_header h[MAXH];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(parse_req(bad[i], &r, h), HTTP1_BAD, "case %zu", i);
}

Test(http1, too_many_headers_is_distinguished_from_bad)
{
    char s[2048] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < MAXH + 1; i++) strcat(s, "A: b\r\n");
    strcat(s, "\r\n");
    http1_request r;
    http1_header h[MAXH];
    cr_assert_eq(parse_req(s, &r, h), HTTP1_TOO_MANY_HEADERS);
}

Test(http1, response_parses_status_reason_and_headers)
{
    const char *s = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    http1_response r;
    http1_header h[MAXH];
    cr_assert_eq(http1_parse_response(s, strlen(s), 0, &r, h, MAXH), (int)strlen(s));
    cr_assert_eq(r.status, 404);
    cr_assert(str_is(r.reason, r.reason_len, "Not Found"));
    cr_assert_eq(r.num_headers, 1);
    const char *noreason = "HTTP/1.0 200\r\n\r\n";
    cr_assert_gt(http1_parse_response(noreason, strlen(noreason), 0, &r, h, MAXH), 0);
    cr_assert_eq(r.reason_len, 0);
    cr_assert_eq(http1_parse_response("HTTP/1.1 20x OK\r\n\r\n", 19, 0, &r, h, MAXH), HTTP1_BAD);
    cr_assert_eq(http1_parse_response("HTTP/1.1 200 OK\r\n", 17, 0, &r, h, MAXH), HTTP1_INCOMPLETE);
}

Test(http1, chunked_decodes_in_place_and_reports_trailing_bytes)
{
    char s[] = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    size_t len = strlen(s);
    http1_chunked d = HTTP1_CHUNKED_INIT;
    ssize_t rest = http1_decode_chunked(&d, s, &len);
    cr_assert_eq(rest, 4);
    cr_assert_eq(len, 9);
    cr_assert(!memcmp(s, "Wikipedia", 9));
    cr_assert(!memcmp(s + len, "NEXT", 4));
    cr_assert(http1_chunked_done(&d));
}

Test(http1, chunked_byte_by_byte_equals_all_at_once)
{
    const char *src = "3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
    http1_chunked d = HTTP1_CHUNKED_INIT;
    char out[64];
    size_t olen = 0;
    ssize_t rc = HTTP1_INCOMPLETE;
    for (size_t i = 0; src[i]; i++) {
        char b = src[i];
        size_t l = 1;
        rc = http1_decode_chunked(&d, &b, &l);
        if (l) out[olen++] = b;
        if (rc != HTTP1_INCOMPLETE) break;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(olen, 19);
    cr_assert(!memcmp(out, "abc0123456789abcdef", 19));
}

Test(http1, chunked_rejects_bad_framing)
{
    static const char *const bad[] = {"x\r\n", "3\r\nabcX", "\r\n", "12345678901234567\r\n",
                                      "3\r\nabc\r\n0\r\nA\0B\r\n\r\n"};
    static const size_t lens[] = {3, 7, 2, 19, 18};
    for (size_t i = 0; i < 5; i++) {
        char b[64];
        memcpy(b, bad[i], lens[i]);
        size_t l = lens[i];
        http1_chunked d = HTTP1_CHUNKED_INIT;
        cr_assert_eq(http1_decode_chunked(&d, b, &l), HTTP1_BAD, "case %zu", i);
    }
}

Test(http1, chunked_overhead_cap_stops_tiny_chunk_floods)
{
    http1_chunked d = HTTP1_CHUNKED_INIT;
    d.max_overhead = 100;
    char b[4096];
    size_t n = 0;
    while (n + 6 < sizeof(b)) memcpy(b + n, "1\r\na\r\n", 6), n += 6;
    size_t l = n;
    cr_assert_eq(http1_decode_chunked(&d, b, &l), HTTP1_BAD);
}

Test(http1, helpers_compare_find_and_parse)
{
    cr_assert(http1_token_eq("Content-Length", 14, "content-length"));
    cr_assert(!http1_token_eq("Content-Lengt", 13, "content-length"));
    cr_assert_eq(http1_parse_length("123", 3), 123);
    cr_assert_eq(http1_parse_length("+1", 2), -1);
    cr_assert_eq(http1_parse_length("", 0), -1);
    cr_assert_eq(http1_parse_length("1 2", 3), -1);
    cr_assert_eq(http1_parse_length("9999999999999999999", 19), -1);
    cr_assert(http1_value_has_token("keep-alive, Upgrade", 19, "upgrade"));
    cr_assert(!http1_value_has_token("closed", 6, "close"));
    http1_header h[2] = {{"A", 1, "1", 1}, {"bB", 2, "2", 1}};
    cr_assert_eq(http1_find_header(h, 2, "Bb"), &h[1]);
    cr_assert_str_eq(http1_reason(431), "Request Header Fields Too Large");
}

/* The input is placed so that its last byte is the last readable byte before
 * a PROT_NONE page: any read past the end faults (picohttpparser's harness). */
static char *guarded(const char *s, size_t n, void **map, size_t *maplen)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (n + pg - 1) / pg + 1;
    *maplen = (pages + 1) * pg;
    char *m = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    mprotect(m + pages * pg, pg, PROT_NONE);
    char *p = m + pages * pg - n;
    memcpy(p, s, n);
    *map = m;
    return p;
}

Test(http1, parsers_never_read_past_the_end_before_a_guard_page)
{
    static const char *const inputs[] = {"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                                         "GET / HTTP/1.1\r\nHost: a\r\n\r",
                                         "GET / HTTP/1.1\r\nHost: a",
                                         "GET / HTTP/1.",
                                         "GET /",
                                         "G",
                                         "HTTP/1.1 200 OK\r\nA: b\r\n\r\n",
                                         "HTTP/1.1 200",
                                         "\r",
                                         "\n",
                                         "GET / HTTP/1.1\r\nA:"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        size_t n = strlen(inputs[i]);
        for (size_t cut = 1; cut <= n; cut++) {
            void *m;
            size_t ml;
            char *p = guarded(inputs[i], cut, &m, &ml);
            http1_request r;
            http1_response rs;
            http1_header h[MAXH];
            size_t nh;
            (void)http1_parse_request(p, cut, 0, &r, h, MAXH);
            (void)http1_parse_response(p, cut, 0, &rs, h, MAXH);
            (void)http1_parse_headers(p, cut, 0, h, MAXH, &nh);
            (void)http1_parse_request(p, cut, cut > 2 ? cut - 2 : 0, &r, h, MAXH);
            munmap(m, ml);
            char *q = guarded(inputs[i], cut, &m, &ml);
            size_t l = cut;
            http1_chunked d = HTTP1_CHUNKED_INIT;
            (void)http1_decode_chunked(&d, q, &l);
            munmap(m, ml);
        }
    }
}
