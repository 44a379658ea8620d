#include "server/wsgi/types.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <structmember.h>

#define INPUT_CHUNK 65536

void wsgi_log(const wsgi_io *io, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof(msg)) n = sizeof(msg) - 1;
    if (io && io->log)
        io->log(io->ctx, msg, (size_t)n);
    else
        fprintf(stderr, "%s\n", msg);
}

/* Each traceback line goes to the log as its own line, so log prefixes stay aligned. */
void wsgi_log_exception(const wsgi_io *io, const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type) return;
    PyErr_NormalizeException(&type, &value, &tb);
    wsgi_log(io, "%s", what);
    PyObject *mod = PyImport_ImportModule("traceback");
    PyObject *lines = mod ? PyObject_CallMethod(mod, "format_exception", "OOO", type,
                                                value ? value : Py_None, tb ? tb : Py_None)
                          : NULL;
    PyObject *sep = lines ? PyUnicode_FromString("") : NULL;
    PyObject *text = sep ? PyUnicode_Join(sep, lines) : NULL;
    Py_XDECREF(sep);
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    if (s) {
        while (*s) {
            const char *nl = strchr(s, '\n');
            size_t n = nl ? (size_t)(nl - s) : strlen(s);
            if (io && io->log)
                io->log(io->ctx, s, n);
            else
                fprintf(stderr, "%.*s\n", (int)n, s);
            s += n + (nl ? 1 : 0);
        }
    } else {
        PyErr_Clear();
        wsgi_log(io, "(the traceback could not be formatted)");
    }
    Py_XDECREF(text);
    Py_XDECREF(lines);
    Py_XDECREF(mod);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* ---- wsgi.input ---------------------------------------------------------- */

static PyObject *input_gone(void)
{
    PyErr_SetString(PyExc_OSError, "wsgi.input used after its request ended");
    return NULL;
}

/* Reads one more piece of the body into pending, without the GIL. 1 read, 0 EOF, -1 error. */
static int input_fill(wsgi_input *in)
{
    if (in->eof) return 0;
    if (in->error) goto error;
    if (in->off && in->off == in->pending.len) {
        buf_reset(&in->pending);
        in->off = 0;
    }
    if (buf_reserve(&in->pending, INPUT_CHUNK)) {
        PyErr_NoMemory();
        return -1;
    }
    long r;
    const wsgi_io *io = in->io;
    char *dst = in->pending.data + in->pending.len;
    Py_BEGIN_ALLOW_THREADS r = io->read(io->ctx, dst, INPUT_CHUNK);
    Py_END_ALLOW_THREADS if (r > 0)
    {
        in->pending.len += (size_t)r;
        return 1;
    }
    if (r == 0) {
        in->eof = 1;
        return 0;
    }
    in->error = (int)r;
error:
    PyErr_Format(PyExc_OSError, "reading the request body failed: %s", strerror(-in->error));
    return -1;
}

/* Takes n buffered bytes (n <= available) as a bytes object. */
static PyObject *input_take(wsgi_input *in, size_t n)
{
    PyObject *b = PyBytes_FromStringAndSize(in->pending.data + in->off, (Py_ssize_t)n);
    if (b) {
        in->off += n;
        in->total += (int64_t)n;
    }
    return b;
}

static int parse_size(PyObject *arg, Py_ssize_t *size)
{
    *size = -1;
    if (!arg || arg == Py_None) return 0;
    if (!PyLong_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "size must be an integer or None");
        return -1;
    }
    *size = PyLong_AsSsize_t(arg);
    return *size == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *input_read(wsgi_input *in, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size;
    if (nargs > 1) return PyErr_Format(PyExc_TypeError, "read() takes at most 1 argument");
    if (parse_size(nargs ? args[0] : NULL, &size)) return NULL;
    if (!in->io) return input_gone();
    /* read(n) gives n bytes unless the body ends first, like a buffered file. */
    for (;;) {
        size_t have = in->pending.len - in->off;
        if (size >= 0 && have >= (size_t)size) return input_take(in, (size_t)size);
        int r = input_fill(in);
        if (r < 0) return NULL;
        if (r == 0) return input_take(in, in->pending.len - in->off);
    }
}

