/*
 * conn: aiload's HTTP/1.1 keep-alive client, one request at a time per
 * connection (no pipelining, like wrk). The hot path is: send the prebuilt
 * head (+ body) in one call, read into the connection's fixed buffer, parse
 * the head with lib/http1, count or decode the body in place, record.
 * Nothing is allocated per request: buffers belong to the connection and only
 * grow once, for dynamic requests or expect_body checks.
 *
 * Every request that lg_conn_begin() starts ends in exactly one record (success
 * or classified failure), so requests sent = requests recorded.
 *
 * https: after the TCP connect comes the TLS handshake (CS_HANDSHAKE), then
 * the same states as plain http; reads and writes go through loadgen/tls.h
 * when c->ssl is set, which is the only test the plain path pays. Connect and
 * handshake are one step: both count in the request's response time, under
 * the connect timeout. OpenSSL may hold received bytes that epoll cannot
 * report; then EV_WRITE is watched for one wake-up (tls_kick), since the
 * socket is writable at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen/worker_int.h"

static int64_t wall_s(void)
{
    return (int64_t)time(NULL);
}

static const lg_target *target_of(lg_worker *w, lg_conn *c)
{
    return &w->cur.targets[c->cls];
}

void lg_conn_close(lg_worker *w, lg_conn *c)
{
    if (c->fd >= 0) {
        ev_io_del(w->loop, c->fd);
        lg_tls_conn_free(c->ssl);
        c->ssl = NULL;
        c->tls_kick = 0;
        close(c->fd);
        c->fd = -1;
    }
    c->reused = 0;
}

void lg_conn_end_user(lg_worker *w, lg_conn *c)
{
    lg_conn_close(w, c);
    lg_tls_session_free(c->sess);
    c->sess = NULL;
}

/* ---- https: the TLS side of the I/O (c->ssl set) ---- */

static ssize_t tls_read(lg_worker *w, lg_conn *c, char *dst, size_t cap)
{
    unsigned want = 0;
    if (c->tls_kick) {
        c->tls_kick = 0;
        ev_io_mod(w->loop, c->fd, c->state == CS_WRITING ? EV_READ | EV_WRITE : EV_READ);
    }
    ssize_t n = lg_tls_read(c->ssl, dst, cap, &want, &c->tls_code);
    int err = errno;
    if ((n > 0 && lg_tls_pending(c->ssl)) || (n < 0 && err == EAGAIN && want == EV_WRITE)) {
        c->tls_kick = 1;
        ev_io_mod(w->loop, c->fd, EV_READ | EV_WRITE);
    }
    errno = err;
    return n;
}

/* EAGAIN leaves continue_write watching EV_READ | EV_WRITE. Hazard: a write
 * that waits to read (TLS 1.2 renegotiation only; aiload never asks for one)
 * then wakes on EV_WRITE until the server's bytes come: busy, but no hang. */
static ssize_t tls_writev(lg_conn *c)
{
    unsigned want = 0;
    c->tls_kick = 0; /* the write path sets the watched events itself */
    return lg_tls_writev(c->ssl, c->iov, c->iovcnt, &want, &c->tls_code);
}

/* A failed read or write: a TLS error (EPROTO from tls.h) or kind. */
static void fail_io(lg_worker *w, lg_conn *c, int kind, int err, uint64_t now)
{
    if (err == EPROTO && c->ssl)
        lg_conn_fail(w, c, LG_ERR_TLS, c->tls_code, now);
    else
        lg_conn_fail(w, c, kind, err, now);
}

static int needs_length(const char *method)
{
    return !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
}

/* head = request line, Host, the task's headers, Content-Length, blank line. */
static int put_head(buf *b, const sc_request *r, const lg_target *t, const char *path,
                    size_t pathlen)
{
    int rc = buf_printf(b, "%s %s", r->method, t->prefix);
    rc |= buf_append(b, path, pathlen);
    rc |= buf_printf(b, " HTTP/1.1\r\nHost: %s\r\n", t->authority);
    return rc;
}

