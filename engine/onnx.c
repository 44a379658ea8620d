/* onnx: ModelProto / TensorProto bytes -> eg_graph, through protobuf-c.
 *
 * Everything read from the file is validated before use: tensor byte counts
 * against their shapes, names against earlier definitions, dims against limits.
 * protobuf-c itself rejects truncated or malformed wire data. */
#include "engine/generated/onnx.pb-c.h"
#include "engine/graph.h"
#include "engine/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMS ((int64_t)1 << 34) /* 16 Gi elements: beyond any sane model */

static eng_dtype map_dtype(int32_t t)
{
    switch (t) {
    case ENG_FLOAT:
    case ENG_INT64:
    case ENG_INT32:
    case ENG_DOUBLE:
    case ENG_BOOL: return (eng_dtype)t;
    default: return ENG_DTYPE_UNDEFINED;
    }
}

static int check_dims(const char *what, const char *name, size_t n, const int64_t *dims, char *err,
                      size_t errlen)
{
    if (n > ENG_MAX_RANK)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "%s '%s': rank %zu exceeds %d", what, name, n,
                      ENG_MAX_RANK);
    int64_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (dims[i] < 0 || dims[i] > MAX_ELEMS)
            return eg_err(err, errlen, ENG_EFORMAT, "%s '%s': bad dimension %lld", what, name,
                          (long long)dims[i]);
        total *= dims[i] ? dims[i] : 1;
        if (total > MAX_ELEMS)
            return eg_err(err, errlen, ENG_EFORMAT, "%s '%s': too many elements", what, name);
    }
    return 0;
}

/* Copies the contents of a TensorProto into a fresh aligned buffer. */
static int tensor_data(const Onnx__TensorProto *t, const char *name, eng_dtype dt, int64_t count,
                       void **out, char *err, size_t errlen)
{
    size_t esz = eg_dtype_size(dt);
    size_t bytes = (size_t)count * esz;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "tensor '%s': external data not supported",
                      name);
    /* check what the file holds before allocating what the shape claims */
    size_t have = t->has_raw_data    ? t->raw_data.len
                  : dt == ENG_FLOAT  ? t->n_float_data * esz
                  : dt == ENG_INT64  ? t->n_int64_data * esz
                  : dt == ENG_DOUBLE ? t->n_double_data * esz
                                     : t->n_int32_data * esz;
    if (have != bytes)
        return eg_err(err, errlen, ENG_EFORMAT, "tensor '%s': %zu bytes of data, shape needs %zu",
                      name, have, bytes);
    void *buf = eg_alloc(bytes);
    if (!buf)
        return eg_err(err, errlen, ENG_ENOMEM, "tensor '%s': out of memory (%zu bytes)", name,
                      bytes);
    int rc = 0;
    if (t->has_raw_data) {
        if (t->raw_data.len != bytes)
            rc = eg_err(err, errlen, ENG_EFORMAT,
                        "tensor '%s': raw_data has %zu bytes, shape needs %zu", name,
                        t->raw_data.len, bytes);
        else if (bytes)
            memcpy(buf, t->raw_data.data, bytes);
    } else if (dt == ENG_FLOAT) {
        if (t->n_float_data != (size_t)count)
            rc = eg_err(err, errlen, ENG_EFORMAT, "tensor '%s': %zu floats, shape needs %lld", name,
                        t->n_float_data, (long long)count);
        else if (count)
            memcpy(buf, t->float_data, bytes);
    } else if (dt == ENG_INT64) {
        if (t->n_int64_data != (size_t)count)
            rc = eg_err(err, errlen, ENG_EFORMAT, "tensor '%s': %zu int64s, shape needs %lld", name,
                        t->n_int64_data, (long long)count);
        else if (count)
            memcpy(buf, t->int64_data, bytes);
    } else if (dt == ENG_DOUBLE) {
        if (t->n_double_data != (size_t)count)
            rc = eg_err(err, errlen, ENG_EFORMAT, "tensor '%s': %zu doubles, shape needs %lld",
                        name, t->n_double_data, (long long)count);
        else if (count)
            memcpy(buf, t->double_data, bytes);
    } else { /* int32 and bool travel in int32_data */
        if (t->n_int32_data != (size_t)count)
            rc = eg_err(err, errlen, ENG_EFORMAT, "tensor '%s': %zu int32s, shape needs %lld", name,
                        t->n_int32_data, (long long)count);
        for (int64_t i = 0; !rc && i < count; i++) {
            if (dt == ENG_BOOL)
                ((uint8_t *)buf)[i] = t->int32_data[i] != 0;
            else
                ((int32_t *)buf)[i] = t->int32_data[i];
        }
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

/* Fills value v from TensorProto t (shape, dtype, contents). */
static int tensor_to_value(const Onnx__TensorProto *t, const char *name, eg_value *v, char *err,
                           size_t errlen)
{
    eng_dtype dt = map_dtype(t->has_data_type ? t->data_type : 0);
    if (dt == ENG_DTYPE_UNDEFINED)
        return eg_err(err, errlen, ENG_EUNSUPPORTED,
                      "tensor '%s': data type %d not supported (float, int64, int32, bool)", name,
                      t->has_data_type ? (int)t->data_type : 0);
    int rc = check_dims("tensor", name, t->n_dims, t->dims, err, errlen);
    if (rc) return rc;
    v->dtype = dt;
    v->rank = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++) v->dims[i] = t->dims[i];
    return tensor_data(t, name, dt, eg_numel(v->rank, v->dims), &v->data, err, errlen);
}

