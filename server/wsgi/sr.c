/*
 * The start_response callable and write() (PEP 3333 "The start_response()
 * Callable"). Headers are checked when they are given, so a bad header is an
 * exception in the app (a 500 with a traceback), never a broken response or a
 * header injected through CR/LF.
 */
#include "server/wsgi/types.h"

#include <errno.h>
#include <string.h>
#include <structmember.h>
#include <strings.h>

static PyObject *sr_gone(void)
{
    PyErr_SetString(PyExc_OSError, "write() used after its request ended");
    return NULL;
}

/* RFC 9110 token characters, for header names. */
static int is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9') return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Header values: visible latin-1, space and tab; no CR, LF or other controls. */
static int valid_value(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    if (kind == PyUnicode_1BYTE_KIND) { /* all of them in practice: no per-character kind switch */
        const unsigned char *b = PyUnicode_1BYTE_DATA(s);
        for (Py_ssize_t i = 0; i < n; i++)
            if (b[i] == 0x7f || (b[i] < 0x20 && b[i] != '\t')) return 0;
        return 1;
    }
    const void *d = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, d, i);
        if (c > 0xff || c == 0x7f || (c < 0x20 && c != '\t')) return 0;
    }
    return 1;
}

static int valid_name(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *d = PyUnicode_DATA(s);
    if (!n) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, d, i);
        if (c > 0x7f || !is_tchar((unsigned char)c)) return 0;
    }
    return 1;
}

static int check_status(PyObject *status)
{
    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "status must be str, not %s", Py_TYPE(status)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8(status);
    if (!s) return -1;
    if (strlen(s) < 4 || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
        s[2] > '9' || s[3] != ' ' || !valid_value(status)) {
        PyErr_Format(PyExc_ValueError, "status '%s' is not '<3 digits> <reason>'", s);
        return -1;
    }
    return 0;
}

/* Parses a Content-Length value the app gave; -1 with ValueError when bad. */
static int64_t parse_length(PyObject *v)
{
    const char *s = PyUnicode_AsUTF8(v);
    if (!s) return -1;
    int64_t n = 0;
    if (!*s) goto bad;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10) goto bad;
        n = n * 10 + (*p - '0');
    }
    return n;
bad:
    PyErr_Format(PyExc_ValueError, "Content-Length '%s' is not a byte count", s);
    return -1;
}

/* Copies and checks the header list; sets sr->declared. New list or NULL. */
static PyObject *check_headers(wsgi_sr *sr, PyObject *headers)
{
    if (!PyList_CheckExact(headers))
        return PyErr_Format(PyExc_TypeError, "headers must be a list, not %s",
                            Py_TYPE(headers)->tp_name);
    PyObject *copy = PyList_GetSlice(headers, 0, PyList_GET_SIZE(headers));
    if (!copy) return NULL;
    int64_t declared = -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(copy); i++) {
        PyObject *h = PyList_GET_ITEM(copy, i);
        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(h, 0)) || !PyUnicode_Check(PyTuple_GET_ITEM(h, 1))) {
            PyErr_Format(PyExc_TypeError, "header %zd is not a (str, str) tuple: %R", i, h);
            goto fail;
        }
        PyObject *name = PyTuple_GET_ITEM(h, 0), *value = PyTuple_GET_ITEM(h, 1);
        if (!valid_name(name)) {
            PyErr_Format(PyExc_ValueError, "bad header name %R", name);
            goto fail;
        }
        if (!valid_value(value)) {
            PyErr_Format(PyExc_ValueError,
                         "header %U: value has CR, LF, controls or non-latin-1 "
                         "characters: %R",
                         name, value);
            goto fail;
        }
        if (PyUnicode_GET_LENGTH(name) == 14 &&
            !strcasecmp(PyUnicode_AsUTF8(name), "content-length")) {
            if ((declared = parse_length(value)) < 0) goto fail;
        }
    }
    sr->declared = declared;
    return copy;
fail:
    Py_DECREF(copy);
    return NULL;
}

static PyObject *sr_write_method(wsgi_sr *sr, PyObject *data);

static PyMethodDef sr_write_def = {"write", (PyCFunction)sr_write_method, METH_O,
                                   "write(bytes): the legacy imperative body"};

