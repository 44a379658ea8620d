#define _GNU_SOURCE
#include "loadgen/webui/http.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The handler echoes what it saw, so tests can check parsing end to end. */
static void echo(const webui_req *q, webui_resp *p, void *data)
{
    int *calls = data;
    (*calls)++;
    if (webui_req_path_is(q, "/big")) {
        static char big[100000];
        memset(big, 'x', sizeof(big));
        p->static_data = big;
        p->static_len = sizeof(big);
        return;
    }
    if (webui_req_path_is(q, "/missing")) {
        p->status = 404;
        return;
    }
    p->type = "text/plain";
    buf_printf(&p->body, "%.*s %.*s q=%.*s b=%.*s", (int)q->method_len, q->method, (int)q->path_len,
               q->path, (int)q->query_len, q->query, (int)q->body_len, q->body);
}

typedef struct fixture {
    ev_loop *loop;
    webui_http *srv;
    int calls;
} fixture;

static void setup(fixture *f)
{
    char err[128];
    f->calls = 0;
    f->loop = ev_loop_new();
    cr_assert_not_null(f->loop);
    f->srv = webui_http_create(f->loop, "127.0.0.1", 0, echo, &f->calls, err, sizeof(err));
    cr_assert_not_null(f->srv, "%s", err);
}

static void teardown(fixture *f)
{
    webui_http_free(f->srv);
    ev_loop_free(f->loop);
}

static int client(fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(webui_http_port(f->srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void send_all(fixture *f, int fd, const char *s, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, s + off, len - off, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break;
        ev_loop_run_once(f->loop, 1);
    }
}

/* Runs the loop and collects the response bytes until the server closes the
 * connection or want bytes arrived (0: until close), for at most 2 s. */
static char *collect(fixture *f, int fd, size_t want, int *closed)
{
    buf b = BUF_INIT;
    *closed = 0;
    uint64_t start = ev_clock_ms();
    while (ev_clock_ms() - start < 2000) {
        ev_loop_run_once(f->loop, 5);
        char tmp[65536];
        ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
        if (r > 0) buf_append(&b, tmp, (size_t)r);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            *closed = 1;
            break;
        }
        if (want && b.len >= want) break;
    }
    buf_append(&b, "", 0);
    return b.data ? b.data : strdup("");
}

static char *exchange(fixture *f, const char *req, int *closed)
{
    int fd = client(f);
    send_all(f, fd, req, strlen(req));
    char *r = collect(f, fd, 0, closed);
    close(fd);
    return r;
}

TestSuite(webui_http);

Test(webui_http, get_is_parsed_and_answered_with_length_and_type)
{
    fixture f;
    setup(&f);
    int closed;
    char *r =
        exchange(&f, "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &closed);
    cr_assert(strstr(r, "HTTP/1.1 200 OK\r\n"), "%s", r);
    cr_assert(strstr(r, "Content-Type: text/plain\r\n"));
    cr_assert(strstr(r, "Content-Length: 21\r\n"), "%s", r);
    cr_assert(strstr(r, "\r\n\r\nGET /a/b q=x=1&y=2 b="), "%s", r);
    cr_assert(closed, "Connection: close is honoured");
    free(r);
    teardown(&f);
}

Test(webui_http, keepalive_serves_pipelined_requests_in_order)
{
    fixture f;
    setup(&f);
    int fd = client(&f), closed;
    const char *two = "GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /two HTTP/1.1\r\nHost: "
                      "h\r\nContent-Length: 3\r\n\r\nabc";
    send_all(&f, fd, two, strlen(two));
    char *r = collect(&f, fd, 0, &closed);
    cr_assert_not(closed, "HTTP/1.1 keeps the connection open");
    char *a = strstr(r, "GET /one"), *b = strstr(r, "POST /two q= b=abc");
    cr_assert(a && b && a < b, "both answered, in order: %s", r);
    cr_assert_eq(f.calls, 2);
    free(r);
    close(fd);
    teardown(&f);
}

Test(webui_http, request_split_into_single_bytes_is_reassembled)
{
    fixture f;
    setup(&f);
    int fd = client(&f), closed;
    const char *req = "POST /swarm HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\nuser_count=5";
    for (size_t i = 0; req[i]; i++) send_all(&f, fd, req + i, 1);
    char *r = collect(&f, fd, 0, &closed);
    cr_assert(strstr(r, "POST /swarm q= b=user_count=5"), "%s", r);
    cr_assert_eq(f.calls, 1);
    free(r);
    close(fd);
    teardown(&f);
}

Test(webui_http, head_gets_headers_without_body)
{
    fixture f;
    setup(&f);
    int closed;
    char *r = exchange(&f, "HEAD /x HTTP/1.0\r\n\r\n", &closed);
    cr_assert(strstr(r, "Content-Length: 13\r\n"), "%s", r);
    cr_assert(strstr(r, "\r\n\r\n")[4] == '\0', "no body after a HEAD: %s", r);
    cr_assert(closed, "HTTP/1.0 closes by default");
    free(r);
    teardown(&f);
}

static void expect_status(const char *req, const char *status)
{
    fixture f;
    setup(&f);
    int closed;
    char *r = exchange(&f, req, &closed);
    cr_assert(!strncmp(r, status, strlen(status)), "want %s, got %.60s", status, r);
    cr_assert(closed, "the connection is closed after a bad request");
    cr_assert_eq(f.calls, 0, "the handler never sees a bad request");
    free(r);
    teardown(&f);
}

Test(webui_http, malformed_request_line_gets_400)
{
    expect_status("GET\x01 / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    expect_status("NOT HTTP AT ALL\r\n\r\n", "HTTP/1.1 400 ");
}

Test(webui_http, bad_content_length_gets_400)
{
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n", "HTTP/1.1 400 ");
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400 ");
}

Test(webui_http, body_over_64k_gets_413)
{
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n\r\n", "HTTP/1.1 413 ");
}

Test(webui_http, chunked_body_is_refused_with_501)
{
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  "HTTP/1.1 501 ");
}

/* The server's request rules (lib/http1 http1_check_request) hold here too:
 * stricter than the web UI's own checks were (a CL+TE request was a 501, a
 * missing Host or an unknown Expect went through). */
Test(webui_http, server_request_rules_apply)
{
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\nabc",
                  "HTTP/1.1 400 ");
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                  "HTTP/1.1 400 ");
    expect_status("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ");
    expect_status("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 ");
    expect_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  "HTTP/1.1 400 ");
    expect_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 ");
    expect_status("GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", "HTTP/1.1 417 ");
}

