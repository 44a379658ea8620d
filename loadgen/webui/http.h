/*
 * webui_http: the small HTTP/1.1 server behind aiload's web UI. It runs on one
 * lib/ev loop (one thread), parses requests with lib/http1, and hands each
 * complete request to one handler callback, which fills in a response.
 *
 * Limits (a browser never comes close; anything beyond gets a 4xx/5xx and the
 * connection closed, never a crash): request head 16 KiB, body 64 KiB
 * (Content-Length only; Transfer-Encoding is refused with 501), 64 headers,
 * 128 connections, 60 s idle per connection. Keep-alive and pipelining work as
 * HTTP/1.1 says.
 *
 * Ownership: the server owns its listen socket and connections; the loop is
 * borrowed and must outlive the server.
 */
#ifndef LOADGEN_WEBUI_HTTP_H
#define LOADGEN_WEBUI_HTTP_H

#include <stddef.h>

#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/http1.h"

typedef struct webui_http webui_http;

/* A parsed request; every pointer is into the connection's buffer and valid
 * only during the handler call. Strings are not NUL-terminated. */
typedef struct webui_req {
    const char *method;
    size_t method_len;
    const char *path; /* the target before '?', still percent-encoded */
    size_t path_len;
    const char *query; /* after '?' ("" when none) */
    size_t query_len;
    const char *body;
    size_t body_len;
    const http1_header *headers;
    size_t nheaders;
} webui_req;

/* The response a handler fills in. The server zeroes it and sets status 200
 * before the call, and frees body afterwards. Exactly one of body or
 * static_data is sent (static_data when non-NULL: e.g. an embedded asset). */
typedef struct webui_resp {
    int status;
    const char *type; /* Content-Type; NULL: text/plain */
    buf body;
    const void *static_data; /* borrowed; must outlive the call (static storage) */
    size_t static_len;
    char disposition[160];        /* Content-Disposition value, or "" */
    const char *csp;              /* Content-Security-Policy value, or NULL (static string) */
    const char *www_authenticate; /* WWW-Authenticate value (a 401), or NULL (static) */
} webui_resp;

typedef void (*webui_handler)(const webui_req *req, webui_resp *resp, void *data);

/* Listens on host:port (host: an IPv4/IPv6 literal or name; "*" or "" for all
 * addresses; port 0 picks a free port). Returns NULL with a message in err. */
webui_http *webui_http_create(ev_loop *loop, const char *host, int port, webui_handler handler,
                              void *data, char *err, size_t errlen);
/* Closes the listen socket and every connection. NULL is a no-op. */
void webui_http_free(webui_http *s);
/* The port actually bound (useful with port 0). */
int webui_http_port(const webui_http *s);

/* 1 when req's method is m (exact, case-sensitive as HTTP methods are). */
int webui_req_method_is(const webui_req *req, const char *m);
/* 1 when req's path is p exactly. */
int webui_req_path_is(const webui_req *req, const char *p);

/* Looks key up in a form-encoded string ("a=1&b=x%20y"; '+' is a space) and
 * percent-decodes its value into out (NUL-terminated). Returns the value's
 * length, -ENOENT when key is absent, -EINVAL on a bad %-escape or a NUL byte,
 * -ENAMETOOLONG when the value does not fit in outlen. */
int webui_form_get(const char *s, size_t len, const char *key, char *out, size_t outlen);

#endif
