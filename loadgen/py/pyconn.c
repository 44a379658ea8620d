/*
 * pyconn: a blocking-style HTTP/1.1 client whose every "would block" becomes
 * a call of the caller's wait function (a greenlet switch in aiload). One
 * request at a time; the response is read into one growing buffer that the
 * connection keeps (no allocation per request once it has grown).
 */
#define _GNU_SOURCE
#include "loadgen/py/pyconn.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/ev.h"
#include "lib/http1.h"
#include "loadgen/stats.h"

#define PC_HEAD_MAX    65536
#define PC_MAX_HEADERS 128
#define PC_READ_CHUNK  4096

struct pyconn {
    pyconn_origin o;
    int fd;
    struct ssl_st *ssl;
    struct ssl_session_st *sess;
    int reused; /* the socket already carried a response */
    buf in;
};

/* Internal results: 0 ok, -EINTR gave up, 1 failed (kind/code set). */
typedef struct pc_err {
    int kind, code;
    int retry; /* a stale keep-alive: nothing of the response came */
} pc_err;

int64_t pyconn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

pyconn *pyconn_create(const pyconn_origin *o)
{
    pyconn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->o = *o;
    c->fd = -1;
    return c;
}

static void pc_close(pyconn *c)
{
    if (c->fd < 0) return;
    lg_tls_conn_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->fd = -1;
    c->reused = 0;
}

void pyconn_free(pyconn *c)
{
    if (!c) return;
    pc_close(c);
    lg_tls_session_free(c->sess);
    buf_free(&c->in);
    free(c);
}

int pyconn_fd(const pyconn *c)
{
    return c->fd;
}

static int fail(pc_err *e, int kind, int code)
{
    e->kind = kind;
    e->code = code;
    return 1;
}

static int io_fail(pc_err *e, int err)
{
    if (err == ECONNRESET || err == EPIPE) return fail(e, LG_ERR_RESET, 0);
    if (err == ECONNREFUSED) return fail(e, LG_ERR_REFUSED, 0);
    return fail(e, LG_ERR_CONNECT, err);
}

static int wait_for(pyconn_wait_fn wait, void *ctx, int fd, unsigned ev, int64_t deadline,
                    pc_err *e, int timeout_code)
{
    int rc = wait(ctx, fd, ev, deadline);
    if (rc == -ETIMEDOUT) return fail(e, LG_ERR_TIMEOUT, timeout_code);
    return rc == -EINTR ? -EINTR : 0;
}

static int pc_connect(pyconn *c, int64_t deadline, pyconn_wait_fn wait, void *ctx, pc_err *e)
{
    c->fd = socket(c->o.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return fail(e, LG_ERR_CONNECT, errno);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&c->o.addr, c->o.addrlen) < 0) {
        if (errno != EINPROGRESS) return io_fail(e, errno);
        int rc = wait_for(wait, ctx, c->fd, EV_WRITE, deadline, e, 0);
        if (rc) return rc;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) soerr = errno;
        if (soerr) return io_fail(e, soerr);
    }
    if (!c->o.tls) return 0;
    if (!(c->ssl = lg_tls_conn_new(c->o.tls, c->fd, c->o.tls_host, &c->sess)))
        return fail(e, LG_ERR_TLS, 4096);
    for (;;) {
        unsigned want = 0;
        int code = 0, rc = lg_tls_handshake(c->ssl, &want, &code);
        if (rc == 1) return 0;
        if (rc < 0) return fail(e, LG_ERR_TLS, code);
        if ((rc = wait_for(wait, ctx, c->fd, want, deadline, e, 2))) return rc;
    }
}

