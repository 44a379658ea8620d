/* conn.c: parsing states, the bad-input statuses and limits, pipelining and
 * keep-alive, over a real socket pair into a real event loop (conn_testkit.h). */
#include "server/conn_testkit.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

static int calls;

/* Answers with the request's path and body: "<method> <path_info> [<body>]". */
static int echo(app_request *r, void *d)
{
    (void)d;
    calls++;
    char line[256];
    int n = snprintf(line, sizeof(line), "%.*s %.*s [%.*s]\n", (int)r->method_len, r->method,
                     (int)r->path_info_len, r->path_info, (int)r->body_len, r->body ? r->body : "");
    app_add_header(r, "Content-Type", 12, "text/plain", 10);
    app_write(r, line, (size_t)n);
    return APP_DONE;
}

static int fail(app_request *r, void *d)
{
    (void)r;
    (void)d;
    return -EIO;
}

static tk t;

static void setup(void)
{
    calls = 0;
    tk_init(&t);
    tk_route(&t, "/", SRV_MATCH_PREFIX, echo);
    tk_route(&t, "/fail", SRV_MATCH_EXACT, fail);
}

static void teardown(void)
{
    tk_done(&t);
}

TestSuite(conn, .init = setup, .fini = teardown);

Test(conn, answers_and_keeps_the_connection)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 200 OK\r\n") == r, "%s", r);
    cr_assert(strstr(r, "Content-Length: 12\r\n"), "%s", r);
    cr_assert(strstr(r, "\r\n\r\nGET /a/b []\n"), "%s", r);
    cr_assert_null(strstr(r, "Connection:"), "HTTP/1.1 keep-alive is implied: %s", r);
    cr_assert_not(t.eof);
    cr_assert_eq(t.c->state, CS_HEAD, "back to reading the next head");
    r = tk_ask(&t, "GET /second HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "GET /second []"), "%s", r);
    cr_assert_eq(calls, 2);
}

Test(conn, a_head_in_pieces_is_parsed_once_complete)
{
    tk_connect(&t);
    const char *parts[] = {"GE", "T /piece", "s HTTP/1.1\r\nHo", "st: h\r\n", "\r", "\n"};
    for (size_t i = 0; i < 5; i++) {
        tk_sends(&t, parts[i]);
        tk_pump(&t, 20);
        cr_assert_eq(t.in_len, 0, "nothing before the head is complete (part %zu)", i);
        cr_assert_eq(t.c->state, CS_HEAD);
    }
    const char *r = tk_ask(&t, parts[5]);
    cr_assert(strstr(r, "GET /pieces []"), "%s", r);
}

Test(conn, a_body_in_pieces_reaches_a_loop_handler_whole)
{
    tk_connect(&t);
    tk_sends(&t, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234");
    tk_pump(&t, 20);
    cr_assert_eq(t.in_len, 0);
    cr_assert_eq(t.c->state, CS_BODY, "waiting for the rest of the body");
    const char *r = tk_ask(&t, "56789");
    cr_assert(strstr(r, "POST /echo [0123456789]"), "%s", r);
}

Test(conn, a_chunked_body_is_dechunked)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
    cr_assert(strstr(r, "POST /c [abcdefg]"), "%s", r);
    cr_assert_not(t.eof);
}

Test(conn, pipelined_requests_are_answered_in_order)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                               "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"
                               "GET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(tk_count(r, "HTTP/1.1 200 OK"), 3, "%s", r);
    const char *a = strstr(r, "GET /1 []"), *b = strstr(r, "POST /2 [xyz]"),
               *c = strstr(r, "GET /3 []");
    cr_assert(a && b && c && a < b && b < c, "%s", r);
    cr_assert_not(t.eof);
}

Test(conn, many_pipelined_requests_in_one_packet)
{
    tk_connect(&t);
    char req[40 * 32];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "GET /p%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
    tk_sends(&t, req);
    tk_pump(&t, 100);
    cr_assert_eq(tk_count(t.in, "HTTP/1.1 200 OK"), 40);
    cr_assert(strstr(t.in, "GET /p39 []"));
}

