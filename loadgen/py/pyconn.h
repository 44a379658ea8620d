/*
 * pyconn: the HTTP/1.1 keep-alive client behind a Python user's
 * self.client. The user's code calls it as a blocking function; whenever the
 * socket would block it calls the wait function instead, which (in aiload)
 * parks the user's greenlet on gevent's hub until the socket is ready, so the
 * other users run meanwhile. All I/O, parsing and timing is C; Python gets
 * the status, the header block and the body.
 *
 * One pyconn is one connection of one user to one origin; it reconnects when
 * the server closed it, and resends once when a reused keep-alive socket
 * turns out stale before any byte of the response (as requests/urllib3 do).
 */
#ifndef LOADGEN_PY_PYCONN_H
#define LOADGEN_PY_PYCONN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "loadgen/tls.h"

typedef struct pyconn pyconn;

/* Waits until fd has one of events (EV_READ / EV_WRITE of lib/ev.h) or the
 * CLOCK_MONOTONIC deadline passes. 0: ready (or maybe ready), -ETIMEDOUT, or
 * -EINTR: give up (e.g. a Python exception is pending); the request then
 * fails with -EINTR and the connection is closed. */
typedef int (*pyconn_wait_fn)(void *ctx, int fd, unsigned events, int64_t deadline_ns);

typedef struct pyconn_origin {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const lg_tls *tls;  /* NULL: plain http */
    char tls_host[256]; /* https: SNI and certificate name */
} pyconn_origin;

typedef struct pyconn_resp {
    int status;
    const char *reason; /* into the connection's buffer, valid until the next request */
    size_t reason_len;
    const char *headers; /* the header lines after the status line, CRLF-separated */
    size_t headers_len;
    const char *body; /* decoded (chunked removed) */
    size_t body_len;
    uint64_t wire_bytes; /* body bytes as received */
    int64_t t_start_ns;  /* when the request began (connect included) */
    int64_t t_end_ns;    /* when the last byte of the response was read */
} pyconn_resp;

pyconn *pyconn_create(const pyconn_origin *o);
/* Closes the socket and frees (the TLS session too). */
void pyconn_free(pyconn *c);

/* Sends req[0..len) (a whole request: head and body) and reads the answer.
 * head_request: the response has no body (HEAD). Returns 0 with *out filled;
 * -EINTR when the wait function gave up (the connection is closed); -EIO on a
 * failure: *kind and *code are an lg_err_kind and its code (loadgen/stats.h),
 * which lg_err_format() turns into Locust's text, and t_start_ns/t_end_ns are
 * set. */
int pyconn_request(pyconn *c, const char *req, size_t len, int head_request,
                   int64_t connect_timeout_ns, int64_t timeout_ns, pyconn_wait_fn wait, void *ctx,
                   pyconn_resp *out, int *kind, int *code);

/* The socket of the connection, -1 when closed (for tests). */
int pyconn_fd(const pyconn *c);

int64_t pyconn_now_ns(void);

#endif
