/*
 * app: the contract between the aiserve core and the apps that plug into it
 * (the WSGI host, the model server, the built-in handlers).
 *
 * Kinds and apps. An app kind (app_kind) is a static descriptor: its name, its
 * option table (merged into the config reader: adding an option is adding an
 * entry), and lifecycle hooks. The program lists the kinds it links:
 * server/main.c hands them to the core in srv.kinds, so the core never
 * includes a kind (scripts/check-layers.sh). At start-up the core asks each
 * kind whether the config uses it (configured), then calls load, which
 * registers routes with app_route_add.
 *
 * Lifecycle, in order (every hook but load and configured is optional):
 *   configured(cfg)          master, before anything: 1 if this kind is used
 *   load(cfg, ctx, &state)   master before fork(); or, with lazy-apps, in each
 *                            worker after fork (then worker_init follows it)
 *   worker_init(state, id)   each worker after fork, before its threads start
 *   thread_init(state, tid)  on each app thread, before its first request
 *   ready(state)             any thread, any time: 1 once this app can serve;
 *                            /health/ready is 200 only when every app of every
 *                            worker is ready (NULL: ready once loaded)
 *   thread_free(state, tid)  on each app thread as the worker exits
 *   free(state)              the worker (and the master) at exit
 * A load failure with need-app refuses start-up; without need-app the app's
 * routes are absent (the core logs it) and the rest of the server runs.
 *
 * Routes. load registers path prefixes. A request goes to the longest matching
 * prefix; prefix "/" catches everything. A prefix matches at a segment
 * boundary: "/api" matches "/api" and "/api/x", not "/apix". SCRIPT_NAME is
 * the prefix (without a trailing '/', "" for "/"), PATH_INFO the rest (both
 * after dot-segment removal). The app owns the paths it registers: the
 * built-in routes (/health/live, /health/ready, /metrics, /delay/, /hello;
 * configurable) answer on the main listeners only where no app route covers
 * the path, unless the `builtins` option names them; an `admin` listener
 * serves the built-ins alone (docs/config.md).
 *
 * Where handlers run. APP_RUN_THREAD handlers run on one of the worker's
 * `threads` app threads and may block (Python). The core reads the request
 * head (and the body, up to post-buffering) on the event loop first, so an
 * idle or slow client never holds a thread: only complete requests wait for
 * one, in the worker's queue. APP_RUN_LOOP handlers run on the worker's event loop
 * and must never block; they may return APP_PENDING and complete later from
 * any thread (a batcher, a timer). The whole body is read before an
 * APP_RUN_LOOP handler is called.
 *
 * Ownership. The app_request and everything it points to belong to the core;
 * they stay valid until app_finish(), and the handler (or whoever it handed
 * the request to) has exclusive use of the request until then. After
 * app_finish() the request must not be touched.
 */
#ifndef SERVER_APP_H
#define SERVER_APP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/ev.h"
#include "lib/http1.h"
#include "server/config.h"

typedef struct srv_conn srv_conn; /* private to the core */

/* The request view. All strings are pointer + length and NOT NUL-terminated
 * unless noted; read-only for apps. */
