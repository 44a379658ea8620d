/*
 * wsgi_types: the Python objects of one WSGI request (private to wsgi_*.c).
 *
 *   Input          wsgi.input: read/readline/readlines/iteration over the body,
 *                  b"" at its end.
 *   Errors         wsgi.errors: a text stream into the server's log.
 *   FileWrapper    wsgi.file_wrapper: iterates a file; wsgi_call sends it with
 *                  sendfile when it has a real descriptor.
 *   StartResponse  the start_response callable; its write method is the
 *                  legacy write().
 *
 * Lifetime hazard: an app may keep environ (and so these objects) after the
 * request ends. wsgi_call detaches them (io = NULL) before it returns; a
 * detached object raises OSError instead of touching a freed request.
 */
#ifndef SERVER_WSGI_TYPES_H
#define SERVER_WSGI_TYPES_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "lib/buf.h"
#include "server/wsgi/call.h"

/* The environ's keys, made once as interned str (hash cached, and equal by
 * identity to the literals an app looks them up with). */
#define WSGI_KEYS(X)                                                                               \
    X(REQUEST_METHOD, "REQUEST_METHOD")                                                            \
    X(SCRIPT_NAME, "SCRIPT_NAME")                                                                  \
    X(PATH_INFO, "PATH_INFO")                                                                      \
    X(QUERY_STRING, "QUERY_STRING")                                                                \
    X(REQUEST_URI, "REQUEST_URI")                                                                  \
    X(RAW_URI, "RAW_URI")                                                                          \
    X(SERVER_PROTOCOL, "SERVER_PROTOCOL")                                                          \
    X(SERVER_SOFTWARE, "SERVER_SOFTWARE")                                                          \
    X(SERVER_NAME, "SERVER_NAME")                                                                  \
    X(SERVER_PORT, "SERVER_PORT")                                                                  \
    X(REMOTE_ADDR, "REMOTE_ADDR")                                                                  \
    X(REMOTE_PORT, "REMOTE_PORT")                                                                  \
    X(CONTENT_TYPE, "CONTENT_TYPE")                                                                \
    X(CONTENT_LENGTH, "CONTENT_LENGTH")                                                            \
    X(HTTPS, "HTTPS")                                                                              \
    X(HTTPS_DN, "HTTPS_DN")                                                                        \
    X(HTTP_X_REQUEST_ID, "HTTP_X_REQUEST_ID")                                                      \
    X(VERSION, "wsgi.version")                                                                     \
    X(URL_SCHEME, "wsgi.url_scheme")                                                               \
    X(INPUT, "wsgi.input")                                                                         \
    X(ERRORS, "wsgi.errors")                                                                       \
    X(MULTITHREAD, "wsgi.multithread")                                                             \
    X(MULTIPROCESS, "wsgi.multiprocess")                                                           \
    X(RUN_ONCE, "wsgi.run_once")                                                                   \
    X(INPUT_TERMINATED, "wsgi.input_terminated")                                                   \
    X(FILE_WRAPPER, "wsgi.file_wrapper")

#define WSGI_KEY_ENUM(id, s) WK_##id,
enum { WSGI_KEYS(WSGI_KEY_ENUM) WK_COUNT };

/* Values that recur from request to request, as interned str. */
#define WSGI_VALUES(X)                                                                             \
    X(EMPTY, "")                                                                                   \
    X(SLASH, "/")                                                                                  \
    X(GET, "GET")                                                                                  \
    X(POST, "POST")                                                                                \
    X(HEAD, "HEAD")                                                                                \
    X(HTTP, "http")                                                                                \
    X(HTTPS, "https")                                                                              \
    X(HTTP10, "HTTP/1.0")                                                                          \
    X(HTTP11, "HTTP/1.1")                                                                          \
    X(ON, "on")                                                                                    \
    X(LOCALHOST, "localhost")                                                                      \
    X(CLOSE, "close")

#define WSGI_VALUE_ENUM(id, s) WV_##id,
enum { WSGI_VALUES(WSGI_VALUE_ENUM) WV_COUNT };