Test(webui_http, expect_100_continue_gets_the_interim_response)
{
    fixture f;
    setup(&f);
    int fd = client(&f), closed;
    const char *head = "POST /swarm HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                       "Content-Length: 12\r\n\r\n";
    send_all(&f, fd, head, strlen(head));
    char *r = collect(&f, fd, 25, &closed);
    cr_assert(!strcmp(r, "HTTP/1.1 100 Continue\r\n\r\n"), "%s", r);
    free(r);
    send_all(&f, fd, "user_count=5", 12);
    r = collect(&f, fd, 0, &closed);
    cr_assert(!strncmp(r, "HTTP/1.1 200 ", 13), "%s", r);
    cr_assert(strstr(r, "POST /swarm q= b=user_count=5"), "%s", r);
    cr_assert_eq(f.calls, 1);
    free(r);
    close(fd);
    teardown(&f);
}

Test(webui_http, head_over_16k_gets_431)
{
    fixture f;
    setup(&f);
    size_t n = 20000;
    char *req = malloc(n + 1);
    memcpy(req, "GET / HTTP/1.1\r\nX: ", 19);
    memset(req + 19, 'a', n - 19);
    req[n] = '\0';
    int closed;
    char *r = exchange(&f, req, &closed);
    cr_assert(!strncmp(r, "HTTP/1.1 431 ", 13), "%.60s", r);
    cr_assert(closed);
    free(r);
    free(req);
    teardown(&f);
}