static PyObject *input_readline_impl(wsgi_input *in, Py_ssize_t size)
{
    if (!in->io) return input_gone();
    size_t scanned = 0;
    for (;;) {
        size_t have = in->pending.len - in->off;
        const char *start = in->pending.data ? in->pending.data + in->off : NULL;
        const char *nl = have > scanned ? memchr(start + scanned, '\n', have - scanned) : NULL;
        size_t want = nl ? (size_t)(nl - start) + 1 : 0;
        if (size >= 0 && (want ? want : have) >= (size_t)size) return input_take(in, (size_t)size);
        if (nl) return input_take(in, want);
        scanned = have;
        int r = input_fill(in);
        if (r < 0) return NULL;
        if (r == 0) return input_take(in, in->pending.len - in->off);
    }
}

static PyObject *input_readline(wsgi_input *in, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size;
    if (nargs > 1) return PyErr_Format(PyExc_TypeError, "readline() takes at most 1 argument");
    if (parse_size(nargs ? args[0] : NULL, &size)) return NULL;
    return input_readline_impl(in, size);
}

static PyObject *input_readlines(wsgi_input *in, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t hint;
    if (nargs > 1) return PyErr_Format(PyExc_TypeError, "readlines() takes at most 1 argument");
    if (parse_size(nargs ? args[0] : NULL, &hint)) return NULL;
    PyObject *list = PyList_New(0);
    Py_ssize_t total = 0;
    while (list) {
        PyObject *line = input_readline_impl(in, -1);
        if (!line) {
            Py_CLEAR(list);
            break;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n == 0) {
            Py_DECREF(line);
            break;
        }
        int r = PyList_Append(list, line);
        Py_DECREF(line);
        if (r) Py_CLEAR(list);
        total += n;
        if (hint > 0 && total >= hint) break;
    }
    return list;
}

static PyObject *input_iternext(wsgi_input *in)
{
    PyObject *line = input_readline_impl(in, -1);
    if (line && PyBytes_GET_SIZE(line) == 0) Py_CLEAR(line); /* NULL, no error: StopIteration */
    return line;
}

static void input_dealloc(wsgi_input *in)
{
    PyTypeObject *tp = Py_TYPE(in);
    buf_free(&in->pending);
    tp->tp_free(in);
    Py_DECREF(tp);
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL, "read([size]) -> bytes"},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
     "readline([size]) -> bytes"},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
     "readlines([hint]) -> list of bytes"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot input_slots[] = {
    {Py_tp_dealloc, input_dealloc},   {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, input_iternext}, {Py_tp_methods, input_methods},
    {Py_tp_doc, "wsgi.input"},        {0, NULL},
};

static PyType_Spec input_spec = {"aiserve.Input", sizeof(wsgi_input), 0, Py_TPFLAGS_DEFAULT,
                                 input_slots};

/* ---- wsgi.errors --------------------------------------------------------- */

static void errors_flush_lines(wsgi_errors *e, int all)
{
    for (;;) {
        char *nl = e->line.len ? memchr(e->line.data, '\n', e->line.len) : NULL;
        if (!nl && !(all && e->line.len)) return;
        size_t n = nl ? (size_t)(nl - e->line.data) : e->line.len;
        if (e->io && e->io->log)
            e->io->log(e->io->ctx, e->line.data, n);
        else
            fprintf(stderr, "%.*s\n", (int)n, e->line.data);
        buf_consume(&e->line, nl ? n + 1 : n);
    }
}

static PyObject *errors_write(wsgi_errors *e, PyObject *s)
{
    if (!PyUnicode_Check(s))
        return PyErr_Format(PyExc_TypeError, "wsgi.errors.write() takes str, not %s",
                            Py_TYPE(s)->tp_name);
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (!u) return NULL;
    if (buf_append(&e->line, u, (size_t)n)) return PyErr_NoMemory();
    errors_flush_lines(e, 0);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(s));
}