int eg_onnx_tensor(const void *buf, size_t len, char **name, eng_dtype *dtype, int *rank,
                   int64_t *dims, void **data, char *err, size_t errlen)
{
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!t)
        return eg_err(err, errlen, ENG_EFORMAT,
                      "not a valid ONNX TensorProto (%zu bytes: truncated or corrupt)", len);
    eg_value v;
    memset(&v, 0, sizeof(v));
    int rc = tensor_to_value(t, t->name ? t->name : "", &v, err, errlen);
    if (!rc) {
        *dtype = v.dtype;
        *rank = v.rank;
        memcpy(dims, v.dims, sizeof(v.dims));
        *data = v.data;
        if (name) *name = strdup(t->name ? t->name : "");
    }
    onnx__tensor_proto__free_unpacked(t, NULL);
    return rc;
}

static int add_const(eg_graph *g, const char *name, const Onnx__TensorProto *t, char *err,
                     size_t errlen)
{
    if (eg_value_find(g, name) >= 0)
        return eg_err(err, errlen, ENG_EFORMAT, "tensor '%s' is defined twice", name);
    int vi = eg_value_add(g, name);
    if (vi < 0) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    return tensor_to_value(t, name, &g->values[vi], err, errlen);
}

static int copy_attr(eg_graph *g, const Onnx__AttributeProto *a, eg_attr *o, const char *node,
                     char *err, size_t errlen)
{
    o->name = strdup(a->name ? a->name : "");
    o->tensor = -1;
    o->type = (eg_attr_type)a->type;
    if (!o->name) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: o->f = a->f; return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: o->i = a->i; return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        o->s = calloc(1, a->s.len + 1);
        if (!o->s) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        if (a->s.len) memcpy(o->s, a->s.data, a->s.len);
        return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        o->n = (int)a->n_ints;
        o->ints = malloc((a->n_ints + 1) * sizeof(int64_t));
        if (!o->ints) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        if (a->n_ints) memcpy(o->ints, a->ints, a->n_ints * sizeof(int64_t));
        return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        o->n = (int)a->n_floats;
        o->floats = malloc((a->n_floats + 1) * sizeof(float));
        if (!o->floats) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        if (a->n_floats) memcpy(o->floats, a->floats, a->n_floats * sizeof(float));
        return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        o->strs = calloc(a->n_strings + 1, sizeof(char *));
        if (!o->strs) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        for (size_t k = 0; k < a->n_strings; k++) {
            o->strs[k] = calloc(1, a->strings[k].len + 1);
            if (!o->strs[k]) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
            o->n = (int)k + 1;
            if (a->strings[k].len) memcpy(o->strs[k], a->strings[k].data, a->strings[k].len);
        }
        return 0;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
        if (!a->t)
            return eg_err(err, errlen, ENG_EFORMAT, "node '%s': attribute '%s' has no tensor", node,
                          o->name);
        int vi = eg_value_add(g, "");
        if (vi < 0) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        o->tensor = vi;
        int rc = tensor_to_value(a->t, o->name, &g->values[vi], err, errlen);
        const eg_value *v = &g->values[vi];
        if (!rc && eg_numel(v->rank, v->dims) == 1) {
            o->tdtype = v->dtype;
            switch (v->dtype) {
            case ENG_FLOAT: o->f = *(const float *)v->data, o->i = (int64_t)o->f; break;
            case ENG_INT64: o->i = *(const int64_t *)v->data; break;
            case ENG_INT32: o->i = *(const int32_t *)v->data; break;
            case ENG_DOUBLE: o->f = (float)*(const double *)v->data, o->i = (int64_t)o->f; break;
            default: o->i = *(const uint8_t *)v->data; break;
            }
            if (v->dtype != ENG_FLOAT && v->dtype != ENG_DOUBLE) o->f = (float)o->i;
        }
        return rc;
    }
    default:
        /* Graph and sparse attributes belong to ops we do not run; keep the name so
         * the op's own check reports it. */
        o->type = 0;
        return 0;
    }
}