static int put_tail(buf *b, const sc_request *r, size_t bodylen)
{
    int rc = 0;
    if (r->has_body || needs_length(r->method))
        rc = buf_printf(b, "Content-Length: %zu\r\n", bodylen);
    return rc | buf_puts(b, "\r\n");
}

static size_t static_body_len(const sc_request *r)
{
    if (!r->has_body) return 0;
    return r->body_file ? r->body_file_len : r->body.len;
}

int lg_conn_build_pre(const sc_request *r, const lg_target *t, lg_pre *out)
{
    out->head = NULL;
    out->len = 0;
    if (!r->path.is_static || (r->has_body && !r->body_file && !r->body.is_static)) return 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (!r->headers[i].is_static) return 0;
    buf b = BUF_INIT;
    int rc = put_head(&b, r, t, r->path.text, r->path.len);
    for (size_t i = 0; i < r->nheaders; i++) {
        rc |= buf_append(&b, r->headers[i].text, r->headers[i].len);
        rc |= buf_puts(&b, "\r\n");
    }
    rc |= put_tail(&b, r, static_body_len(r));
    if (rc) {
        buf_free(&b);
        return -ENOMEM;
    }
    out->head = b.data;
    out->len = b.len;
    return 0;
}

/* Renders a dynamic request into c->out / c->obody. */
static int render(lg_worker *w, lg_conn *c, const sc_request *r)
{
    buf_reset(&c->out);
    buf_reset(&c->obody);
    c->seq++;
    int rc = 0;
    if (r->has_body && !r->body_file)
        rc = sc_render(&r->body, &c->obody, &c->rng, c->user_id, c->seq);
    rc |= buf_printf(&c->out, "%s %s", r->method, target_of(w, c)->prefix);
    rc |= sc_render(&r->path, &c->out, &c->rng, c->user_id, c->seq);
    rc |= buf_printf(&c->out, " HTTP/1.1\r\nHost: %s\r\n", target_of(w, c)->authority);
    for (size_t i = 0; i < r->nheaders && !rc; i++) {
        rc |= sc_render(&r->headers[i], &c->out, &c->rng, c->user_id, c->seq);
        rc |= buf_puts(&c->out, "\r\n");
    }
    size_t blen = r->body_file ? r->body_file_len : c->obody.len;
    rc |= put_tail(&c->out, r, blen);
    return rc;
}

static void set_iov(lg_worker *w, lg_conn *c)
{
    const sc_request *r = c->req;
    if (c->pre && c->pre->head) {
        c->iov[0] = (struct iovec){.iov_base = c->pre->head, .iov_len = c->pre->len};
    } else {
        if (render(w, c, r)) {
            c->iovcnt = 0;
            return;
        }
        c->iov[0] = (struct iovec){.iov_base = c->out.data, .iov_len = c->out.len};
    }
    c->iovcnt = 1;
    if (r->has_body) {
        if (r->body_file)
            c->iov[1] = (struct iovec){r->body_file, r->body_file_len};
        else if (r->body.is_static)
            c->iov[1] = (struct iovec){r->body.text, r->body.len};
        else
            c->iov[1] = (struct iovec){c->obody.data, c->obody.len};
        if (c->iov[1].iov_len) c->iovcnt = 2;
    }
}

static void on_io(ev_loop *loop, int fd, unsigned events, void *data);

static void start_write(lg_worker *w, lg_conn *c, uint64_t now);
static void on_read(lg_worker *w, lg_conn *c, uint64_t now);

static void tls_handshake(lg_worker *w, lg_conn *c, uint64_t now)
{
    unsigned want = 0;
    int code = 0;
    int rc = lg_tls_handshake(c->ssl, &want, &code);
    if (rc > 0)
        start_write(w, c, now);
    else if (rc == 0)
        ev_io_mod(w->loop, c->fd, want);
    else
        lg_conn_fail(w, c, LG_ERR_TLS, code, now);
}