Test(conn, connection_close_ends_it_after_the_answer)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                               "GET /never HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "Connection: close\r\n"), "%s", r);
    cr_assert_eq(tk_count(r, "HTTP/1.1 200"), 1, "nothing after close is served: %s", r);
    cr_assert(t.eof);
    cr_assert_eq(calls, 1);
}

Test(conn, http10_closes_unless_keep_alive)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /old HTTP/1.0\r\n\r\n");
    cr_assert(strstr(r, "Connection: close\r\n"), "%s", r);
    cr_assert(t.eof);
    tk_connect(&t);
    r = tk_ask(&t, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert(strstr(r, "Connection: keep-alive\r\n"), "%s", r);
    cr_assert_not(t.eof);
}

Test(conn, keepalive_zero_closes_every_connection)
{
    t.s.s.keepalive = 0;
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "Connection: close\r\n"), "%s", r);
    cr_assert(t.eof);
}

Test(conn, head_too_large_is_431)
{
    tk_connect(&t);
    char big[6000];
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
    memset(big + n, 'a', sizeof(big) - (size_t)n - 1);
    big[sizeof(big) - 1] = 0;
    const char *r = tk_ask(&t, big); /* never ends its head, and passes buffer-size */
    cr_assert(strstr(r, "HTTP/1.1 431 Request Header Fields Too Large\r\n") == r, "%.200s", r);
    cr_assert(strstr(r, "request head too large"), "%s", r);
    cr_assert(strstr(r, "Connection: close\r\n"));
    cr_assert_eq(calls, 0);
}

Test(conn, too_many_headers_is_431)
{
    tk_connect(&t);
    char req[4000];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < SRV_MAX_HEADERS + 5; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X%d: 1\r\n", i);
    snprintf(req + n, sizeof(req) - n, "\r\n");
    const char *r = tk_ask(&t, req);
    cr_assert(strstr(r, "HTTP/1.1 431 "), "%.200s", r);
}

Test(conn, body_over_limit_post_is_413_before_reading_it)
{
    t.s.s.limit_post = 10;
    tk_connect(&t);
    const char *r = tk_ask(&t, "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 413 Content Too Large\r\n") == r ||
                  strstr(r, "HTTP/1.1 413 ") == r,
              "%s", r);
    cr_assert(strstr(r, "request body too large"), "%s", r);
    cr_assert_eq(calls, 0);
    tk_connect(&t);
    r = tk_ask(&t, "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789");
    cr_assert(strstr(r, "HTTP/1.1 200 "), "at the limit it passes: %s", r);
}

Test(conn, chunked_body_over_limit_post_is_413)
{
    t.s.s.limit_post = 10;
    tk_connect(&t);
    const char *r = tk_ask(&t, "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 413 "), "%s", r);
    cr_assert_eq(calls, 0);
}

Test(conn, loop_routes_hold_at_most_SRV_LOOP_BODY_MAX)
{
    tk_connect(&t);
    char req[128];
    snprintf(req, sizeof(req), "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: %lld\r\n\r\n",
             SRV_LOOP_BODY_MAX + 1);
    const char *r = tk_ask(&t, req);
    cr_assert(strstr(r, "HTTP/1.1 413 "), "%s", r);
}

Test(conn, bad_requests_get_400_and_a_close)
{
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n", /* HTTP/1.1 without Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /../etc HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET nothing HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tk_connect(&t);
        const char *r = tk_ask(&t, bad[i]);
        cr_assert(strstr(r, "HTTP/1.1 400 Bad Request\r\n") == r, "case %zu: %s", i, r);
        cr_assert(strstr(r, "Connection: close\r\n"), "case %zu", i);
        cr_assert(t.eof, "case %zu: the connection ends", i);
    }
    cr_assert_eq(calls, 0);
}