static PyObject *sr_start(wsgi_sr *sr, PyObject *status, PyObject *headers, PyObject *exc_info)
{
    if (exc_info != Py_None) {
        if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3)
            return PyErr_Format(PyExc_TypeError, "exc_info must be a 3-tuple or None");
        if (sr->sent) {
            /* Too late to change the status: re-raise the app's exception (PEP 3333). */
            PyObject *t = PyTuple_GET_ITEM(exc_info, 0), *v = PyTuple_GET_ITEM(exc_info, 1),
                     *tb = PyTuple_GET_ITEM(exc_info, 2);
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb == Py_None ? (Py_DECREF(tb), NULL) : tb);
            return NULL;
        }
    } else if (sr->status) {
        PyErr_SetString(PyExc_AssertionError,
                        "start_response() called a second time without exc_info");
        return NULL;
    }
    if (check_status(status)) return NULL;
    PyObject *copy = check_headers(sr, headers);
    if (!copy) return NULL;
    Py_INCREF(status);
    Py_XSETREF(sr->status, status);
    Py_XSETREF(sr->headers, copy);
    /* sr.write, made as attribute access would make it, without looking it up */
    return PyCFunction_NewEx(&sr_write_def, (PyObject *)sr, NULL);
}

static PyObject *sr_call(wsgi_sr *sr, PyObject *args, PyObject *kw)
{
    static char *names[] = {"status", "response_headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:start_response", names, &status, &headers,
                                     &exc_info))
        return NULL;
    return sr_start(sr, status, headers, exc_info);
}

/* The same call without the argument tuple and dict tp_call needs (apps call
 * start_response once a request). */
static PyObject *sr_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames)
{
    static const char *const names[] = {"status", "response_headers", "exc_info"};
    PyObject *v[3] = {NULL, NULL, NULL};
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs > 3)
        return PyErr_Format(PyExc_TypeError,
                            "start_response() takes at most 3 arguments (%zd given)", nargs);
    for (Py_ssize_t i = 0; i < nargs; i++) v[i] = args[i];
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, j);
        int slot = -1;
        for (int k = 0; k < 3 && slot < 0; k++)
            if (!PyUnicode_CompareWithASCIIString(name, names[k])) slot = k;
        if (slot < 0)
            return PyErr_Format(PyExc_TypeError,
                                "start_response() got an unexpected keyword argument '%U'", name);
        if (v[slot])
            return PyErr_Format(PyExc_TypeError,
                                "argument for start_response() given by name ('%U') and position",
                                name);
        v[slot] = args[nargs + j];
    }
    for (int k = 0; k < 2; k++)
        if (!v[k])
            return PyErr_Format(PyExc_TypeError, "start_response() missing required argument '%s'",
                                names[k]);
    return sr_start((wsgi_sr *)self, v[0], v[1], v[2] ? v[2] : Py_None);
}

void wsgi_sr_init(wsgi_sr *sr)
{
    sr->vectorcall = sr_vectorcall;
    sr->head = sr->sent = sr->gone = 0;
    sr->declared = -1;
    sr->written = 0;
}

static int is_hop_by_hop(const char *name, size_t n)
{
    static const struct {
        const char *name;
        size_t n;
    } hop[] = {{"connection", 10}, {"keep-alive", 10},        {"proxy-connection", 16},
               {"te", 2},          {"transfer-encoding", 17}, {"trailer", 7},
               {"upgrade", 7},     {"content-length", 14}};
    for (size_t i = 0; i < sizeof(hop) / sizeof(*hop); i++)
        if (hop[i].n == n && !strcasecmp(name, hop[i].name)) return 1;
    return 0;
}

