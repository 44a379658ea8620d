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

struct wsgi_types {
    PyTypeObject *input;
    PyTypeObject *errors;
    PyTypeObject *file_wrapper;
    PyTypeObject *start_response;
    PyObject *version; /* (1, 0) */
};

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
    PyObject *status;  /* str, set by start_response */
    PyObject *headers; /* list of (str, str) */
    int head;          /* HEAD request: headers only */
    int sent;          /* headers went out */
    int gone;          /* a write failed: the client is gone */
    int64_t declared;  /* Content-Length from the app, or -1 */
    int64_t written;   /* body bytes passed to io->write */
} wsgi_sr;

/* Sends the headers if not yet sent; known is the body size if the caller
 * knows it, else -1. 0, or -1 with a Python error set. */
int wsgi_sr_send_headers(wsgi_sr *sr, int64_t known);
/* Sends body bytes (headers first if needed), honouring HEAD and the declared
 * length. 0, or -1 with OSError set when the client is gone. */
int wsgi_sr_write(wsgi_sr *sr, const char *data, size_t n, int64_t known);

/* Logs the current Python exception with its traceback (clears it). */
void wsgi_log_exception(const wsgi_io *io, const char *what);
void wsgi_log(const wsgi_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
