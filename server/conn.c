/*
 * conn: one client connection on a worker's event loop: read, parse the head,
 * check it (the bad-input statuses live here), read the body, route, and hand
 * the request to its handler; then keep-alive or close.
 *
 * Hazard: pipelined requests are served in a loop in conn_process(), never by
 * recursion, so a client sending thousands of requests in one packet cannot
 * grow the stack. A connection struct is never freed while the worker runs
 * (closed ones go to a free list), so a callback that closes it may still
 * read its state field.
 */
#define _GNU_SOURCE
#include "server/core.h"

#include "lib/uwsgi.h"
#include "server/access.h"
#include "server/static.h"
#include "server/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_process(srv_conn *c);

srv_conn *conn_new(srv_worker *w, int fd)
{
    srv_conn *c = w->free_conns;
    if (c) {
        w->free_conns = c->next;
        w->nfree--;
    } else {
        c = calloc(1, sizeof(*c));
        if (!c) return NULL;
        c->rcap = (size_t)w->srv->s.buffer_size + 4096;
        c->rbuf = malloc(c->rcap);
        if (!c->rbuf) {
            free(c);
            return NULL;
        }
    }
    c->w = w;
    c->fd = fd;
    c->state = CS_HEAD;
    c->rlen = c->last_len = c->head_len = 0;
    c->gone = 0;
    c->linger = 0;
    c->in_req = 0;
    c->ssl = NULL; /* https: conn_accepted() */
    c->tls_hs = 0;
    c->https_dn[0] = 0;
    c->ip_counted = 0;
    resp_reset(c);
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    atomic_store_explicit(&w->slot->conns, w->nconns, memory_order_relaxed);
    /* TCP_NODELAY comes from the listen socket (worker.c sets it there once):
     * no setsockopt per connection. The loop watches it from conn_accepted. */
    c->watched = 0;
    c->events = 0;
    conn_set_deadline(c, ev_now_ms(w->loop) + (uint64_t)w->srv->s.socket_timeout * 1000);
    return c;
}

/* The request is over (answered or abandoned): accounting. */
static void end_request(srv_conn *c, int answered)
{
    if (!c->in_req) return;
    c->in_req = 0;
    srv_worker *w = c->w;
    w->in_flight--; /* the slot's copy: one writer, this loop (a store, not a locked add) */
    atomic_store_explicit(&w->slot->in_flight, w->in_flight, memory_order_relaxed);
    if (answered) {
        uint64_t now = ev_clock_us(); /* one clock read for both figures */
        uint64_t el = now > c->t_start_us ? now - c->t_start_us : 0;
        sb_count(w->slot, c->metric, c->status, el);
        if (c->t_thread_us)
            sb_count_timing(w->slot, c->t_thread_us - c->t_queued_us,
                            now > c->t_thread_us ? now - c->t_thread_us : 0);
        if (!w->srv->s.disable_logging) log_access(c);
        worker_request_done(w);
    }
}