/* A Constant node becomes a constant value directly; no node is kept. */
static int constant_node(eg_graph *g, const eg_node *n, const char *out, char *err, size_t errlen)
{
    if (eg_value_find(g, out) >= 0)
        return eg_err(err, errlen, ENG_EFORMAT, "node '%s': output '%s' is defined twice", n->name,
                      out);
    int vi = eg_value_add(g, out);
    if (vi < 0) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    eg_value *v = &g->values[vi];
    for (int k = 0; k < n->nattr; k++) {
        const eg_attr *a = &n->attrs[k];
        if (!strcmp(a->name, "value") && a->tensor >= 0) {
            eg_value *src = &g->values[a->tensor];
            v->dtype = src->dtype;
            v->rank = src->rank;
            memcpy(v->dims, src->dims, sizeof(v->dims));
            v->data = src->data;
            src->data = NULL;
            return 0;
        }
        int isf = !strcmp(a->name, "value_float") || !strcmp(a->name, "value_floats");
        int isi = !strcmp(a->name, "value_int") || !strcmp(a->name, "value_ints");
        if (!isf && !isi) continue;
        int list = a->type == EG_ATTR_FLOATS || a->type == EG_ATTR_INTS;
        int64_t cnt = list ? a->n : 1;
        v->dtype = isf ? ENG_FLOAT : ENG_INT64;
        v->rank = list ? 1 : 0;
        v->dims[0] = cnt;
        v->data = eg_alloc((size_t)(cnt ? cnt : 1) * 8);
        if (!v->data) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        for (int64_t i = 0; i < cnt; i++) {
            if (isf)
                ((float *)v->data)[i] = list ? a->floats[i] : a->f;
            else
                ((int64_t *)v->data)[i] = list ? a->ints[i] : a->i;
        }
        return 0;
    }
    return eg_err(err, errlen, ENG_EUNSUPPORTED,
                  "node '%s' (Constant): needs a value, value_float(s) or value_int(s) attribute",
                  n->name);
}

static int load_node(eg_graph *g, const Onnx__NodeProto *np, int idx, char *err, size_t errlen)
{
    const char *type = np->op_type ? np->op_type : "";
    char fallback[32];
    snprintf(fallback, sizeof(fallback), "#%d", idx);
    const char *name = np->name && *np->name ? np->name : fallback;
    char mltype[128];
    if (np->domain && !strcmp(np->domain, "ai.onnx.ml")) { /* ops_ext.h spells them so */
        snprintf(mltype, sizeof(mltype), "ai.onnx.ml:%s", type);
        if (eg_op_lookup(mltype) == EG_OP_COUNT)
            return eg_err(err, errlen, ENG_EUNSUPPORTED,
                          "node '%s': op '%s' of domain 'ai.onnx.ml' not supported%s", name, type,
                          !strcmp(type, "ZipMap") ? " (export classifiers without ZipMap: "
                                                    "skl2onnx options {'zipmap': False})"
                                                  : "");
        type = mltype;
    } else if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx"))
        return eg_err(err, errlen, ENG_EUNSUPPORTED,
                      "node '%s': op '%s' of domain '%s' not supported", name, type, np->domain);
    eg_op op = eg_op_lookup(type);
    if (op == EG_OP_ATTENTION) op = EG_OP_COUNT; /* made by a graph pass, never read */
    if (op == EG_OP_COUNT)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "node '%s': unsupported op '%s'", name, type);
    if (np->n_input > EG_MAX_IN || np->n_output > EG_MAX_OUT)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "node '%s' (%s): too many inputs or outputs",
                      name, type);
    g->op_hist[op]++;
    int ni = eg_node_add(g, op, name);
    if (ni < 0) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    eg_node *n = &g->nodes[ni];
    n->attrs = calloc(np->n_attribute + 1, sizeof(eg_attr));
    if (!n->attrs) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    for (size_t k = 0; k < np->n_attribute; k++) {
        n->nattr++;
        int rc = copy_attr(g, np->attribute[k], &n->attrs[k], name, err, errlen);
        n = &g->nodes[ni];
        if (rc) return rc;
    }
    n->nin = (int)np->n_input;
    for (int k = 0; k < n->nin; k++) {
        const char *in = np->input[k];
        if (!in || !*in) {
            n->in[k] = -1;
            continue;
        }
        int vi = eg_value_find(g, in);
        if (vi < 0)
            return eg_err(err, errlen, ENG_EFORMAT,
                          "node '%s' (%s): input '%s' is not a graph input, initializer or output "
                          "of an earlier node",
                          name, type, in);
        n->in[k] = vi;
    }
    /* kernels take required inputs as given; an omitted one ("" in ONNX) or a
     * missing one is the file's fault and must stop the load here */
    int nreq = eg_op_required_inputs(op);
    if (op == EG_OP_SLICE && g->opset >= 10) nreq = 3;
    if (nreq < 0) nreq = n->nin > 0 ? n->nin : 1;
    for (int k = 0; k < nreq; k++)
        if (k >= n->nin || n->in[k] < 0)
            return eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): required input %d is missing",
                          name, type, k);
    if (op == EG_OP_CONSTANT) {
        n->dead = 1;
        if (np->n_output != 1)
            return eg_err(err, errlen, ENG_EFORMAT, "node '%s' (Constant): needs one output", name);
        return constant_node(g, n, np->output[0] ? np->output[0] : "", err, errlen);
    }
    n->nout = (int)np->n_output;
    int named = 0; /* an RNN may omit Y and keep only Y_h */
    for (int k = 0; k < n->nout; k++) named |= np->output[k] && *np->output[k];
    if (!named)
        return eg_err(err, errlen, ENG_EFORMAT, "node '%s' (%s): needs an output", name, type);
    for (int k = 0; k < n->nout; k++) {
        const char *out = np->output[k];
        if (!out || !*out) {
            g->nodes[ni].out[k] = -1;
            continue;
        }
        if (eg_value_find(g, out) >= 0)
            return eg_err(err, errlen, ENG_EFORMAT, "node '%s': output '%s' is defined twice", name,
                          out);
        int vi = eg_value_add(g, out);
        if (vi < 0) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        g->values[vi].producer = ni;
        g->nodes[ni].out[k] = vi;
    }
    return ek_prepare(&g->nodes[ni], err, errlen);
}

