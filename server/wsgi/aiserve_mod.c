/*
 * server/wsgi/aiserve_mod.c: `aiserve.infer`, `aiserve.classify`, `aiserve.models`.
 *
 * Arrays cross by the buffer protocol (PEP 3118), so the server needs no
 * numpy headers to build: an input that exports a buffer (numpy array,
 * memoryview, array.array) in the model's dtype, C-contiguous and
 * little-endian is handed to the batcher as is (zero-copy; the batcher copies
 * it once into the batch it forms, as for HTTP); a non-contiguous one is
 * copied here (pyarr_copy); any other object (a list) goes through
 * numpy.asarray(x, dtype=the model's) first. Outputs are written by the
 * batcher straight into buffers of an `_OutBuf` object that numpy.frombuffer
 * then views (zero-copy): each returned array owns its memory through it.
 * numpy is imported on the first infer, not at `import aiserve`.
 */
#include "server/wsgi/aiserve_mod.h"

#include "server/model/api.h"
#include "server/wsgi/pyarr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the output buffer type ---- */

typedef struct outbuf {
    PyObject_HEAD void *data;
    Py_ssize_t len;
} outbuf;

static int outbuf_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    outbuf *o = (outbuf *)self;
    return PyBuffer_FillInfo(view, self, o->data, o->len, 0, flags);
}