void conn_close(srv_conn *c)
{
    srv_worker *w = c->w;
    if (c->state == CS_CLOSED) return;
    end_request(c, 0);
    worker_conn_used(c);
    conn_set_deadline(c, 0);
    /* ---- access/tls ---- */
    if (c->ssl) srv_tls_conn_free(c->ssl, !c->failed && !c->gone && !c->tls_hs);
    c->ssl = NULL;
    if (c->ip_counted) access_conn_closed(w->srv->access, c);
    /* ---- end access/tls ---- */
    /* the close ends the epoll registration too (ev_io_close: one system
     * call, not two, unless the worker forked) */
    if (c->watched)
        ev_io_close(w->loop, c->fd);
    else
        close(c->fd);
    c->watched = 0;
    c->fd = -1;
    c->state = CS_CLOSED;
    resp_release(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    w->nconns--;
    atomic_store_explicit(&w->slot->conns, w->nconns, memory_order_relaxed);
    /* Shrink buffers a large body grew; the struct itself goes to the free
     * list (see the file comment: never freed while the worker runs). */
    if (c->body.cap > (1u << 20)) buf_free(&c->body);
    c->next = w->free_conns;
    w->free_conns = c;
    w->nfree++;
    worker_update_accept(w);
}

static void set_watch(srv_conn *c, unsigned events)
{
    if (!c->watched) {
        if (ev_io_add(c->w->loop, c->fd, events, conn_on_io, c) == 0) c->watched = 1;
    } else if (c->events != events) {
        ev_io_mod(c->w->loop, c->fd, events);
    }
    c->events = events;
}

static void unwatch(srv_conn *c)
{
    if (c->watched) ev_io_del(c->w->loop, c->fd);
    c->watched = 0;
}

/* ---- deadlines: a timer wheel of SRV_TW_SLOTS slots of SRV_TW_MS, so
 * setting one is O(1) and the sweep visits only the slots whose time came,
 * not every connection (thousands of idle ones cost nothing per tick). A
 * deadline beyond one turn waits in its slot for later turns. ---- */

static void tw_unlink(srv_conn *c)
{
    if (!c->tw_slot) return;
    if (c->tw_prev)
        c->tw_prev->tw_next = c->tw_next;
    else
        c->w->tw[c->tw_slot - 1] = c->tw_next;
    if (c->tw_next) c->tw_next->tw_prev = c->tw_prev;
    c->tw_prev = c->tw_next = NULL;
    c->tw_slot = 0;
}

/* Into the slot of its deadline; one already past goes to the current tick's. */
static void tw_link(srv_conn *c)
{
    srv_worker *w = c->w;
    uint64_t tick = c->deadline_ms / SRV_TW_MS;
    if (tick < w->tw_tick) tick = w->tw_tick;
    int i = (int)(tick % SRV_TW_SLOTS);
    c->tw_prev = NULL;
    c->tw_next = w->tw[i];
    if (c->tw_next) c->tw_next->tw_prev = c;
    w->tw[i] = c;
    c->tw_slot = i + 1;
}

void conn_set_deadline(srv_conn *c, uint64_t ms)
{
    if (c->tw_slot && c->deadline_ms / SRV_TW_MS == ms / SRV_TW_MS &&
        ms / SRV_TW_MS >= c->w->tw_tick) {
        c->deadline_ms = ms; /* same slot (a renewal within SRV_TW_MS) */
        return;
    }
    tw_unlink(c);
    c->deadline_ms = ms;
    if (ms) tw_link(c);
}

static void start_request(srv_conn *c)
{
    if (c->in_req) return;
    worker_request_start(c);
    c->in_req = 1;
    /* When the loop woke to this request's bytes (no clock read of its own):
     * a request that waited behind others of the same batch counts it. */
    c->t_start_us = ev_now_us(c->w->loop);
    c->w->in_flight++;
    atomic_store_explicit(&c->w->slot->in_flight, c->w->in_flight, memory_order_relaxed);
    c->metric = 0;
    c->request_id[0] = 0; /* access.c */
    c->head_only = 0;
    c->req_close = 0;
    c->route = NULL;
    memset(&c->ar, 0, sizeof(c->ar));
    c->ar._conn = c;
    c->ar.thread_id = -1;
}

/* How long a closing connection may keep draining what its client sends. */
#define LINGER_MS 2000

/* After an error answer, or with a request body left unread, the client may
 * still be sending; closing a socket with unread input makes the kernel reset
 * the connection, and the client can lose the answer it has not read yet (a
 * 413 or 431 it should see). So shut the write side and drop what arrives
 * until the client closes or LINGER_MS pass, as nginx's lingering close does. */
static void linger_close(srv_conn *c)
{
    if (c->ssl && !c->failed && !c->gone) { /* close_notify first; then drop raw bytes */
        srv_tls_conn_free(c->ssl, !c->tls_hs);
        c->ssl = NULL;
    }
    if (c->failed || c->gone || shutdown(c->fd, SHUT_WR) < 0) {
        conn_close(c);
        return;
    }
    c->state = CS_LINGER;
    set_watch(c, EV_READ);
    conn_set_deadline(c, ev_now_ms(c->w->loop) + LINGER_MS);
}

static void linger_read(srv_conn *c)
{
    char drop[16384];
    for (int i = 0; i < 64; i++) { /* at most 1 MiB a wake-up: others get their turn */
        ssize_t n = recv(c->fd, drop, sizeof(drop), 0);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        conn_close(c);
        return;
    }
}

/* After the response is out: keep-alive or close. Does not parse the next
 * pipelined request; conn_process() does. */
static void after_response(srv_conn *c)
{
    srv_worker *w = c->w;
    end_request(c, 1);
    int unread = c->linger || (c->has_body && !c->body_eof);
    if (c->close_after || c->failed || c->gone || unread || w->srv->s.keepalive == 0) {
        /* While draining, the client may already have sent its next request:
         * a plain close with unread input resets the connection, which can
         * destroy the response it has not read yet. */
        if (!c->failed && !c->gone && (unread || w->draining))
            linger_close(c);
        else
            conn_close(c);
        return;
    }
    size_t rest = c->rlen - c->head_len;
    if (rest) memmove(c->rbuf, c->rbuf + c->head_len, rest);
    c->rlen = rest;
    /* TLS: the next request may already sit decrypted in OpenSSL, where
     * epoll cannot see it (a body read took only its own bytes). */
    if (c->ssl && c->rlen < c->rcap && srv_tls_pending(c->ssl)) {
        ssize_t n = conn_io_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) c->rlen += (size_t)n;
    }
    c->head_len = c->last_len = 0;
    resp_reset(c);
    c->state = CS_HEAD;
    set_watch(c, EV_READ);
    uint64_t now = ev_now_ms(w->loop);
    uint64_t until = now + (uint64_t)w->srv->s.keepalive * 1000;
    /* A keep-alive answer framed before the drain began (or followed by a
     * request already buffered): the next request gets its grace too. */
    if (w->draining && until > now + SRV_DRAIN_IDLE_MS) until = now + SRV_DRAIN_IDLE_MS;
    conn_set_deadline(c, until);
}

