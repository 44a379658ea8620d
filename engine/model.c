/* model: eng_model (load, graph passes, weight preparation, queries). */
#include "engine/model.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copies inferred shapes of runtime values into the graph (the fusion pass
 * compares them). */
static void store_shapes(eg_graph *g, const ei_views *v)
{
    for (int i = 0; i < g->nvalues; i++)
        if (!g->values[i].data && !g->values[i].is_input && v->view[i].rank >= 0) {
            g->values[i].rank = v->view[i].rank;
            g->values[i].dtype = v->view[i].dtype;
            memcpy(g->values[i].dims, v->view[i].dims, sizeof(g->values[i].dims));
        }
}

/* Reorders each Conv's weights once for oneDNN, all into one block (wpool):
 * a run streams through every layer's weights, and one 2 MB-aligned block on
 * transparent huge pages takes a few TLB entries where ~100 separate buffers
 * took thousands of 4 KB pages. Runs with one OpenMP thread so that no thread
 * pool exists before a server forks its workers. */
static int prepare_weights(eng_model *m, const ei_views *v, char *err, size_t errlen)
{
    eg_graph *g = m->g;
    if (!m->dnn) return 0;
    size_t *off = calloc((size_t)g->nnodes, sizeof(size_t)), total = 0;
    if (!off) return eg_err(err, errlen, ENG_ENOMEM, "out of memory reordering weights");
    for (int ni = 0; ni < g->nnodes; ni++) { /* the layouts oneDNN asks for */
        eg_node *n = &g->nodes[ni];
        if (n->dead || !ed_has_weights(n->op) || n->nin < 2 || v->folded[ni]) continue;
        ek_view *in[EG_MAX_IN] = {0};
        for (int k = 0; k < n->nin; k++) in[k] = n->in[k] >= 0 ? &v->view[n->in[k]] : NULL;
        if (!ed_eligible(m, ni, in, n->nin) || !in[1] || !in[1]->data) continue;
        ed_layer l = {.sum_inplace = ed_sum_inplace(g, ni)};
        if (ed_create(m, ni, in, &v->view[n->out[0]], NULL, 1, &l, NULL, 0))
            continue; /* the reference kernel will run it */
        if (!strstr(l.impl, "ref")) {
            m->conv[ni].wmd = *dnnl_primitive_desc_query_md(l.pd, dnnl_query_weights_md, 0);
            m->conv[ni].ready = 1; /* for now: has a slot in the pool */
            off[ni] = total;
            total += (dnnl_memory_desc_get_size(&m->conv[ni].wmd) + 63) & ~(size_t)63;
        }
        ed_layer_free(&l);
    }
    /* beyond one allocation's limit (a model of over 1 GB of weights), or
     * without one free block that large: a buffer per Conv, as before */
    if (total && total <= EG_MAX_TENSOR_BYTES) m->wpool = eg_alloc_big(total);
    int rc = 0;
    for (int ni = 0; ni < g->nnodes && rc != -ENG_ENOMEM; ni++) {
        em_conv *c = &m->conv[ni];
        if (!c->ready) continue;
        eg_node *n = &g->nodes[ni];
        if (m->wpool) {
            c->w = (char *)m->wpool + off[ni];
            rc = ed_reorder_conv_to(m, n, &v->view[n->in[1]], &c->wmd, c->w);
        } else {
            rc = ed_reorder_conv(m, n, &v->view[n->in[1]], &c->wmd, &c->w);
            c->w_own = !rc;
        }
        c->ready = rc == 0;
        if (rc) c->w = NULL;
    }
    free(off);
    if (rc == -ENG_ENOMEM)
        return eg_err(err, errlen, ENG_ENOMEM, "out of memory reordering weights");
    return 0;
}

/* Saturates instead of overflowing: a fuzzed shape can ask for 2^70 MACs. */
static int64_t macs_add(int64_t acc, int64_t a, int64_t b)
{
    int64_t p;
    if (a <= 0 || b <= 0) return acc;
    if (__builtin_mul_overflow(a, b, &p) || __builtin_add_overflow(acc, p, &p)) return INT64_MAX;
    return p;
}

