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

Test(http1, a_few_empty_lines_before_the_request_line_are_ignored)
{
    http1_request r;
    http1_header h[MAXH];
    const char *one = "\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    cr_assert_eq(parse_req(one, &r, h), (int)strlen(one));
    cr_assert(str_is(r.target, r.target_len, "/a"));
    const char *mixed = "\r\n\n\r\n\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    cr_assert_eq(parse_req(mixed, &r, h), (int)strlen(mixed));
    cr_assert(str_is(r.target, r.target_len, "/b"));
    char many[256] = "";
    for (int i = 0; i < HTTP1_MAX_LEADING_EMPTY; i++) strcat(many, "\r\n");
    strcat(many, "GET /c HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_gt(parse_req(many, &r, h), 0, "the bound itself is accepted");
    char too_many[256] = "\r\n";
    strcat(too_many, many);
    cr_assert_eq(parse_req(too_many, &r, h), HTTP1_BAD);
    /* empty lines alone: wait for the request line, and a bare CR is no line */
    cr_assert_eq(parse_req("\r\n\r\n", &r, h), HTTP1_INCOMPLETE);
    cr_assert_eq(parse_req("\r\rGET / HTTP/1.1\r\n\r\n", &r, h), HTTP1_BAD);
    /* arriving in pieces, with last_len, gives the same head */
    size_t n = strlen(mixed);
    cr_assert_eq(http1_parse_request(mixed, 3, 0, &r, h, MAXH), HTTP1_INCOMPLETE);
    cr_assert_eq(http1_parse_request(mixed, 8, 3, &r, h, MAXH), HTTP1_INCOMPLETE);
    cr_assert_eq(http1_parse_request(mixed, n, 8, &r, h, MAXH), (int)n);
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

static ssize_t dechunk(const char *s, size_t n, char *out, size_t *len)
{
    memcpy(out, s, n);
    *len = n;
    http1_chunked d = HTTP1_CHUNKED_INIT;
    return http1_decode_chunked(&d, out, len);
}

Test(http1, chunked_refuses_a_bare_cr_or_controls_in_extensions_and_trailers)
{
    static const char *const bad[] = {
        "3;a=b\rX\r\nabc\r\n0\r\n\r\n", /* bare CR inside an extension */
        "3;a=b\r\rabc\r\n0\r\n\r\n",    /* CR CR */
        "3;a\x01\r\nabc\r\n0\r\n\r\n",  /* control character */
        "3 ;a\x7f\r\nabc\r\n0\r\n\r\n", /* DEL */
        "0;x\r0\r\n\r\n",               /* bare CR on the last chunk */
        "0\r\nA: b\rC: d\r\n\r\n",      /* bare CR in a trailer */
        "0\r\nA: b\x0b\r\n\r\n",        /* VT in a trailer */
        "0\r\n\x01A: b\r\n\r\n",        /* a trailer line starting with a control */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char b[64];
        size_t l;
        cr_assert_eq(dechunk(bad[i], strlen(bad[i]), b, &l), HTTP1_BAD, "case %zu", i);
    }
    static const char *const good[] = {
        "3;a=b\r\nabc\r\n0\r\n\r\n",
        "3;a=\"x\ty\"\nabc\r\n0\r\n\r\n", /* HTAB and a bare LF end */
        "3\r\nabc\r\n0;last\r\nT: v\r\nU: w\n\r\n",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char b[64];
        size_t l;
        cr_assert_eq(dechunk(good[i], strlen(good[i]), b, &l), 0, "case %zu", i);
        cr_assert_eq(l, 3);
        cr_assert(!memcmp(b, "abc", 3));
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

static const char *norm(const char *in, int *rc)
{
    static char out[256];
    size_t len = 12345;
    *rc = http1_decode_path(in, strlen(in), out, &len);
    if (*rc) return NULL;
    cr_assert_eq(len, strlen(out));
    return out;
}

Test(http1, paths_are_decoded_and_lose_their_dot_segments)
{
    static const char *const cases[][2] = {
        {"/", "/"},
        {"/a/b", "/a/b"},
        {"/a%20b/c", "/a b/c"},
        {"/a/./b", "/a/b"},
        {"/a/b/../c", "/a/c"},
        {"/a/b/..", "/a/"},
        {"/a/.", "/a/"},
        {"/.", "/"},
        {"/a/..", "/"},
        {"/a/b/../../c/", "/c/"},
        {"/a/%2e%2E/b", "/b"},
        {"/a/.%2e/b", "/b"},
        {"/a/%2E/b", "/a/b"},
        {"/a%2f..%2fb", "/b"}, /* an encoded '/' separates after decoding */
        {"//..", "/"},         /* the empty segment is the one removed */
        {"/a//../b", "/a/b"},
        {"/...", "/..."},
        {"/..a/b..", "/..a/b.."},
        {"/a/.hidden", "/a/.hidden"},
        {"*", "*"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        const char *got = norm(cases[i][0], &rc);
        cr_assert_eq(rc, 0, "%s", cases[i][0]);
        cr_assert_str_eq(got, cases[i][1], "%s", cases[i][0]);
    }
    static const char *const above[] = {
        "/..",        "/../",      "/../a", "/a/../..",
        "/a/../../b", "/%2e%2e/x", "/.%2E", "/a/..%2f..%2fetc/passwd"};
    for (size_t i = 0; i < sizeof(above) / sizeof(above[0]); i++) {
        int rc;
        cr_assert_null(norm(above[i], &rc), "%s", above[i]);
        cr_assert_eq(rc, HTTP1_PATH_ABOVE_ROOT, "%s", above[i]);
    }
    static const char *const bad[] = {"/a%", "/a%2", "/a%zz", "/a%00b", "/%2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;
        cr_assert_null(norm(bad[i], &rc), "%s", bad[i]);
        cr_assert_eq(rc, HTTP1_BAD, "%s", bad[i]);
    }
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
                                         "GET / HTTP/1.1\r\nA:",
                                         "\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                                         "/a/%2e%2e/../b%4",
                                         "3;x\r\nabc\r\n0\r\nT: v\r"};
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
            char path[256];
            size_t pl;
            (void)http1_decode_path(p, cut, path, &pl);
            munmap(m, ml);
            char *q = guarded(inputs[i], cut, &m, &ml);
            size_t l = cut;
            http1_chunked d = HTTP1_CHUNKED_INIT;
            (void)http1_decode_chunked(&d, q, &l);
            munmap(m, ml);
        }
    }
}

/* ---- request rules ---- */

static http1_check check(const char *head, int64_t max_body)
{
    http1_request r;
    static http1_header h[16];
    http1_check k;
    cr_assert_gt(parse_req(head, &r, h), 0, "%s", head);
    http1_check_request(&r, h, max_body, &k);
    return k;
}

Test(http1, check_request_refuses_what_the_server_refuses)
{
    static const struct {
        const char *head;
        int status;
        const char *reason;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 400, "bad request"}, /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad request"},
        {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad request"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
         400, "bad request"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         400, "bad request"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400,
         "bad request"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "bad request"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", 400,
         "bad request"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         400, "bad request"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "bad request"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
         "unsupported transfer-encoding"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
         "unsupported transfer-encoding"},
        {"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417, "expectation failed"},
        /* the first rule broken in header order decides */
        {"GET / HTTP/1.1\r\nExpect: x\r\nContent-Length: y\r\n\r\n", 417, "expectation failed"},
        {"GET / HTTP/1.1\r\nContent-Length: y\r\nExpect: x\r\n\r\n", 400, "bad request"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http1_check k = check(cases[i].head, 0);
        cr_assert_eq(k.status, cases[i].status, "%s", cases[i].head);
        cr_assert_str_eq(k.reason, cases[i].reason, "%s", cases[i].head);
    }
}

Test(http1, check_request_reports_framing_connection_expect_and_host)
{
    http1_check k = check("POST / HTTP/1.1\r\nHost: ex.test:8080\r\nContent-Length: 5\r\n"
                          "content-length: 5\r\nExpect: 100-Continue\r\n\r\n",
                          0);
    cr_assert_eq(k.status, 0);
    cr_assert_null(k.reason);
    cr_assert_eq(k.content_length, 5, "a repeated equal length is one length");
    cr_assert(!k.chunked && k.expect_continue && !k.close);
    cr_assert(k.host_len == 12 && !memcmp(k.host, "ex.test:8080", 12));

    k = check("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
              "Connection: keep-alive, close\r\n\r\n",
              0);
    cr_assert(k.status == 0 && k.chunked && k.content_length == -1 && k.close);

    k = check("GET / HTTP/1.0\r\n\r\n", 0);
    cr_assert(k.status == 0 && k.close && !k.host, "HTTP/1.0 closes, Host optional");
    k = check("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0);
    cr_assert(k.status == 0 && !k.close);
    k = check("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    cr_assert(k.status == 0 && k.content_length == -1 && !k.close && !k.expect_continue);
}

Test(http1, check_request_applies_max_body_last)
{
    const char *big = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
    cr_assert_eq(check(big, 0).status, 0, "0: no limit");
    cr_assert_eq(check(big, 11).status, 0);
    http1_check k = check(big, 10);
    cr_assert_eq(k.status, 413);
    cr_assert_str_eq(k.reason, "request body too large");
    cr_assert_eq(k.content_length, 11, "the fields are set with a 413");
    /* a chunked body has no length to compare yet: the body reader caps it */
    cr_assert_eq(
        check("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 1).status, 0);
    /* a worse problem wins over the size */
    cr_assert_eq(check("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10).status, 400);
}

Test(http1, methods_are_compared_case_sensitively)
{
    cr_assert(http1_method_is("GET", 3, "GET"));
    cr_assert_not(http1_method_is("get", 3, "GET"));
    cr_assert_not(http1_method_is("Head", 4, "HEAD"));
    cr_assert_not(http1_method_is("GETX", 4, "GET"));
    cr_assert_not(http1_method_is("GE", 2, "GET"));
}

Test(http1, a_path_without_escapes_is_copied_but_a_raw_nul_is_still_refused)
{
    /* the no-'%' fast path must refuse what pct_decode refuses */
    char out[16];
    size_t len = 0;
    cr_assert_eq(http1_decode_path("/a\0b", 4, out, &len), HTTP1_BAD);
    cr_assert_eq(http1_decode_path("/hello", 6, out, &len), 0);
    cr_assert_eq(len, 6);
    cr_assert_str_eq(out, "/hello");
}
