/*
 * resp: the response half of app.h, and the two ways a response leaves:
 *   - from the event loop, non-blocking: head and body in one writev; what
 *     the socket does not take goes to c->wbuf and continues on EV_WRITE;
 *   - from an app thread, blocking (poll, bounded by socket-timeout): the
 *     thread that ran the handler writes directly, so streaming needs no
 *     hand-off to the loop.
 * The hot path does no allocation once a connection's buffers have grown to
 * their working size, and the Date line is formatted once a second.
 */
#define _GNU_SOURCE
#include "server/core.h"
#include "server/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

void resp_reset(srv_conn *c)
{
    c->status = 200;
    c->reason[0] = 0;
    buf_reset(&c->rhead);
    buf_reset(&c->out);
    buf_reset(&c->wbuf);
    c->woff = 0;
    c->app_clen = -1;
    c->app_close = 0;
    c->head_sent = c->chunked_out = c->close_after = 0;
    c->failed = c->finished_sent = 0;
    if (c->send_fd > 0) close(c->send_fd);
    c->send_fd = -1;
    c->send_left = 0;
    c->out_total = c->bytes_sent = 0;
}

void resp_release(srv_conn *c)
{
    if (c->send_fd >= 0) close(c->send_fd);
    c->send_fd = -1;
    /* Shrink buffers a large response grew (the conn goes to the free list). */
    if (c->out.cap > (1u << 20)) buf_free(&c->out);
    if (c->wbuf.cap > (1u << 20)) buf_free(&c->wbuf);
}

void resp_begin_error(srv_conn *c, int status, int close)
{
    resp_reset(c);
    c->status = status;
    c->close_after = close;
}

void resp_internal_error(srv_conn *c)
{
    resp_begin_error(c, 500, 1);
    app_write(&c->ar, "internal server error\n", 22);
}

void resp_update_date(srv_worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec == w->date_sec) return;
    w->date_sec = ts.tv_sec;
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int next = !atomic_load(&w->date_idx);
    strftime(w->date[next], sizeof(w->date[next]), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    atomic_store(&w->date_idx, next);
}

static int no_body_status(int st)
{
    return st < 200 || st == 204 || st == 304;
}

static char *u64_dec(char *end, uint64_t v)
{
    do *--end = (char)('0' + v % 10);
    while ((v /= 10));
    return end;
}

/* Appends the status line and headers. final: the whole body is known. */
static int build_head(srv_conn *c, int final, buf *b)
{
    const srv_settings *st = &c->w->srv->s;
    int body_left = c->has_body && !c->body_eof;
    /* Decided now, not when the request was parsed: a response written while
     * the worker drains says close, unless the client's next request is
     * already buffered (pipelined): that one is served too, and says it. */
    if (c->req_close || c->app_close || st->keepalive == 0 || c->gone || body_left ||
        (atomic_load(&c->w->draining) && c->rlen <= c->head_len))
        c->close_after = 1;
    /* cheaper: hand a keep-alive client over to a worker just added. */
    if (!c->close_after && c->rlen <= c->head_len &&
        atomic_load_explicit(&c->w->slot->waiting, memory_order_relaxed) > 0 &&
        accept_should_shed(c->w->srv->sb, c->w->slot_idx))
        c->close_after = 1;
    /* Built by hand into one reservation: snprintf, then a checked append
     * per piece, showed up in profiles of the hello path. The fixed parts
     * take at most HEAD_FIXED bytes; the app's headers and the request id
     * are counted in. */
    const char *reason = c->reason[0] ? c->reason : http1_reason(c->status);
    const char *date = c->w->date[atomic_load(&c->w->date_idx)];
    size_t rl = strlen(reason), dl = strlen(date), il = strlen(c->request_id);
    enum { HEAD_FIXED = 256 }; /* status line but the reason, Server, id, length, framing */
    if (buf_reserve(b, HEAD_FIXED + rl + dl + il + c->rhead.len)) return -ENOMEM;
    char *p = b->data + b->len;
#define PUT(s, n)   (memcpy(p, (s), (n)), p += (n))
#define PUTLIT(lit) PUT(lit, sizeof(lit) - 1)
    PUTLIT("HTTP/1.1 ");
    *p++ = (char)('0' + c->status / 100 % 10);
    *p++ = (char)('0' + c->status / 10 % 10);
    *p++ = (char)('0' + c->status % 10);
    *p++ = ' ';
    PUT(reason, rl);
    PUTLIT("\r\nServer: aiserve\r\n");
    PUT(date, dl);
    if (c->rhead.len) PUT(c->rhead.data, c->rhead.len);
    if (il) { /* access.c: `request-id` */
        PUTLIT("X-Request-Id: ");
        PUT(c->request_id, il);
        PUTLIT("\r\n");
    }
    if (!no_body_status(c->status)) {
        if (c->app_clen >= 0 || final) {
            uint64_t len =
                c->app_clen >= 0 ? (uint64_t)c->app_clen : c->out_total + (uint64_t)c->send_left;
            char num[24], *d = u64_dec(num + sizeof(num), len);
            PUTLIT("Content-Length: ");
            PUT(d, (size_t)(num + sizeof(num) - d));
            PUTLIT("\r\n");
            if (c->app_clen >= 0 && final && !c->head_only &&
                (uint64_t)c->app_clen != c->out_total + (uint64_t)c->send_left)
                c->close_after = 1; /* the app lied: the framing is broken, do not reuse */
        } else if (c->ar.minor_version == 1 && !c->uwsgi) {
            /* over uwsgi the front end reads the body to the close, unframed */
            PUTLIT("Transfer-Encoding: chunked\r\n");
            c->chunked_out = 1;
        } else {
            c->close_after = 1; /* HTTP/1.0 stream: close-delimited */
        }
    }
    b->len = (size_t)(p - b->data);
    b->data[b->len] = 0;
    if (c->w->srv->s.server_timing && c->t_thread_us) {
        /* Until the head: a streaming app's later body is not in it. */
        uint64_t now = ev_clock_us();
        buf_printf(b, "Server-Timing: queue;dur=%.3f, app;dur=%.3f\r\n",
                   (double)(c->t_thread_us - c->t_queued_us) / 1000.0,
                   (double)(now - c->t_thread_us) / 1000.0);
    }
    if (c->close_after) return buf_append(b, "Connection: close\r\n\r\n", 21);
    if (c->ar.minor_version == 0) return buf_append(b, "Connection: keep-alive\r\n\r\n", 26);
    return buf_append(b, "\r\n", 2);
#undef PUT
#undef PUTLIT
}