static int load_input(eg_graph *g, const Onnx__ValueInfoProto *vi, char *err, size_t errlen)
{
    const char *name = vi->name ? vi->name : "";
    int idx = eg_value_find(g, name);
    if (idx >= 0 && g->values[idx].data)
        return 0; /* an initializer that is also listed as input (IR < 4): a constant */
    if (idx >= 0) return eg_err(err, errlen, ENG_EFORMAT, "graph input '%s' is listed twice", name);
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "graph input '%s' is not a tensor", name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    eng_dtype dt = map_dtype(tt->has_elem_type ? tt->elem_type : 0);
    if (dt == ENG_DTYPE_UNDEFINED)
        return eg_err(err, errlen, ENG_EUNSUPPORTED,
                      "graph input '%s': element type %d not supported", name,
                      tt->has_elem_type ? (int)tt->elem_type : 0);
    if (!tt->shape)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "graph input '%s' has no shape", name);
    if (tt->shape->n_dim > ENG_MAX_RANK)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "graph input '%s': rank %zu too large", name,
                      tt->shape->n_dim);
    idx = eg_value_add(g, name);
    if (idx < 0) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    eg_value *v = &g->values[idx];
    v->dtype = dt;
    v->rank = (int)tt->shape->n_dim;
    v->is_input = 1;
    for (int d = 0; d < v->rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        int fixed = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        if (fixed && (dim->dim_value < 0 || dim->dim_value > MAX_ELEMS))
            return eg_err(err, errlen, ENG_EFORMAT, "graph input '%s': bad dimension %lld", name,
                          (long long)dim->dim_value);
        v->dims[d] = fixed ? dim->dim_value : -1;
    }
    int64_t probe[ENG_MAX_RANK];
    for (int d = 0; d < v->rank; d++) probe[d] = v->dims[d] < 0 ? 1 : v->dims[d];
    if (eg_numel_checked(v->rank, probe) < 0)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "graph input '%s': too many elements", name);
    int *ins = realloc(g->inputs, (size_t)(g->ninputs + 1) * sizeof(int));
    if (!ins) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    g->inputs = ins;
    g->inputs[g->ninputs++] = idx;
    return 0;
}

/* Binds caller-supplied TensorProtos to graph inputs: they become constants. A
 * tensor is matched by name; an unnamed one by position among the trailing
 * n_bind inputs. */
