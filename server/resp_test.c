/* resp.c: response framing over a real socket pair (conn_testkit.h):
 * Content-Length vs chunked vs close-delimited, HEAD, 204/304, keep-alive vs
 * close, headers the app may not set, the loop's partial writes and sendfile.
 * Streaming is framed on an app thread; the test plays that thread for a
 * request its loop handler left PENDING. */
#include "server/conn_testkit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

static app_request *held;
static char big[200000];
static int file_fd = -1;

static int h(app_request *r, void *d)
{
    (void)d;
    const char *p = r->path_info;
    if (!strcmp(p, "/hold")) {
        held = r;
        return APP_PENDING;
    }
    if (!strcmp(p, "/len")) {
        app_add_header(r, "Content-Length", 14, "5", 1);
        app_write(r, "hello", 5);
    } else if (!strcmp(p, "/lie")) {
        app_add_header(r, "Content-Length", 14, "10", 2);
        app_write(r, "hello", 5);
    } else if (!strcmp(p, "/204") || !strcmp(p, "/304")) {
        app_set_status(r, p[1] == '2' ? 204 : 304);
        app_write(r, "not sent", 8);
    } else if (!strcmp(p, "/close")) {
        app_add_header(r, "Connection", 10, "close", 5);
        app_write(r, "bye", 3);
    } else if (!strcmp(p, "/reason")) {
        app_set_status(r, 299);
        cr_assert_eq(app_set_reason(r, "Fine Thanks", 11), 0);
        cr_assert_eq(app_set_reason(r, "a\r\nb", 4), -EINVAL);
        app_write(r, "x", 1);
    } else if (!strcmp(p, "/headers")) {
        cr_assert_eq(app_add_header(r, "X-Ok", 4, "1", 1), 0);
        cr_assert_eq(app_add_header(r, "X-Bad", 5, "a\r\nInjected: 1", 15), -EINVAL);
        cr_assert_eq(app_add_header(r, "X Bad", 5, "1", 1), -EINVAL);
        cr_assert_eq(app_add_header(r, "Transfer-Encoding", 17, "chunked", 7), -EINVAL);
        cr_assert_eq(app_add_header(r, "Server", 6, "other", 5), 0, "ignored: the core's own");
        cr_assert_eq(app_add_header(r, "Date", 4, "yesterday", 9), 0);
        app_write(r, "h", 1);
    } else if (!strcmp(p, "/kb")) { /* a body copied behind the head (RESP_COPY_BODY) */
        app_write(r, big, 1000);
    } else if (!strcmp(p, "/big")) {
        app_write(r, big, sizeof(big));
    } else if (!strcmp(p, "/file")) {
        cr_assert_eq(app_sendfile(r, file_fd, 2, 6), 0);
    } else {
        app_write(r, "plain", 5);
    }
    return APP_DONE;
}

static tk t;

static void setup(void)
{
    held = NULL;
    tk_init(&t);
    tk_route(&t, "/", SRV_MATCH_PREFIX, h);
}

static void teardown(void)
{
    tk_done(&t);
}

TestSuite(resp, .init = setup, .fini = teardown);

/* The head of t.in (up to the blank line), NUL-terminated, in a static buffer. */
static const char *head_of(const char *r)
{
    static char hd[4096];
    const char *e = strstr(r, "\r\n\r\n");
    size_t n = e ? (size_t)(e - r) + 2 : strlen(r);
    if (n >= sizeof(hd)) n = sizeof(hd) - 1;
    memcpy(hd, r, n);
    hd[n] = 0;
    return hd;
}

static const char *body_of(const char *r)
{
    const char *e = strstr(r, "\r\n\r\n");
    return e ? e + 4 : "";
}

Test(resp, a_finished_response_has_a_content_length)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    const char *hd = head_of(r);
    cr_assert(strstr(hd, "HTTP/1.1 200 OK\r\nServer: aiserve\r\nDate: ") == hd, "%s", hd);
    cr_assert(strstr(hd, "Content-Length: 5\r\n"), "%s", hd);
    cr_assert_null(strstr(hd, "Transfer-Encoding"));
    cr_assert_str_eq(body_of(r), "plain");
}

Test(resp, the_apps_content_length_is_kept_and_a_wrong_one_closes)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /len HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(tk_count(r, "Content-Length: 5\r\n"), 1, "%s", r);
    cr_assert_not(t.eof);
    r = tk_ask(&t, "GET /lie HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "Content-Length: 10\r\n"), "%s", r);
    cr_assert(strstr(r, "Connection: close\r\n"), "broken framing: not reused: %s", r);
    cr_assert(t.eof);
}