void conn_handler_done(srv_conn *c)
{
    c->state = CS_WRITE;
    if (c->head_sent && c->finished_sent) {
        after_response(c);
        return;
    }
    int rc = c->failed ? -EPIPE : resp_send_loop(c);
    if (rc < 0) {
        conn_close(c);
    } else if (rc == 1) {
        after_response(c);
    } else {
        set_watch(c, EV_WRITE);
        conn_set_deadline(c, ev_now_ms(c->w->loop) + (uint64_t)c->w->srv->s.socket_timeout * 1000);
    }
}

void conn_error(srv_conn *c, int status, const char *msg)
{
    conn_error_hdr(c, status, msg, NULL, NULL, 1);
}

void conn_error_hdr(srv_conn *c, int status, const char *msg, const char *hname, const char *hval,
                    int close)
{
    start_request(c);
    resp_begin_error(c, status, close);
    c->linger = close;
    static const char ct[] = "text/plain; charset=utf-8";
    app_add_header(&c->ar, "Content-Type", 12, ct, sizeof(ct) - 1);
    if (hname) app_add_header(&c->ar, hname, strlen(hname), hval, strlen(hval));
    app_write(&c->ar, msg, strlen(msg));
    app_write(&c->ar, "\n", 1);
    handler_done(c, APP_DONE);
    conn_handler_done(c);
}

/* ---- head checks ---- */

/* Percent-decodes the path into c->path_info and removes its dot-segments
 * (lib/http1): routes, static-map and PATH_INFO all see the normalized path;
 * REQUEST_URI stays as sent. -1 on a bad escape, %00, or a ".." above "/". */
static int decode_path(srv_conn *c, const char *p, size_t n)
{
    buf_reset(&c->path_info);
    if (buf_reserve(&c->path_info, n + 1)) return -1;
    size_t len;
    if (http1_decode_path(p, n, c->path_info.data, &len)) return -1;
    c->path_info.len = len;
    return 0;
}

/* Splits the target into path and query; accepts origin-form, absolute-form
 * and "*" (OPTIONS). -1 if it is none of them. */
static int split_target(srv_conn *c)
{
    app_request *r = &c->ar;
    const char *t = c->req.target, *end = t + c->req.target_len;
    if (*t != '/') {
        if (c->req.target_len == 1 && *t == '*') {
            r->path = t;
            r->path_len = 1;
            r->query = "";
            r->query_len = 0;
            return 0;
        }
        const char *s = NULL;
        if (c->req.target_len > 7 && http1_token_eq(t, 7, "http://"))
            s = t + 7;
        else if (c->req.target_len > 8 && http1_token_eq(t, 8, "https://"))
            s = t + 8;
        if (!s) return -1;
        while (s < end && *s != '/' && *s != '?') s++;
        t = s;
    }
    const char *q = t < end ? memchr(t, '?', (size_t)(end - t)) : NULL;
    r->path = t < end && *t == '/' ? t : "/";
    r->path_len = t < end && *t == '/' ? (size_t)((q ? q : end) - t) : 1;
    r->query = q ? q + 1 : "";
    r->query_len = q ? (size_t)(end - q - 1) : 0;
    return 0;
}

/* Content-Length / Transfer-Encoding / Expect / Host / Connection. Returns 0
 * or an HTTP status to answer with (and close). */
