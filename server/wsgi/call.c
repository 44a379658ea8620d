/*
 * One WSGI request: build the environ, call the app, send what it returns,
 * and always call close() on the result (completion, error, disconnect).
 */
#include "server/wsgi/types.h"

#include "lib/pct.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifndef AISERVE_VERSION
#define AISERVE_VERSION "0"
#endif

long wsgi_path_decode(const char *target, size_t target_len, char *out, const char **query,
                      size_t *query_len)
{
    const char *p = target, *end = target + target_len;
    /* absolute-form ("http://host/path"): keep only the path. */
    if (target_len > 8 && (!strncasecmp(p, "http://", 7) || !strncasecmp(p, "https://", 8))) {
        p += p[4] == ':' ? 7 : 8;
        while (p < end && *p != '/' && *p != '?') p++;
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    const char *pend = q ? q : end;
    *query = q ? q + 1 : end;
    *query_len = q ? (size_t)(end - q - 1) : 0;
    long n = pct_decode(p, (size_t)(pend - p), out, (size_t)(pend - p), PCT_NO_NUL);
    if (n < 0) return -1;
    out[n] = '\0';
    return n;
}

/* Stores v (a new reference, or NULL after an error) under key. */
static int set_new(PyObject *env, PyObject *key, PyObject *v)
{
    if (!v) return -1;
    int r = PyDict_SetItem(env, key, v);
    Py_DECREF(v);
    return r;
}

/* latin-1 bytes as a str; the shared one for "" and "/". */
static PyObject *str_of(wsgi_types *t, const char *v, size_t n)
{
    if (n == 0) return Py_NewRef(t->value[WV_EMPTY]);
    if (n == 1 && *v == '/') return Py_NewRef(t->value[WV_SLASH]);
    return PyUnicode_DecodeLatin1(v, (Py_ssize_t)n, NULL);
}

static PyObject *method_of(wsgi_types *t, const char *v, size_t n)
{
    if (n == 3 && !memcmp(v, "GET", 3)) return Py_NewRef(t->value[WV_GET]);
    if (n == 4 && !memcmp(v, "POST", 4)) return Py_NewRef(t->value[WV_POST]);
    if (n == 4 && !memcmp(v, "HEAD", 4)) return Py_NewRef(t->value[WV_HEAD]);
    return PyUnicode_DecodeLatin1(v, (Py_ssize_t)n, NULL);
}

/* The memo's str while v is the same bytes, else a new one (kept when short). */
static PyObject *memo_str(wsgi_memo *m, const char *v, size_t n)
{
    if (m->obj && m->n == n && !memcmp(m->s, v, n)) return Py_NewRef(m->obj);
    PyObject *s = PyUnicode_DecodeLatin1(v, (Py_ssize_t)n, NULL);
    if (s && n <= sizeof(m->s)) {
        Py_XSETREF(m->obj, Py_NewRef(s));
        memcpy(m->s, v, n);
        m->n = n;
    }
    return s;
}

/* Decimal digits of v into out (room for 20); returns their count. */
static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static PyObject *port_of(int port)
{
    char num[20];
    return PyUnicode_DecodeLatin1(num, (Py_ssize_t)fmt_u64(num, port > 0 ? (uint64_t)port : 0),
                                  NULL);
}

/* "User-Agent" -> "HTTP_USER_AGENT". Names with '_' are dropped (X_Forwarded
 * would otherwise spoof X-Forwarded), and so are names that are not ASCII. */
static int header_key(char *out, size_t cap, const wsgi_header *h)
{
    if (h->name_len + 6 > cap) return -1;
    memcpy(out, "HTTP_", 5);
    for (size_t i = 0; i < h->name_len; i++) {
        unsigned char c = (unsigned char)h->name[i];
        if (c != '-' && !isalnum(c)) return -1; /* '_' or non-token bytes */
        out[5 + i] = c == '-' ? '_' : (char)toupper(c);
    }
    out[5 + h->name_len] = '\0';
    return 0;
}

static int add_header(PyObject *env, wsgi_types *t, const wsgi_header *h)
{
    if (h->name_len == 12 && !strncasecmp(h->name, "content-type", 12))
        return set_new(env, t->key[WK_CONTENT_TYPE], str_of(t, h->value, h->value_len));
    if (h->name_len == 14 && !strncasecmp(h->name, "content-length", 14)) return 0;
    PyObject *key = wsgi_types_header_key(t, h->name, h->name_len);
    if (key) {
        Py_INCREF(key);
    } else {
        char name[256];
        if (header_key(name, sizeof(name), h)) return 0;
        if (!(key = PyUnicode_DecodeLatin1(name, (Py_ssize_t)(h->name_len + 5), NULL))) return -1;
    }
    PyObject *v = str_of(t, h->value, h->value_len);
    PyObject *old = v ? PyDict_GetItemWithError(env, key) : NULL;
    if (old) { /* repeated header: one value, joined as RFC 9110 allows */
        const char *sep = PyUnicode_CompareWithASCIIString(key, "HTTP_COOKIE") ? ", " : "; ";
        PyObject *joined = PyUnicode_FromFormat("%U%s%U", old, sep, v);
        Py_DECREF(v);
        v = joined;
    }
    int r = v && !PyErr_Occurred() ? set_new(env, key, v) : (Py_XDECREF(v), -1);
    Py_DECREF(key);
    return r;
}

static int has_header(const wsgi_request *rq, const char *name, size_t n)
{
    for (size_t i = 0; i < rq->nheaders; i++)
        if (rq->headers[i].name_len == n && !strncasecmp(rq->headers[i].name, name, n)) return 1;
    return 0;
}

static int add_cgi(PyObject *env, wsgi_types *t, const wsgi_request *rq, const char *script,
                   size_t script_len, const char *path_info, size_t path_info_len,
                   const char *query, size_t qlen)
{
    PyObject *const *k = t->key;
    const char *sname = rq->server_name ? rq->server_name : "localhost";
    const char *raddr = rq->remote_addr ? rq->remote_addr : "";
    char num[20];
    size_t nlen = fmt_u64(num, rq->server_port > 0 ? (uint64_t)rq->server_port : 0);
    PyObject *uri = str_of(t, rq->target, rq->target_len); /* REQUEST_URI and RAW_URI */
    if (!uri) return -1;
    int r = PyDict_SetItem(env, k[WK_REQUEST_URI], uri) || PyDict_SetItem(env, k[WK_RAW_URI], uri);
    Py_DECREF(uri);
    if (r || set_new(env, k[WK_REQUEST_METHOD], method_of(t, rq->method, rq->method_len)) ||
        set_new(env, k[WK_SCRIPT_NAME], str_of(t, script, script_len)) ||
        set_new(env, k[WK_PATH_INFO], str_of(t, path_info, path_info_len)) ||
        set_new(env, k[WK_QUERY_STRING], str_of(t, query, qlen)) ||
        PyDict_SetItem(env, k[WK_SERVER_PROTOCOL],
                       t->value[rq->version_minor ? WV_HTTP11 : WV_HTTP10]) ||
        set_new(env, k[WK_SERVER_NAME], memo_str(&t->server_name, sname, strlen(sname))) ||
        set_new(env, k[WK_SERVER_PORT], memo_str(&t->server_port, num, nlen)) ||
        set_new(env, k[WK_REMOTE_ADDR], memo_str(&t->remote_addr, raddr, strlen(raddr))) ||
        set_new(env, k[WK_REMOTE_PORT], port_of(rq->remote_port)))
        return -1;
    /* Only when the client sent one: a GET has no CONTENT_LENGTH, not "0". */
    if (rq->content_length >= 0 && !rq->chunked && has_header(rq, "content-length", 14)) {
        nlen = fmt_u64(num, (uint64_t)rq->content_length);
        if (set_new(env, k[WK_CONTENT_LENGTH], PyUnicode_DecodeLatin1(num, (Py_ssize_t)nlen, NULL)))
            return -1;
    }
    if (rq->https && PyDict_SetItem(env, k[WK_HTTPS], t->value[WV_ON])) return -1;
    if (rq->https_dn &&
        set_new(env, k[WK_HTTPS_DN],
                PyUnicode_DecodeLatin1(rq->https_dn, (Py_ssize_t)strlen(rq->https_dn), NULL)))
        return -1;
    for (size_t i = 0; i < rq->nheaders; i++)
        if (add_header(env, t, &rq->headers[i])) return -1;
    /* after the headers: a made id replaces one the client sent unfit */
    if (rq->request_id &&
        set_new(env, k[WK_HTTP_X_REQUEST_ID],
                PyUnicode_DecodeLatin1(rq->request_id, (Py_ssize_t)strlen(rq->request_id), NULL)))
        return -1;
    return 0;
}

static int add_cgi_split(PyObject *env, wsgi_types *t, const wsgi_request *rq)
{
    return add_cgi(env, t, rq, rq->script_name ? rq->script_name : "", rq->script_name_len,
                   rq->path_info, rq->path_info_len, rq->query ? rq->query : "", rq->query_len);
}

/* Room in the environ's table for the keys every request has and a dozen
 * headers, so filling it never grows the table. */
#define ENVIRON_ROOM 40

/* The environ every request starts from (a copy of its table is one memcpy):
 * the keys each request has, with the values that never change; None where
 * add_cgi and add_wsgi always set the request's own. */
static PyObject *environ_template(wsgi_types *t, const wsgi_flags *fl)
{
    if (t->environ && t->environ_flags.multithread == fl->multithread &&
        t->environ_flags.multiprocess == fl->multiprocess &&
        t->environ_flags.no_file_wrapper == fl->no_file_wrapper)
        return t->environ;
    static const int per_request[] = {
        WK_REQUEST_METHOD, WK_SCRIPT_NAME, WK_PATH_INFO,   WK_QUERY_STRING,
        WK_REQUEST_URI,    WK_RAW_URI,     WK_SERVER_NAME, WK_SERVER_PORT,
        WK_REMOTE_ADDR,    WK_REMOTE_PORT, WK_INPUT,       WK_ERRORS,
    };
    PyObject *const *k = t->key;
#if PY_VERSION_HEX < 0x030D0000
    PyObject *e = _PyDict_NewPresized(ENVIRON_ROOM);
#else /* no longer public: the table grows while the template is made, once */
    PyObject *e = PyDict_New();
#endif
    if (!e) return NULL;
    int r = 0;
    for (size_t i = 0; i < sizeof(per_request) / sizeof(*per_request) && !r; i++)
        r = PyDict_SetItem(e, k[per_request[i]], Py_None);
    if (r || PyDict_SetItem(e, k[WK_SERVER_PROTOCOL], t->value[WV_HTTP11]) ||
        set_new(e, k[WK_SERVER_SOFTWARE], PyUnicode_FromString("aiserve/" AISERVE_VERSION)) ||
        PyDict_SetItem(e, k[WK_VERSION], t->version) ||
        PyDict_SetItem(e, k[WK_URL_SCHEME], t->value[WV_HTTP]) ||
        PyDict_SetItem(e, k[WK_MULTITHREAD], fl->multithread ? Py_True : Py_False) ||
        PyDict_SetItem(e, k[WK_MULTIPROCESS], fl->multiprocess ? Py_True : Py_False) ||
        PyDict_SetItem(e, k[WK_RUN_ONCE], Py_False) ||
        /* Always true of our input, but said only where it matters: with a
         * Content-Length, frameworks then wrap the input and read(n), which
         * wsgiref.validate insists on; they call read() here otherwise. */
        PyDict_SetItem(e, k[WK_INPUT_TERMINATED], Py_False) ||
        (!fl->no_file_wrapper &&
         PyDict_SetItem(e, k[WK_FILE_WRAPPER], (PyObject *)t->file_wrapper))) {
        Py_DECREF(e);
        return NULL;
    }
    Py_XSETREF(t->environ, e);
    t->environ_flags = *fl;
    return e;
}

static int add_wsgi(PyObject *env, wsgi_types *t, const wsgi_request *rq, PyObject *input,
                    PyObject *errors)
{
    PyObject *const *k = t->key;
    return PyDict_SetItem(env, k[WK_INPUT], input) || PyDict_SetItem(env, k[WK_ERRORS], errors) ||
           (rq->https && PyDict_SetItem(env, k[WK_URL_SCHEME], t->value[WV_HTTPS])) ||
           (rq->chunked && PyDict_SetItem(env, k[WK_INPUT_TERMINATED], Py_True));
}

/* The per-request objects; env owns input and errors, the caller owns sr. */
typedef struct call_state {
    wsgi_types *t;
    PyObject *env;
    wsgi_input *input;
    wsgi_errors *errors;
    wsgi_sr *sr;
} call_state;

/* The request's objects come from the last request that ended with no one
 * else holding them (see keep), else new: no allocation per request. */
static PyObject *reuse(PyObject **spare, PyTypeObject *tp, int gc)
{
    PyObject *o = *spare;
    *spare = NULL;
    return o ? o : gc ? PyType_GenericAlloc(tp, 0) : PyObject_New(PyObject, tp);
}

/* Keeps o (detached, its buffers freed) for the next request when nothing
 * but the request holds it: an app that kept it sees it detached for good. */
static void keep(PyObject **spare, PyObject *o)
{
    if (o && Py_REFCNT(o) == 1 && !*spare)
        *spare = o;
    else
        Py_XDECREF(o);
}

static int state_open(call_state *st, wsgi_types *t, const wsgi_request *rq, size_t script_len,
                      const wsgi_flags *fl, const wsgi_io *io)
{
    memset(st, 0, sizeof(*st));
    st->t = t;
    PyObject *tmpl = environ_template(t, fl);
    st->env = tmpl ? PyDict_Copy(tmpl) : NULL;
    st->input = (wsgi_input *)reuse(&t->spare_input, t->input, 0);
    st->errors = (wsgi_errors *)reuse(&t->spare_errors, t->errors, 0);
    st->sr = (wsgi_sr *)reuse(&t->spare_sr, t->start_response, 1);
    if (st->input) {
        st->input->io = io;
        st->input->pending = (buf)BUF_INIT;
        st->input->off = 0;
        st->input->total = 0;
        st->input->error = 0;
        st->input->eof = rq->content_length == 0 && !rq->chunked;
    }
    if (st->errors) {
        st->errors->io = io;
        st->errors->line = (buf)BUF_INIT;
    }
    if (!st->env || !st->input || !st->errors || !st->sr) return -1;
    st->sr->io = io;
    wsgi_sr_init(st->sr);
    st->sr->head = rq->method_len == 4 && !memcmp(rq->method, "HEAD", 4);
    if (rq->path_info) {
        if (add_cgi_split(st->env, t, rq) ||
            add_wsgi(st->env, t, rq, (PyObject *)st->input, (PyObject *)st->errors))
            return -1;
        return 0;
    }
    char *path = PyMem_Malloc(rq->target_len + 1);
    if (!path) return PyErr_NoMemory(), -1;
    const char *query;
    size_t qlen;
    long plen = wsgi_path_decode(rq->target, rq->target_len, path, &query, &qlen);
    int r = -1;
    if (plen < 0)
        PyErr_SetString(PyExc_ValueError, "bad percent-escape in the request path");
    else if ((size_t)plen < script_len)
        PyErr_SetString(PyExc_ValueError, "mount prefix longer than the path");
    else if (!add_cgi(st->env, t, rq, path, script_len, path + script_len,
                      (size_t)plen - script_len, query, qlen) &&
             !add_wsgi(st->env, t, rq, (PyObject *)st->input, (PyObject *)st->errors))
        r = 0;
    PyMem_Free(path);
    return r;
}

/* Detaches the objects an app may have kept from the request that is ending. */
static void state_close(call_state *st)
{
    if (st->input) st->input->io = NULL;
    if (st->errors) {
        wsgi_errors_flush(st->errors);
        st->errors->io = NULL;
    }
    if (st->sr) {
        st->sr->io = NULL;
        Py_CLEAR(st->sr->status);
        Py_CLEAR(st->sr->headers);
    }
    Py_XDECREF(st->env); /* first: it holds input and errors */
    if (st->input) buf_free(&st->input->pending);
    if (st->errors) buf_free(&st->errors->line);
    keep(&st->t->spare_input, (PyObject *)st->input);
    keep(&st->t->spare_errors, (PyObject *)st->errors);
    keep(&st->t->spare_sr, (PyObject *)st->sr);
}

void wsgi_call_error(const wsgi_io *io, int status, const char *body)
{
    static const wsgi_header ct = {"Content-Type", 12, "text/plain; charset=utf-8", 25};
    const char *reason = status == 500   ? "Internal Server Error"
                         : status == 400 ? "Bad Request"
                         : status == 413 ? "Content Too Large"
                         : status == 408 ? "Request Timeout"
                                         : "Error";
    size_t n = strlen(body);
    int r = io->start(io->ctx, status, reason, strlen(reason), &ct, 1, (int64_t)n);
    if (!r) r = io->write(io->ctx, body, n);
    io->finish(io->ctx, r == 0);
}

static wsgi_status fail_app(call_state *st, const wsgi_io *io, const char *what)
{
    int gone = st->sr->gone;
    if (gone)
        PyErr_Clear();
    else
        wsgi_log_exception(io, what);
    if (gone || st->sr->sent) {
        Py_BEGIN_ALLOW_THREADS io->finish(io->ctx, 0);
        Py_END_ALLOW_THREADS return gone ? WSGI_CLIENT_GONE : WSGI_BROKEN;
    }
    st->sr->sent = 1;
    /* When the app failed because the body could not be read, that is the
     * client's fault and the answer says so. */
    int in = st->input->error, status = 500;
    const char *body = "Internal Server Error\n";
    if (in == -EPROTO || in == -EINVAL || in == -EBADMSG)
        status = 400, body = "Bad Request: malformed request body\n";
    else if (in == -EMSGSIZE || in == -EFBIG)
        status = 413, body = "Content Too Large: the request body exceeds limit-post\n";
    else if (in == -ETIMEDOUT)
        status = 408, body = "Request Timeout: the request body stopped arriving\n";
    Py_BEGIN_ALLOW_THREADS wsgi_call_error(io, status, body);
    Py_END_ALLOW_THREADS return WSGI_APP_ERROR;
}

/* sendfile for wsgi.file_wrapper over a regular file: 1 sent, 0 not possible, -1 error. */
static int try_sendfile(call_state *st, PyObject *result, const wsgi_io *io)
{
    wsgi_file_wrapper *fw = (wsgi_file_wrapper *)result;
    PyObject *fd_obj = PyObject_CallMethod(fw->filelike, "fileno", NULL);
    int fd = fd_obj ? PyLong_AsLong(fd_obj) : -1;
    Py_XDECREF(fd_obj);
    struct stat stt;
    if (fd < 0 || fstat(fd, &stt) || !S_ISREG(stt.st_mode)) {
        PyErr_Clear();
        return 0;
    }
    PyObject *pos_obj = PyObject_CallMethod(fw->filelike, "tell", NULL);
    long long pos = pos_obj ? PyLong_AsLongLong(pos_obj) : 0;
    Py_XDECREF(pos_obj);
    if (pos < 0 || PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    int64_t len = stt.st_size > pos ? stt.st_size - pos : 0;
    if (st->sr->declared >= 0 && st->sr->declared < len) len = st->sr->declared;
    if (wsgi_sr_send_headers(st->sr, len)) return -1;
    if (st->sr->head || !len) return 1;
    int r;
    Py_BEGIN_ALLOW_THREADS r = io->sendfile(io->ctx, fd, pos, len);
    Py_END_ALLOW_THREADS if (r)
    {
        st->sr->gone = 1;
        PyErr_Format(PyExc_OSError, "client disconnected: %s", strerror(-r));
        return -1;
    }
    st->sr->written += len;
    return 1;
}

/* Iterates the result and sends each block at once (PEP 3333: no delaying). */
static int send_iterable(call_state *st, PyObject *result)
{
    int64_t known = -1;
    if ((PyList_CheckExact(result) || PyTuple_CheckExact(result)) &&
        PySequence_Fast_GET_SIZE(result) == 1 && PyBytes_Check(PySequence_Fast_ITEMS(result)[0]))
        known = PyBytes_GET_SIZE(PySequence_Fast_ITEMS(result)[0]);
    PyObject *it = PyObject_GetIter(result), *item;
    if (!it) return -1;
    while ((item = PyIter_Next(it))) {
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "the app yielded %s, not bytes", Py_TYPE(item)->tp_name);
            Py_DECREF(item);
            break;
        }
        int r = PyBytes_GET_SIZE(item) ? wsgi_sr_write(st->sr, PyBytes_AS_STRING(item),
                                                       (size_t)PyBytes_GET_SIZE(item), known)
                                       : 0;
        Py_DECREF(item);
        if (r) break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return -1;
    /* An empty body: the headers go out now, with Content-Length: 0. */
    return wsgi_sr_send_headers(st->sr, 0);
}

static void close_result(wsgi_types *t, PyObject *result, const wsgi_io *io)
{
    PyObject *close = PyObject_GetAttr(result, t->value[WV_CLOSE]);
    if (!close) { /* none: nothing to call (any error getting it is dropped, as hasattr does) */
        PyErr_Clear();
        return;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (!r)
        wsgi_log_exception(io, "wsgi: exception in the response's close()");
    else
        Py_DECREF(r);
}

wsgi_status wsgi_call_run(wsgi_types *t, PyObject *app, const wsgi_request *req, size_t script_len,
                          const wsgi_flags *flags, const wsgi_io *io)
{
    call_state st;
    wsgi_status status = WSGI_OK;
    if (state_open(&st, t, req, script_len, flags, io)) {
        wsgi_log_exception(io, "wsgi: cannot build the environ");
        Py_BEGIN_ALLOW_THREADS wsgi_call_error(io, 400, "Bad Request\n");
        Py_END_ALLOW_THREADS state_close(&st);
        return WSGI_APP_ERROR;
    }
    PyObject *args[2] = {st.env, (PyObject *)st.sr};
    PyObject *result = PyObject_Vectorcall(app, args, 2, NULL);
    if (!result) {
        status = fail_app(&st, io, "wsgi: exception in the app");
        state_close(&st);
        return status;
    }
    int r = 0;
    if (Py_IS_TYPE(result, t->file_wrapper) && io->sendfile) r = try_sendfile(&st, result, io);
    if (r == 0) r = send_iterable(&st, result);
    if (r < 0) {
        status = fail_app(&st, io, "wsgi: exception while sending the response");
    } else {
        int complete = st.sr->head || st.sr->declared < 0 || st.sr->written == st.sr->declared;
        if (!complete)
            wsgi_log(io, "wsgi: the app sent %lld of its %lld-byte Content-Length",
                     (long long)st.sr->written, (long long)st.sr->declared);
        Py_BEGIN_ALLOW_THREADS io->finish(io->ctx, complete);
        Py_END_ALLOW_THREADS if (!complete) status = WSGI_BROKEN;
    }
    close_result(t, result, io);
    Py_DECREF(result);
    state_close(&st);
    return status;
}