/* The request headers most clients send: their environ keys, made once. */
#define WSGI_HEADER_KEYS(X)                                                                        \
    X("Host", "HTTP_HOST")                                                                         \
    X("User-Agent", "HTTP_USER_AGENT")                                                             \
    X("Accept", "HTTP_ACCEPT")                                                                     \
    X("Accept-Encoding", "HTTP_ACCEPT_ENCODING")                                                   \
    X("Accept-Language", "HTTP_ACCEPT_LANGUAGE")                                                   \
    X("Connection", "HTTP_CONNECTION")                                                             \
    X("Cookie", "HTTP_COOKIE")                                                                     \
    X("Referer", "HTTP_REFERER")                                                                   \
    X("Origin", "HTTP_ORIGIN")                                                                     \
    X("Authorization", "HTTP_AUTHORIZATION")                                                       \
    X("Cache-Control", "HTTP_CACHE_CONTROL")                                                       \
    X("X-Forwarded-For", "HTTP_X_FORWARDED_FOR")                                                   \
    X("X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO")                                               \
    X("X-Real-Ip", "HTTP_X_REAL_IP")                                                               \
    X("If-None-Match", "HTTP_IF_NONE_MATCH")                                                       \
    X("If-Modified-Since", "HTTP_IF_MODIFIED_SINCE")

#define WSGI_HEADER_ENUM(name, key) +1
enum { WH_COUNT = 0 WSGI_HEADER_KEYS(WSGI_HEADER_ENUM) };

/* The last string made for a value that rarely changes (the server's name and
 * port, the front end's address): reused while the bytes are the same. */
typedef struct wsgi_memo {
    PyObject *obj;
    size_t n;
    char s[48];
} wsgi_memo;

struct wsgi_types {
    PyTypeObject *input;
    PyTypeObject *errors;
    PyTypeObject *file_wrapper;
    PyTypeObject *start_response;
    PyObject *version; /* (1, 0) */
    PyObject *key[WK_COUNT];
    PyObject *value[WV_COUNT];
    PyObject *header_key[WH_COUNT];
    /* The environ every request starts as a copy of: the keys every request
     * has, with the constant values (None where call.c always sets one). */
    PyObject *environ;
    wsgi_flags environ_flags; /* the flags environ was made for */
    wsgi_memo server_name, server_port, remote_addr;
    /* A request's objects that no one kept, for the next request (call.c). */
    PyObject *spare_input, *spare_errors, *spare_sr;
};

/* Header name -> its environ key when it is one of WSGI_HEADER_KEYS, else NULL (borrowed). */
PyObject *wsgi_types_header_key(const wsgi_types *t, const char *name, size_t n);

typedef struct wsgi_input {
    PyObject_HEAD const wsgi_io *io;
    buf pending;   /* read from the client, not yet given to the app */
    size_t off;    /* consumed prefix of pending */
    int eof;       /* io->read returned 0 */
    int error;     /* -errno from io->read, sticky */
    int64_t total; /* bytes handed to the app */
} wsgi_input;

typedef struct wsgi_errors {
    PyObject_HEAD const wsgi_io *io;
    buf line; /* text up to the next newline */
} wsgi_errors;

typedef struct wsgi_file_wrapper {
    PyObject_HEAD PyObject *filelike;
    Py_ssize_t blksize;
} wsgi_file_wrapper;

typedef struct wsgi_sr {
    PyObject_HEAD const wsgi_io *io;
    vectorcallfunc vectorcall; /* the call without an argument tuple */
    PyObject *status;          /* str, set by start_response */
    PyObject *headers;         /* list of (str, str) */
    int head;                  /* HEAD request: headers only */
    int sent;                  /* headers went out */
    int gone;                  /* a write failed: the client is gone */
    int64_t declared;          /* Content-Length from the app, or -1 */
    int64_t written;           /* body bytes passed to io->write */
} wsgi_sr;

/* Readies a start_response object, new or kept from a finished request
 * (status and headers cleared), for a request. */
void wsgi_sr_init(wsgi_sr *sr);

/* Sends the headers if not yet sent; known is the body size if the caller
 * knows it, else -1. 0, or -1 with a Python error set. */
int wsgi_sr_send_headers(wsgi_sr *sr, int64_t known);
/* Sends body bytes (headers first if needed), honouring HEAD and the declared
 * length. 0, or -1 with OSError set when the client is gone. */
int wsgi_sr_write(wsgi_sr *sr, const char *data, size_t n, int64_t known);

/* Logs what wsgi.errors holds, a last line without its newline too (its flush()). */
void wsgi_errors_flush(wsgi_errors *e);

/* Logs the current Python exception with its traceback (clears it). */
void wsgi_log_exception(const wsgi_io *io, const char *what);
void wsgi_log(const wsgi_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