static int check_headers(srv_conn *c, int *expect_continue)
{
    http1_check k; /* the rules: lib/http1, shared with aiload's web UI */
    http1_check_request(&c->req, c->hdrs, c->w->srv->s.limit_post, &k);
    if (k.status && k.status != 413) return k.status;
    int64_t clen = k.content_length;
    *expect_continue = k.expect_continue;
    c->chunked = k.chunked;
    c->body_left = clen > 0 ? clen : 0;
    c->ar.content_length = k.chunked ? -1 : (clen >= 0 ? clen : 0);
    c->has_body = k.chunked || clen > 0;
    c->req_close = k.close;
    if (k.status) return k.status;
    const char *host = k.host;
    size_t host_len = k.host_len;
    /* SERVER_NAME: the Host without its port, else the bind address. */
    size_t hl = host_len;
    if (host && hl && host[0] != '[') {
        const char *colon = memchr(host, ':', hl);
        if (colon) hl = (size_t)(colon - host);
    }
    if (!host || hl == 0 || hl >= sizeof(c->server_name)) {
        snprintf(c->server_name, sizeof(c->server_name), "%s", "localhost");
    } else {
        memcpy(c->server_name, host, hl);
        c->server_name[hl] = 0;
    }
    return 0;
}

static void fill_view(srv_conn *c)
{
    app_request *r = &c->ar;
    r->method = c->req.method;
    r->method_len = c->req.method_len;
    r->uri = c->req.target;
    r->uri_len = c->req.target_len;
    r->minor_version = c->req.minor_version;
    r->protocol = c->req.minor_version ? "HTTP/1.1" : "HTTP/1.0";
    r->headers = c->hdrs;
    r->num_headers = c->req.num_headers;
    r->https = c->https;
    r->https_dn = c->https_dn[0] ? c->https_dn : NULL;
    r->remote_addr = c->remote;
    r->remote_port = c->remote_port;
    r->server_name = c->server_name;
    r->server_port = c->server_port;
    r->worker_id = c->w->id;
    r->thread_id = -1;
    r->loop = c->w->loop;
    r->chunked = 0;
    r->body = NULL;
    r->body_len = 0;
    r->body_complete = 1;
    r->_conn = c;
}

static void dispatch(srv_conn *c);

/* static-map (static.c): 1 when a mapping covers the path and c is answered. */
static int serve_static(srv_conn *c)
{
    const char *msg = NULL;
    int metric = 0;
    int st = static_try(c->w->srv, c->listen_idx, &c->ar, c->path_info.data, c->path_info.len,
                        &metric, &msg);
    if (!st) return 0;
    c->metric = metric;
    if (st != 200) {
        conn_error(c, st, msg);
        return 1;
    }
    c->req_close |= c->has_body; /* a GET body is not read */
    c->state = CS_HANDLER;
    handler_done(c, APP_DONE);
    conn_handler_done(c);
    return 1;
}

/* Head parsed (c->head_len): check it, route, then read the body or dispatch. */
static void begin_request(srv_conn *c)
{
    start_request(c);
    fill_view(c);
    c->head_only = http1_method_is(c->req.method, c->req.method_len, "HEAD");
    int expect = 0, st = split_target(c) ? 400 : check_headers(c, &expect);
    if (st == 0 && decode_path(c, c->ar.path, c->ar.path_len)) st = 400;
    if (st) {
        static const char *const msgs[] = {"bad request", "unsupported transfer-encoding",
                                           "request body too large", "expectation failed"};
        conn_error(c, st,
                   st == 400   ? msgs[0]
                   : st == 501 ? msgs[1]
                   : st == 413 ? msgs[2]
                               : msgs[3]);
        return;
    }
    c->ar.chunked = c->chunked;
    if (c->uwsgi) c->req_close = 1;
    if (c->w->srv->access) access_request_id(c);
    if (c->w->srv->s.nstatics && serve_static(c)) return;
    const srv_route *rt =
        srv_route_find(c->w->srv, c->listen_idx, c->path_info.data, c->path_info.len);
    if (!rt) {
        conn_error(c, 404, "not found");
        return;
    }
    c->route = rt;
    c->metric = rt->metric;
    if (conn_body_limit(c) && c->body_left > conn_body_limit(c)) {
        conn_error(c, 413, "request body too large");
        return;
    }
    size_t pl = rt->match == SRV_MATCH_PREFIX && rt->len > 1 ? rt->len : 0;
    c->ar.script_name = rt->prefix;
    c->ar.script_name_len = pl;
    c->ar.path_info = c->path_info.data + pl;
    c->ar.path_info_len = c->path_info.len - pl;
    c->ar.route_data = rt->data;
    c->body_eof = !c->has_body;
    buf_reset(&c->body);
    c->body_rpos = 0;
    c->body_total = 0;
    memset(&c->dec, 0, sizeof(c->dec));
    if (c->w->srv->access && access_request(c)) return; /* answered: 401, 404, 429 */
    if (!c->has_body) {
        dispatch(c);
        return;
    }
    c->state = CS_BODY;
    conn_set_deadline(c, ev_now_ms(c->w->loop) + (uint64_t)c->w->srv->s.socket_timeout * 1000);
    /* Ask for the body only if none of it came with the head. */
    c->continue_pending = expect && c->rlen == c->head_len;
}

