/*
 * conn_testkit: a worker with no processes, for conn_test.c and resp_test.c.
 * A real event loop, a real scoreboard and a real socket pair: the server
 * end is a srv_conn on the loop, the test holds the client end and talks
 * HTTP bytes over it. Included by the tests only (static functions).
 */
#ifndef SERVER_CONN_TESTKIT_H
#define SERVER_CONN_TESTKIT_H

#include "server/core.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct tk {
    srv s;
    srv_worker w;
    int client; /* the test's end */
    srv_conn *c;
    char in[65536 * 4]; /* what the client received */
    size_t in_len;
    int eof; /* the server closed its end (or shut it for writing) */
} tk;

/* Settings a test may change before tk_connect. */
static void tk_init(tk *t)
{
    memset(t, 0, sizeof(*t));
    t->s.sb = sb_create(1, 1);
    cr_assert_not_null(t->s.sb);
    srv_settings *st = &t->s.s;
    st->buffer_size = 4096;
    st->socket_timeout = 5;
    st->keepalive = 5;
    st->disable_logging = 1;
    t->s.nlisten = 1;
    t->s.listen_fds[0] = -1;
    t->s.listen_ports[0] = 8080;
    srv_worker *w = &t->w;
    w->srv = &t->s;
    w->id = 1;
    w->slot = sb_slot_at(t->s.sb, 0);
    w->loop = ev_loop_new();
    cr_assert_not_null(w->loop);
    w->loop_tid = pthread_self();
    w->max_conns = 100;
    w->mem_fd = -1;
    w->listen_closed = 1; /* no listen sockets: the worker never accepts */
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_mutex_init(&w->done_mu, NULL);
    cr_assert_eq(worker_async_init(w), 0);
    resp_update_date(w);
}

static void tk_route(tk *t, const char *prefix, int match, app_handler_fn fn)
{
    cr_assert_eq(srv_route_add(&t->s, prefix, match, APP_RUN_LOOP, fn, NULL, 0), 0);
}

/* A connection as if accepted on listener 0 from a unix socket. */
static void tk_connect(tk *t)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    t->client = sv[1];
    t->c = conn_new(&t->w, sv[0]);
    cr_assert_not_null(t->c);
    struct sockaddr_storage ss = {.ss_family = AF_UNIX};
    conn_accepted(t->c, 0, &ss);
    t->in_len = 0;
    t->eof = 0;
}

static void tk_send(tk *t, const char *bytes, size_t n)
{
    while (n) {
        ssize_t k = send(t->client, bytes, n, MSG_NOSIGNAL);
        if (k < 0) {
            struct pollfd p = {t->client, POLLOUT, 0};
            cr_assert_geq(poll(&p, 1, 2000), 0);
            ev_loop_run_once(t->w.loop, 10); /* let the server drain it */
            continue;
        }
        bytes += k;
        n -= (size_t)k;
    }
}

static void tk_sends(tk *t, const char *s)
{
    tk_send(t, s, strlen(s));
}

/* Runs the loop and collects what the client receives until nothing more
 * comes for quiet_ms (after something came), the server closes, or 3 s pass. */
static void tk_pump(tk *t, int quiet_ms)
{
    uint64_t start = ev_clock_ms(), last = 0;
    for (;;) {
        ev_loop_run_once(t->w.loop, 5);
        for (;;) {
            ssize_t k = recv(t->client, t->in + t->in_len, sizeof(t->in) - 1 - t->in_len, 0);
            if (k > 0) {
                t->in_len += (size_t)k;
                last = ev_clock_ms();
                continue;
            }
            if (k == 0) t->eof = 1;
            break;
        }
        t->in[t->in_len] = 0;
        uint64_t now = ev_clock_ms();
        if (t->eof || now - start > 3000) return;
        if (last && now - last >= (uint64_t)quiet_ms) return;
        if (!last && now - start > 500) return; /* nothing at all */
    }
}

/* Sends a request and returns everything received for it. */
static const char *tk_ask(tk *t, const char *req)
{
    t->in_len = 0;
    tk_sends(t, req);
    tk_pump(t, 50);
    return t->in;
}

static int tk_count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void tk_free_conn(srv_conn *c)
{
    free(c->rbuf);
    buf_free(&c->body);
    buf_free(&c->out);
    buf_free(&c->wbuf);
    buf_free(&c->rhead);
    buf_free(&c->path_info);
    buf_free(&c->utarget);
    free(c);
}

static void tk_done(tk *t)
{
    while (t->w.conns) conn_close(t->w.conns);
    for (srv_conn *c = t->w.free_conns, *n; c; c = n) {
        n = c->next;
        tk_free_conn(c);
    }
    if (t->client > 0) close(t->client);
    for (int i = 0; i < t->s.nroutes; i++) free(t->s.routes[i].prefix);
    ev_loop_free(t->w.loop);
    free(t->w.jobs);
    sb_destroy(t->s.sb);
}

#endif