/* The TCP connect is done: start the handshake. The connect deadline still
 * runs (see the top of this file). */
static void tls_start(lg_worker *w, lg_conn *c, uint64_t now)
{
    const lg_target *t = target_of(w, c);
    c->ssl = lg_tls_conn_new(t->tls, c->fd, t->tls_host, &c->sess);
    if (!c->ssl) {
        lg_conn_fail(w, c, LG_ERR_CONNECT, ENOMEM, now);
        return;
    }
    c->state = CS_HANDSHAKE;
    tls_handshake(w, c, now);
}

static int connect_errkind(int err)
{
    if (err == ECONNREFUSED) return LG_ERR_REFUSED;
    if (err == ETIMEDOUT) return LG_ERR_TIMEOUT;
    if (err == ECONNRESET) return LG_ERR_RESET;
    return LG_ERR_CONNECT;
}

static void start_connect(lg_worker *w, lg_conn *c, uint64_t now)
{
    const lg_target *t = target_of(w, c);
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lg_conn_fail(w, c, LG_ERR_CONNECT, errno, now);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->reused = 0;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        c->fd = -1;
        lg_conn_fail(w, c, connect_errkind(err), err, now);
        return;
    }
    if (ev_io_add(w->loop, fd, EV_WRITE, on_io, c) < 0) {
        close(fd);
        c->fd = -1;
        lg_conn_fail(w, c, LG_ERR_CONNECT, EMFILE, now);
        return;
    }
    c->state = CS_CONNECTING;
    c->deadline = now + w->cfg.connect_timeout_ns;
}

void lg_conn_begin(lg_worker *w, lg_conn *c, const sc_request *r, const lg_pre *pre,
                   uint64_t intended, uint64_t now)
{
    c->req = r;
    c->pre = pre;
    c->t_intended = intended;
    c->t_start = now;
    c->retried = 0;
    w->inflight++;
    set_iov(w, c);
    if (!c->iovcnt) {
        lg_conn_fail(w, c, LG_ERR_OTHER, 0, now);
        return;
    }
    if (c->fd < 0)
        start_connect(w, c, now);
    else
        start_write(w, c, now);
}

static void reset_response(lg_conn *c)
{
    c->rlen = 0;
    c->last_len = 0;
    c->head_done = 0;
    c->status = 0;
    c->chunked = 0;
    c->close_after = 0;
    c->remaining = -1;
    c->body_bytes = 0;
    c->st_have = 0;
    memset(&c->ch, 0, sizeof(c->ch));
    buf_reset(&c->body);
}

/* A reused keep-alive socket the server had already closed: resend once on a
 * fresh connection (the server never saw the request). */
static int maybe_retry(lg_worker *w, lg_conn *c, uint64_t now)
{
    if (!c->reused || c->retried || c->head_done || c->rlen) return 0;
    lg_conn_close(w, c);
    c->retried = 1;
    set_iov(w, c);
    start_connect(w, c, now);
    return 1;
}

/* send/sendmsg rather than writev (and recv rather than read): the socket
 * calls go straight to the protocol, skipping the VFS layer (file position,
 * iov_iter set-up) that write/read pass through; about 2 % of aiload's CPU
 * per request on loopback, where the kernel's TCP path is nearly all of it. */
static ssize_t plain_writev(lg_conn *c)
{
    if (c->iovcnt == 1) return send(c->fd, c->iov[0].iov_base, c->iov[0].iov_len, MSG_NOSIGNAL);
    struct msghdr m = {.msg_iov = c->iov, .msg_iovlen = (size_t)c->iovcnt};
    return sendmsg(c->fd, &m, MSG_NOSIGNAL);
}