/* Reads as much body as is there (loop). Dispatches once it is complete, or
 * post-buffering is reached for a thread route. */
static void body_step(srv_conn *c)
{
    const srv_settings *st = &c->w->srv->s;
    for (;;) {
        int enough = c->route->run_on == APP_RUN_THREAD &&
                     (int64_t)c->body.len >= (st->post_buffering ? st->post_buffering : 1);
        if (c->body_eof || enough) {
            dispatch(c);
            return;
        }
        int rc = conn_body_fill(c, 0);
        if (rc == -EAGAIN) return;
        if (rc == -EMSGSIZE) return conn_error(c, 413, "request body too large");
        if (rc == -EPROTO) return conn_error(c, 400, "bad chunked body");
        if (rc < 0) return conn_close(c);
        conn_set_deadline(c, ev_now_ms(c->w->loop) + (uint64_t)st->socket_timeout * 1000);
    }
}

static void dispatch(srv_conn *c)
{
    c->state = CS_HANDLER;
    /* The deadline is cleared only where the handler keeps c past this call
     * (a thread, PENDING, the inline app): one answered right here goes on to
     * after_response, which sets the keep-alive one; no sweep runs between.
     * That saves two timer-wheel moves per keep-alive request. */
    c->ar.body = c->body.data;
    c->ar.body_len = c->body.len;
    c->ar.body_complete = c->body_eof;
    c->body_rpos = 0;
    if (c->route->run_on == APP_RUN_THREAD && c->w->inline_app && c->uwsgi) {
        conn_set_deadline(c, 0);     /* the app may block the loop past it */
        if (!worker_run_inline(c)) { /* PENDING: as below */
            unwatch(c);
            return;
        }
        conn_handler_done(c);
        return;
    }
    if (c->route->run_on == APP_RUN_THREAD) {
        unwatch(c);
        conn_set_deadline(c, 0);
        if (worker_dispatch_thread(c->w, c)) conn_error(c, 503, "no app thread");
        return;
    }
    if (!worker_run_loop(c)) {
        unwatch(c); /* PENDING: the holder owns it until app_finish */
        conn_set_deadline(c, 0);
        return;
    }
    conn_handler_done(c);
}

/* A uwsgi packet head into c->req and c->hdrs, as http1_parse_request would
 * give it; the variables beyond the request line and headers go to c. */
static int parse_uwsgi(srv_conn *c)
{
    uwsgi_vars v;
    int r = uwsgi_parse_request(c->rbuf, c->rlen, &c->req, c->hdrs, SRV_MAX_HEADERS, &v);
    if (r == HTTP1_INCOMPLETE && c->rlen >= UWSGI_HEAD_SIZE &&
        (int64_t)(UWSGI_HEAD_SIZE + v.vars_size) > c->w->srv->s.buffer_size)
        return HTTP1_TOO_MANY_HEADERS; /* refused before the rest arrives: 431 */
    if (r < 0) return r;
    if (v.remote_addr_len && v.remote_addr_len < sizeof(c->remote)) {
        memcpy(c->remote, v.remote_addr, v.remote_addr_len);
        c->remote[v.remote_addr_len] = 0;
        c->remote_port = v.remote_port;
    }
    c->https = v.https;
    if (!c->req.target) {
        buf_reset(&c->utarget);
        if (buf_append(&c->utarget, v.path_info, v.path_info_len) ||
            (v.query_len &&
             (buf_append(&c->utarget, "?", 1) || buf_append(&c->utarget, v.query, v.query_len))))
            return HTTP1_BAD;
        c->req.target = c->utarget.data;
        c->req.target_len = c->utarget.len;
    }
    return r;
}