static int pc_send(pyconn *c, const char *req, size_t len, int64_t deadline, pyconn_wait_fn wait,
                   void *ctx, pc_err *e)
{
    size_t off = 0;
    while (off < len) {
        unsigned want = EV_WRITE;
        int code = 0;
        ssize_t n;
        if (c->ssl) {
            struct iovec iov = {.iov_base = (void *)(req + off), .iov_len = len - off};
            n = lg_tls_writev(c->ssl, &iov, 1, &want, &code);
        } else {
            n = send(c->fd, req + off, len - off, MSG_NOSIGNAL);
        }
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            int rc = wait_for(wait, ctx, c->fd, want, deadline, e, 1);
            if (rc) return rc;
            continue;
        }
        if (n < 0 && errno == EPROTO) return fail(e, LG_ERR_TLS, code);
        e->retry = 1;
        return io_fail(e, n < 0 ? errno : EPIPE);
    }
    return 0;
}

/* Reads more into c->in. > 0 bytes, 0 end of stream, or a pc result < 0 / 1. */
static ssize_t pc_read(pyconn *c, int64_t deadline, pyconn_wait_fn wait, void *ctx, pc_err *e)
{
    for (;;) {
        if (buf_reserve(&c->in, PC_READ_CHUNK)) return fail(e, LG_ERR_OTHER, ENOMEM);
        char *dst = c->in.data + c->in.len;
        size_t cap = c->in.cap - c->in.len;
        unsigned want = EV_READ;
        int code = 0;
        ssize_t n = c->ssl ? lg_tls_read(c->ssl, dst, cap, &want, &code) : recv(c->fd, dst, cap, 0);
        if (n >= 0) {
            c->in.len += (size_t)n;
            return n;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            int rc = wait_for(wait, ctx, c->fd, want, deadline, e, 1);
            if (rc) return rc < 0 ? rc : -1000; /* -1000: failure, e set */
            continue;
        }
        if (errno == EPROTO) {
            fail(e, LG_ERR_TLS, code);
            return -1000;
        }
        io_fail(e, errno);
        return -1000;
    }
}

