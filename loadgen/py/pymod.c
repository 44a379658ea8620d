/*
 * pymod: the `_aiload` extension module that aiload's `locust` package
 * (loadgen/py/locust/) is built on: the C HTTP connection (Conn), the stats
 * table and its Locust-format reports, the command line, the clock and the
 * stall watchdog. Everything but the watchdog runs on the process's one
 * Python thread, where gevent schedules every user.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "lib/ev.h"
#include "loadgen/cli.h"
#include "loadgen/dist/procs.h"
#include "loadgen/py/pyconn.h"
#include "loadgen/py/pyrun_int.h"
#include "loadgen/py/pyship.h"
#include "loadgen/py/pystats.h"
#include "loadgen/report.h"
#include "loadgen/stats.h"

/* The process's state (one interpreter per process: this is the process
 * model's state, reached only from the Python thread except the watchdog's
 * fields, which are atomics). */
static struct {
    pystats *st;
    lg_tls *tls;
    PyObject *waiter;     /* waiter(fd, events, timeout_s) -> bool (False: timed out) */
    runner_snapshot info; /* state, users, host... set by the runner, copied into snapshots */
    /* users per class (Locust's user_classes_count): names are kept for the
     * process's life, as a snapshot read off the GIL borrows them */
    char **class_names;
    int *class_users, *class_peak;
    size_t nclasses, capclasses;
    /* watchdog */
    pthread_t wd;
    int wd_started;
    volatile int64_t wd_beat_ns;     /* the hub last ran then (Python thread writes) */
    volatile int64_t wd_deadline_ns; /* interrupt a stuck user after this; 0: none */
    volatile int wd_quit;
    unsigned long wd_thread; /* the Python thread's id */
    /* --processes: a child ships its samples to the parent instead of
     * recording them (ship), the parent records what it receives (peers) */
    char source[1024]; /* the locustfile, for the JSON summary */
    int shipping;
    buf ship;
    unsigned char *announced; /* per row: its name was shipped */
    size_t nannounced;
    pyship_peer peers[64]; /* the parent's side, one per child */
    PyObject *wd_exc;      /* locust.exception.StuckUserError */
} S;

/* ---- Conn ---- */

typedef struct {
    PyObject_HEAD pyconn *c;
} ConnObject;

static int wait_cb(void *ctx, int fd, unsigned events, int64_t deadline_ns)
{
    (void)ctx;
    double left = (double)(deadline_ns - pyconn_now_ns()) / 1e9;
    if (left <= 0) return -ETIMEDOUT;
    if (!S.waiter) {
        PyErr_SetString(PyExc_RuntimeError, "_aiload: no waiter set");
        return -EINTR;
    }
    PyObject *r = PyObject_CallFunction(S.waiter, "iid", fd, (int)events, left);
    if (!r) return -EINTR;
    int ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    return ok ? 0 : -ETIMEDOUT;
}

static int Conn_init(ConnObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"addr", "tls_host", NULL};
    Py_buffer addr;
    const char *tls_host = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|z", kwlist, &addr, &tls_host)) return -1;
    pyconn_origin o = {0};
    if ((size_t)addr.len > sizeof(o.addr)) {
        PyBuffer_Release(&addr);
        PyErr_SetString(PyExc_ValueError, "bad address");
        return -1;
    }
    memcpy(&o.addr, addr.buf, (size_t)addr.len);
    o.addrlen = (socklen_t)addr.len;
    PyBuffer_Release(&addr);
    if (tls_host) {
        if (!S.tls) {
            char err[256];
            lg_tls_opts to = {0};
            if (lg_tls_create(&to, &S.tls, err, sizeof(err))) {
                PyErr_SetString(PyExc_OSError, err);
                return -1;
            }
        }
        o.tls = S.tls;
        snprintf(o.tls_host, sizeof(o.tls_host), "%s", tls_host);
    }
    pyconn_free(self->c);
    if (!(self->c = pyconn_create(&o))) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void Conn_dealloc(ConnObject *self)
{
    pyconn_free(self->c);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* request(data: bytes, head: bool, timeout: float, connect_timeout: float)
 * -> (status, reason, headers, body, t_start_ns, t_end_ns, wire_bytes)
 *  or (None, error_text, kind, code, t_start_ns, t_end_ns, 0) on failure. */
static PyObject *Conn_request(ConnObject *self, PyObject *args)
{
    Py_buffer req;
    int head = 0;
    double timeout = 60, ctimeout = 10;
    if (!PyArg_ParseTuple(args, "y*|pdd", &req, &head, &timeout, &ctimeout)) return NULL;
    if (!self->c) {
        PyBuffer_Release(&req);
        PyErr_SetString(PyExc_RuntimeError, "Conn not initialised");
        return NULL;
    }
    pyconn_resp r;
    int kind = 0, code = 0;
    int rc = pyconn_request(self->c, req.buf, (size_t)req.len, head, (int64_t)(ctimeout * 1e9),
                            (int64_t)(timeout * 1e9), wait_cb, NULL, &r, &kind, &code);
    PyBuffer_Release(&req);
    if (rc == -EINTR) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "request interrupted");
        return NULL;
    }
    if (rc) {
        char text[256];
        lg_err_format(kind, code, text, sizeof(text));
        return Py_BuildValue("(OsiiLLi)", Py_None, text, kind, code, (long long)r.t_start_ns,
                             (long long)r.t_end_ns, 0);
    }
    return Py_BuildValue("(is#y#y#LLK)", r.status, r.reason, (Py_ssize_t)r.reason_len, r.headers,
                         (Py_ssize_t)r.headers_len, r.body, (Py_ssize_t)r.body_len,
                         (long long)r.t_start_ns, (long long)r.t_end_ns,
                         (unsigned long long)r.wire_bytes);
}