/* Parses and serves every complete request in rbuf. */
static void conn_process(srv_conn *c)
{
    const srv_settings *st = &c->w->srv->s;
    while (c->state == CS_HEAD && c->rlen > 0) {
        int r = c->uwsgi ? parse_uwsgi(c)
                         : http1_parse_request(c->rbuf, c->rlen, c->last_len, &c->req, c->hdrs,
                                               SRV_MAX_HEADERS);
        if (r == HTTP1_BAD && c->uwsgi && uwsgi_looks_like_http(c->rbuf, c->rlen))
            return conn_error(c, 400,
                              "HTTP sent to a uwsgi-protocol socket: use http-socket for HTTP "
                              "clients, or nginx's uwsgi_pass for this one");
        if (r == HTTP1_INCOMPLETE) {
            if ((int64_t)c->rlen >= st->buffer_size)
                return conn_error(c, 431, "request head too large");
            c->last_len = c->rlen;
            return;
        }
        if (r == HTTP1_BAD) return conn_error(c, 400, "bad request");
        if (r == HTTP1_TOO_MANY_HEADERS || r > st->buffer_size)
            return conn_error(c, 431, "request head too large");
        c->head_len = (size_t)r;
        begin_request(c);
        if (c->state == CS_BODY) body_step(c);
    }
}

static void conn_read(srv_conn *c)
{
    if (c->state == CS_BODY) {
        body_step(c);
        return;
    }
    if (c->rlen == c->rcap) return conn_error(c, 431, "request head too large");
    ssize_t n = conn_io_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (n == 0) return conn_close(c);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return conn_close(c);
    }
    int fresh_head = c->rlen == 0;
    c->rlen += (size_t)n;
    conn_process(c);
    /* A head that began in this read and is still incomplete must arrive
     * within socket-timeout. Set only then: a whole request in one read (the
     * common case) is answered, and its keep-alive deadline set, above. */
    if (fresh_head && c->state == CS_HEAD && c->rlen > 0 && !c->in_req)
        conn_set_deadline(c, ev_now_ms(c->w->loop) + (uint64_t)c->w->srv->s.socket_timeout * 1000);
}

/* ---- https: the handshake runs here, on the loop, non-blocking ---- */

static void tls_step(srv_conn *c)
{
    unsigned want = EV_READ;
    int rc = srv_tls_handshake(c->ssl, &want);
    if (rc == SRV_TLS_WANT) return set_watch(c, want);
    if (rc == SRV_TLS_PLAIN_HTTP) {
        /* As nginx does: a plain answer the client can read, then close. */
        static const char msg[] = "HTTP/1.1 400 Bad Request\r\nServer: aiserve\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 37\r\nConnection: close\r\n\r\n"
                                  "plain HTTP was sent to an https port\n";
        ssize_t n = send(c->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL);
        (void)n;
        srv_tls_conn_free(c->ssl, 0);
        c->ssl = NULL;
        c->tls_hs = 0;
        return linger_close(c);
    }
    if (rc != SRV_TLS_DONE) return conn_close(c);
    c->tls_hs = 0;
    c->https = 1;
    srv_tls_peer_dn(c->ssl, c->https_dn, sizeof(c->https_dn));
    set_watch(c, EV_READ);
    conn_read(c); /* read-ahead may hold the first request already */
}

/* inet_ntop's dotted quad without its sprintf, which was a fifth of the
 * uwsgi hello's C time (one connection per request). */
static void ipv4_text(char *out, const struct in_addr *a)
{
    const unsigned char *b = (const unsigned char *)&a->s_addr;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100) *out++ = (char)('0' + v / 100);
        if (v >= 10) *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : '\0';
    }
}

void conn_accepted(srv_conn *c, int li, const struct sockaddr_storage *ss)
{
    srv *s = c->w->srv;
    c->listen_idx = li;
    c->uwsgi = s->listen_proto[li] == SRV_PROTO_UWSGI;
    c->https = 0;
    c->server_port = s->listen_ports[li];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, c->remote, sizeof(c->remote));
        c->remote_port = ntohs(a->sin6_port);
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        ipv4_text(c->remote, &a->sin_addr);
        c->remote_port = ntohs(a->sin_port);
    } else {
        strcpy(c->remote, "unix");
        c->remote_port = 0;
    }
    if (s->access) access_conn_opened(s->access, c);
    if (s->listen_tls[c->listen_idx]) {
        c->ssl = srv_tls_conn_new(s->listen_tls[c->listen_idx], c->fd);
        if (!c->ssl) return conn_close(c);
        c->tls_hs = 1;
        c->https = 1;
    } else if (c->uwsgi) {
        /* A front end (nginx's uwsgi_pass) sends its packet as soon as it
         * connects, so it is most often here already: read it now, as uWSGI
         * does, and a connection answered at once is never registered with
         * epoll at all (no EPOLL_CTL_ADD, no wait for a wake-up). Else, or
         * for the rest of it, the loop watches as for any connection. */
        conn_read(c);
        if (c->state != CS_HEAD && c->state != CS_BODY) return; /* watched as its state needs */
    }
    if (c->watched) return;
    if (ev_io_add(c->w->loop, c->fd, EV_READ, conn_on_io, c)) return conn_close(c);
    c->watched = 1;
    c->events = EV_READ;
}

