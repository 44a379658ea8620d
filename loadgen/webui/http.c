/*
 * Design: one struct per connection on a doubly linked list owned by the
 * server; a 1 s sweep timer closes idle connections (one timer instead of one
 * per connection). Requests are processed as soon as they are complete and
 * their responses appended to the connection's output buffer, so pipelined
 * requests are answered in order. A connection is freed only from its own I/O
 * callback or from the sweep, never while another callback holds it.
 */
#define _GNU_SOURCE
#include "loadgen/webui/http.h"

#include "lib/pct.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX   (16 * 1024)
#define BODY_MAX   (64 * 1024)
#define NHEADERS   64
#define MAX_CONNS  128
#define IDLE_MS    60000
#define OUT_PAUSE  (4 * 1024 * 1024) /* stop reading while this much output waits */
#define READ_CHUNK 16384

typedef struct webui_conn {
    webui_http *srv;
    int fd;
    buf in;
    buf out;
    size_t out_off; /* bytes of out already sent */
    size_t last_len;
    uint64_t last_active_ms;
    int closing;   /* send what is queued, then close */
    int peer_eof;  /* the peer shut down its side: no more requests will come */
    int continued; /* "100 Continue" sent for the request being read */
    struct webui_conn *prev, *next;
} webui_conn;

struct webui_http {
    ev_loop *loop;
    int fd;
    int port;
    webui_handler handler;
    void *data;
    webui_conn *conns;
    int nconns;
    uint64_t sweep_timer;
};