static void continue_write(lg_worker *w, lg_conn *c, uint64_t now)
{
    for (;;) {
        ssize_t n = c->ssl ? tls_writev(c) : plain_writev(c);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                ev_io_mod(w->loop, c->fd, EV_READ | EV_WRITE);
                return;
            }
            int err = errno;
            if (maybe_retry(w, c, now)) return;
            fail_io(w, c, err == EPIPE || err == ECONNRESET ? LG_ERR_RESET : LG_ERR_CONNECT, err,
                    now);
            return;
        }
        size_t left = (size_t)n;
        int i = 0;
        while (i < c->iovcnt && left >= c->iov[i].iov_len) left -= c->iov[i++].iov_len;
        if (i == c->iovcnt) break;
        /* partial write: drop what went out and wait for room */
        memmove(&c->iov[0], &c->iov[i], (size_t)(c->iovcnt - i) * sizeof(struct iovec));
        c->iovcnt -= i;
        c->iov[0].iov_base = (char *)c->iov[0].iov_base + left;
        c->iov[0].iov_len -= left;
    }
    c->state = CS_READING;
    ev_io_mod(w->loop, c->fd, EV_READ);
}

static void start_write(lg_worker *w, lg_conn *c, uint64_t now)
{
    reset_response(c);
    c->state = CS_WRITING;
    c->deadline = now + w->cfg.timeout_ns;
    continue_write(w, c, now);
}

static int status_ok(const sc_request *r, int status)
{
    if (!r->nexpect) return status < 400;
    for (size_t i = 0; i < r->nexpect; i++)
        if (r->expect[i] == status) return 1;
    return 0;
}

/* Records the finished request and hands the user back to worker.c. */
static void finish(lg_worker *w, lg_conn *c, int kind, int code, uint64_t now)
{
    const sc_request *r = c->req;
    int failed = kind >= 0;
    int64_t lat = (int64_t)(now - c->t_intended) / 1000;
    int64_t svc = (int64_t)(now - c->t_start) / 1000;
    lg_stats_record(w->st, r->entry, lat, svc, c->body_bytes, failed);
    if (c->st_have && !failed) lg_stats_timing(w->st, svc, c->st_queue_us, c->st_app_us);
    if (failed) lg_stats_error(w->st, r->entry, kind, code, wall_s());
    c->req = NULL;
    c->state = CS_IDLE;
    w->inflight--;
    lg_worker_request_done(w, c, failed, now);
}

void lg_conn_fail(lg_worker *w, lg_conn *c, int kind, int code, uint64_t now)
{
    lg_conn_close(w, c);
    finish(w, c, kind, code, now);
}

static void complete(lg_worker *w, lg_conn *c, uint64_t now)
{
    const sc_request *r = c->req;
    int kind = -1, code = 0;
    if (!status_ok(r, c->status)) {
        kind = r->nexpect ? LG_ERR_CHECK : LG_ERR_STATUS;
        code = c->status;
    } else if (r->contains &&
               (!c->body.len || !memmem(c->body.data, c->body.len, r->contains, r->contains_len))) {
        kind = LG_ERR_CHECK;
        code = 1;
    }
    /* A response that arrived before the request was fully written leaves
     * half a request on the wire: that connection cannot be reused. */
    if (c->close_after || c->state == CS_WRITING)
        lg_conn_close(w, c);
    else
        c->reused = 1;
    finish(w, c, kind, code, now);
}

static void keep_body(lg_conn *c, const char *p, size_t n)
{
    c->body_bytes += n;
    if (c->req->contains && c->body.len < LG_BODY_KEEP + c->req->contains_len)
        buf_append(&c->body, p, n);
}