static int64_t count_macs(const eg_graph *g, const ei_views *v)
{
    int64_t macs = 0;
    for (int ni = 0; ni < g->nnodes; ni++) {
        const eg_node *n = &g->nodes[ni];
        if (n->dead || n->nout < 1 || n->out[0] < 0) continue;
        const ek_view *o = &v->view[n->out[0]];
        if (n->op == EG_OP_CONV) {
            const ek_view *w = &v->view[n->in[1]];
            if (w->rank > 0 && w->dims[0] > 0)
                macs = macs_add(macs, ek_numel(o), ek_numel(w) / w->dims[0]);
        } else if (n->op == EG_OP_GEMM || n->op == EG_OP_MATMUL) {
            const ek_view *a = &v->view[n->in[0]];
            if (a->rank < 1) continue;
            int64_t K = n->op == EG_OP_GEMM && eg_attr_int(n, "transA", 0) ? a->dims[0]
                                                                           : a->dims[a->rank - 1];
            macs = macs_add(macs, ek_numel(o), K);
        } else if (n->op == EG_OP_ATTENTION) { /* Q.K^T and P.V of the fused node */
            const ek_view *q = &v->view[n->in[0]], *k = &v->view[n->in[1]];
            if (q->rank != 4 || k->rank != 4) continue;
            int64_t Sk = eg_attr_int(n, "k_bshd", 0) ? k->dims[1] : k->dims[3];
            macs = macs_add(macs_add(macs, ek_numel(q), Sk), ek_numel(o), Sk);
        }
    }
    return macs;
}

static int fill_info(eng_model *m, const ei_views *v1, const ei_views *v2, char *err, size_t errlen)
{
    eg_graph *g = m->g;
    m->ins = calloc((size_t)g->ninputs + 1, sizeof(eng_tensor_info));
    m->outs = calloc((size_t)g->noutputs + 1, sizeof(eng_tensor_info));
    if (!m->ins || !m->outs) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    for (int k = 0; k < g->ninputs + g->noutputs; k++) {
        int isin = k < g->ninputs;
        int vi = isin ? g->inputs[k] : g->outputs[k - g->ninputs];
        eng_tensor_info *t = isin ? &m->ins[k] : &m->outs[k - g->ninputs];
        const ek_view *a = &v1->view[vi];
        t->name = g->values[vi].name;
        t->dtype = a->dtype;
        t->rank = a->rank;
        memcpy(t->shape, a->dims, sizeof(t->shape));
        t->item_count = ek_numel(a);
        if (!m->fixed_batch && t->rank > 0) {
            /* batch 2 must double dim 0 and nothing else */
            const ek_view *b = &v2->view[vi];
            if (b->rank != a->rank || b->dims[0] != 2 * a->dims[0] || a->dims[0] != 1 ||
                memcmp(a->dims + 1, b->dims + 1, (size_t)(a->rank - 1) * 8))
                return eg_err(err, errlen, ENG_EUNSUPPORTED,
                              "%s '%s': dimension 0 is not the batch dimension",
                              isin ? "input" : "output", t->name);
            t->shape[0] = -1;
        } else if (!m->fixed_batch) {
            return eg_err(err, errlen, ENG_EUNSUPPORTED,
                          "output '%s' is a scalar in a batched model", t->name);
        }
    }
    return 0;
}

/* Inputs and outputs of a model with dynamic dims beyond the batch: -1 for every
 * dim that changes between probe runs (batch 1 or 2, dynamic dims 1 or 2);
 * item_count 0 (runs take shapes). */
static int fill_info_dynamic(eng_model *m, const ei_views *v1, char *err, size_t errlen)
{
    eg_graph *g = m->g;
    if (!m->ins) m->ins = calloc((size_t)g->ninputs + 1, sizeof(eng_tensor_info));
    if (!m->outs) m->outs = calloc((size_t)g->noutputs + 1, sizeof(eng_tensor_info));
    if (!m->ins || !m->outs) return eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    ei_views *v2 = es_infer(g, 2, 1, err, errlen), *v3 = v2 ? es_infer(g, 1, 2, err, errlen) : NULL;
    if (!v3) {
        ei_views_free(v2);
        return -ENG_EFORMAT;
    }
    for (int k = 0; k < g->ninputs + g->noutputs; k++) {
        int isin = k < g->ninputs;
        int vi = isin ? g->inputs[k] : g->outputs[k - g->ninputs];
        eng_tensor_info *t = isin ? &m->ins[k] : &m->outs[k - g->ninputs];
        const ek_view *a = &v1->view[vi], *b = &v2->view[vi], *c = &v3->view[vi];
        t->name = g->values[vi].name;
        t->dtype = a->dtype;
        t->rank = a->rank;
        t->item_count = 0;
        for (int d = 0; d < a->rank; d++) {
            int dyn = isin ? g->values[vi].dims[d] < 0
                           : b->rank != a->rank || c->rank != a->rank || b->dims[d] != a->dims[d] ||
                                 c->dims[d] != a->dims[d];
            t->shape[d] = dyn ? -1 : a->dims[d];
        }
    }
    ei_views_free(v2);
    ei_views_free(v3);
    return 0;
}