static int bind_inputs(eg_graph *g, const eng_load_opts *o, char *err, size_t errlen)
{
    if (!o || o->n_bind <= 0) return 0;
    if (o->n_bind > g->ninputs || !o->bind_pb || !o->bind_len)
        return eg_err(err, errlen, ENG_EINVAL, "%d tensors to bind, graph has %d inputs", o->n_bind,
                      g->ninputs);
    int first = g->ninputs - o->n_bind;
    for (int b = 0; b < o->n_bind; b++) {
        char *name = NULL;
        eg_value t;
        memset(&t, 0, sizeof(t));
        int rc = eg_onnx_tensor(o->bind_pb[b], o->bind_len[b], &name, &t.dtype, &t.rank, t.dims,
                                &t.data, err, errlen);
        if (rc) return rc;
        int vi = -1;
        for (int k = 0; k < g->ninputs && *name; k++)
            if (!strcmp(g->values[g->inputs[k]].name, name)) vi = g->inputs[k];
        if (!*name) vi = g->inputs[first + b];
        if (vi < 0 || g->values[vi].data) {
            rc = eg_err(err, errlen, ENG_EINVAL, "bound tensor '%s' is not a graph input", name);
            free(name);
            free(t.data);
            return rc;
        }
        free(name);
        eg_value *v = &g->values[vi];
        v->dtype = t.dtype;
        v->rank = t.rank;
        memcpy(v->dims, t.dims, sizeof(t.dims));
        v->data = t.data;
    }
    /* drop the bound ones from the runtime input list */
    int n = 0;
    for (int k = 0; k < g->ninputs; k++)
        if (!g->values[g->inputs[k]].data)
            g->inputs[n++] = g->inputs[k];
        else
            g->values[g->inputs[k]].is_input = 0;
    g->ninputs = n;
    return 0;
}

static int load_graph(eg_graph *g, const Onnx__GraphProto *gp, const eng_load_opts *o, char *err,
                      size_t errlen)
{
    int rc;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        rc = add_const(g, t->name ? t->name : "", t, err, errlen);
        if (rc) return rc;
        if (t->data_type == ENG_FLOAT) g->params += eg_numel((int)t->n_dims, t->dims);
    }
    if (gp->n_sparse_initializer)
        return eg_err(err, errlen, ENG_EUNSUPPORTED, "sparse initializers not supported");
    for (size_t i = 0; i < gp->n_input; i++)
        if ((rc = load_input(g, gp->input[i], err, errlen))) return rc;
    if ((rc = bind_inputs(g, o, err, errlen))) return rc;
    for (size_t i = 0; i < gp->n_node; i++)
        if ((rc = load_node(g, gp->node[i], (int)i, err, errlen))) return rc;
    if (!gp->n_output) return eg_err(err, errlen, ENG_EFORMAT, "graph has no outputs");
    g->outputs = calloc(gp->n_output, sizeof(int));
    if (!g->outputs) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name ? gp->output[i]->name : "";
        int vi = eg_value_find(g, name);
        if (vi < 0)
            return eg_err(err, errlen, ENG_EFORMAT, "graph output '%s' is never produced", name);
        g->values[vi].is_output = 1;
        g->outputs[g->noutputs++] = vi;
    }
    return 0;
}

eg_graph *eg_onnx_parse(const void *data, size_t len, const eng_load_opts *opts, char *err,
                        size_t errlen)
{
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, data);
    if (!mp) {
        eg_err(err, errlen, ENG_EFORMAT,
               "not a valid ONNX model: protobuf parse failed on %zu bytes (truncated or corrupt)",
               len);
        return NULL;
    }
    eg_graph *g = NULL;
    int opset = -1, ml = 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = mp->opset_import[i];
        if (!os->domain || !*os->domain || !strcmp(os->domain, "ai.onnx"))
            opset = os->has_version ? (int)os->version : -1;
        ml |= os->domain && !strcmp(os->domain, "ai.onnx.ml");
    }
    if (opset < 0 && ml) opset = 18; /* a pure ai.onnx.ml graph */
    if (!mp->graph) {
        eg_err(err, errlen, ENG_EFORMAT, "ONNX model has no graph");
    } else if (opset < 0 && mp->n_opset_import) {
        eg_err(err, errlen, ENG_EUNSUPPORTED, "model imports no ai.onnx opset: not supported");
    } else if (opset > 18 || (opset >= 0 && opset < 1)) {
        eg_err(err, errlen, ENG_EUNSUPPORTED, "opset %d not supported (1 to 18)", opset);
    } else if ((g = eg_graph_create()) == NULL) {
        eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    } else {
        g->opset = opset < 0 ? 7 : opset;
        if (load_graph(g, mp->graph, opts, err, errlen)) {
            eg_graph_free(g);
            g = NULL;
        }
    }
    onnx__model_proto__free_unpacked(mp, NULL);
    return g;
}