void conn_on_io(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    srv_conn *c = data;
    if (c->tls_hs) return tls_step(c);
    if (c->state == CS_WRITE) {
        if (!(events & (EV_WRITE | EV_ERROR))) return;
        int rc = resp_continue_write(c);
        if (rc < 0) return conn_close(c);
        if (rc == 0) return;
        after_response(c);
        if (c->state == CS_HEAD && c->rlen) conn_process(c);
        return;
    }
    if (c->state == CS_HEAD || c->state == CS_BODY) conn_read(c);
    if (c->state == CS_LINGER) linger_read(c);
}

/* Resumes a connection after a completion from another thread. */
void conn_resume(srv_conn *c)
{
    conn_handler_done(c);
    if (c->state == CS_HEAD && c->rlen) conn_process(c);
}

/* An idle keep-alive connection's time is up. Its next request may be in
 * the socket already, with the loop yet to read it (the sweep runs after the
 * batch of events): read first, and serve what came. With nothing there it
 * closes; a draining worker closes lingering, so a request still on its way
 * gets a clean end of stream (the client retries it elsewhere) instead of a
 * reset. Returns 1 if a request came and is being served. */
static int idle_expire(srv_conn *c)
{
    ssize_t n = conn_io_recv(c, c->rbuf, c->rcap);
    if (n > 0) {
        c->rlen = (size_t)n;
        conn_set_deadline(c, ev_now_ms(c->w->loop) + (uint64_t)c->w->srv->s.socket_timeout * 1000);
        conn_process(c);
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && c->w->draining)
        linger_close(c);
    else
        conn_close(c);
    return 0;
}

void conn_drain_idle(srv_worker *w)
{
    uint64_t until = ev_now_ms(w->loop) + SRV_DRAIN_IDLE_MS;
    for (srv_conn *c = w->conns; c; c = c->next)
        if (c->state == CS_HEAD && c->rlen == 0 && !c->in_req &&
            (!c->deadline_ms || c->deadline_ms > until))
            conn_set_deadline(c, until);
}

/* A deadline passed: what the connection's state calls for. */
static void expire(srv_conn *c)
{
    int idle = c->state == CS_HEAD && c->rlen == 0 && !c->in_req;
    if (c->tls_hs) /* stalled mid-handshake */
        conn_close(c);
    else if (idle)
        idle_expire(c);
    else if (c->state == CS_WRITE || c->state == CS_LINGER)
        conn_close(c);
    else if (c->state == CS_HEAD || c->state == CS_BODY)
        conn_error(c, 408, "request timeout");
}

/* Visits only the wheel's slots from the last sweep's tick to now's (the
 * last one again, as a deadline later in that tick waits there): the
 * connections in them whose deadline passed expire, the others (a later
 * turn of the wheel) stay. Idle connections in other slots cost nothing. */
void conn_sweep(srv_worker *w, uint64_t now)
{
    uint64_t to = now / SRV_TW_MS, from = w->tw_tick < to ? w->tw_tick : to;
    if (to - from >= SRV_TW_SLOTS) from = to - (SRV_TW_SLOTS - 1);
    w->tw_tick = to;
    srv_conn **pend = &w->tw[SRV_TW_SLOTS];
    for (uint64_t t = from; t <= to; t++) {
        /* The slot moves to the pending list first: what an expiry does
         * (a close, a new deadline, a request served) unlinks or relinks
         * any connection safely, this one or another. */
        srv_conn **slot = &w->tw[t % SRV_TW_SLOTS];
        *pend = *slot;
        *slot = NULL;
        for (srv_conn *c = *pend; c; c = c->tw_next) c->tw_slot = SRV_TW_SLOTS + 1;
        srv_conn *c;
        while ((c = *pend)) {
            tw_unlink(c);
            if (now < c->deadline_ms) {
                tw_link(c);
                continue;
            }
            expire(c);
            /* a state with no expiry (a handler holds it) keeps its deadline:
             * seen again next sweep, as before */
            if (c->state != CS_CLOSED && c->deadline_ms && !c->tw_slot) tw_link(c);
        }
    }
}