static int finish_load(eng_model *m, char *err, size_t errlen)
{
    eg_graph *g = m->g;
    int rc = eg_fold_constants(g, err, errlen);
    if (rc) return rc;
    if (!m->opts.no_graph_passes) eg_remove_identities(g);
    m->fixed_batch = 1;
    for (int k = 0; k < g->ninputs; k++)
        if (g->values[g->inputs[k]].rank > 0 && g->values[g->inputs[k]].dims[0] < 0)
            m->fixed_batch = 0;
    m->dynamic = es_has_dynamic(g);
    ei_views *v = es_infer(g, 1, 1, err, errlen), *v2 = NULL;
    if (!v) return -ENG_EFORMAT;
    store_shapes(g, v);
    ei_views_free(v);
    if (!m->opts.no_graph_passes) {
        eg_fold_batchnorm(g);
        eg_fuse_silu(g);
        eg_fuse_activations(g);
        eg_fuse_matmul_bias(g);
        eg_fuse_gelu(g);
        eg_fuse_attention(g);
        eg_fuse_add_layernorm(g);
    }
    eg_remove_dead(g);
    if (!(v = es_infer(g, 1, 1, err, errlen))) return -ENG_EFORMAT;
    if (!m->fixed_batch && !m->dynamic && !(v2 = es_infer(g, 2, 1, err, errlen))) {
        ei_views_free(v);
        return -ENG_EFORMAT;
    }
    m->macs = count_macs(g, v);
    rc = m->dynamic ? fill_info_dynamic(m, v, err, errlen) : fill_info(m, v, v2, err, errlen);
    if (rc == -ENG_EUNSUPPORTED && !m->dynamic && !m->fixed_batch && m->ins && m->outs) {
        /* dim 0 is not a batch (a sequence-first RNN): run on explicit shapes */
        m->dynamic = 1;
        rc = fill_info_dynamic(m, v, err, errlen);
    }
    if (!rc && !m->opts.reference_only) {
        if (dnnl_engine_create(&m->dnn, dnnl_cpu, 0) != dnnl_success) m->dnn = NULL;
        int saved = omp_get_max_threads();
        ed_set_threads(1);
        rc = prepare_weights(m, v, err, errlen);
        if (!rc && m->dnn && !m->dynamic) ef_prepack(m, v->view);
        ed_set_threads(saved);
    }
    ei_views_free(v);
    ei_views_free(v2);
    return rc;
}

eng_model *eng_model_load_memory(const void *data, size_t len, const eng_load_opts *opts, char *err,
                                 size_t errlen)
{
    if (!data || !len) {
        eg_err(err, errlen, ENG_EFORMAT, "empty model (0 bytes)");
        return NULL;
    }
    eg_graph *g = eg_onnx_parse(data, len, opts, err, errlen);
    if (!g) return NULL;
    eng_model *m = calloc(1, sizeof(*m));
    if (!m || !(m->conv = calloc((size_t)g->nnodes + 1, sizeof(em_conv)))) {
        eg_err(err, errlen, ENG_ENOMEM, "out of memory");
        free(m);
        eg_graph_free(g);
        return NULL;
    }
    m->g = g;
    pthread_mutex_init(&m->lock, NULL);
    if (opts) m->opts = *opts;
    m->opts.n_bind = 0;
    m->opts.bind_pb = NULL;
    m->opts.bind_len = NULL;
    memcpy(m->hist_ops, g->op_hist, sizeof(m->hist_ops));
    if (finish_load(m, err, errlen)) {
        eng_model_free(m);
        return NULL;
    }
    return m;
}