static int body_dropped(const srv_conn *c)
{
    return c->head_only || no_body_status(c->status);
}

/* ---- loop side ---- */

static int sendfile_nb(srv_conn *c)
{
    while (c->send_left > 0) {
        size_t chunk = c->send_left > (1 << 20) ? (1 << 20) : (size_t)c->send_left;
        ssize_t n = conn_io_sendfile(c, c->send_fd, &c->send_off, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        if (n == 0) return -EIO; /* the file shrank */
        c->send_left -= n;
        c->bytes_sent += (uint64_t)n;
    }
    close(c->send_fd);
    c->send_fd = -1;
    return 1;
}

int resp_continue_write(srv_conn *c)
{
    while (c->woff < c->wbuf.len) {
        ssize_t n = conn_io_send(c, c->wbuf.data + c->woff, c->wbuf.len - c->woff);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN ? 0 : -errno;
        }
        c->woff += (size_t)n;
    }
    if (c->send_fd >= 0 && c->send_left > 0 && !body_dropped(c)) return sendfile_nb(c);
    return 1;
}

/* A body up to this size is copied behind the head and both leave in one
 * send(): cheaper in the kernel than a writev of two pieces (no iovec to
 * import), and the copy costs less than that for a small body. */
#define RESP_COPY_BODY 1024

int resp_send_loop(srv_conn *c)
{
    buf_reset(&c->wbuf);
    c->woff = 0;
    if (build_head(c, 1, &c->wbuf)) return -ENOMEM;
    c->head_sent = 1;
    size_t blen = body_dropped(c) ? 0 : c->out.len;
    if (blen <= RESP_COPY_BODY) {
        if (blen && buf_append(&c->wbuf, c->out.data, blen)) return -ENOMEM;
        ssize_t n;
        do n = conn_io_send(c, c->wbuf.data, c->wbuf.len);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            if (errno != EAGAIN) return -errno;
            n = 0;
        }
        c->woff = (size_t)n; /* the rest, if any, goes on EV_WRITE (resp_continue_write) */
        c->bytes_sent = blen;
        if (c->woff < c->wbuf.len) return 0;
        if (c->send_fd >= 0 && !body_dropped(c)) return sendfile_nb(c);
        return 1;
    }
    struct iovec iov[2] = {{c->wbuf.data, c->wbuf.len}, {c->out.data, blen}};
    size_t total = c->wbuf.len + blen;
    ssize_t n;
    do n = conn_io_writev(c, iov, blen ? 2 : 1);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN) return -errno;
        n = 0;
    }
    c->bytes_sent = (uint64_t)n > c->wbuf.len ? (uint64_t)n - c->wbuf.len : 0;
    if ((size_t)n == total) {
        c->bytes_sent = blen;
        c->woff = c->wbuf.len; /* a sendfile continuing on EV_WRITE must not resend it */
        if (c->send_fd >= 0 && !body_dropped(c)) return sendfile_nb(c);
        return 1;
    }
    /* Partial: keep the unsent rest in wbuf. */
    if ((size_t)n < c->wbuf.len) {
        c->woff = (size_t)n;
        if (blen && buf_append(&c->wbuf, c->out.data, blen)) return -ENOMEM;
    } else {
        size_t done = (size_t)n - c->wbuf.len;
        buf_reset(&c->wbuf);
        if (buf_append(&c->wbuf, c->out.data + done, blen - done)) return -ENOMEM;
    }
    c->bytes_sent = blen;
    return 0;
}