/* Reads one response into c->in and fills out. */
static int pc_response(pyconn *c, int head_request, int64_t deadline, pyconn_wait_fn wait,
                       void *ctx, pyconn_resp *out, pc_err *e)
{
    http1_header hdrs[PC_MAX_HEADERS];
    http1_response res;
    size_t head_len = 0, last = 0;
    buf_reset(&c->in);
    for (;;) {
        ssize_t n = pc_read(c, deadline, wait, ctx, e);
        if (n == -EINTR) return -EINTR;
        if (n < 0) {
            e->retry = c->in.len == 0 && e->kind == LG_ERR_RESET;
            return 1;
        }
        if (n == 0) {
            e->retry = c->in.len == 0;
            return fail(e, LG_ERR_CLOSED, 0);
        }
        int rc = http1_parse_response(c->in.data, c->in.len, last, &res, hdrs, PC_MAX_HEADERS);
        last = c->in.len;
        if (rc > 0) {
            if (res.status >= 100 && res.status < 200 && res.status != 101) {
                buf_consume(&c->in, (size_t)rc); /* an interim answer: the real one follows */
                last = 0;
                if (!c->in.len) continue;
                rc = http1_parse_response(c->in.data, c->in.len, 0, &res, hdrs, PC_MAX_HEADERS);
                last = c->in.len;
                if (rc == HTTP1_INCOMPLETE) continue;
            }
        }
        if (rc > 0) {
            head_len = (size_t)rc;
            break;
        }
        if (rc != HTTP1_INCOMPLETE) return fail(e, LG_ERR_PROTOCOL, 0);
        if (c->in.len > PC_HEAD_MAX) return fail(e, LG_ERR_PROTOCOL, 2);
    }
    /* framing */
    int close_after = res.minor_version == 0;
    const http1_header *h = http1_find_header(hdrs, res.num_headers, "connection");
    if (h && http1_value_has_token(h->value, h->value_len, "close")) close_after = 1;
    if (h && http1_value_has_token(h->value, h->value_len, "keep-alive")) close_after = 0;
    int chunked = 0;
    int64_t remaining = -1; /* -1: until the connection closes */
    if (head_request || res.status == 204 || res.status == 304 || res.status < 200) {
        remaining = 0;
    } else if ((h = http1_find_header(hdrs, res.num_headers, "transfer-encoding")) &&
               http1_value_has_token(h->value, h->value_len, "chunked")) {
        chunked = 1;
    } else if ((h = http1_find_header(hdrs, res.num_headers, "content-length"))) {
        if ((remaining = http1_parse_length(h->value, h->value_len)) < 0)
            return fail(e, LG_ERR_PROTOCOL, 0);
    } else {
        close_after = 1;
    }
    /* offsets survive the buffer growing */
    size_t reason_off = res.reason_len ? (size_t)(res.reason - c->in.data) : 0;
    const char *eol = memchr(c->in.data, '\n', head_len);
    size_t hdr_off = eol ? (size_t)(eol - c->in.data) + 1 : head_len;
    size_t hdr_len = head_len >= hdr_off + 2 ? head_len - hdr_off - 2 : 0;
    uint64_t wire = c->in.len - head_len;
    http1_chunked ch = HTTP1_CHUNKED_INIT;
    size_t body_end = head_len; /* decoded payload ends here (chunked) */
    for (;;) {
        if (chunked) {
            size_t n = c->in.len - body_end;
            char *p = c->in.data + body_end;
            ssize_t rc = n ? http1_decode_chunked(&ch, p, &n) : HTTP1_INCOMPLETE;
            if (rc == HTTP1_BAD) return fail(e, LG_ERR_PROTOCOL, 1);
            body_end += n;
            c->in.len = body_end;
            if (rc >= 0) break;
        } else if (remaining >= 0 && c->in.len - head_len >= (uint64_t)remaining) {
            c->in.len = head_len + (size_t)remaining; /* nothing is pipelined */
            wire = (uint64_t)remaining;
            break;
        }
        size_t before = c->in.len;
        ssize_t n = pc_read(c, deadline, wait, ctx, e);
        if (n == -EINTR) return -EINTR;
        if (n < 0) return 1;
        wire += c->in.len - before;
        if (n == 0) {
            if (remaining < 0 && !chunked) break;
            return fail(e, LG_ERR_CLOSED, 0);
        }
    }
    if (close_after) pc_close(c);
    out->status = res.status;
    out->reason = c->in.data + reason_off;
    out->reason_len = res.reason_len;
    out->headers = c->in.data + hdr_off;
    out->headers_len = hdr_len;
    out->body = c->in.data + head_len;
    out->body_len = (chunked ? body_end : c->in.len) - head_len;
    out->wire_bytes = wire;
    return 0;
}

int pyconn_request(pyconn *c, const char *req, size_t len, int head_request,
                   int64_t connect_timeout_ns, int64_t timeout_ns, pyconn_wait_fn wait, void *ctx,
                   pyconn_resp *out, int *kind, int *code)
{
    memset(out, 0, sizeof(*out));
    out->t_start_ns = pyconn_now_ns();
    int rc = 1;
    for (int attempt = 0; attempt < 2; attempt++) {
        pc_err e = {0};
        int reused = c->fd >= 0 && c->reused;
        if (c->fd < 0) {
            rc = pc_connect(c, pyconn_now_ns() + connect_timeout_ns, wait, ctx, &e);
            if (rc) {
                pc_close(c);
                *kind = e.kind;
                *code = e.code;
                break;
            }
        }
        int64_t deadline = pyconn_now_ns() + timeout_ns;
        rc = pc_send(c, req, len, deadline, wait, ctx, &e);
        if (!rc) rc = pc_response(c, head_request, deadline, wait, ctx, out, &e);
        if (!rc) {
            if (c->fd >= 0) c->reused = 1;
            break;
        }
        pc_close(c);
        *kind = e.kind;
        *code = e.code;
        if (rc < 0 || !(reused && e.retry)) break;
    }
    out->t_end_ns = pyconn_now_ns();
    return rc == 1 ? -EIO : rc;
}