Test(resp, head_gets_the_length_but_no_body)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "Content-Length: 5\r\n"), "%s", r);
    cr_assert_str_eq(body_of(r), "");
    cr_assert_not(t.eof);
    r = tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_str_eq(body_of(r), "plain", "the next response on it is framed right");
}

Test(resp, no_body_and_no_length_for_204_and_304)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /204 HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 204 No Content\r\n") == r, "%s", r);
    cr_assert_null(strstr(r, "Content-Length"), "%s", r);
    cr_assert_str_eq(body_of(r), "");
    r = tk_ask(&t, "GET /304 HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 304 Not Modified\r\n") == r, "%s", r);
    cr_assert_null(strstr(r, "Content-Length"), "%s", r);
    cr_assert_str_eq(body_of(r), "");
    cr_assert_not(t.eof);
}

Test(resp, keep_alive_and_close_headers)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert(strstr(r, "Connection: keep-alive\r\n"), "HTTP/1.0 needs it said: %s", r);
    r = tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_null(strstr(r, "Connection:"), "%s", r);
    r = tk_ask(&t, "GET /close HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "Connection: close\r\n"), "the app asked for it: %s", r);
    cr_assert(t.eof);
}

Test(resp, a_draining_worker_says_close_unless_the_next_request_is_buffered)
{
    tk_connect(&t);
    atomic_store(&t.w.draining, 1);
    const char *r =
        tk_ask(&t, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(tk_count(r, "HTTP/1.1 200"), 2, "%s", r);
    cr_assert_eq(tk_count(r, "Connection: close\r\n"), 1, "only the last one closes: %s", r);
    const char *close = strstr(r, "Connection: close"), *second = strstr(r + 1, "HTTP/1.1 200");
    cr_assert(close > second, "%s", r);
}

Test(resp, reason_phrase_and_headers_the_app_may_not_set)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /reason HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 299 Fine Thanks\r\n") == r, "%s", r);
    r = tk_ask(&t, "GET /headers HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "X-Ok: 1\r\n"), "%s", r);
    cr_assert_null(strstr(r, "Injected"), "%s", r);
    cr_assert_eq(tk_count(r, "Server: "), 1, "%s", r);
    cr_assert_null(strstr(r, "other"), "%s", r);
    cr_assert_null(strstr(r, "yesterday"), "%s", r);
}

Test(resp, a_large_body_continues_on_ev_write)
{
    for (size_t i = 0; i < sizeof(big); i++) big[i] = (char)('a' + i % 26);
    tk_connect(&t);
    t.in_len = 0;
    tk_sends(&t, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
    tk_pump(&t, 200);
    cr_assert(strstr(t.in, "Content-Length: 200000\r\n"), "%.200s", t.in);
    const char *b = body_of(t.in);
    cr_assert_eq(t.in_len - (size_t)(b - t.in), sizeof(big));
    cr_assert_eq(memcmp(b, big, sizeof(big)), 0);
    cr_assert_eq(t.c->state, CS_HEAD, "written out, back to reading");
}

/* A small body leaves with its head in one send; when the socket takes
 * only part of it, the rest goes on EV_WRITE like a large body's, and the
 * pipelined requests behind it are answered in order, intact. */
Test(resp, small_responses_cut_by_a_full_socket_continue_on_ev_write)
{
    for (size_t i = 0; i < sizeof(big); i++) big[i] = (char)('a' + i % 26);
    tk_connect(&t);
    int small = 2048;
    setsockopt(t.c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    char reqs[40 * 32] = "";
    for (int i = 0; i < 40; i++) strcat(reqs, "GET /kb HTTP/1.1\r\nHost: h\r\n\r\n");
    t.in_len = 0;
    tk_sends(&t, reqs);
    tk_pump(&t, 200);
    cr_assert_eq(tk_count(t.in, "HTTP/1.1 200 OK\r\n"), 40, "%.300s", t.in);
    const char *r = t.in;
    for (int i = 0; i < 40; i++) {
        r = strstr(r, "Content-Length: 1000\r\n");
        cr_assert_not_null(r, "response %d", i);
        const char *b = body_of(r);
        cr_assert_eq(memcmp(b, big, 1000), 0, "response %d's body", i);
        r = b + 1000;
    }
    cr_assert_eq((size_t)(r - t.in), t.in_len, "nothing more, nothing less");
    cr_assert_eq(t.c->state, CS_HEAD);
}

Test(resp, sendfile_on_the_loop)
{
    char path[] = "/tmp/resp_testXXXXXX";
    file_fd = mkstemp(path);
    cr_assert_geq(file_fd, 0);
    unlink(path);
    cr_assert_eq(write(file_fd, "0123456789", 10), 10);
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /file HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "Content-Length: 6\r\n"), "%s", r);
    cr_assert_str_eq(body_of(r), "234567");
    close(file_fd);
}

/* The test becomes the app thread of the held request, streams, and hands it
 * back as run_job does. */
static srv_conn *hold(const char *req)
{
    tk_sends(&t, req);
    tk_pump(&t, 20);
    cr_assert_not_null(held, "the handler left it PENDING");
    cr_assert_eq(t.in_len, 0);
    srv_thread_conn = held->_conn;
    return held->_conn;
}

static void release(srv_conn *c)
{
    srv_thread_conn = NULL;
    resp_finish_thread(c);
    app_finish(&c->ar);
    tk_pump(&t, 50);
}

Test(resp, a_stream_to_http11_is_chunked)
{
    tk_connect(&t);
    srv_conn *c = hold("GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    app_write(&c->ar, "hello", 5);
    cr_assert_eq(app_flush(&c->ar), 0);
    app_write(&c->ar, " world!", 7);
    release(c);
    const char *hd = head_of(t.in);
    cr_assert(strstr(hd, "Transfer-Encoding: chunked\r\n"), "%s", hd);
    cr_assert_null(strstr(hd, "Content-Length"), "%s", hd);
    cr_assert_str_eq(body_of(t.in), "5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n");
    cr_assert_not(t.eof, "chunked framing keeps the connection");
    cr_assert_eq(t.c->state, CS_HEAD);
}

Test(resp, a_stream_to_http10_is_close_delimited)
{
    tk_connect(&t);
    srv_conn *c = hold("GET /hold HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    app_write(&c->ar, "abc", 3);
    app_flush(&c->ar);
    app_write(&c->ar, "def", 3);
    release(c);
    const char *hd = head_of(t.in);
    cr_assert_null(strstr(hd, "Transfer-Encoding"), "%s", hd);
    cr_assert_null(strstr(hd, "Content-Length"), "%s", hd);
    cr_assert(strstr(hd, "Connection: close\r\n"), "%s", hd);
    cr_assert_str_eq(body_of(t.in), "abcdef");
    cr_assert(t.eof);
}

Test(resp, a_stream_with_the_apps_length_is_not_chunked)
{
    tk_connect(&t);
    srv_conn *c = hold("GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    app_add_header(&c->ar, "Content-Length", 14, "6", 1);
    app_write(&c->ar, "abc", 3);
    app_flush(&c->ar);
    cr_assert_eq(app_add_header(&c->ar, "X-Late", 6, "1", 1), -EINVAL, "the head is out");
    cr_assert_eq(app_set_status(&c->ar, 404), -EINVAL);
    app_write(&c->ar, "def", 3);
    release(c);
    const char *hd = head_of(t.in);
    cr_assert(strstr(hd, "Content-Length: 6\r\n"), "%s", hd);
    cr_assert_null(strstr(hd, "Transfer-Encoding"), "%s", hd);
    cr_assert_str_eq(body_of(t.in), "abcdef");
    cr_assert_not(t.eof);
}

Test(resp, a_streamed_head_response_sends_no_body)
{
    tk_connect(&t);
    srv_conn *c = hold("HEAD /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    app_write(&c->ar, "hello", 5);
    app_flush(&c->ar);
    release(c);
    cr_assert(strstr(t.in, "HTTP/1.1 200 OK\r\n") == t.in, "%s", t.in);
    cr_assert_str_eq(body_of(t.in), "");
}

Test(resp, large_writes_on_a_thread_stream_past_the_buffer)
{
    for (size_t i = 0; i < sizeof(big); i++) big[i] = (char)('A' + i % 26);
    tk_connect(&t);
    srv_conn *c = hold("GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    app_write(&c->ar, big, 1000); /* buffered */
    cr_assert_eq(c->head_sent, 0);
    /* past SRV_OUT_BUFFER: written at once, blocking (the socket pair's
     * buffer takes it all, so no reader is needed meanwhile) */
    app_write(&c->ar, big + 1000, 70 * 1024);
    cr_assert_eq(c->head_sent, 1, "a write past the buffer streams");
    release(c);
    cr_assert(strstr(t.in, "Transfer-Encoding: chunked\r\n"), "%.200s", t.in);
}

Test(resp, server_timing_when_asked)
{
    t.s.s.server_timing = 1;
    tk_connect(&t);
    srv_conn *c = hold("GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    c->t_thread_us = c->t_queued_us + 1500; /* as run_job sets it */
    app_write(&c->ar, "x", 1);
    release(c);
    cr_assert(strstr(t.in, "Server-Timing: queue;dur=1.500, app;dur="), "%s", t.in);
}