int wsgi_sr_send_headers(wsgi_sr *sr, int64_t known)
{
    if (sr->sent) return 0;
    if (!sr->io) return sr_gone(), -1;
    if (!sr->status) {
        PyErr_SetString(PyExc_AssertionError,
                        "the app sent a body before calling start_response()");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(sr->headers), k = 0;
    wsgi_header few[16];
    wsgi_header *h = n <= 16 ? few : PyMem_Calloc((size_t)n, sizeof(*h));
    if (!h) return PyErr_NoMemory(), -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(sr->headers, i);
        Py_ssize_t nl, vl;
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(t, 0), &nl);
        /* Values are latin-1 code points; UCS1 strings hold exactly those bytes. */
        PyObject *v = PyTuple_GET_ITEM(t, 1);
        if (!name || is_hop_by_hop(name, (size_t)nl)) continue;
        if (PyUnicode_KIND(v) != PyUnicode_1BYTE_KIND) continue; /* empty or checked */
        vl = PyUnicode_GET_LENGTH(v);
        h[k++] = (wsgi_header){name, (size_t)nl, (const char *)PyUnicode_1BYTE_DATA(v), (size_t)vl};
    }
    /* check_status let through latin-1 only, so the str is UCS1: its data
     * are the bytes the reason phrase goes out as */
    Py_ssize_t slen = PyUnicode_GET_LENGTH(sr->status);
    const char *status = (const char *)PyUnicode_1BYTE_DATA(sr->status);
    int code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    int64_t cl = sr->declared >= 0 ? sr->declared : known;
    const wsgi_io *io = sr->io;
    int r;
    /* The strings stay alive: sr holds status and headers, and we hold sr. */
    Py_BEGIN_ALLOW_THREADS r =
        io->start(io->ctx, code, status + 4, (size_t)slen - 4, h, (size_t)k, cl);
    Py_END_ALLOW_THREADS if (h != few) PyMem_Free(h);
    sr->sent = 1;
    if (r) {
        sr->gone = 1;
        PyErr_Format(PyExc_OSError, "client disconnected: %s", strerror(-r));
        return -1;
    }
    return 0;
}

int wsgi_sr_write(wsgi_sr *sr, const char *data, size_t n, int64_t known)
{
    if (!sr->io) return sr_gone(), -1;
    if (sr->gone) {
        PyErr_SetString(PyExc_OSError, "client disconnected");
        return -1;
    }
    if (wsgi_sr_send_headers(sr, known)) return -1;
    if (sr->head || !n) return 0;
    if (sr->declared >= 0 && (int64_t)n > sr->declared - sr->written) {
        /* PEP 3333: never send more than the declared Content-Length. */
        wsgi_log(sr->io, "wsgi: the app sent more than its Content-Length (%lld); extra dropped",
                 (long long)sr->declared);
        n = (size_t)(sr->declared - sr->written);
        if (!n) return 0;
    }
    const wsgi_io *io = sr->io;
    int r;
    Py_BEGIN_ALLOW_THREADS r = io->write(io->ctx, data, n);
    Py_END_ALLOW_THREADS if (r)
    {
        sr->gone = 1;
        PyErr_Format(PyExc_OSError, "client disconnected: %s", strerror(-r));
        return -1;
    }
    sr->written += (int64_t)n;
    return 0;
}

static PyObject *sr_write_method(wsgi_sr *sr, PyObject *data)
{
    Py_buffer view;
    if (!sr->status) {
        PyErr_SetString(PyExc_AssertionError, "write() called before start_response()");
        return NULL;
    }
    if (!PyBytes_Check(data))
        return PyErr_Format(PyExc_TypeError, "write() takes bytes, not %s", Py_TYPE(data)->tp_name);
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)) return NULL;
    int r = wsgi_sr_write(sr, view.buf, (size_t)view.len, -1);
    PyBuffer_Release(&view);
    if (r) return NULL;
    Py_RETURN_NONE;
}

static int sr_traverse(wsgi_sr *sr, visitproc visit, void *arg)
{
    Py_VISIT(sr->status);
    Py_VISIT(sr->headers);
    Py_VISIT(Py_TYPE(sr));
    return 0;
}

static int sr_clear(wsgi_sr *sr)
{
    Py_CLEAR(sr->status);
    Py_CLEAR(sr->headers);
    return 0;
}

static void sr_dealloc(wsgi_sr *sr)
{
    PyTypeObject *tp = Py_TYPE(sr);
    PyObject_GC_UnTrack(sr);
    sr_clear(sr);
    tp->tp_free(sr);
    Py_DECREF(tp);
}

static PyMethodDef sr_methods[] = {
    {"write", (PyCFunction)sr_write_method, METH_O, "write(bytes): the legacy imperative body"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef sr_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(wsgi_sr, vectorcall), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sr_slots[] = {
    {Py_tp_call, sr_call},
    {Py_tp_dealloc, sr_dealloc},
    {Py_tp_traverse, sr_traverse},
    {Py_tp_clear, sr_clear},
    {Py_tp_methods, sr_methods},
    {Py_tp_members, sr_members},
    {Py_tp_doc, "start_response(status, response_headers, exc_info=None) -> write"},
    {0, NULL},
};

PyType_Spec wsgi_sr_spec = {"aiserve.StartResponse", sizeof(wsgi_sr), 0,
                            Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
                            sr_slots};