Test(conn, unsupported_transfer_coding_is_501_and_bad_expect_417)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 501 "), "%s", r);
    tk_connect(&t);
    r = tk_ask(&t, "POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\nContent-Length: 1\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 417 "), "%s", r);
}

Test(conn, expect_100_continue_is_answered_before_the_body)
{
    tk_connect(&t);
    const char *r = tk_ask(
        &t, "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 100 Continue\r\n\r\n") == r, "%s", r);
    r = tk_ask(&t, "ok");
    cr_assert(strstr(r, "POST /e [ok]"), "%s", r);
}

Test(conn, a_failing_handler_is_a_500_that_closes)
{
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /fail HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 500 Internal Server Error\r\n") == r, "%s", r);
    cr_assert(strstr(r, "internal server error"), "%s", r);
    cr_assert(strstr(r, "Connection: close\r\n"), "%s", r);
}

Test(conn, no_route_is_404_and_keeps_alive)
{
    tk_done(&t);
    tk_init(&t);
    tk_route(&t, "/only", SRV_MATCH_EXACT, echo);
    tk_connect(&t);
    const char *r = tk_ask(&t, "GET /other HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert(strstr(r, "HTTP/1.1 404 Not Found\r\n") == r, "%s", r);
    cr_assert(t.eof, "an error answer closes (lingering)");
}

Test(conn, idle_keepalive_times_out_and_slow_heads_get_408)
{
    tk_connect(&t);
    tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_not(t.eof);
    conn_sweep(&t.w, ev_now_ms(t.w.loop) + 6000); /* past keepalive = 5 s */
    tk_pump(&t, 20);
    cr_assert(t.eof, "an idle keep-alive connection closes when its time is up");
    tk_connect(&t);
    tk_sends(&t, "GET /slow HTTP/1.1\r\n");
    tk_pump(&t, 20);
    conn_sweep(&t.w, ev_now_ms(t.w.loop) + 6000); /* past socket-timeout */
    tk_pump(&t, 20);
    cr_assert(strstr(t.in, "HTTP/1.1 408 "), "%s", t.in);
}

/* The socket-timeout deadline is set only for a head left incomplete (a
 * whole request in one read goes straight to its keep-alive deadline): a
 * partial head on a kept-alive connection still gets socket-timeout, not the
 * longer keep-alive, and a 408 when it runs out. */
Test(conn, a_partial_head_after_a_keepalive_answer_gets_socket_timeout)
{
    t.s.s.keepalive = 60;
    t.s.s.socket_timeout = 2;
    tk_connect(&t);
    tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    uint64_t t0 = ev_now_ms(t.w.loop);
    cr_assert_geq(t.c->deadline_ms, t0 + 59000, "answered: the keep-alive deadline");
    t.in_len = 0;
    t.in[0] = 0;
    tk_sends(&t, "GET /slow HTTP/1.1\r\n");
    tk_pump(&t, 20);
    cr_assert_leq(t.c->deadline_ms, ev_now_ms(t.w.loop) + 2000, "a partial head: socket-timeout");
    conn_sweep(&t.w, ev_now_ms(t.w.loop) + 2100);
    tk_pump(&t, 20);
    cr_assert(strstr(t.in, "HTTP/1.1 408 "), "%s", t.in);
}

/* The timer wheel: a sweep every tick expires a connection exactly when its
 * deadline passes, not before; a deadline over a turn of the wheel away
 * (51.2 s) survives the turns before it. */
Test(conn, deadlines_expire_on_time_through_the_timer_wheel)
{
    tk_connect(&t);
    tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    uint64_t t0 = ev_now_ms(t.w.loop);
    uint64_t due = t.c->deadline_ms; /* keepalive = 5 s */
    cr_assert_geq(due, t0 + 4900);
    for (uint64_t now = t0; now < due; now += 37) {
        conn_sweep(&t.w, now);
        tk_pump(&t, 0);
        cr_assert_not(t.eof, "expired %llu ms early", (unsigned long long)(due - now));
    }
    conn_sweep(&t.w, due);
    tk_pump(&t, 20);
    cr_assert(t.eof, "closed once its deadline came");

    tk_done(&t);
    tk_init(&t);
    t.s.s.keepalive = 120;
    tk_route(&t, "/", SRV_MATCH_PREFIX, echo);
    tk_connect(&t);
    tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    t0 = ev_now_ms(t.w.loop);
    conn_sweep(&t.w, t0 + 52000); /* past one turn: every slot visited */
    conn_sweep(&t.w, t0 + 104000);
    tk_pump(&t, 0);
    cr_assert_not(t.eof, "two turns of the wheel are not 120 s");
    conn_sweep(&t.w, t0 + 121000);
    tk_pump(&t, 20);
    cr_assert(t.eof);
}

Test(conn, connections_are_counted_on_the_scoreboard)
{
    tk_connect(&t);
    cr_assert_eq(t.w.nconns, 1);
    cr_assert_eq(atomic_load(&t.w.slot->conns), 1);
    tk_ask(&t, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(atomic_load(&t.w.slot->requests), 1);
    cr_assert_eq(atomic_load(&t.w.slot->in_flight), 0);
    conn_close(t.c);
    cr_assert_eq(t.w.nconns, 0);
    cr_assert_eq(atomic_load(&t.w.slot->conns), 0);
}

/* ---- the completion queue (app_complete_async), as the model app uses it ---- */

static app_request *pending[3];
static int npending;
static int order[3], norder;

static int park(app_request *r, void *d)
{
    (void)d;
    pending[npending++] = r;
    return APP_PENDING;
}

/* On the loop, from the completion queue: answer, then app_finish. */
static void complete_on_loop(app_request *r, void *arg)
{
    int i = (int)(intptr_t)arg;
    cr_assert(pthread_equal(pthread_self(), t.w.loop_tid), "fn runs on the loop");
    order[norder++] = i;
    char body[16];
    int n = snprintf(body, sizeof(body), "done %d\n", i);
    app_write(r, body, (size_t)n);
    app_finish(r);
}

static void *completer(void *arg)
{
    (void)arg;
    for (int i = 0; i < npending; i++) /* oldest first, all before the loop wakes */
        app_complete_async(pending[i], complete_on_loop, (void *)(intptr_t)i);
    return NULL;
}

Test(conn, pending_requests_complete_through_the_queue_oldest_first)
{
    npending = norder = 0;
    tk_route(&t, "/park", SRV_MATCH_EXACT, park);
    tk_connect(&t); /* three connections on the one worker */
    int clients[3];
    srv_conn *conns[3];
    for (int i = 0; i < 3; i++) {
        if (i) tk_connect(&t);
        clients[i] = t.client;
        conns[i] = t.c;
        tk_sends(&t, "GET /park HTTP/1.1\r\nHost: h\r\n\r\n");
        tk_pump(&t, 20);
        cr_assert_eq(npending, i + 1);
        cr_assert_eq(t.c->state, CS_HANDLER, "held by the app");
    }
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, completer, NULL), 0);
    pthread_join(th, NULL);
    for (int i = 0; i < 3; i++) {
        t.client = clients[i];
        t.in_len = 0;
        tk_pump(&t, 30);
        char want[16];
        snprintf(want, sizeof(want), "done %d\n", i);
        cr_assert(strstr(t.in, "HTTP/1.1 200 OK\r\n") == t.in, "%d: %s", i, t.in);
        cr_assert(strstr(t.in, want), "%d: %s", i, t.in);
        cr_assert_eq(conns[i]->state, CS_HEAD, "back on the loop, keep-alive");
        if (i < 2) close(clients[i]);
    }
    cr_assert_eq(norder, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(order[i], i, "completions run oldest first");
}