/* Consumes body bytes; 1 when the body is complete, 0 for more, -1 on bad framing. */
static int feed_body(lg_conn *c, char *p, size_t n)
{
    if (c->chunked) {
        size_t len = n;
        ssize_t rc = http1_decode_chunked(&c->ch, p, &len);
        if (rc == HTTP1_BAD) return -1;
        keep_body(c, p, len);
        return rc >= 0;
    }
    if (c->remaining < 0) {
        keep_body(c, p, n);
        return 0;
    }
    size_t take = (uint64_t)c->remaining < n ? (size_t)c->remaining : n;
    keep_body(c, p, take);
    c->remaining -= (int64_t)take;
    return c->remaining == 0;
}

/* Case-insensitive match of a header name against a lower-case name made of
 * letters and '-': OR-ing 0x20 folds A-Z onto a-z, and no other tchar (the
 * parser admits nothing else in a name) folds onto a letter or onto '-'.
 * Several times cheaper than http1_token_eq on the per-response path. */
static int name_is(const char *s, const char *lower, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] | 0x20) != (unsigned char)lower[i]) return 0;
    return 1;
}

static int parse_head(lg_conn *c, const char *p, size_t len, int *kind)
{
    http1_response res;
    http1_header hdr[64];
    int n = http1_parse_response(p, len, c->last_len, &res, hdr, 64);
    if (n == HTTP1_INCOMPLETE) {
        c->last_len = len;
        if (len >= LG_HEAD_MAX) {
            *kind = 2;
            return -1;
        }
        return 0;
    }
    if (n > LG_HEAD_MAX) {
        *kind = 2;
        return -1;
    }
    if (n < 0) {
        *kind = 0;
        return -1;
    }
    c->status = res.status;
    c->head_done = 1;
    /* One pass over the headers, the name's length tested first (most
     * names then cost no compare), rather than four http1_find_header scans;
     * like it, the first of each name counts. */
    static const struct {
        const char *name;
        size_t len;
    } want[] = {{"connection", 10},
                {"server-timing", 13},
                {"transfer-encoding", 17},
                {"content-length", 14}};
    const http1_header *got[4] = {NULL, NULL, NULL, NULL}, *h;
    for (size_t i = 0; i < res.num_headers; i++) {
        h = &hdr[i];
        for (size_t k = 0; k < 4; k++)
            if (h->name_len == want[k].len && !got[k] &&
                name_is(h->name, want[k].name, want[k].len)) {
                got[k] = h;
                break;
            }
    }
    const http1_header *conn = got[0], *st = got[1], *te = got[2], *cl = got[3];
    h = conn;
    c->close_after =
        h ? http1_value_has_token(h->value, h->value_len, "close") : res.minor_version == 0;
    if (h && res.minor_version == 0 && http1_value_has_token(h->value, h->value_len, "keep-alive"))
        c->close_after = 0;
    if ((h = st)) {
        c->st_queue_us = c->st_app_us = 0;
        c->st_have = lg_st_parse(h->value, h->value_len, &c->st_queue_us, &c->st_app_us);
    }
    h = te;
    if (h && http1_value_has_token(h->value, h->value_len, "chunked")) {
        c->chunked = 1;
    } else if ((h = cl)) {
        c->remaining = http1_parse_length(h->value, h->value_len);
        if (c->remaining < 0) {
            *kind = 0;
            return -1;
        }
    } else {
        c->remaining = -1;
        c->close_after = 1;
    }
    if (!strcmp(c->req->method, "HEAD") || res.status == 204 || res.status == 304) {
        c->chunked = 0;
        c->remaining = 0;
    }
    return n;
}

/* Keeps an incomplete head (p, n) for the next read: it moves from the
 * worker's scratch into the connection's own buffer, allocated the first time
 * a head spans two reads (rare: most connections never need one). */
static int keep_partial_head(lg_conn *c, const char *p, size_t n)
{
    if (!c->rbuf && !(c->rbuf = malloc(LG_HEAD_MAX))) return -1;
    memmove(c->rbuf, p, n);
    c->rlen = n;
    return 0;
}

/* Parses n received bytes at p (the worker's scratch, or c->rbuf when a head
 * was pending). Returns 1 when the response completed. */