static void outbuf_dealloc(PyObject *self)
{
    free(((outbuf *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs outbuf_as_buffer = {.bf_getbuffer = outbuf_getbuffer};

static PyTypeObject outbuf_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "aiserve._OutBuf",
    .tp_basicsize = sizeof(outbuf),
    .tp_dealloc = outbuf_dealloc,
    .tp_as_buffer = &outbuf_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "memory the engine wrote one output into; numpy arrays view it",
};

static outbuf *outbuf_new(size_t len)
{
    outbuf *o = PyObject_New(outbuf, &outbuf_type);
    if (!o) return NULL;
    o->len = (Py_ssize_t)len;
    o->data = malloc(len ? len : 1);
    if (!o->data) {
        o->data = NULL;
        Py_DECREF(o);
        return (outbuf *)PyErr_NoMemory();
    }
    return o;
}

/* ---- exceptions ---- */

typedef struct modstate {
    PyObject *InferenceError, *QueueFull, *InvalidInput, *ModelNotFound, *Timeout;
} modstate;

static modstate *state_of(PyObject *mod)
{
    return (modstate *)PyModule_GetState(mod);
}

/* Raises the exception an engine error code maps to; returns NULL. */
static PyObject *raise_rc(PyObject *mod, int rc, const char *msg)
{
    modstate *s = state_of(mod);
    PyObject *type = s->InferenceError;
    switch (rc) {
    case -ENOENT: type = s->ModelNotFound; break;
    case -EINVAL:
    case -E2BIG:
    case -ENOTSUP:
    case -EPROTO: type = s->InvalidInput; break;
    case -EAGAIN: type = s->QueueFull; break;
    case -ETIMEDOUT: type = s->Timeout; break;
    case -ENOMEM: return PyErr_NoMemory();
    default: break;
    }
    PyErr_SetString(type, msg);
    return NULL;
}

static PyObject *invalid(PyObject *mod, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static PyObject *invalid(PyObject *mod, const char *name, const char *fmt, ...)
{
    char msg[MODEL_API_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (name) model_api_count_bad_input(name); /* as HTTP counts its 400s */
    PyErr_SetString(state_of(mod)->InvalidInput, msg);
    return NULL;
}

/* ---- models() ---- */

static PyObject *io_list(const kserve_io *ios, int n)
{
    PyObject *l = PyList_New(n);
    for (int i = 0; l && i < n; i++) {
        const kserve_io *io = &ios[i];
        PyObject *shape = PyTuple_New(io->rank);
        for (int d = 0; shape && d < io->rank; d++)
            PyTuple_SET_ITEM(shape, d, PyLong_FromLongLong(io->shape[d]));
        const char *np = pyarr_numpy_name(io->dtype);
        PyObject *e = shape ? Py_BuildValue("{s:s,s:s,s:s,s:N}", "name", io->name, "datatype",
                                            kserve_dtype_name(io->dtype), "dtype", np ? np : "",
                                            "shape", shape)
                            : NULL;
        if (!e) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, e);
    }
    return l;
}

static PyObject *mod_models(PyObject *mod, PyObject *unused)
{
    (void)mod, (void)unused;
    PyObject *d = PyDict_New();
    if (model_api_hold()) return d; /* no model app here: {} */
    int n = model_api_count();
    for (int i = 0; d && i < n; i++) {
        model_api_info mi;
        if (model_api_info_get(i, NULL, &mi)) continue;
        PyObject *e =
            Py_BuildValue("{s:N,s:N,s:i,s:O,s:O,s:z}", "inputs", io_list(mi.in, mi.n_in), "outputs",
                          io_list(mi.out, mi.n_out), "max_batch_size", mi.max_batch, "ready",
                          mi.ready ? Py_True : Py_False, "classify",
                          mi.takes_image ? Py_True : Py_False, "error", mi.error);
        if (!e || PyDict_SetItemString(d, mi.name, e)) Py_CLEAR(d);
        Py_XDECREF(e);
    }
    model_api_release();
    return d;
}

/* ---- infer() ---- */

typedef struct infer_args {
    Py_buffer views[BATCHER_MAX_IO];
    int held[BATCHER_MAX_IO];
    PyObject *objs[BATCHER_MAX_IO]; /* owned: the array or its numpy.asarray conversion */
    void *copies[BATCHER_MAX_IO];   /* owned: contiguous copies */
    const void *ptrs[BATCHER_MAX_IO];
    outbuf *outs[BATCHER_MAX_IO];
    void *out_ptrs[BATCHER_MAX_IO];
} infer_args;

static void args_free(infer_args *a)
{
    for (int i = 0; i < BATCHER_MAX_IO; i++) {
        if (a->held[i]) PyBuffer_Release(&a->views[i]);
        Py_XDECREF(a->objs[i]);
        free(a->copies[i]);
        Py_XDECREF(a->outs[i]);
    }
}

/* The object given for input i of the model (a dict by name, or a sequence in order). */
static PyObject *pick_input(PyObject *mod, const model_api_info *mi, PyObject *inputs, int i)
{
    if (PyDict_Check(inputs)) {
        PyObject *v = PyDict_GetItemString(inputs, mi->in[i].name);
        if (!v && !PyErr_Occurred())
            return invalid(mod, mi->name, "missing input '%s' (model '%s' takes %d input%s)",
                           mi->in[i].name, mi->name, mi->n_in, mi->n_in == 1 ? "" : "s");
        Py_XINCREF(v);
        return v;
    }
    return PySequence_GetItem(inputs, i);
}

/* Brings input i to a contiguous buffer of the model's dtype; sets ptrs[i]. 0 or -1 (raised). */
static int bridge_input(PyObject *mod, const model_api_info *mi, infer_args *a, int i,
                        PyObject *obj, int *batch)
{
    const kserve_io *io = &mi->in[i];
    const char *np = pyarr_numpy_name(io->dtype);
    if (!PyObject_CheckBuffer(obj)) {
        PyObject *numpy = PyImport_ImportModule("numpy");
        PyObject *conv = numpy ? PyObject_CallMethod(numpy, "asarray", "Os", obj, np) : NULL;
        Py_XDECREF(numpy);
        if (!conv) {
            if (PyErr_ExceptionMatches(PyExc_ImportError)) return -1;
            PyErr_Clear();
            invalid(mod, mi->name, "input '%s': a %s is neither an array nor convertible to %s",
                    io->name, Py_TYPE(obj)->tp_name, np);
            return -1;
        }
        a->objs[i] = conv;
    } else {
        Py_INCREF(obj);
        a->objs[i] = obj;
    }
    if (PyObject_GetBuffer(a->objs[i], &a->views[i], PyBUF_RECORDS_RO)) return -1;
    a->held[i] = 1;
    Py_buffer *v = &a->views[i];
    char err[PYARR_ERRLEN];
    kserve_dtype t;
    int rc = pyarr_dtype(v->format, (size_t)v->itemsize, &t, err, sizeof(err));
    if (rc) {
        invalid(mod, mi->name, "input '%s': %s", io->name, err);
        return -1;
    }
    if (t != io->dtype) {
        invalid(mod, mi->name, "input '%s' is %s (%s); the model takes %s: pass x.astype(numpy.%s)",
                io->name, pyarr_numpy_name(t), kserve_dtype_name(t), kserve_dtype_name(io->dtype),
                np);
        return -1;
    }
    if (v->ndim > KSERVE_MAX_RANK) {
        invalid(mod, mi->name, "input '%s' has %d dimensions; the model takes %d", io->name,
                v->ndim, io->rank);
        return -1;
    }
    int64_t shape[KSERVE_MAX_RANK], strides[KSERVE_MAX_RANK];
    for (int d = 0; d < v->ndim; d++) {
        shape[d] = v->shape ? v->shape[d] : (int64_t)(v->len / v->itemsize);
        strides[d] = v->strides ? v->strides[d] : 0;
    }
    int b = 0;
    rc = pyarr_check_shape(io, v->ndim, shape, mi->max_batch, &b, err, sizeof(err));
    if (rc) {
        invalid(mod, mi->name, "%s", err);
        return -1;
    }
    if (*batch && b != *batch) {
        invalid(mod, mi->name, "inputs '%s' and '%s' differ in batch size (%d, %d)", mi->in[0].name,
                io->name, *batch, b);
        return -1;
    }
    *batch = b;
    if (pyarr_contiguous(v->ndim, shape, v->strides ? strides : NULL, (size_t)v->itemsize)) {
        a->ptrs[i] = v->buf; /* zero-copy */
        return 0;
    }
    size_t n = (size_t)b * mi->in_item[i];
    a->copies[i] = malloc(n ? n : 1);
    if (!a->copies[i]) {
        PyErr_NoMemory();
        return -1;
    }
    pyarr_copy(a->copies[i], v->buf, v->ndim, shape, strides, (size_t)v->itemsize);
    a->ptrs[i] = a->copies[i];
    return 0;
}

/* The requested outputs (None: all) as a bitmask over the model's outputs. */
static int wanted_outputs(PyObject *mod, const model_api_info *mi, PyObject *outputs,
                          unsigned *mask)
{
    *mask = 0;
    if (!outputs || outputs == Py_None) {
        *mask = (1u << mi->n_out) - 1;
        return 0;
    }
    if (PyUnicode_Check(outputs)) {
        invalid(mod, mi->name, "outputs must be a list of output names, not a string");
        return -1;
    }
    PyObject *it = PyObject_GetIter(outputs);
    if (!it) return -1;
    PyObject *o;
    while ((o = PyIter_Next(it))) {
        const char *s = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
        int found = -1;
        for (int k = 0; s && k < mi->n_out && found < 0; k++)
            if (!strcmp(s, mi->out[k].name)) found = k;
        if (found < 0) {
            if (!PyErr_Occurred())
                invalid(mod, mi->name, "unknown output %s%s%s (model '%s' has '%s'%s)",
                        s ? "'" : "", s ? s : "(not a string)", s ? "'" : "", mi->name,
                        mi->out[0].name, mi->n_out > 1 ? " and others" : "");
            Py_DECREF(o);
            Py_DECREF(it);
            return -1;
        }
        *mask |= 1u << found;
        Py_DECREF(o);
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

static PyObject *infer_held(PyObject *mod, const char *name, PyObject *inputs, PyObject *outputs)
{
    model_api_info mi;
    char err[MODEL_API_ERRLEN];
    if (model_api_info_get(-1, name, &mi)) {
        snprintf(err, sizeof(err),
                 model_api_count() ? "unknown model '%.64s' (aiserve.models() lists them)"
                                   : "unknown model '%.64s': no model is configured in this "
                                     "server (add model = NAME=PATH.onnx)",
                 name);
        return raise_rc(mod, -ENOENT, err);
    }
    if (!PyDict_Check(inputs) && !PyList_Check(inputs) && !PyTuple_Check(inputs))
        return invalid(mod, name, "inputs must be a dict {name: array} or a list in input order");
    Py_ssize_t given = PyDict_Check(inputs) ? PyDict_Size(inputs) : PySequence_Size(inputs);
    if (PyDict_Check(inputs)) { /* a name the model does not have is named, not just counted */
        PyObject *k;
        Py_ssize_t pos = 0;
        while (PyDict_Next(inputs, &pos, &k, NULL)) {
            const char *s = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
            int known = 0;
            for (int i = 0; s && i < mi.n_in; i++) known |= !strcmp(s, mi.in[i].name);
            if (!known) {
                PyErr_Clear();
                return invalid(mod, name, "unknown input '%s' (the model's first input is '%s')",
                               s ? s : "(not a string)", mi.in[0].name);
            }
        }
    }
    if (given != mi.n_in)
        return invalid(mod, name, "model '%s' takes %d input%s, got %zd", name, mi.n_in,
                       mi.n_in == 1 ? "" : "s", given);
    unsigned mask;
    if (wanted_outputs(mod, &mi, outputs, &mask)) return NULL;
    infer_args a;
    memset(&a, 0, sizeof(a));
    int batch = 0;
    PyObject *result = NULL;
    for (int i = 0; i < mi.n_in; i++) {
        PyObject *obj = pick_input(mod, &mi, inputs, i);
        int rc = obj ? bridge_input(mod, &mi, &a, i, obj, &batch) : -1;
        Py_XDECREF(obj);
        if (rc) goto out;
    }
    for (int i = 0; i < mi.n_out; i++) {
        a.outs[i] = outbuf_new((size_t)batch * mi.out_item[i]);
        if (!a.outs[i]) goto out;
        a.out_ptrs[i] = a.outs[i]->data;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = model_api_infer(name, batch, a.ptrs, a.out_ptrs, err, sizeof(err));
    Py_END_ALLOW_THREADS if (rc)
    {
        raise_rc(mod, rc, err);
        goto out;
    }
    PyObject *numpy = PyImport_ImportModule("numpy");
    result = numpy ? PyDict_New() : NULL;
    for (int i = 0; result && i < mi.n_out; i++) {
        if (!(mask & (1u << i))) continue;
        const kserve_io *io = &mi.out[i];
        PyObject *shape = PyTuple_New(io->rank);
        for (int d = 0; shape && d < io->rank; d++)
            PyTuple_SET_ITEM(
                shape, d, PyLong_FromLongLong(d == 0 && io->shape[0] < 0 ? batch : io->shape[d]));
        PyObject *flat = shape ? PyObject_CallMethod(numpy, "frombuffer", "Os", a.outs[i],
                                                     pyarr_numpy_name(io->dtype))
                               : NULL;
        PyObject *arr = flat ? PyObject_CallMethod(flat, "reshape", "O", shape) : NULL;
        if (!arr || PyDict_SetItemString(result, io->name, arr)) Py_CLEAR(result);
        Py_XDECREF(arr);
        Py_XDECREF(flat);
        Py_XDECREF(shape);
    }
    Py_XDECREF(numpy);
out:
    args_free(&a);
    return result;
}

/* The model app stays alive across the call (mi's pointers), even if the
 * worker stops meanwhile: then the call fails and its memory is freed after. */
static PyObject *mod_infer(PyObject *mod, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "inputs", "outputs", NULL};
    const char *name;
    PyObject *inputs, *outputs = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sO|O:infer", kwlist, &name, &inputs, &outputs))
        return NULL;
    if (model_api_hold()) {
        char err[256];
        snprintf(err, sizeof(err),
                 "unknown model '%.64s': no model is configured in this server (add model = "
                 "NAME=PATH.onnx), or it is stopping",
                 name);
        return raise_rc(mod, -ENOENT, err);
    }
    PyObject *r = infer_held(mod, name, inputs, outputs);
    model_api_release();
    return r;
}

/* ---- classify() ---- */

static PyObject *mod_classify(PyObject *mod, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "image", "top_k", NULL};
    const char *name;
    Py_buffer img;
    int top_k = 5;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sy*|i:classify", kwlist, &name, &img, &top_k))
        return NULL;
    model_api_info mi;
    char err[MODEL_API_ERRLEN];
    PyObject *result = NULL;
    float *scores = NULL;
    int held = model_api_hold() == 0;
    if (!held || model_api_info_get(-1, name, &mi)) {
        snprintf(err, sizeof(err), "unknown model '%.64s' (aiserve.models() lists them)", name);
        raise_rc(mod, -ENOENT, err);
        goto out;
    }
    if (top_k < 1) {
        invalid(mod, name, "top_k must be a positive integer, not %d", top_k);
        goto out;
    }
    if (img.len == 0) {
        invalid(mod, name, "empty image: pass the bytes of a JPEG or PNG");
        goto out;
    }
    int n = (int)(mi.out_item[0] / sizeof(float));
    scores = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!scores) {
        PyErr_NoMemory();
        goto out;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc =
        model_api_classify(name, img.buf, (size_t)img.len, scores, err, sizeof(err));
    Py_END_ALLOW_THREADS if (rc)
    {
        raise_rc(mod, rc, err);
        goto out;
    }
    result = PyList_New(0);
    for (int j = 0; result && j < top_k && j < n; j++) {
        int best = -1; /* selection: k is small next to n */
        for (int i = 0; i < n; i++)
            if (scores[i] >= 0 && (best < 0 || scores[i] > scores[best])) best = i;
        if (best < 0) break; /* the rest are NaN */
        const char *label = model_api_label(name, best);
        PyObject *e =
            label ? Py_BuildValue("{s:s,s:i,s:d}", "label", label, "index", best, "score",
                                  (double)scores[best])
                  : Py_BuildValue("{s:N,s:i,s:d}", "label", PyUnicode_FromFormat("%d", best),
                                  "index", best, "score", (double)scores[best]);
        if (!e || PyList_Append(result, e)) Py_CLEAR(result);
        Py_XDECREF(e);
        scores[best] = -1;
    }
out:
    if (held) model_api_release();
    free(scores);
    PyBuffer_Release(&img);
    return result;
}

/* ---- the module ---- */

static PyMethodDef methods[] = {
    {"infer", (PyCFunction)(void (*)(void))mod_infer, METH_VARARGS | METH_KEYWORDS,
     "infer(name, inputs, outputs=None) -> dict of numpy arrays\n\n"
     "Runs model `name` through this worker's batcher. inputs: {input name: array} or a list in "
     "input order; arrays in the model's dtype (C-contiguous ones are not copied). outputs: "
     "names to return (None: all). The GIL is released while it waits."},
    {"classify", (PyCFunction)(void (*)(void))mod_classify, METH_VARARGS | METH_KEYWORDS,
     "classify(name, image, top_k=5) -> [{'label', 'index', 'score'}]\n\n"
     "Decodes a JPEG or PNG and classifies it with the image pipeline of /predict."},
    {"models", mod_models, METH_NOARGS,
     "models() -> {name: {'inputs', 'outputs', 'max_batch_size', 'ready', 'classify', "
     "'error'}}"},
    {NULL, NULL, 0, NULL},
};

static int add_exc(PyObject *mod, PyObject **slot, const char *name, PyObject *bases,
                   const char *doc)
{
    char full[64];
    snprintf(full, sizeof(full), "aiserve.%s", name);
    *slot = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    Py_DECREF(bases);
    if (!*slot) return -1;
    Py_INCREF(*slot);
    return PyModule_AddObject(mod, name, *slot) ? (Py_DECREF(*slot), -1) : 0;
}

static int mod_exec(PyObject *mod)
{
    modstate *s = state_of(mod);
    if (PyType_Ready(&outbuf_type)) return -1;
    if (add_exc(mod, &s->InferenceError, "InferenceError", Py_BuildValue("(O)", PyExc_RuntimeError),
                "a model call failed; the message is the engine's"))
        return -1;
    if (add_exc(mod, &s->QueueFull, "QueueFull", Py_BuildValue("(O)", s->InferenceError),
                "the model's queue is full (max-queue); HTTP answers 503"))
        return -1;
    if (add_exc(mod, &s->Timeout, "Timeout", Py_BuildValue("(O)", s->InferenceError),
                "queued past model-timeout-ms; HTTP answers 503"))
        return -1;
    if (add_exc(mod, &s->InvalidInput, "InvalidInput",
                Py_BuildValue("(OO)", s->InferenceError, PyExc_ValueError),
                "the inputs do not fit the model (dtype, shape, batch, a bad image); HTTP "
                "answers 4xx"))
        return -1;
    if (add_exc(mod, &s->ModelNotFound, "ModelNotFound",
                Py_BuildValue("(OO)", s->InferenceError, PyExc_LookupError),
                "no model of that name is configured"))
        return -1;
    return PyModule_AddStringConstant(mod, "__version__", AISERVE_VERSION);
}

static int mod_traverse(PyObject *mod, visitproc visit, void *arg)
{
    modstate *s = state_of(mod);
    Py_VISIT(s->InferenceError);
    Py_VISIT(s->QueueFull);
    Py_VISIT(s->InvalidInput);
    Py_VISIT(s->ModelNotFound);
    Py_VISIT(s->Timeout);
    return 0;
}

static PyModuleDef_Slot slots[] = {{Py_mod_exec, mod_exec}, {0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aiserve",
    .m_doc = "In-process calls into the models aiserve serves (model = NAME=PATH). Only "
             "importable inside aiserve.",
    .m_size = sizeof(modstate),
    .m_methods = methods,
    .m_slots = slots,
    .m_traverse = mod_traverse,
};

PyObject *wsgi_aiserve_init(void)
{
    return PyModuleDef_Init(&moddef);
}