static PyObject *Conn_close(ConnObject *self, PyObject *unused)
{
    (void)unused;
    pyconn_free(self->c);
    self->c = NULL;
    Py_RETURN_NONE;
}

static PyMethodDef Conn_methods[] = {
    {"request", (PyCFunction)Conn_request, METH_VARARGS, "send a request, read the response"},
    {"close", (PyCFunction)Conn_close, METH_NOARGS, "close the connection"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ConnType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_aiload.Conn",
    .tp_basicsize = sizeof(ConnObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Conn_init,
    .tp_dealloc = (destructor)Conn_dealloc,
    .tp_methods = Conn_methods,
};

/* ---- module functions ---- */

static int64_t now_ns(void)
{
    return pyconn_now_ns();
}

static PyObject *m_now_ns(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    return PyLong_FromLongLong(now_ns());
}

static PyObject *m_set_waiter(PyObject *m, PyObject *fn)
{
    (void)m;
    Py_XINCREF(fn);
    Py_XSETREF(S.waiter, fn);
    Py_RETURN_NONE;
}

/* resolve(host, port) -> sockaddr bytes */
static PyObject *m_resolve(PyObject *m, PyObject *args)
{
    (void)m;
    const char *host, *port;
    if (!PyArg_ParseTuple(args, "ss", &host, &port)) return NULL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = getaddrinfo(host, port, &hints, &res);
    Py_END_ALLOW_THREADS if (rc || !res)
    {
        PyErr_Format(PyExc_OSError, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return NULL;
    }
    PyObject *b = PyBytes_FromStringAndSize((const char *)res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return b;
}

/* tls_setup(insecure, cacert or None) */
static PyObject *m_tls_setup(PyObject *m, PyObject *args)
{
    (void)m;
    int insecure = 0;
    const char *cacert = NULL;
    if (!PyArg_ParseTuple(args, "p|z", &insecure, &cacert)) return NULL;
    char err[512];
    lg_tls_opts o = {.insecure = insecure, .cacert = cacert};
    lg_tls *t;
    if (lg_tls_create(&o, &t, err, sizeof(err))) {
        PyErr_SetString(PyExc_OSError, err);
        return NULL;
    }
    lg_tls_free(S.tls);
    S.tls = t;
    Py_RETURN_NONE;
}

static PyObject *m_entry(PyObject *m, PyObject *args)
{
    (void)m;
    const char *method, *name;
    if (!PyArg_ParseTuple(args, "ss", &method, &name)) return NULL;
    int e = pystats_entry(S.st, method, name);
    if (e < 0) return PyErr_NoMemory();
    return PyLong_FromLong(e);
}

/* ---- --processes: samples cross from the children to the parent
 * (loadgen/py/pyship.h) ---- */

static PyObject *ship_record(int e, long long lat, long long svc, unsigned long long bytes,
                             const char *err)
{
    if (e < 0) {
        PyErr_SetString(PyExc_ValueError, "bad stats entry");
        return NULL;
    }
    if ((size_t)e >= S.nannounced) {
        size_t n = (size_t)e + 64;
        unsigned char *a = realloc(S.announced, n);
        if (!a) return PyErr_NoMemory();
        memset(a + S.nannounced, 0, n - S.nannounced);
        S.announced = a;
        S.nannounced = n;
    }
    if (!S.announced[e]) {
        char method[16], name[256];
        if (pystats_entry_name(S.st, e, method, sizeof(method), name, sizeof(name))) {
            PyErr_SetString(PyExc_ValueError, "bad stats entry");
            return NULL;
        }
        if (pyship_put_entry(&S.ship, (uint32_t)e, method, name)) return PyErr_NoMemory();
        S.announced[e] = 1;
    }
    if (pyship_put_record(&S.ship, (uint32_t)e, lat, svc, bytes, err)) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* set_shipping(on): this process is a --processes child */
static PyObject *m_set_shipping(PyObject *m, PyObject *arg)
{
    (void)m;
    S.shipping = PyObject_IsTrue(arg);
    Py_RETURN_NONE;
}

/* ship_json(bytes): queues a control message for the parent */
static PyObject *m_ship_json(PyObject *m, PyObject *arg)
{
    (void)m;
    char *p;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(arg, &p, &n)) return NULL;
    if (pyship_put_json(&S.ship, p, (size_t)n)) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* ship_take() -> bytes shipped since the last call */
static PyObject *m_ship_take(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    PyObject *r = PyBytes_FromStringAndSize(S.ship.data ? S.ship.data : "", (Py_ssize_t)S.ship.len);
    buf_reset(&S.ship);
    return r;
}

static void collect_json(void *ctx, const char *text, size_t len)
{
    PyObject *list = ctx, *j = PyBytes_FromStringAndSize(text, (Py_ssize_t)len);
    if (!j || PyList_Append(list, j)) PyErr_Clear(); /* a lost status message: the next one comes */
    Py_XDECREF(j);
}

/* ingest(child, data) -> [JSON messages]: records a child's shipped samples */
static PyObject *m_ingest(PyObject *m, PyObject *args)
{
    (void)m;
    int child;
    Py_buffer d;
    if (!PyArg_ParseTuple(args, "iy*", &child, &d)) return NULL;
    if (child < 0 || child >= (int)(sizeof(S.peers) / sizeof(S.peers[0]))) {
        PyBuffer_Release(&d);
        PyErr_SetString(PyExc_ValueError, "bad child");
        return NULL;
    }
    PyObject *msgs = PyList_New(0);
    int rc = msgs ? pyship_ingest(&S.peers[child], S.st, d.buf, (size_t)d.len, now_ns(),
                                  collect_json, msgs)
                  : -ENOMEM;
    PyBuffer_Release(&d);
    if (rc) {
        Py_XDECREF(msgs);
        if (rc == -ENOMEM) return PyErr_NoMemory();
        PyErr_SetString(PyExc_ValueError, "corrupt samples from a child process");
        return NULL;
    }
    return msgs;
}

/* ---- a Python master: the workers' reports ---- */

static int get_u64(PyObject *d, const char *key, uint64_t *out)
{
    PyObject *v = PyDict_GetItemString(d, key);
    if (!v) {
        *out = 0;
        return 0;
    }
    if (!PyLong_Check(v) || PyBool_Check(v)) return -1;
    long long x = PyLong_AsLongLong(v);
    if (x < 0 || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    *out = (uint64_t)x;
    return 0;
}

#define MERGE_MAX_BUCKETS 100000

/* One StatsEntry dict into the table; -1 when malformed (nothing merged). */
static int merge_row(PyObject *row, int64_t now)
{
    if (!PyDict_Check(row)) return -1;
    PyObject *mo = PyDict_GetItemString(row, "method"), *no = PyDict_GetItemString(row, "name");
    const char *method = mo && PyUnicode_Check(mo) ? PyUnicode_AsUTF8(mo) : NULL;
    const char *name = no && PyUnicode_Check(no) ? PyUnicode_AsUTF8(no) : NULL;
    uint64_t nreq, nfail, bytes;
    if (!method || !name || get_u64(row, "num_requests", &nreq) ||
        get_u64(row, "num_failures", &nfail) || get_u64(row, "total_content_length", &bytes)) {
        PyErr_Clear();
        return -1;
    }
    /* aiload's workers send their exact histogram (us) and sum; Locust's its
     * {rounded ms: count} buckets and the exact total in ms */
    PyObject *ah = PyDict_GetItemString(row, "aiload_hist");
    PyObject *rt = PyDict_GetItemString(row, "response_times");
    Py_ssize_t n = ah && PyList_Check(ah)   ? PyList_GET_SIZE(ah)
                   : rt && PyDict_Check(rt) ? PyDict_Size(rt)
                                            : 0;
    if (n > MERGE_MAX_BUCKETS) return -1;
    int64_t *vals = calloc((size_t)n + 1, sizeof(int64_t));
    uint64_t *cnt = calloc((size_t)n + 1, sizeof(uint64_t));
    int ok = vals && cnt;
    int64_t sum_us = -1;
    if (ok && ah && PyList_Check(ah)) {
        for (Py_ssize_t i = 0; ok && i < n; i++) {
            PyObject *pr = PyList_GET_ITEM(ah, i);
            long long v = -1, c = -1;
            if ((PyList_Check(pr) || PyTuple_Check(pr)) && PySequence_Size(pr) == 2) {
                PyObject *a = PySequence_GetItem(pr, 0), *b = PySequence_GetItem(pr, 1);
                if (a && b && PyLong_Check(a) && PyLong_Check(b)) {
                    v = PyLong_AsLongLong(a);
                    c = PyLong_AsLongLong(b);
                }
                Py_XDECREF(a);
                Py_XDECREF(b);
            }
            ok = v >= 0 && c >= 0 && !PyErr_Occurred();
            vals[i] = v;
            cnt[i] = (uint64_t)c;
        }
        uint64_t s;
        if (ok && PyDict_GetItemString(row, "aiload_sum_us") && !get_u64(row, "aiload_sum_us", &s))
            sum_us = (int64_t)s;
    } else if (ok && n) {
        Py_ssize_t pos = 0, i = 0;
        PyObject *k, *v;
        while (ok && PyDict_Next(rt, &pos, &k, &v)) {
            double ms = PyNumber_Check(k) && !PyBool_Check(k) ? PyFloat_AsDouble(k) : -1;
            long long c = PyLong_Check(v) ? PyLong_AsLongLong(v) : -1;
            ok = ms >= 0 && ms <= 3.6e6 && c >= 0 && !PyErr_Occurred();
            vals[i] = (int64_t)(ms * 1000);
            cnt[i++] = (uint64_t)c;
        }
        PyObject *tr = PyDict_GetItemString(row, "total_response_time");
        double t = tr && PyNumber_Check(tr) ? PyFloat_AsDouble(tr) : -1;
        if (ok && t >= 0 && t < 9e15 && !PyErr_Occurred()) sum_us = (int64_t)(t * 1000);
    }
    PyErr_Clear();
    int e = ok ? pystats_entry(S.st, method, name) : -1;
    if (e >= 0) pystats_merge(S.st, e, nreq, nfail, bytes, vals, cnt, (size_t)n, sum_us, now);
    free(vals);
    free(cnt);
    return e >= 0 ? 0 : -1;
}

/* merge_report(data) -> rows dropped: a worker's "stats" data (Locust's
 * StatsEntry.serialize rows and StatsError rows) into the table, in C so a
 * master never walks a histogram in Python. */
static PyObject *m_merge_report(PyObject *m, PyObject *data)
{
    (void)m;
    PyObject *stats = PyDict_Check(data) ? PyDict_GetItemString(data, "stats") : NULL;
    if (!stats || !PyList_Check(stats)) {
        PyErr_SetString(PyExc_ValueError, "stats report without a stats list");
        return NULL;
    }
    int64_t now = now_ns();
    long dropped = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(stats); i++)
        dropped += merge_row(PyList_GET_ITEM(stats, i), now) != 0;
    PyObject *errs = PyDict_GetItemString(data, "errors");
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (errs && PyDict_Check(errs) && PyDict_Next(errs, &pos, &k, &v)) {
        PyObject *mo = PyDict_Check(v) ? PyDict_GetItemString(v, "method") : NULL;
        PyObject *no = PyDict_Check(v) ? PyDict_GetItemString(v, "name") : NULL;
        PyObject *eo = PyDict_Check(v) ? PyDict_GetItemString(v, "error") : NULL;
        uint64_t occ;
        if (!mo || !no || !eo || !PyUnicode_Check(mo) || !PyUnicode_Check(no) ||
            !PyUnicode_Check(eo) || get_u64(v, "occurrences", &occ)) {
            dropped++;
            continue;
        }
        const char *method = PyUnicode_AsUTF8(mo), *name = PyUnicode_AsUTF8(no),
                   *text = PyUnicode_AsUTF8(eo);
        int e = method && name && text ? pystats_entry(S.st, method, name) : -1;
        if (e < 0 || pystats_add_error(S.st, e, text, occ)) dropped++;
        PyErr_Clear();
    }
    return PyLong_FromLong(dropped);
}

/* record(entry, lat_us, svc_us, bytes, error or None) */
static PyObject *m_record(PyObject *m, PyObject *const *a, Py_ssize_t n)
{
    (void)m;
    if (n != 5) {
        PyErr_SetString(PyExc_TypeError, "record(entry, lat_us, svc_us, bytes, error)");
        return NULL;
    }
    long e = PyLong_AsLong(a[0]);
    long long lat = PyLong_AsLongLong(a[1]), svc = PyLong_AsLongLong(a[2]);
    unsigned long long bytes = PyLong_AsUnsignedLongLong(a[3]);
    if (PyErr_Occurred()) return NULL;
    const char *err = NULL;
    if (a[4] != Py_None && !(err = PyUnicode_AsUTF8(a[4]))) return NULL;
    if (S.shipping) return ship_record((int)e, lat, svc, bytes, err);
    if (pystats_record(S.st, (int)e, lat, svc, bytes, err, now_ns())) {
        PyErr_SetString(PyExc_ValueError, "bad stats entry");
        return NULL;
    }
    Py_RETURN_NONE;
}

void pymod_reset(void)
{
    for (size_t k = 0; k < S.nclasses; k++) S.class_peak[k] = S.class_users[k];
    pystats_reset(S.st, now_ns());
    pyweb_history_clear();
}

static PyObject *m_reset(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    pymod_reset();
    Py_RETURN_NONE;
}

static PyObject *m_stop_clock(PyObject *m, PyObject *args)
{
    (void)m;
    long long t = 0;
    if (!PyArg_ParseTuple(args, "|L", &t)) return NULL;
    pystats_stop(S.st, t);
    Py_RETURN_NONE;
}

/* set_source(locustfile): the file named in the JSON summary */
static PyObject *m_set_source(PyObject *m, PyObject *arg)
{
    (void)m;
    const char *src = PyUnicode_AsUTF8(arg);
    if (!src) return NULL;
    snprintf(S.source, sizeof(S.source), "%s", src);
    Py_RETURN_NONE;
}

/* The index of class name, added when new; -1 on OOM. */
static int class_index(const char *name)
{
    for (size_t k = 0; k < S.nclasses; k++)
        if (!strcmp(S.class_names[k], name)) return (int)k;
    if (S.nclasses == S.capclasses) {
        size_t cap = S.capclasses ? S.capclasses * 2 : 8;
        char **n = realloc(S.class_names, cap * sizeof(*n));
        if (n) S.class_names = n;
        int *u = n ? realloc(S.class_users, cap * sizeof(*u)) : NULL;
        if (u) S.class_users = u;
        int *pk = u ? realloc(S.class_peak, cap * sizeof(*pk)) : NULL;
        if (!pk) return -1;
        S.class_peak = pk;
        S.capclasses = cap;
    }
    if (!(S.class_names[S.nclasses] = strdup(name))) return -1;
    S.class_users[S.nclasses] = S.class_peak[S.nclasses] = 0;
    return (int)S.nclasses++;
}

/* set_info(state, users, target_users, spawn_rate, host, run_time_s,
 *          start_time[, {class name: users}]) */
static PyObject *m_set_info(PyObject *m, PyObject *args)
{
    (void)m;
    int state, users, target;
    double rate, run_time;
    const char *host;
    long long start;
    PyObject *classes = NULL;
    if (!PyArg_ParseTuple(args, "iiidsdL|O!", &state, &users, &target, &rate, &host, &run_time,
                          &start, &PyDict_Type, &classes))
        return NULL;
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (classes && PyDict_Next(classes, &pos, &k, &v)) {
        const char *name = PyUnicode_AsUTF8(k);
        long n = PyLong_AsLong(v);
        if (!name || (n == -1 && PyErr_Occurred())) return NULL;
        int i = class_index(name);
        if (i < 0) return PyErr_NoMemory();
        S.class_users[i] = (int)n;
        if (n > S.class_peak[i]) S.class_peak[i] = (int)n;
    }
    S.info.state = (runner_state)state;
    S.info.user_count = users;
    S.info.target_users = target;
    S.info.spawn_rate = rate;
    snprintf(S.info.host, sizeof(S.info.host), "%s", host);
    S.info.run_time_s = run_time;
    S.info.start_time = start;
    Py_RETURN_NONE;
}

static runner_snapshot *snap(void)
{
    return pymod_snapshot();
}

runner_snapshot *pymod_info(void)
{
    return &S.info;
}

const char *pymod_source(void)
{
    return S.source;
}

runner_snapshot *pymod_snapshot(void)
{
    runner_snapshot *s = pystats_snapshot(S.st, now_ns());
    if (!s) return NULL;
    s->state = S.info.state;
    s->user_count = S.info.user_count;
    s->target_users = S.info.target_users;
    s->spawn_rate = S.info.spawn_rate;
    memcpy(s->host, S.info.host, sizeof(s->host));
    s->run_time_s = S.info.run_time_s;
    s->start_time = S.info.start_time;
    if (S.nclasses) {
        s->class_users = calloc(S.nclasses * 2, sizeof(int));
        s->class_names = calloc(S.nclasses, sizeof(char *));
        if (!s->class_users || !s->class_names) {
            runner_snapshot_free(s);
            return NULL;
        }
        s->nclasses = S.nclasses;
        s->class_peak = s->class_users + S.nclasses;
        memcpy(s->class_users, S.class_users, S.nclasses * sizeof(int));
        memcpy(s->class_peak, S.class_peak, S.nclasses * sizeof(int));
        for (size_t k = 0; k < S.nclasses; k++) s->class_names[k] = S.class_names[k];
    }
    return s;
}

static PyObject *buf_to_str(buf *b)
{
    PyObject *r = PyUnicode_DecodeUTF8(b->data ? b->data : "", (Py_ssize_t)b->len, "replace");
    buf_free(b);
    return r;
}

/* report(what, name_width) -> str; what: "current", "final", "csv_stats",
 * "csv_failures", "history_header", "history" (name_width: 1 full history) */
static PyObject *m_report(PyObject *m, PyObject *args)
{
    (void)m;
    const char *what;
    int nw = 0;
    if (!PyArg_ParseTuple(args, "s|i", &what, &nw)) return NULL;
    buf b = BUF_INIT;
    if (!strcmp(what, "history_header")) {
        report_csv_history_header(&b);
        return buf_to_str(&b);
    }
    runner_snapshot *s = snap();
    if (!s) return PyErr_NoMemory();
    if (!strcmp(what, "current")) {
        report_console_stats(&b, s, 1, nw);
    } else if (!strcmp(what, "final")) {
        report_console_stats(&b, s, 0, nw);
        report_console_percentiles(&b, s, nw);
        if (s->total.not_on_time) report_console_service(&b, s, nw);
        report_console_errors(&b, s, nw);
    } else if (!strcmp(what, "csv_stats")) {
        report_csv_stats(&b, s);
    } else if (!strcmp(what, "csv_failures")) {
        report_csv_failures(&b, s);
    } else if (!strcmp(what, "json")) {
        report_json(&b, s, S.source, nw);
    } else if (!strcmp(what, "history")) {
        report_csv_history_rows(&b, s, (int64_t)time(NULL), nw);
    } else {
        runner_snapshot_free(s);
        PyErr_Format(PyExc_ValueError, "unknown report '%s'", what);
        return NULL;
    }
    runner_snapshot_free(s);
    return buf_to_str(&b);
}

static PyObject *entry_tuple(const runner_entry *e)
{
    return Py_BuildValue("(ssKKdddddddd)", e->method, e->name, (unsigned long long)e->num_requests,
                         (unsigned long long)e->num_failures, e->avg_ms, e->min_ms, e->max_ms,
                         e->median_ms, e->avg_content_length, e->total_rps, e->current_rps,
                         e->pct_ms[RUNNER_P95]);
}

/* rows() -> (total, [entry...], [(method, name, error, occurrences)...]);
 * an entry: (method, name, requests, failures, avg, min, max, median,
 * avg_content_length, total_rps, current_rps, p95) */
static PyObject *m_rows(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    runner_snapshot *s = snap();
    if (!s) return PyErr_NoMemory();
    PyObject *list = PyList_New((Py_ssize_t)s->nentries);
    PyObject *errs = PyList_New((Py_ssize_t)s->nerrors);
    for (size_t i = 0; list && i < s->nentries; i++)
        PyList_SET_ITEM(list, (Py_ssize_t)i, entry_tuple(&s->entries[i]));
    for (size_t i = 0; errs && i < s->nerrors; i++)
        PyList_SET_ITEM(errs, (Py_ssize_t)i,
                        Py_BuildValue("(sssK)", s->errors[i].method, s->errors[i].name,
                                      s->errors[i].error,
                                      (unsigned long long)s->errors[i].occurrences));
    PyObject *r = list && errs ? Py_BuildValue("(NNN)", entry_tuple(&s->total), list, errs) : NULL;
    if (!r) {
        Py_XDECREF(list);
        Py_XDECREF(errs);
    }
    runner_snapshot_free(s);
    return r;
}

/* percentile(method, name, fraction) for stats.get(...).get_response_time_percentile */
static PyObject *m_fail_if(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    runner_snapshot *s = snap();
    if (!s) return PyErr_NoMemory();
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out && i < PyList_GET_SIZE(list); i++) {
        const char *text = PyUnicode_AsUTF8(PyList_GET_ITEM(list, i));
        cli_threshold t;
        char err[256];
        double v = 0;
        if (!text || cli_parse_threshold(text, &t, err, sizeof(err))) {
            Py_CLEAR(out);
            if (text) PyErr_SetString(PyExc_ValueError, err);
            break;
        }
        int ok = cli_threshold_check(&t, s, &v);
        PyObject *item = Py_BuildValue("(sid)", text, ok, v);
        if (!item || PyList_Append(out, item)) Py_CLEAR(out);
        Py_XDECREF(item);
    }
    runner_snapshot_free(s);
    return out;
}

/* cli_parse([args]) -> dict of the options the runner needs; ValueError(msg) */
static PyObject *m_cli_parse(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    char **argv = calloc((size_t)n + 2, sizeof(char *));
    if (!argv) return PyErr_NoMemory();
    argv[0] = "aiload";
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *a = PyUnicode_AsUTF8(PyList_GET_ITEM(list, i));
        if (!a) {
            free(argv);
            return NULL;
        }
        argv[i + 1] = (char *)a;
    }
    cli_opts o;
    char err[1024];
    if (cli_parse((int)n + 1, argv, &o, err, sizeof(err))) {
        free(argv);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    PyObject *tags = PyList_New(0), *xtags = PyList_New(0), *fail_if = PyList_New(0);
    for (size_t i = 0; tags && i < o.ntags; i++) {
        PyObject *s = PyUnicode_FromString(o.tags[i]);
        PyList_Append(tags, s);
        Py_XDECREF(s);
    }
    for (size_t i = 0; xtags && i < o.nexclude_tags; i++) {
        PyObject *s = PyUnicode_FromString(o.exclude_tags[i]);
        PyList_Append(xtags, s);
        Py_XDECREF(s);
    }
    for (size_t i = 0; fail_if && i < o.nthresholds; i++) {
        PyObject *s = PyUnicode_FromString(o.thresholds[i].text);
        PyList_Append(fail_if, s);
        Py_XDECREF(s);
    }
    PyObject *d = Py_BuildValue(
        "{s:i,s:i,s:z,s:i,s:i,s:d,s:z,s:i,s:d,s:d,s:z,s:i,s:z,s:z,s:i,s:i,s:d,s:i,s:d,s:d,s:I,"
        "s:N,s:N,s:i,s:i,s:z,s:N,s:z,s:i,s:i,s:d,s:i,s:z,s:i,s:i,s:z,s:i,s:z,s:i,s:i,s:d}",
        "help", o.help, "version", o.version, "locustfile", o.file, "headless", o.headless,
        "num_users", o.users, "spawn_rate", o.spawn_rate, "host", o.host, "quick", o.quick,
        "run_time", o.run_time_s, "rate", o.rate, "csv_prefix", o.csv_prefix, "csv_full_history",
        o.csv_full_history, "html_file", o.html, "json_file", o.json, "only_summary",
        o.only_summary, "reset_stats", o.reset_stats, "stop_timeout", o.stop_timeout_s,
        "exit_code_on_error", o.exit_code_on_error, "timeout", o.timeout_s, "connect_timeout",
        o.connect_timeout_s, "seed", o.seed, "tags", tags, "exclude_tags", xtags, "equal_weights",
        o.equal_weights, "insecure", o.insecure, "cacert", o.cacert, "fail_if", fail_if, "web_host",
        o.web_host, "web_port", o.web_port, "autostart", o.autostart, "autoquit", o.autoquit_s,
        "threads", o.threads, "web_auth", o.web_auth, "worker", o.worker, "master", o.master,
        "master_host", o.master_host, "master_port", o.master_port, "master_bind_host",
        o.master_bind_host, "master_bind_port", o.master_bind_port, "expect_workers",
        o.expect_workers, "expect_workers_max_wait", o.expect_workers_max_wait);
    free(argv);
    return d;
}

static PyObject *m_cli_usage(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    buf b = BUF_INIT;
    cli_usage(&b);
    return buf_to_str(&b);
}

static PyObject *m_name_width(PyObject *m, PyObject *args)
{
    (void)m;
    int cols = 0;
    if (!PyArg_ParseTuple(args, "i", &cols)) return NULL;
    return PyLong_FromLong(report_name_width(cols));
}

/* ---- watchdog: a user whose code never yields blocks gevent's hub; this
 * thread notices and, once the stop is due, raises an exception in it. ---- */

static void *wd_main(void *arg)
{
    (void)arg;
    int64_t fired_at_beat = -1, warned_at_beat = -1;
    while (!S.wd_quit) {
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
        int64_t dl = S.wd_deadline_ns, now = now_ns(), beat = S.wd_beat_ns;
        if (dl && now - beat > 2000000000 && beat != warned_at_beat) {
            /* a stall during the run: say which code holds the thread */
            warned_at_beat = beat;
            PyGILState_STATE g = PyGILState_Ensure();
            PyObject *mod = S.wd_quit ? NULL : PyImport_ImportModule("locust.runners");
            PyObject *r = mod ? PyObject_CallMethod(mod, "stall_warning", "k", S.wd_thread) : NULL;
            if (!r) PyErr_Clear();
            Py_XDECREF(r);
            Py_XDECREF(mod);
            PyGILState_Release(g);
        }
        /* the hub beats every 50 ms and every task start beats too; a beat
         * older than 300 ms past the deadline means user code holds the
         * thread. Once per beat: the interrupted user's clean-up must not be
         * interrupted again; the next stuck task has beaten when it began. */
        if (dl && now > dl && now - beat > 300000000 && beat != fired_at_beat) {
            fired_at_beat = beat;
            /* an asynchronous exception in the Python thread: it lands in
             * whatever greenlet runs there, the one that does not yield.
             * (A pending call would not do: the eval loop only notices it
             * once something else interrupts it.) */
            PyGILState_STATE g = PyGILState_Ensure();
            if (!S.wd_quit) PyThreadState_SetAsyncExc(S.wd_thread, S.wd_exc);
            PyGILState_Release(g);
        }
    }
    return NULL;
}

/* watchdog(deadline_ns): 0 disarms; beat() marks the hub alive */
static PyObject *m_watchdog(PyObject *m, PyObject *args)
{
    (void)m;
    long long dl = 0;
    if (!PyArg_ParseTuple(args, "L", &dl)) return NULL;
    S.wd_beat_ns = now_ns();
    S.wd_deadline_ns = dl;
    if (!S.wd_started && dl) {
        PyObject *mod = PyImport_ImportModule("locust.exception");
        S.wd_exc = mod ? PyObject_GetAttrString(mod, "StuckUserError") : NULL;
        Py_XDECREF(mod);
        if (!S.wd_exc) return NULL;
        S.wd_thread = PyThread_get_thread_ident();
        if (pthread_create(&S.wd, NULL, wd_main, NULL)) {
            PyErr_SetString(PyExc_OSError, "cannot start the watchdog thread");
            return NULL;
        }
        S.wd_started = 1;
    }
    Py_RETURN_NONE;
}

/* --processes under the web UI (loadgen/dist/procs.h): procs_spawn(n, port)
 * runs this process's command line again n times as the workers of the
 * master on 127.0.0.1:port and returns their pids (0 where a fork failed);
 * procs_reap(pids, timeout_ms) awaits them, then kills the rest;
 * procs_master_port() is that port in a worker so started, else 0. */
static PyObject *m_procs_spawn(PyObject *m, PyObject *args)
{
    (void)m;
    int n, port;
    if (!PyArg_ParseTuple(args, "ii", &n, &port)) return NULL;
    char **argv = pyrun_orig_argv();
    if (!argv || n < 1 || n > 1024 || port < 1 || port > 65535) {
        PyErr_SetString(PyExc_ValueError,
                        "procs_spawn: no command line, or n or port out of range");
        return NULL;
    }
    pid_t *pids = calloc((size_t)n, sizeof(*pids));
    if (!pids) return PyErr_NoMemory();
    dist_procs_spawn(n, port, argv, pids);
    PyObject *out = PyList_New(n);
    for (int i = 0; out && i < n; i++) {
        PyObject *v = PyLong_FromLong((long)pids[i]);
        if (!v)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, v);
    }
    free(pids);
    return out;
}

static PyObject *m_procs_reap(PyObject *m, PyObject *args)
{
    (void)m;
    PyObject *list;
    int timeout_ms;
    if (!PyArg_ParseTuple(args, "O!i", &PyList_Type, &list, &timeout_ms)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    pid_t *pids = calloc((size_t)(n ? n : 1), sizeof(*pids));
    if (!pids) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(list, i));
        if (v == -1 && PyErr_Occurred()) {
            free(pids);
            return NULL;
        }
        pids[i] = (pid_t)v;
    }
    PyThreadState *ts = PyEval_SaveThread(); /* the web UI's thread may want the GIL */
    dist_procs_reap(pids, (int)n, timeout_ms);
    PyEval_RestoreThread(ts);
    free(pids);
    Py_RETURN_NONE;
}

static PyObject *m_procs_master_port(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    return PyLong_FromLong(dist_procs_master_port());
}

static PyObject *m_beat(PyObject *m, PyObject *unused)
{
    (void)m, (void)unused;
    S.wd_beat_ns = now_ns();
    return PyLong_FromLongLong(S.wd_beat_ns);
}

static PyMethodDef methods[] = {
    {"now_ns", m_now_ns, METH_NOARGS, "CLOCK_MONOTONIC in ns"},
    {"set_waiter", m_set_waiter, METH_O, "the function Conn calls to wait for a socket"},
    {"resolve", m_resolve, METH_VARARGS, "resolve(host, port) -> sockaddr bytes"},
    {"tls_setup", m_tls_setup, METH_VARARGS, "tls_setup(insecure, cacert)"},
    {"entry", m_entry, METH_VARARGS, "entry(method, name) -> stats row"},
    {"record", (PyCFunction)(void (*)(void))m_record, METH_FASTCALL, "record a request"},
    {"reset", m_reset, METH_NOARGS, "reset the stats"},
    {"stop_clock", m_stop_clock, METH_VARARGS, "freeze (or thaw with 0) the stats clock"},
    {"set_source", m_set_source, METH_O, "the locustfile, for the JSON summary"},
    {"set_info", m_set_info, METH_VARARGS, "runner state for the reports"},
    {"report", m_report, METH_VARARGS, "a Locust-format report as text"},
    {"rows", m_rows, METH_NOARGS, "the stats rows"},
    {"fail_if", m_fail_if, METH_VARARGS, "evaluate --fail-if thresholds"},
    {"cli_parse", m_cli_parse, METH_VARARGS, "aiload's command line parser"},
    {"cli_usage", m_cli_usage, METH_NOARGS, "aiload's --help text"},
    {"name_width", m_name_width, METH_VARARGS, "Locust's name column width"},
    {"set_shipping", m_set_shipping, METH_O, "a --processes child ships its samples"},
    {"ship_json", m_ship_json, METH_O, "queue a control message for the parent"},
    {"ship_take", m_ship_take, METH_NOARGS, "the samples shipped since the last call"},
    {"ingest", m_ingest, METH_VARARGS, "ingest(child, data): record a child's samples"},
    {"merge_report", m_merge_report, METH_O, "merge a worker's stats report (a master)"},
    {"watchdog", m_watchdog, METH_VARARGS, "arm the stuck-user watchdog"},
    {"beat", m_beat, METH_NOARGS, "the hub is alive"},
    {"procs_spawn", m_procs_spawn, METH_VARARGS, "procs_spawn(n, port) -> pids of local workers"},
    {"procs_reap", m_procs_reap, METH_VARARGS, "procs_reap(pids, timeout_ms)"},
    {"procs_master_port", m_procs_master_port, METH_NOARGS, "the master's port in a local worker"},
    PYWEB_METHODS{NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_aiload", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyObject *pyrun_init_module(void)
{
    if (!S.st && !(S.st = pystats_create())) return PyErr_NoMemory();
    if (PyType_Ready(&ConnType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&ConnType);
    if (PyModule_AddObject(m, "Conn", (PyObject *)&ConnType) < 0) {
        Py_DECREF(&ConnType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "READ", EV_READ);
    PyModule_AddIntConstant(m, "WRITE", EV_WRITE);
    PyModule_AddStringConstant(m, "VERSION", AISERVE_VERSION);
    /* locust.stats.PERCENTILES_TO_REPORT: the runner's one table */
    PyObject *pcts = PyTuple_New(RUNNER_NPCT);
    for (int k = 0; pcts && k < RUNNER_NPCT; k++) {
        PyObject *f = PyFloat_FromDouble(runner_pcts[k].fraction);
        if (!f) {
            Py_CLEAR(pcts);
            break;
        }
        PyTuple_SET_ITEM(pcts, k, f);
    }
    if (!pcts || PyModule_AddObject(m, "PERCENTILES", pcts) < 0) {
        Py_XDECREF(pcts);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

void pyrun_shutdown_module(void)
{
    if (S.wd_started) {
        S.wd_quit = 1;
        Py_BEGIN_ALLOW_THREADS pthread_join(S.wd, NULL); /* it may wait for the GIL */
        Py_END_ALLOW_THREADS S.wd_started = 0;
    }
    lg_tls_free(S.tls);
    S.tls = NULL;
    buf_free(&S.ship);
    free(S.announced);
    for (size_t i = 0; i < sizeof(S.peers) / sizeof(S.peers[0]); i++) pyship_peer_free(&S.peers[i]);
    pyweb_shutdown();
    for (size_t k = 0; k < S.nclasses; k++) free(S.class_names[k]);
    free(S.class_names);
    free(S.class_users);
    free(S.class_peak);
    S.class_names = NULL;
    S.class_users = S.class_peak = NULL;
    S.nclasses = S.capclasses = 0;
    pystats_free(S.st);
    S.st = NULL;
}