static int process(lg_worker *w, lg_conn *c, char *p, size_t n, uint64_t now)
{
    while (!c->head_done) {
        int kind = 0;
        int h = parse_head(c, p, n, &kind);
        if (h < 0) {
            lg_conn_fail(w, c, LG_ERR_PROTOCOL, kind, now);
            return 1;
        }
        if (h == 0) {
            if (keep_partial_head(c, p, n)) lg_conn_fail(w, c, LG_ERR_OTHER, 0, now);
            return 0;
        }
        p += h;
        n -= (size_t)h;
        if (c->status >= 100 && c->status < 200) { /* interim response: skip it */
            c->head_done = 0;
            c->last_len = 0;
            c->remaining = -1;
            c->chunked = 0;
        }
    }
    c->rlen = 0;
    int done = c->remaining == 0 && !c->chunked ? 1 : n ? feed_body(c, p, n) : 0;
    if (done < 0) {
        lg_conn_fail(w, c, LG_ERR_PROTOCOL, 1, now);
        return 1;
    }
    if (done) complete(w, c, now);
    return done;
}

static void on_read(lg_worker *w, lg_conn *c, uint64_t now)
{
    /* Reads land in the worker's scratch buffer: body bytes are counted (or
     * decoded in place) and dropped, so a connection needs no buffer of its
     * own unless a head arrives in pieces. */
    int pending = c->rlen > 0;
    char *dst = pending ? c->rbuf + c->rlen : w->scratch;
    size_t cap = pending ? LG_HEAD_MAX - c->rlen : LG_SCRATCH;
    ssize_t n = c->ssl ? tls_read(w, c, dst, cap) : recv(c->fd, dst, cap, 0);
    if (n > 0) {
        if (pending) {
            c->rlen += (size_t)n;
            process(w, c, c->rbuf, c->rlen, now);
        } else {
            process(w, c, w->scratch, (size_t)n, now);
        }
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    int err = n < 0 ? errno : 0;
    if (n == 0 && c->head_done && !c->chunked && c->remaining < 0) {
        c->close_after = 1;
        complete(w, c, now);
        return;
    }
    if (maybe_retry(w, c, now)) return;
    fail_io(w, c, err == ECONNRESET ? LG_ERR_RESET : LG_ERR_CLOSED, err, now);
}

static void on_io(ev_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    lg_conn *c = data;
    lg_worker *w = c->w;
    uint64_t now = ev_clock_ns();
    switch (c->state) {
    case CS_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err == EINPROGRESS) return;
        if (err) {
            lg_conn_fail(w, c, connect_errkind(err), err, now);
            return;
        }
        if (target_of(w, c)->tls)
            tls_start(w, c, now);
        else
            start_write(w, c, now);
        return;
    }
    case CS_HANDSHAKE: tls_handshake(w, c, now); return;
    case CS_WRITING:
        if (events & EV_WRITE)
            continue_write(w, c, now);
        else if (events & (EV_READ | EV_ERROR))
            on_read(w, c, now);
        return;
    case CS_READING: on_read(w, c, now); return;
    default: {
        /* idle keep-alive socket: the server closed it, or sent junk */
        char tmp[256];
        ssize_t n = c->ssl ? tls_read(w, c, tmp, sizeof(tmp)) : read(c->fd, tmp, sizeof(tmp));
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        lg_conn_close(w, c);
        return;
    }
    }
}

/* Times out requests past their deadline (called every 100 ms). */
void lg_conn_sweep(lg_worker *w, uint64_t now)
{
    for (size_t i = 0; i < w->nconns; i++) {
        lg_conn *c = w->conns[i];
        if (!c || c->state < CS_CONNECTING || now < c->deadline) continue;
        int code = c->state == CS_CONNECTING ? 0 : c->state == CS_HANDSHAKE ? 2 : 1;
        lg_conn_fail(w, c, LG_ERR_TIMEOUT, code, now);
    }
}