eng_model *eng_model_load_file(const char *path, const eng_load_opts *opts, char *err,
                               size_t errlen)
{
    if (!path) {
        eg_err(err, errlen, ENG_EINVAL, "no model path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        eg_err(err, errlen, ENG_EIO, "%s: %s", path,
               fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return NULL;
    }
    if (st.st_size == 0) {
        close(fd);
        eg_err(err, errlen, ENG_EFORMAT, "%s: empty file", path);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        eg_err(err, errlen, ENG_EIO, "%s: mmap: %s", path, strerror(errno));
        return NULL;
    }
    char inner[ENG_ERRLEN];
    eng_model *m = eng_model_load_memory(map, (size_t)st.st_size, opts, inner, sizeof(inner));
    munmap(map, (size_t)st.st_size);
    if (!m) eg_err(err, errlen, ENG_EFORMAT, "%s: %s", path, inner);
    return m;
}

void eng_model_free(eng_model *m)
{
    if (!m) return;
    for (int i = 0; m->g && m->conv && i < m->g->nnodes; i++) {
        if (m->conv[i].w_own) free(m->conv[i].w);
        for (int k = 0; k < m->conv[i].q_nw; k++) free(m->conv[i].q_w[k]);
        free(m->conv[i].q_wmax);
        free(m->conv[i].q_oscale);
        free(m->conv[i].q_bias);
        for (int k = 0; k < m->conv[i].nalt; k++) free(m->conv[i].alt_w[k]);
    }
    free(m->wpool);
    ef_model_free(m);
    pthread_mutex_destroy(&m->lock);
    free(m->conv);
    free(m->ins);
    free(m->outs);
    if (m->dnn) dnnl_engine_destroy(m->dnn);
    eg_graph_free(m->g);
    free(m);
}

int eng_model_num_inputs(const eng_model *m)
{
    return m ? m->g->ninputs : 0;
}

int eng_model_num_outputs(const eng_model *m)
{
    return m ? m->g->noutputs : 0;
}

int eng_model_input(const eng_model *m, int i, eng_tensor_info *out)
{
    if (!m || !out || i < 0 || i >= m->g->ninputs) return -ENG_EINVAL;
    *out = m->ins[i];
    return 0;
}

int eng_model_output(const eng_model *m, int i, eng_tensor_info *out)
{
    if (!m || !out || i < 0 || i >= m->g->noutputs) return -ENG_EINVAL;
    *out = m->outs[i];
    return 0;
}

int eng_model_dynamic(const eng_model *m)
{
    return m && m->dynamic;
}

int eng_model_max_batch(const eng_model *m)
{
    return m && m->fixed_batch ? 1 : 0;
}

int64_t eng_model_macs(const eng_model *m)
{
    return m ? m->macs : 0;
}

int64_t eng_model_macs_shapes(const eng_model *m, const int64_t *const *shapes)
{
    if (!m || !shapes || !m->dynamic) return eng_model_macs(m);
    if (es_check_shapes(m, shapes, NULL, 0)) return 0;
    eg_graph *gv = es_graph_view(m->g, shapes, 0);
    ei_views *v = gv ? ei_infer(gv, 1, 1, NULL, 0) : NULL;
    es_graph_view_free(gv);
    int64_t macs = v ? count_macs(m->g, v) : 0;
    ei_views_free(v);
    return macs;
}

int64_t eng_model_params(const eng_model *m)
{
    return m ? m->g->params : 0;
}

int eng_model_op_counts(const eng_model *m, const char **ops, int *counts, int cap)
{
    int n = 0;
    for (int i = 0; m && i < EG_OP_COUNT; i++) {
        if (!m->hist_ops[i]) continue;
        if (n < cap) {
            ops[n] = eg_op_name((eg_op)i);
            counts[n] = m->hist_ops[i];
        }
        n++;
    }
    return n;
}

const char *eng_strerror(int status)
{
    switch (status < 0 ? -status : status) {
    case ENG_OK: return "success";
    case ENG_EINVAL: return "invalid argument";
    case ENG_ENOMEM: return "out of memory";
    case ENG_EIO: return "I/O error";
    case ENG_EFORMAT: return "malformed model or tensor";
    case ENG_EUNSUPPORTED: return "unsupported model feature";
    case ENG_ESHAPE: return "shape mismatch";
    case ENG_EBACKEND: return "backend failure";
    default: return "unknown error";
    }
}
