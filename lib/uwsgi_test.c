/* Unit tests of the uwsgi packet parser on packets built the way nginx's
 * uwsgi_pass builds them. */
#include "lib/uwsgi.h"

#include <criterion/criterion.h>
#include <string.h>

typedef struct pkt {
    char b[4096];
    size_t len;
} pkt;

static void pkt_init(pkt *p, int modifier1)
{
    p->b[0] = (char)modifier1;
    p->b[1] = p->b[2] = p->b[3] = 0;
    p->len = 4;
}

static void pkt_var(pkt *p, const char *k, const char *v)
{
    size_t kl = strlen(k), vl = strlen(v);
    p->b[p->len++] = (char)(kl & 0xff);
    p->b[p->len++] = (char)(kl >> 8);
    memcpy(p->b + p->len, k, kl);
    p->len += kl;
    p->b[p->len++] = (char)(vl & 0xff);
    p->b[p->len++] = (char)(vl >> 8);
    memcpy(p->b + p->len, v, vl);
    p->len += vl;
    size_t size = p->len - 4;
    p->b[1] = (char)(size & 0xff);
    p->b[2] = (char)(size >> 8);
}

static void nginx_get(pkt *p)
{
    pkt_init(p, 0);
    pkt_var(p, "QUERY_STRING", "a=1");
    pkt_var(p, "REQUEST_METHOD", "GET");
    pkt_var(p, "CONTENT_TYPE", "");
    pkt_var(p, "CONTENT_LENGTH", "");
    pkt_var(p, "REQUEST_URI", "/x/y?a=1");
    pkt_var(p, "PATH_INFO", "/x/y");
    pkt_var(p, "SERVER_PROTOCOL", "HTTP/1.1");
    pkt_var(p, "REQUEST_SCHEME", "http");
    pkt_var(p, "REMOTE_ADDR", "10.1.2.3");
    pkt_var(p, "REMOTE_PORT", "54321");
    pkt_var(p, "SERVER_PORT", "80");
    pkt_var(p, "SERVER_NAME", "example");
    pkt_var(p, "HTTP_HOST", "example.com");
    pkt_var(p, "HTTP_USER_AGENT", "curl/7.88");
    pkt_var(p, "HTTP_X_FORWARDED_FOR", "1.2.3.4");
}

static int hdr(const http1_request *r, const http1_header *h, const char *name, const char *want)
{
    for (size_t i = 0; i < r->num_headers; i++)
        if (h[i].name_len == strlen(name) && !strncasecmp(h[i].name, name, h[i].name_len))
            return h[i].value_len == strlen(want) && !memcmp(h[i].value, want, h[i].value_len);
    return 0;
}

Test(uwsgi, an_nginx_request_becomes_a_request_line_and_headers)
{
    pkt p;
    nginx_get(&p);
    http1_request r;
    http1_header h[16];
    uwsgi_vars v;
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 16, &v), (int)p.len);
    cr_assert_eq(r.method_len, 3);
    cr_assert(!memcmp(r.method, "GET", 3));
    cr_assert_eq(r.target_len, 8);
    cr_assert(!memcmp(r.target, "/x/y?a=1", 8));
    cr_assert_eq(r.minor_version, 1);
    cr_assert_eq(r.num_headers, 3, "empty CONTENT_* are no headers; got %zu", r.num_headers);
    cr_assert(hdr(&r, h, "host", "example.com"));
    cr_assert(hdr(&r, h, "user-agent", "curl/7.88"));
    cr_assert(hdr(&r, h, "x-forwarded-for", "1.2.3.4"));
    cr_assert_eq(v.remote_addr_len, 8);
    cr_assert(!memcmp(v.remote_addr, "10.1.2.3", 8));
    cr_assert_eq(v.remote_port, 54321);
    cr_assert_eq(v.https, 0);
}