Test(webui_http, handler_status_is_sent)
{
    fixture f;
    setup(&f);
    int closed;
    char *r = exchange(&f, "GET /missing HTTP/1.0\r\n\r\n", &closed);
    cr_assert(!strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24), "%s", r);
    free(r);
    teardown(&f);
}

Test(webui_http, port_in_use_is_a_clear_error)
{
    fixture f;
    setup(&f);
    char err[128] = "";
    webui_http *again = webui_http_create(f.loop, "127.0.0.1", webui_http_port(f.srv), echo,
                                          &f.calls, err, sizeof(err));
    cr_assert_null(again);
    cr_assert(strstr(err, "Address already in use"), "%s", err);
    cr_assert_null(
        webui_http_create(f.loop, "no.such.host.invalid", 0, echo, NULL, err, sizeof(err)));
    cr_assert(strstr(err, "no.such.host.invalid"), "%s", err);
    cr_assert_null(webui_http_create(f.loop, "127.0.0.1", 70000, echo, NULL, err, sizeof(err)));
    teardown(&f);
}

Test(webui_http, form_values_are_percent_decoded)
{
    const char *f = "user_count=10&host=http%3A%2F%2F127.0.0.1%3A8000&run_time=1h+2m&e=&flag";
    char v[64];
    cr_assert_eq(webui_form_get(f, strlen(f), "user_count", v, sizeof(v)), 2);
    cr_assert_str_eq(v, "10");
    cr_assert_eq(webui_form_get(f, strlen(f), "host", v, sizeof(v)), 21);
    cr_assert_str_eq(v, "http://127.0.0.1:8000");
    webui_form_get(f, strlen(f), "run_time", v, sizeof(v));
    cr_assert_str_eq(v, "1h 2m");
    cr_assert_eq(webui_form_get(f, strlen(f), "e", v, sizeof(v)), 0);
    cr_assert_eq(webui_form_get(f, strlen(f), "flag", v, sizeof(v)), 0);
    cr_assert_eq(webui_form_get(f, strlen(f), "user", v, sizeof(v)), -ENOENT);
}

Test(webui_http, bad_form_values_are_rejected_not_truncated)
{
    char v[8];
    cr_assert_eq(webui_form_get("a=%zz", 5, "a", v, sizeof(v)), -EINVAL);
    cr_assert_eq(webui_form_get("a=%4", 4, "a", v, sizeof(v)), -EINVAL);
    cr_assert_eq(webui_form_get("a=x%00y", 7, "a", v, sizeof(v)), -EINVAL);
    cr_assert_eq(webui_form_get("a=123456789", 11, "a", v, sizeof(v)), -ENAMETOOLONG);
}

Test(webui_http, pipelined_requests_beyond_the_output_cap_are_all_answered)
{
    /* 100 x 100 KB of answers pass the 4 MiB output cap: the server must stop
     * reading, drain, then go on with the requests it still holds. */
    fixture f;
    setup(&f);
    int fd = client(&f), closed;
    buf req = BUF_INIT;
    for (int i = 0; i < 100; i++) buf_puts(&req, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    send_all(&f, fd, req.data, req.len);
    size_t one = strlen("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: 100000\r\nCache-Control: no-store\r\n"
                        "X-Content-Type-Options: nosniff\r\nConnection: keep-alive\r\n\r\n") +
                 100000;
    char *r = collect(&f, fd, 100 * one, &closed);
    size_t got = strlen(r);
    cr_assert_eq(got, 100 * one, "every response arrives (%zu of %zu bytes)", got, 100 * one);
    cr_assert_eq(f.calls, 100);
    free(r);
    buf_free(&req);
    close(fd);
    teardown(&f);
}

Test(webui_http, request_followed_by_shutdown_is_still_answered)
{
    fixture f;
    setup(&f);
    int fd = client(&f), closed;
    const char *req = "GET /last HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(&f, fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    char *r = collect(&f, fd, 0, &closed);
    cr_assert(strstr(r, "GET /last"), "%s", r);
    cr_assert(closed, "the server closes once it answered a half-closed peer");
    free(r);
    close(fd);
    teardown(&f);
}