typedef struct app_request {
    const char *method;
    size_t method_len;
    const char *uri; /* raw request-target: "/a%20b/c?x=1" (REQUEST_URI) */
    size_t uri_len;
    const char *path; /* raw path before '?', not decoded */
    size_t path_len;
    const char *query; /* after '?', without it; "" when none (QUERY_STRING) */
    size_t query_len;
    int minor_version;    /* 0 or 1 */
    const char *protocol; /* "HTTP/1.0" or "HTTP/1.1", NUL-terminated */
    const http1_header *headers;
    size_t num_headers;
    const char *script_name; /* the matched mount prefix, "" for "/" */
    size_t script_name_len;
    const char *path_info; /* percent-decoded path below the mount; NUL-terminated */
    size_t path_info_len;
    int64_t content_length; /* -1 when chunked (the core de-chunks) or absent with no body */
    int chunked;            /* the body came with Transfer-Encoding: chunked */
    /* Body bytes already read by the core (de-chunked). body_complete = 1 when
     * this is the whole body: always for APP_RUN_LOOP routes, and for
     * APP_RUN_THREAD routes when the body fits post-buffering. Otherwise read
     * the rest with app_read(). */
    const char *body;
    size_t body_len;
    int body_complete;
    int https;               /* the client used https (a front end said so over uwsgi) */
    const char *https_dn;    /* https: the verified client certificate's subject, else NULL */
    const char *request_id;  /* `request-id`: the request's X-Request-Id, else NULL */
    const char *remote_addr; /* NUL-terminated, "127.0.0.1" */
    int remote_port;
    const char
        *server_name; /* NUL-terminated: the Host header without port, else the bind address */
    int server_port;
    int worker_id;    /* 1..processes */
    int thread_id;    /* 0..threads-1 on an app thread; -1 on the event loop */
    ev_loop *loop;    /* the worker's loop (APP_RUN_LOOP handlers may add timers) */
    void *route_data; /* the data given to app_route_add */
    srv_conn *_conn;  /* private */
} app_request;

enum {
    APP_DONE = 0,    /* the response is complete (app_finish is implied) */
    APP_PENDING = 1, /* someone will call app_finish(r) later, from any thread; an app
                        thread returning it is freed at once and the loop sends the
                        (buffered) response at app_finish */
};
/* A handler returns APP_DONE, APP_PENDING, or a negative errno: then the core
 * answers 500 if no byte of the response was sent, else closes the connection. */
typedef int (*app_handler_fn)(app_request *r, void *data);

enum {
    APP_RUN_LOOP = 0,   /* non-blocking handler on the event loop */
    APP_RUN_THREAD = 1, /* blocking handler on an app thread */
};

/* ---- response ----
 * Every call below may be made from the thread running the handler or, after
 * APP_PENDING, from whichever thread holds the request. They return 0 or a
 * negative errno: -EPIPE when the client has gone (stop producing), -EINVAL
 * on misuse (a header after the head was sent), -ENOMEM.
 *
 * Framing is automatic: a response finished before any byte was flushed gets
 * a Content-Length; one that streams (app_flush, large writes, sendfile)
 * without a Content-Length header set by the app is sent chunked to HTTP/1.1
 * clients and close-delimited to HTTP/1.0 ones. Connection and Date headers
 * are the core's; the app must not set Transfer-Encoding.
 */
int app_set_status(app_request *r, int status);
/* Replaces the standard reason phrase ("OK", "Not Found") for this response;
 * copied, cut at 95 bytes; -EINVAL on control characters or after the head
 * was sent. An empty phrase keeps the standard one. */
int app_set_reason(app_request *r, const char *reason, size_t len);
/* name and value are copied; they must not contain CR or LF (-EINVAL). */
int app_add_header(app_request *r, const char *name, size_t name_len, const char *value,
                   size_t value_len);
/* Appends body bytes (copied). On an app thread, bytes beyond the core's
 * buffer (64 KiB) are written to the socket at once (blocking, bounded by
 * socket-timeout); elsewhere they are buffered until app_finish. */
int app_write(app_request *r, const void *data, size_t len);
/* On an app thread: sends the head and buffered bytes now (streaming). A no-op
 * elsewhere. */
int app_flush(app_request *r);
/* Sends len bytes of fd from offset off (len -1: to end of file). On an app
 * thread it blocks until sent; the fd stays the caller's. Elsewhere the core
 * dup()s fd and sends it after the rest of the response: then it must be the
 * last body call, and only one per response (-EBUSY). */
int app_sendfile(app_request *r, int fd, off_t off, int64_t len);
/* Ends the response. Exactly once for a PENDING request (APP_DONE implies it).
 * Thread-safe: from another thread it wakes the worker's loop. */
int app_finish(app_request *r);
/* For a PENDING request finished on another thread (a batcher): queues r on
 * its worker's completion queue (the one app threads use) and wakes the loop,
 * which calls fn(r, arg) there; fn writes the response and calls app_finish,
 * so all writing happens on the loop. Completions run oldest first. Any thread. */
