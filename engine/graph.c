/* graph: IR containers and small helpers shared by the loader, passes and planner. */
#include "engine/graph.h"

#include "lib/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *const op_names[] = {
#define EG_NAME(name, id, nreq) name,
    EG_OPS(EG_NAME)
#undef EG_NAME
};

static const signed char op_required[] = {
#define EG_REQ(name, id, nreq) nreq,
    EG_OPS(EG_REQ)
#undef EG_REQ
};

const char *eg_op_name(eg_op op)
{
    return op < EG_OP_COUNT ? op_names[op] : "?";
}

int eg_op_required_inputs(eg_op op)
{
    return op < EG_OP_COUNT ? op_required[op] : 0;
}

eg_op eg_op_lookup(const char *onnx_name)
{
    for (int i = 0; i < EG_OP_COUNT; i++)
        if (!strcmp(op_names[i], onnx_name)) return (eg_op)i;
    return EG_OP_COUNT;
}

int eg_err(char *err, size_t errlen, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vfmt_rc(err, errlen, -status, fmt, ap); /* lib/err: the shared formatter */
    va_end(ap);
    return -status;
}

void *eg_alloc(size_t bytes)
{
    /* One tensor larger than this is a malformed model, not a workload: refuse
     * it rather than let the allocator take the process down. */
    if (bytes > EG_MAX_TENSOR_BYTES) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded ? rounded : 64);
    return p;
}

void *eg_alloc_big(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    const char *env = getenv("AIINFER_HUGEPAGES");
    if (bytes < EG_BIG_MIN || bytes > EG_MAX_TENSOR_BYTES || (env && !strcmp(env, "0")))
        return eg_alloc(bytes);
    size_t rounded = (bytes + huge - 1) & ~(huge - 1);
    void *p = aligned_alloc(huge, rounded);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE); /* advice only: 4 KB pages if it fails */
#endif
    memset(p, 0, rounded); /* faults the pages in now, at load, not in a run */
    return p;
}

size_t eg_dtype_size(eng_dtype t)
{
    switch (t) {
    case ENG_FLOAT:
    case ENG_INT32: return 4;
    case ENG_INT64:
    case ENG_DOUBLE: return 8;
    case ENG_BOOL: return 1;
    default: return 0;
    }
}

int64_t eg_numel(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

int64_t eg_numel_checked(int rank, const int64_t *dims)
{
    int64_t n = 1;
    if (rank < 0 || rank > ENG_MAX_RANK) return -1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n) ||
            n > (int64_t)(EG_MAX_TENSOR_BYTES / 4))
            return -1;
    }
    return n;
}

eg_graph *eg_graph_create(void)
{
    return calloc(1, sizeof(eg_graph));
}

static void attr_free(eg_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    for (int i = 0; a->strs && i < a->n; i++) free(a->strs[i]);
    free(a->strs);
}

void eg_graph_free(eg_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->nvalues; i++) {
        free(g->values[i].name);
        free(g->values[i].data);
    }
    for (int i = 0; i < g->nnodes; i++) {
        for (int k = 0; k < g->nodes[i].nattr; k++) attr_free(&g->nodes[i].attrs[k]);
        free(g->nodes[i].attrs);
        free(g->nodes[i].name);
        free(g->nodes[i].priv);
    }
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g);
}

int eg_value_add(eg_graph *g, const char *name)
{
    if (g->nvalues == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 64;
        eg_value *v = realloc(g->values, (size_t)cap * sizeof(*v));
        if (!v) return -1;
        g->values = v;
        g->cap_values = cap;
    }
    eg_value *v = &g->values[g->nvalues];
    memset(v, 0, sizeof(*v));
    v->name = strdup(name ? name : "");
    if (!v->name) return -1;
    v->rank = -1;
    v->producer = -1;
    return g->nvalues++;
}

int eg_value_find(const eg_graph *g, const char *name)
{
    /* Later definitions shadow earlier ones only in malformed models; the loader
     * rejects duplicates, so the first match is the only one. */
    for (int i = 0; i < g->nvalues; i++)
        if (!strcmp(g->values[i].name, name)) return i;
    return -1;
}

int eg_node_add(eg_graph *g, eg_op op, const char *name)
{
    if (g->nnodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        eg_node *n = realloc(g->nodes, (size_t)cap * sizeof(*n));
        if (!n) return -1;
        g->nodes = n;
        g->cap_nodes = cap;
    }
    eg_node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->name = strdup(name ? name : "");
    if (!n->name) return -1;
    n->sum_in = -1;
    return g->nnodes++;
}

const eg_attr *eg_attr_find(const eg_node *n, const char *name)
{
    for (int i = 0; i < n->nattr; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t eg_attr_int(const eg_node *n, const char *name, int64_t def)
{
    const eg_attr *a = eg_attr_find(n, name);
    return a && a->type == EG_ATTR_INT ? a->i : def;
}

float eg_attr_float(const eg_node *n, const char *name, float def)
{
    const eg_attr *a = eg_attr_find(n, name);
    return a && a->type == EG_ATTR_FLOAT ? a->f : def;
}

const char *eg_attr_str(const eg_node *n, const char *name, const char *def)
{
    const eg_attr *a = eg_attr_find(n, name);
    return a && a->type == EG_ATTR_STRING && a->s ? a->s : def;
}
