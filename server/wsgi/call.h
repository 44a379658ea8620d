/*
 * wsgi_call: one WSGI request through a Python callable, PEP 3333 to the
 * letter: the environ, start_response with exc_info, write(), wsgi.input,
 * wsgi.errors, wsgi.file_wrapper, and the response iterable with close().
 *
 * The HTTP side is reached only through wsgi_io, a table of blocking calls
 * that the caller (server/wsgi/app.c, or a test) implements; wsgi_call knows nothing
 * about sockets or the event loop. Every wsgi_io call is made with the GIL
 * released, so other Python threads run while this one waits on the client.
 *
 * Threads: wsgi_call_run() must be called with the GIL held (see py.h).
 */
#ifndef SERVER_WSGI_CALL_H
#define SERVER_WSGI_CALL_H

#include <stddef.h>
#include <stdint.h>

typedef struct _object PyObject; /* CPython's; only app/wsgi_* include Python.h */

typedef struct wsgi_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} wsgi_header;

/* The request as the HTTP layer parsed it. Borrowed for the duration of the call. */
typedef struct wsgi_request {
    const char *method;
    size_t method_len;
    const char *target; /* raw request-target, e.g. "/a%20b?x=1" (REQUEST_URI) */
    size_t target_len;
    /* Optional, when the HTTP layer already split and decoded the path (then
     * the script_len argument is ignored): SCRIPT_NAME, PATH_INFO, QUERY_STRING. */
    const char *script_name;
    size_t script_name_len;
    const char *path_info;
    size_t path_info_len;
    const char *query;
    size_t query_len;
    int version_minor; /* HTTP/1.<minor> */
    const wsgi_header *headers;
    size_t nheaders;
    const char *remote_addr; /* numeric, NUL-terminated */
    int remote_port;
    const char *server_name; /* local address or Host, NUL-terminated */
    int server_port;
    int https;
    const char *https_dn;   /* HTTPS_DN: the client certificate's subject, or NULL */
    const char *request_id; /* HTTP_X_REQUEST_ID (replaces the client's), or NULL */
    int64_t content_length; /* -1 when absent (or chunked) */
    int chunked;            /* body arrives de-chunked through wsgi_io.read */
} wsgi_request;

typedef struct wsgi_io {
    void *ctx;
    /* Reads up to n bytes of the (de-chunked) body. >0 bytes, 0 at the body's
     * end, -errno on failure (client gone, bad chunking). */
    long (*read)(void *ctx, void *buf, size_t n);
    /* Sends the status and headers (Content-Length and hop-by-hop headers
     * removed). content_length is the body size when known, else -1 (the HTTP
     * layer then chunks or closes). 0 or -errno. */
    int (*start)(void *ctx, int status, const char *reason, size_t reason_len, const wsgi_header *h,
                 size_t n, int64_t content_length);
    /* Sends body bytes; returns once they are written or queued. 0 or -errno. */
    int (*write)(void *ctx, const void *data, size_t n);
    /* Optional (NULL: the body is read and written instead): sends len bytes of
     * a regular file from off. 0 or -errno. */
    int (*sendfile)(void *ctx, int fd, int64_t off, int64_t len);
    /* The body is complete (ok = 1) or broken (ok = 0: the connection must close). */
    void (*finish)(void *ctx, int ok);
    /* One log line (wsgi.errors text, tracebacks); no trailing newline. */
    void (*log)(void *ctx, const char *msg, size_t len);
} wsgi_io;

/* Per-process flags the environ reports. */
typedef struct wsgi_flags {
    int multithread;
    int multiprocess;
    int no_file_wrapper; /* wsgi-disable-file-wrapper: leave wsgi.file_wrapper out */
} wsgi_flags;

typedef enum wsgi_status {
    WSGI_OK = 0,
    WSGI_APP_ERROR,   /* the app raised before sending headers: a 500 went out */
    WSGI_BROKEN,      /* the app raised after headers, or broke the protocol: cut */
    WSGI_CLIENT_GONE, /* the client disconnected; close() was called */
} wsgi_status;

/* The Python types wsgi_call needs, created once per interpreter. */
typedef struct wsgi_types wsgi_types;

/* With the GIL held, after Py_Initialize. NULL with a Python error set. */
wsgi_types *wsgi_types_new(void);
void wsgi_types_free(wsgi_types *t);

/*
 * Runs app for one request. script_len: how much of the decoded path is the
 * mount prefix (SCRIPT_NAME). Always finishes the response through io (a 500
 * when the app fails before sending headers). Call with the GIL held.
 */
wsgi_status wsgi_call_run(wsgi_types *t, PyObject *app, const wsgi_request *req, size_t script_len,
                          const wsgi_flags *flags, const wsgi_io *io);

/* Answers without an app: used when an import failed and need-app is off. */
void wsgi_call_error(const wsgi_io *io, int status, const char *body);

/*
 * Decodes the path of a request-target ("/a%20b?x" -> "/a b") into out
 * (capacity at least target_len + 1). Returns its length, or -1 when the
 * target has a bad escape or an encoded NUL. *query is set to the text after
 * '?' (not decoded), *query_len to its length.
 */
long wsgi_path_decode(const char *target, size_t target_len, char *out, const char **query,
                      size_t *query_len);

#endif