Test(uwsgi, a_post_carries_length_type_and_scheme)
{
    pkt p;
    pkt_init(&p, 0);
    pkt_var(&p, "REQUEST_METHOD", "POST");
    pkt_var(&p, "REQUEST_URI", "/upload");
    pkt_var(&p, "SERVER_PROTOCOL", "HTTP/1.0");
    pkt_var(&p, "CONTENT_LENGTH", "5");
    pkt_var(&p, "CONTENT_TYPE", "text/plain");
    pkt_var(&p, "HTTPS", "on");
    pkt_var(&p, "HTTP_CONTENT_LENGTH", "5");
    pkt_var(&p, "HTTP_EXPECT", "100-continue");
    pkt_var(&p, "HTTP_CONNECTION", "keep-alive");
    memcpy(p.b + p.len, "hello", 5);
    http1_request r;
    http1_header h[16];
    uwsgi_vars v;
    int n = uwsgi_parse_request(p.b, p.len + 5, &r, h, 16, &v);
    cr_assert_eq(n, (int)p.len, "the head ends where the body starts");
    cr_assert_eq(r.minor_version, 0);
    cr_assert_eq(r.num_headers, 2, "hop-by-hop and duplicate framing headers are dropped");
    cr_assert(hdr(&r, h, "content-length", "5"));
    cr_assert(hdr(&r, h, "content-type", "text/plain"));
    cr_assert_eq(v.https, 1);
}

Test(uwsgi, every_prefix_is_incomplete_and_the_size_comes_first)
{
    pkt p;
    nginx_get(&p);
    http1_request r;
    http1_header h[16];
    uwsgi_vars v;
    for (size_t n = 0; n < p.len; n++) {
        char copy[4096];
        memcpy(copy, p.b, n);
        cr_assert_eq(uwsgi_parse_request(copy, n, &r, h, 16, &v), HTTP1_INCOMPLETE, "at %zu", n);
        if (n >= 4) cr_assert_eq(v.vars_size, p.len - 4);
    }
}

Test(uwsgi, malformed_packets_are_refused)
{
    http1_request r;
    http1_header h[16];
    uwsgi_vars v;
    pkt p;
    nginx_get(&p);
    p.b[0] = 5; /* PSGI */
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 16, &v), HTTP1_BAD);
    nginx_get(&p);
    p.b[1] = (char)(p.b[1] - 1); /* the last value overruns the block */
    cr_assert_eq(uwsgi_parse_request(p.b, p.len - 1, &r, h, 16, &v), HTTP1_BAD);
    pkt_init(&p, 0);
    pkt_var(&p, "REQUEST_URI", "/");
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 16, &v), HTTP1_BAD, "no method");
    pkt_init(&p, 0);
    pkt_var(&p, "REQUEST_METHOD", "G T");
    pkt_var(&p, "REQUEST_URI", "/");
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 16, &v), HTTP1_BAD, "bad method");
    pkt_init(&p, 0);
    pkt_var(&p, "REQUEST_METHOD", "GET");
    pkt_var(&p, "REQUEST_URI", "/a b");
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 16, &v), HTTP1_BAD, "space in target");
    pkt_init(&p, 0);
    pkt_var(&p, "REQUEST_METHOD", "GET");
    pkt_var(&p, "REQUEST_URI", "/");
    pkt_var(&p, "HTTP_X_EVIL", "a\r\nSet-Cookie: x");
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 16, &v), HTTP1_BAD, "CRLF in a value");
    nginx_get(&p);
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 2, &v), HTTP1_TOO_MANY_HEADERS);
}

Test(uwsgi, path_info_stands_in_for_a_missing_request_uri)
{
    pkt p;
    pkt_init(&p, 30);
    pkt_var(&p, "REQUEST_METHOD", "GET");
    pkt_var(&p, "PATH_INFO", "/p");
    pkt_var(&p, "QUERY_STRING", "q=2");
    pkt_var(&p, "UWSGI_FILE", "/tmp/evil.py");
    http1_request r;
    http1_header h[4];
    uwsgi_vars v;
    cr_assert_eq(uwsgi_parse_request(p.b, p.len, &r, h, 4, &v), (int)p.len);
    cr_assert_null(r.target);
    cr_assert_eq(v.path_info_len, 2);
    cr_assert_eq(v.query_len, 3);
    cr_assert_eq(r.num_headers, 0, "UWSGI_* variables are ignored");
}

Test(uwsgi, http_sent_to_a_uwsgi_socket_is_recognised)
{
    cr_assert(uwsgi_looks_like_http("GET / HTTP/1.1\r\n", 16));
    cr_assert(uwsgi_looks_like_http("OPTIONS * HTTP/1.1", 18));
    cr_assert_not(uwsgi_looks_like_http("\0\x10\0\0", 4));
    cr_assert_not(uwsgi_looks_like_http("GE", 2));
}