static PyObject *errors_writelines(wsgi_errors *e, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq), *item;
    if (!it) return NULL;
    while ((item = PyIter_Next(it))) {
        PyObject *r = errors_write(e, item);
        Py_DECREF(item);
        if (!r) break;
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyObject *errors_flush(wsgi_errors *e, PyObject *unused)
{
    (void)unused;
    errors_flush_lines(e, 1);
    Py_RETURN_NONE;
}

void wsgi_errors_flush(wsgi_errors *e)
{
    errors_flush_lines(e, 1);
}

static void errors_dealloc(wsgi_errors *e)
{
    PyTypeObject *tp = Py_TYPE(e);
    e->io = NULL;
    errors_flush_lines(e, 1);
    buf_free(&e->line);
    tp->tp_free(e);
    Py_DECREF(tp);
}

static PyMethodDef errors_methods[] = {
    {"write", (PyCFunction)errors_write, METH_O, "write(str)"},
    {"writelines", (PyCFunction)errors_writelines, METH_O, "writelines(iterable of str)"},
    {"flush", (PyCFunction)errors_flush, METH_NOARGS, "flush()"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot errors_slots[] = {
    {Py_tp_dealloc, errors_dealloc},
    {Py_tp_methods, errors_methods},
    {Py_tp_doc, "wsgi.errors: lines go to the aiserve log"},
    {0, NULL},
};

static PyType_Spec errors_spec = {"aiserve.Errors", sizeof(wsgi_errors), 0, Py_TPFLAGS_DEFAULT,
                                  errors_slots};

/* ---- wsgi.file_wrapper --------------------------------------------------- */

static PyObject *fw_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    static char *names[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n:file_wrapper", names, &filelike, &blksize))
        return NULL;
    if (blksize <= 0) return PyErr_Format(PyExc_ValueError, "blksize must be positive");
    wsgi_file_wrapper *fw = (wsgi_file_wrapper *)tp->tp_alloc(tp, 0);
    if (!fw) return NULL;
    Py_INCREF(filelike);
    fw->filelike = filelike;
    fw->blksize = blksize;
    return (PyObject *)fw;
}

static PyObject *fw_iternext(wsgi_file_wrapper *fw)
{
    PyObject *data = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
    if (!data) return NULL;
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "file_wrapper: read() returned %s, not bytes",
                     Py_TYPE(data)->tp_name);
        Py_DECREF(data);
        return NULL;
    }
    if (PyBytes_GET_SIZE(data) == 0) Py_CLEAR(data);
    return data;
}

static PyObject *fw_close(wsgi_file_wrapper *fw, PyObject *unused)
{
    (void)unused;
    if (!PyObject_HasAttrString(fw->filelike, "close")) Py_RETURN_NONE;
    return PyObject_CallMethod(fw->filelike, "close", NULL);
}

static int fw_traverse(wsgi_file_wrapper *fw, visitproc visit, void *arg)
{
    Py_VISIT(fw->filelike);
    Py_VISIT(Py_TYPE(fw));
    return 0;
}

static int fw_clear(wsgi_file_wrapper *fw)
{
    Py_CLEAR(fw->filelike);
    return 0;
}

static void fw_dealloc(wsgi_file_wrapper *fw)
{
    PyTypeObject *tp = Py_TYPE(fw);
    PyObject_GC_UnTrack(fw);
    fw_clear(fw);
    tp->tp_free(fw);
    Py_DECREF(tp);
}

static PyMethodDef fw_methods[] = {
    {"close", (PyCFunction)fw_close, METH_NOARGS, "close the wrapped file"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef fw_members[] = {
    {"filelike", T_OBJECT, offsetof(wsgi_file_wrapper, filelike), READONLY, NULL},
    {"blksize", T_PYSSIZET, offsetof(wsgi_file_wrapper, blksize), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot fw_slots[] = {
    {Py_tp_new, fw_new},
    {Py_tp_dealloc, fw_dealloc},
    {Py_tp_traverse, fw_traverse},
    {Py_tp_clear, fw_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, fw_iternext},
    {Py_tp_methods, fw_methods},
    {Py_tp_members, fw_members},
    {Py_tp_doc, "wsgi.file_wrapper(filelike, blksize=8192)"},
    {0, NULL},
};

static PyType_Spec fw_spec = {"aiserve.FileWrapper", sizeof(wsgi_file_wrapper), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC, fw_slots};

/* ---- wsgi_types ---------------------------------------------------------- */

extern PyType_Spec wsgi_sr_spec; /* sr.c */

#define KEY_NAME(id, str) str,
static const char *const key_names[WK_COUNT] = {WSGI_KEYS(KEY_NAME)};
static const char *const value_texts[WV_COUNT] = {WSGI_VALUES(KEY_NAME)};
#define HEADER_KEY(name, key) {name, sizeof(name) - 1, key},
static const struct {
    const char *name;
    size_t n;
    const char *key;
} header_keys[WH_COUNT] = {WSGI_HEADER_KEYS(HEADER_KEY)};

wsgi_types *wsgi_types_new(void)
{
    wsgi_types *t = PyMem_RawCalloc(1, sizeof(*t));
    if (!t) return (wsgi_types *)PyErr_NoMemory();
    t->input = (PyTypeObject *)PyType_FromSpec(&input_spec);
    t->errors = (PyTypeObject *)PyType_FromSpec(&errors_spec);
    t->file_wrapper = (PyTypeObject *)PyType_FromSpec(&fw_spec);
    t->start_response = (PyTypeObject *)PyType_FromSpec(&wsgi_sr_spec);
    t->version = Py_BuildValue("(ii)", 1, 0);
    if (!t->input || !t->errors || !t->file_wrapper || !t->start_response || !t->version) goto fail;
    for (size_t i = 0; i < WK_COUNT; i++)
        if (!(t->key[i] = PyUnicode_InternFromString(key_names[i]))) goto fail;
    for (size_t i = 0; i < WV_COUNT; i++)
        if (!(t->value[i] = PyUnicode_InternFromString(value_texts[i]))) goto fail;
    for (size_t i = 0; i < WH_COUNT; i++)
        if (!(t->header_key[i] = PyUnicode_InternFromString(header_keys[i].key))) goto fail;
    return t;
fail:
    wsgi_types_free(t);
    return NULL;
}

PyObject *wsgi_types_header_key(const wsgi_types *t, const char *name, size_t n)
{
    for (size_t i = 0; i < WH_COUNT; i++)
        if (header_keys[i].n == n && !strncasecmp(header_keys[i].name, name, n))
            return t->header_key[i];
    return NULL;
}

void wsgi_types_free(wsgi_types *t)
{
    if (!t) return;
    Py_CLEAR(t->spare_input);
    Py_CLEAR(t->spare_errors);
    Py_CLEAR(t->spare_sr);
    Py_XDECREF(t->input);
    Py_XDECREF(t->errors);
    Py_XDECREF(t->file_wrapper);
    Py_XDECREF(t->start_response);
    Py_XDECREF(t->version);
    for (size_t i = 0; i < WK_COUNT; i++) Py_XDECREF(t->key[i]);
    for (size_t i = 0; i < WV_COUNT; i++) Py_XDECREF(t->value[i]);
    for (size_t i = 0; i < WH_COUNT; i++) Py_XDECREF(t->header_key[i]);
    Py_XDECREF(t->environ);
    Py_XDECREF(t->server_name.obj);
    Py_XDECREF(t->server_port.obj);
    Py_XDECREF(t->remote_addr.obj);
    Py_XDECREF(t->spare_input);
    Py_XDECREF(t->spare_errors);
    Py_XDECREF(t->spare_sr);
    PyMem_RawFree(t);
}