/* ---- body ---- */

int64_t conn_body_limit(const srv_conn *c)
{
    int64_t lp = c->w->srv->s.limit_post;
    if (lp) return lp;
    return c->route && c->route->run_on == APP_RUN_LOOP ? SRV_LOOP_BODY_MAX : 0;
}

static int blocking_wait(srv_conn *c, short ev)
{
    struct pollfd p = {.fd = c->fd, .events = ev};
    int rc;
    do rc = poll(&p, 1, c->w->srv->s.socket_timeout * 1000);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) return -ETIMEDOUT;
    return rc < 0 ? -errno : 0;
}

/* Moves body bytes from the unconsumed part of rbuf into c->body. */
static int take_buffered(srv_conn *c)
{
    size_t extra = c->rlen - c->head_len;
    char *p = c->rbuf + c->head_len;
    if (!extra) return 0;
    if (!c->chunked) {
        size_t take = (int64_t)extra < c->body_left ? extra : (size_t)c->body_left;
        if (buf_append(&c->body, p, take)) return -ENOMEM;
        memmove(p, p + take, extra - take);
        c->rlen -= take;
        c->body_left -= (int64_t)take;
        c->body_total += (int64_t)take;
        if (c->body_left == 0) c->body_eof = 1;
        return 0;
    }
    size_t len = extra;
    ssize_t rc = http1_decode_chunked(&c->dec, p, &len);
    if (rc == HTTP1_BAD) return -EPROTO;
    if (buf_append(&c->body, p, len)) return -ENOMEM;
    c->body_total += (int64_t)len;
    if (rc >= 0) {
        memmove(p, p + len, (size_t)rc);
        c->rlen = c->head_len + (size_t)rc;
        c->body_eof = 1;
    } else {
        c->rlen = c->head_len;
    }
    return 0;
}

int conn_body_fill(srv_conn *c, int blocking)
{
    if (c->body_eof) return 0;
    if (c->continue_pending) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        c->continue_pending = 0;
        ssize_t n = conn_io_send(c, cont, sizeof(cont) - 1);
        (void)n;
    }
    for (;;) {
        if (c->rlen > c->head_len) {
            int rc = take_buffered(c);
            if (rc) return rc;
            if (conn_body_limit(c) && c->body_total > conn_body_limit(c)) return -EMSGSIZE;
            return 0;
        }
        char *dst;
        size_t want;
        if (c->chunked) {
            dst = c->rbuf + c->head_len;
            want = c->rcap - c->head_len;
        } else {
            want = c->body_left < 65536 ? (size_t)c->body_left : 65536;
            if (buf_reserve(&c->body, want + 1)) return -ENOMEM;
            dst = c->body.data + c->body.len;
        }
        ssize_t n = conn_io_recv(c, dst, want);
        if (n == 0) return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -errno;
            if (!blocking) return -EAGAIN;
            int rc = blocking_wait(c, POLLIN);
            if (rc) return rc;
            continue;
        }
        if (c->chunked) {
            c->rlen = c->head_len + (size_t)n;
            continue;
        }
        c->body.len += (size_t)n;
        c->body.data[c->body.len] = 0;
        c->body_left -= n;
        c->body_total += n;
        if (c->body_left == 0) c->body_eof = 1;
        return 0;
    }
}

/* ---- app.h: request helpers ---- */

ssize_t app_read(app_request *r, void *dst, size_t len)
{
    srv_conn *c = r->_conn;
    while (c->body_rpos >= c->body.len) {
        if (c->body_eof) return 0;
        /* Everything buffered was returned: reuse the buffer for the next part. */
        buf_reset(&c->body);
        c->body_rpos = 0;
        int rc = conn_body_fill(c, srv_thread_conn == c);
        if (rc == -EAGAIN) return -EAGAIN;
        if (rc < 0) {
            if (rc != -EMSGSIZE && rc != -EPROTO) resp_fail(c);
            return rc;
        }
        if (conn_body_limit(c) && c->body_total > conn_body_limit(c)) return -EMSGSIZE;
    }
    size_t n = c->body.len - c->body_rpos;
    if (n > len) n = len;
    memcpy(dst, c->body.data + c->body_rpos, n);
    c->body_rpos += n;
    return (ssize_t)n;
}

int app_client_gone(app_request *r)
{
    srv_conn *c = r->_conn;
    if (c->gone || c->failed) return 1; /* failed: a write or read broke */
    char ch;
    ssize_t n = recv(c->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) c->gone = 1;
    return c->gone;
}