static void conn_free(webui_conn *c)
{
    webui_http *s = c->srv;
    ev_io_del(s->loop, c->fd);
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

static void error_response(webui_conn *c, int status)
{
    const char *reason = http1_reason(status);
    buf_printf(&c->out,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n\r\n%d %s\n",
               status, reason, strlen(reason) + 5, status, reason);
    c->closing = 1;
}

static void append_response(webui_conn *c, const webui_req *req, webui_resp *r, int keep)
{
    const void *body = r->static_data ? r->static_data : r->body.data;
    size_t len = r->static_data ? r->static_len : r->body.len;
    buf_printf(&c->out,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
               "Connection: %s\r\n",
               r->status, http1_reason(r->status), r->type ? r->type : "text/plain; charset=utf-8",
               len, keep ? "keep-alive" : "close");
    if (r->disposition[0]) buf_printf(&c->out, "Content-Disposition: %s\r\n", r->disposition);
    if (r->csp) buf_printf(&c->out, "Content-Security-Policy: %s\r\n", r->csp);
    if (r->www_authenticate) buf_printf(&c->out, "WWW-Authenticate: %s\r\n", r->www_authenticate);
    buf_puts(&c->out, "\r\n");
    if (!webui_req_method_is(req, "HEAD") && len) buf_append(&c->out, body, len);
}

/* Handles the request at the start of c->in. Returns 1 when one was handled
 * (and consumed), 0 when more bytes are needed, -1 when the connection must
 * close after the queued output. */
static int handle_one(webui_conn *c)
{
    http1_request hr;
    http1_header h[NHEADERS];
    int n = http1_parse_request(c->in.data, c->in.len, c->last_len, &hr, h, NHEADERS);
    if (n == HTTP1_INCOMPLETE) {
        c->last_len = c->in.len;
        if (c->in.len > HEAD_MAX) return error_response(c, 431), -1;
        return 0;
    }
    c->last_len = 0;
    if (n == HTTP1_TOO_MANY_HEADERS) return error_response(c, 431), -1;
    if (n < 0) return error_response(c, 400), -1;
    if (n > HEAD_MAX) return error_response(c, 431), -1; /* complete, but too big */
    /* The server's rules (lib/http1): CL+TE, a bad or repeated length, TE
     * other than chunked, Host count, Expect. */
    http1_check k;
    http1_check_request(&hr, h, BODY_MAX, &k);
    if (k.status) return error_response(c, k.status), -1;
    if (k.chunked) return error_response(c, 501), -1; /* small JSON forms: no chunked bodies */
    int64_t clen = k.content_length > 0 ? k.content_length : 0;
    if (c->in.len < (size_t)n + (size_t)clen) {
        if (k.expect_continue && !c->continued) {
            buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            c->continued = 1;
        }
        return 0;
    }
    c->continued = 0;

    webui_req req = {.method = hr.method,
                     .method_len = hr.method_len,
                     .path = hr.target,
                     .path_len = hr.target_len,
                     .query = "",
                     .body = c->in.data + n,
                     .body_len = (size_t)clen,
                     .headers = h,
                     .nheaders = hr.num_headers};
    const char *q = memchr(hr.target, '?', hr.target_len);
    if (q) {
        req.path_len = (size_t)(q - hr.target);
        req.query = q + 1;
        req.query_len = hr.target_len - req.path_len - 1;
    }
    int keep = !k.close;
    webui_resp resp = {.status = 200, .body = BUF_INIT};
    c->srv->handler(&req, &resp, c->srv->data);
    append_response(c, &req, &resp, keep);
    buf_free(&resp.body);
    buf_consume(&c->in, (size_t)n + (size_t)clen);
    if (!keep) {
        c->closing = 1;
        return -1;
    }
    return 1;
}

static void update_watch(webui_conn *c)
{
    int pending = c->out.len > c->out_off;
    unsigned ev = 0;
    if (!c->closing && !c->peer_eof && c->out.len < OUT_PAUSE) ev |= EV_READ;
    if (pending) ev |= EV_WRITE;
    if (!ev) ev = EV_READ; /* keep noticing a hang-up */
    ev_io_mod(c->srv->loop, c->fd, ev);
}

/* Sends queued output. Returns 0, or -1 when the connection is finished. */
static int flush_out(webui_conn *c)
{
    while (c->out.len > c->out_off) {
        ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    buf_reset(&c->out);
    c->out_off = 0;
    return c->closing ? -1 : 0;
}

/* Reads what the socket has. Returns 0, or -1 when the connection is unusable. */
static int read_in(webui_conn *c)
{
    while (c->in.len <= HEAD_MAX + BODY_MAX) {
        if (buf_reserve(&c->in, READ_CHUNK)) return -1;
        ssize_t r = recv(c->fd, c->in.data + c->in.len, READ_CHUNK, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r <= 0) {
            c->peer_eof = 1; /* peer done sending: answer what came, then close */
            break;
        }
        c->in.len += (size_t)r;
        c->in.data[c->in.len] = '\0';
    }
    return 0;
}

static void conn_io(ev_loop *loop, int fd, unsigned events, void *data)
{
    webui_conn *c = data;
    (void)fd;
    c->last_active_ms = ev_now_ms(loop);
    if ((events & EV_READ) && !c->closing && !c->peer_eof && read_in(c)) return conn_free(c);
    /* Answer complete requests, sending as we go; when the output backs up, stop
     * and resume on the next writable event (requests stay buffered meanwhile). */
    for (;;) {
        int rc = 1; /* stays 1 when the output cap, not the input, stopped us */
        while (!c->closing && c->out.len < OUT_PAUSE && (rc = handle_one(c)) > 0) {
        }
        if (c->peer_eof && rc <= 0) c->closing = 1;
        if (flush_out(c) < 0) return conn_free(c);
        if (c->out.len || rc <= 0 || c->closing) break;
    }
    update_watch(c);
}

static void accept_cb(ev_loop *loop, int fd, unsigned events, void *data)
{
    webui_http *s = data;
    (void)events;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) return; /* EAGAIN, or a transient error: retried on the next event */
        if (s->nconns >= MAX_CONNS) {
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
            ssize_t w = send(cfd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
            (void)w;
            close(cfd);
            continue;
        }
        webui_conn *c = calloc(1, sizeof(*c));
        if (!c || ev_io_add(loop, cfd, EV_READ, conn_io, c)) {
            free(c);
            close(cfd);
            continue;
        }
        c->srv = s;
        c->fd = cfd;
        c->last_active_ms = ev_now_ms(loop);
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        s->nconns++;
    }
}

static void sweep_cb(ev_loop *loop, void *data)
{
    webui_http *s = data;
    uint64_t now = ev_now_ms(loop);
    for (webui_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (now - c->last_active_ms > IDLE_MS) conn_free(c);
    }
    s->sweep_timer = ev_timer_add(loop, 1000, sweep_cb, s);
}

static int listen_on(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    const char *node = host;
    if (!host || !host[0] || !strcmp(host, "*")) {
        node = NULL;
        hints.ai_family = AF_INET;
    }
    char serv[16];
    snprintf(serv, sizeof(serv), "%d", port);
    struct addrinfo *res;
    int rc = getaddrinfo(node, serv, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "web host '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot listen on %s:%d: %s", node ? node : "*", port,
                 strerror(saved));
    return fd;
}

webui_http *webui_http_create(ev_loop *loop, const char *host, int port, webui_handler handler,
                              void *data, char *err, size_t errlen)
{
    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "web port %d is out of range (0..65535)", port);
        return NULL;
    }
    webui_http *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->handler = handler;
    s->data = data;
    s->fd = listen_on(host, port, err, errlen);
    if (s->fd < 0) {
        free(s);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(s->fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    int rc = ev_io_add(loop, s->fd, EV_READ, accept_cb, s);
    s->sweep_timer = rc ? 0 : ev_timer_add(loop, 1000, sweep_cb, s);
    if (rc || !s->sweep_timer) {
        snprintf(err, errlen, "event loop: %s", strerror(rc ? -rc : ENOMEM));
        if (!rc) ev_io_del(loop, s->fd);
        close(s->fd);
        free(s);
        return NULL;
    }
    return s;
}

void webui_http_free(webui_http *s)
{
    if (!s) return;
    while (s->conns) conn_free(s->conns);
    ev_timer_cancel(s->loop, s->sweep_timer);
    ev_io_del(s->loop, s->fd);
    close(s->fd);
    free(s);
}

int webui_http_port(const webui_http *s)
{
    return s->port;
}

int webui_req_method_is(const webui_req *req, const char *m)
{
    return http1_method_is(req->method, req->method_len, m);
}

int webui_req_path_is(const webui_req *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && !memcmp(req->path, p, n);
}

/* Decodes s[0..len) into out; returns the length, or -EINVAL / -ENAMETOOLONG. */
static int form_decode(const char *s, size_t len, char *out, size_t outlen)
{
    long o = pct_decode(s, len, out, outlen ? outlen - 1 : 0, PCT_PLUS | PCT_NO_NUL);
    if (o == PCT_BAD) return -EINVAL;
    if (o < 0) return -ENAMETOOLONG;
    if (outlen) out[o] = '\0';
    return (int)o;
}

int webui_form_get(const char *s, size_t len, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - s) : len;
        const char *eq = memchr(s + i, '=', end - i);
        size_t kend = eq ? (size_t)(eq - s) : end;
        char k[64];
        int kl = form_decode(s + i, kend - i, k, sizeof(k));
        if (kl == (int)klen && !memcmp(k, key, klen)) {
            if (!eq) return form_decode("", 0, out, outlen);
            return form_decode(eq + 1, end - kend - 1, out, outlen);
        }
        i = end + 1;
    }
    return -ENOENT;
}