/* ---- app-thread side ---- */

static int writev_all_more(srv_conn *c, struct iovec *iov, int cnt, int more)
{
    while (cnt > 0) {
        ssize_t n = more ? conn_io_writev_more(c, iov, cnt) : conn_io_writev(c, iov, cnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) goto fail;
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            int rc = poll(&p, 1, c->w->srv->s.socket_timeout * 1000);
            if (rc <= 0 && errno != EINTR) goto fail;
            continue;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
fail:
    c->failed = 1; /* app_client_gone says so from now on */
    return -EPIPE;
}

static int writev_all(srv_conn *c, struct iovec *iov, int cnt)
{
    return writev_all_more(c, iov, cnt, 0);
}

/* Sends [head if not sent][buffered out][data] as a stream segment. */
static int send_stream(srv_conn *c, const void *data, size_t len)
{
    struct iovec iov[5];
    int n = 0;
    char chdr[24];
    if (c->failed) return -EPIPE;
    if (!c->head_sent) {
        buf_reset(&c->wbuf);
        if (build_head(c, 0, &c->wbuf)) return -ENOMEM;
        c->head_sent = 1;
        iov[n++] = (struct iovec){c->wbuf.data, c->wbuf.len};
    }
    size_t blen = body_dropped(c) ? 0 : c->out.len + len;
    if (blen && c->chunked_out) {
        int l = snprintf(chdr, sizeof(chdr), "%zx\r\n", blen);
        iov[n++] = (struct iovec){chdr, (size_t)l};
    }
    if (blen && c->out.len) iov[n++] = (struct iovec){c->out.data, c->out.len};
    if (blen && len) iov[n++] = (struct iovec){(void *)data, len};
    if (blen && c->chunked_out) iov[n++] = (struct iovec){"\r\n", 2};
    int rc = n ? writev_all(c, iov, n) : 0;
    c->bytes_sent += blen;
    buf_reset(&c->out);
    return rc;
}

/* The whole response in one call, and the connection is closed right after
 * it on this same thread: a uwsgi connection (one request each) whose app
 * runs on the loop (worker_run_inline, then conn_handler_done closes it).
 * Its bytes go with MSG_MORE, so the kernel holds the last partial segment
 * and the close's FIN leaves in it: one segment where writev, then close,
 * sent two (uWSGI does that), and the front end (nginx) reads the answer
 * and its end at once. */
static int closes_next(const srv_conn *c)
{
    return c->uwsgi && c->w->inline_app && !c->ssl && pthread_equal(pthread_self(), c->w->loop_tid);
}

int resp_send_blocking(srv_conn *c)
{
    int rc;
    if (!c->head_sent) {
        buf_reset(&c->wbuf);
        if (build_head(c, 1, &c->wbuf)) return -ENOMEM;
        c->head_sent = 1;
        size_t blen = body_dropped(c) ? 0 : c->out.len;
        struct iovec iov[2] = {{c->wbuf.data, c->wbuf.len}, {c->out.data, blen}};
        rc = writev_all_more(c, iov, blen ? 2 : 1, closes_next(c));
        c->bytes_sent = blen;
    } else {
        rc = c->out.len ? send_stream(c, NULL, 0) : 0;
        if (!rc && c->chunked_out && !body_dropped(c)) {
            struct iovec end = {"0\r\n\r\n", 5};
            rc = writev_all(c, &end, 1);
        }
    }
    c->finished_sent = 1;
    return rc;
}

void resp_finish_thread(srv_conn *c)
{
    if (!c->failed) resp_send_blocking(c);
    c->finished_sent = 1;
    c->head_sent = 1;
}

void resp_fail(srv_conn *c)
{
    c->failed = 1;
}

/* ---- app.h: response ---- */

int app_set_status(app_request *r, int status)
{
    srv_conn *c = r->_conn;
    if (c->head_sent || status < 100 || status > 999) return -EINVAL;
    c->status = status;
    return 0;
}

static int bad_header_text(const char *s, size_t n, int name)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r' || ch == '\n' || ch == 0 || (name && (ch <= ' ' || ch == ':'))) return 1;
    }
    return name && n == 0;
}