typedef void (*app_complete_fn)(app_request *r, void *arg);
void app_complete_async(app_request *r, app_complete_fn fn, void *arg);

/* ---- request body ----
 * app_read: the next body bytes (de-chunked), first those in r->body not yet
 * returned, then from the socket. Once app_read has gone past r->body, the
 * core reuses that buffer: r->body is then no longer valid. Blocks only on an app thread (bounded
 * by socket-timeout). Returns bytes read (> 0), 0 at the end of the body, or a negative errno
 * (-ETIMEDOUT, -ECONNRESET, -EMSGSIZE past limit-post, -EPROTO on bad chunked framing). */
ssize_t app_read(app_request *r, void *buf, size_t len);

/* 1 once the client is known to have gone (hung up or reset). Any thread.
 * On an app thread this also peeks at the socket. */
int app_client_gone(app_request *r);

/* 1 when every worker the master keeps running has all its apps ready, the
 * rule of the built-in /health/ready. An app's own readiness route uses it:
 * its 200 then means whichever worker takes the next connection can serve
 * it, not just the one that answered. Any thread. */
int app_workers_ready(const app_request *r);

/* Finds a request header (case-insensitive name); NULL if absent. */
const http1_header *app_header(const app_request *r, const char *name);

/* Writes one line to the server log (stderr, or logto) in the core's format,
 * "<time> aiserve[<pid>]: <tag><message>", with a single write so lines from
 * several processes do not interleave. Any thread. */
void app_vlog(const char *tag, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* ---- registration ---- */

typedef struct app_ctx app_ctx; /* private; handed to load */

/* Registers a route from load: prefix ("/", "/v2", "/api/"), where the handler
 * runs, and data handed back as r->route_data and the handler's data. Returns
 * 0, -EEXIST if the prefix is taken, -EINVAL for a prefix not starting '/'. */
int app_route_add(app_ctx *ctx, const char *prefix, int run_on, app_handler_fn fn, void *data);
/* As app_route_add, for path itself only (and path + "/"): SCRIPT_NAME is
 * path, PATH_INFO "" or "/". It claims nothing below path, so a route at "/"
 * added this way leaves /health, /metrics and the other paths to the rest. */
int app_route_add_exact(app_ctx *ctx, const char *path, int run_on, app_handler_fn fn, void *data);
/* Options and facts for load: the config and the worker id (0 in the master). */
const cfg *app_ctx_cfg(const app_ctx *ctx);
int app_ctx_worker_id(const app_ctx *ctx);

typedef struct app_kind {
    const char *name;          /* "wsgi", "model" */
    const cfg_option *options; /* this kind's options, bound to its struct, ended by CFG_END */
    int (*configured)(const cfg *c);
    /* Loads the app; on failure returns -1 with a one-line reason in err. */
    int (*load)(app_ctx *ctx, void **state, char *err, size_t errlen);
    int (*worker_init)(void *state, int worker_id);
    int (*thread_init)(void *state, int thread_id);
    void (*thread_free)(void *state, int thread_id);
    int (*ready)(void *state);
    void (*free)(void *state);
    /* Optional: appends the app's Prometheus text to out (a lib/buf) when a
     * worker renders /metrics; on the loop, must not block. 0 or -ENOMEM. */
    int (*metrics)(void *state, struct buf *out);
    /* Optional, any thread: 1 when part of a loaded app failed to load (a model
     * among several, without need-app), with the reason in why; 0 otherwise.
     * /health/ready answers 503 with the reason while any app says so. */
    int (*failed)(void *state, char *why, size_t len);
    /* Optional, in the master after load: calls add for each source file the
     * loaded app was built from (py-autoreload watches them). 0 or -errno. */
    int (*source_files)(void *state, void (*add)(void *ctx, const char *path), void *ctx);
    /* Optional, in the master: appends the app's entries of the stats
     * server's `models` array (JSON objects, comma-separated). 0 or -ENOMEM. */
    int (*stats_json)(void *state, struct buf *out);
} app_kind;

#endif