int app_set_reason(app_request *r, const char *reason, size_t len)
{
    srv_conn *c = r->_conn;
    if (c->head_sent) return -EINVAL;
    if (len >= sizeof(c->reason)) len = sizeof(c->reason) - 1;
    /* RFC 9112 reason-phrase: HTAB, SP, VCHAR, obs-text; no controls */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)reason[i];
        if ((ch < ' ' && ch != '\t') || ch == 0x7f) return -EINVAL;
    }
    memcpy(c->reason, reason, len);
    c->reason[len] = 0;
    return 0;
}

/* name (name_len bytes) is the lower-case literal lit, ignoring case; the
 * length first, so an ordinary header costs no byte comparison. */
#define NAME_IS(lit) (name_len == sizeof(lit) - 1 && http1_token_eq(name, name_len, lit))

int app_add_header(app_request *r, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    srv_conn *c = r->_conn;
    if (c->head_sent) return -EINVAL;
    if (bad_header_text(name, name_len, 1) || bad_header_text(value, value_len, 0)) return -EINVAL;
    if (NAME_IS("content-length")) {
        int64_t v = http1_parse_length(value, value_len);
        if (v < 0) return -EINVAL;
        c->app_clen = v;
        return 0;
    }
    if (NAME_IS("connection")) {
        if (http1_value_has_token(value, value_len, "close")) c->app_close = 1;
        return 0;
    }
    if (NAME_IS("transfer-encoding")) return -EINVAL;
    if (NAME_IS("date") || NAME_IS("server")) return 0; /* the core's own */
    if (buf_reserve(&c->rhead, name_len + value_len + 4)) return -ENOMEM;
    char *p = c->rhead.data + c->rhead.len; /* one reservation, then plain copies */
    memcpy(p, name, name_len);
    p += name_len;
    memcpy(p, ": ", 2);
    if (value_len) memcpy(p + 2, value, value_len);
    memcpy(p + 2 + value_len, "\r\n", 2);
    c->rhead.len += name_len + value_len + 4;
    c->rhead.data[c->rhead.len] = 0;
    return 0;
}

int app_write(app_request *r, const void *data, size_t len)
{
    srv_conn *c = r->_conn;
    if (c->failed) return -EPIPE;
    c->out_total += len;
    if (body_dropped(c) || len == 0) return 0;
    if (srv_thread_conn == c && c->out.len + len > SRV_OUT_BUFFER) return send_stream(c, data, len);
    return buf_append(&c->out, data, len);
}

int app_flush(app_request *r)
{
    srv_conn *c = r->_conn;
    if (srv_thread_conn != c) return 0;
    return send_stream(c, NULL, 0);
}

int app_sendfile(app_request *r, int fd, off_t off, int64_t len)
{
    srv_conn *c = r->_conn;
    if (c->failed) return -EPIPE;
    if (len < 0) {
        struct stat st;
        if (fstat(fd, &st) < 0) return -errno;
        len = st.st_size > off ? st.st_size - off : 0;
    }
    if (srv_thread_conn != c) {
        if (c->send_fd >= 0) return -EBUSY;
        c->send_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (c->send_fd < 0) return -errno;
        c->send_off = off;
        c->send_left = len;
        return 0;
    }
    if (len == 0) return 0;
    c->out_total += (uint64_t)len;
    int rc = send_stream(c, NULL, 0);
    if (rc || body_dropped(c)) return rc;
    char chdr[24];
    if (c->chunked_out) {
        int l = snprintf(chdr, sizeof(chdr), "%llx\r\n", (unsigned long long)len);
        struct iovec v = {chdr, (size_t)l};
        if ((rc = writev_all(c, &v, 1))) return rc;
    }
    while (len > 0) {
        ssize_t n = conn_io_sendfile(c, fd, &off, len > (1 << 20) ? (1 << 20) : (size_t)len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            if (poll(&p, 1, c->w->srv->s.socket_timeout * 1000) <= 0) goto fail;
            continue;
        }
        if (n <= 0) goto fail;
        len -= n;
        c->bytes_sent += (uint64_t)n;
    }
    if (c->chunked_out) {
        struct iovec v = {"\r\n", 2};
        return writev_all(c, &v, 1);
    }
    return 0;
fail:
    c->failed = 1;
    return -EPIPE;
}

/* ---- app.h: request helpers ---- */

const http1_header *app_header(const app_request *r, const char *name)
{
    return http1_find_header(r->headers, r->num_headers, name);
}
