/* dnn: the oneDNN 2.6 backend (C API) for Conv (+ fused post-ops), MaxPool,
 * AveragePool, Gemm and MatMul.
 *
 * Activations are always NHWC (dnnl_nhwc): with format_tag_any oneDNN mixed
 * blocked and plain layouts between layers and fell back to reference kernels,
 * 23x slower. Weights use the layout oneDNN asks for ("any"), reordered once at
 * load. Every primitive uses a user scratchpad so contexts own their memory. */
#include "engine/model.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ed_set_threads(int n)
{
    /* Only sets this thread's ICV; libgomp starts a pool at the first parallel
     * region with more than one thread, never here. */
    omp_set_num_threads(n < 1 ? 1 : n);
}

void ed_md(const ek_view *v, dnnl_memory_desc_t *md)
{
    dnnl_dims_t d;
    for (int i = 0; i < v->rank; i++) d[i] = v->dims[i];
    static const dnnl_format_tag_t plain[] = {
        dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde};
    dnnl_format_tag_t tag = v->rank == 4 && v->nhwc ? dnnl_nhwc : plain[v->rank];
    dnnl_memory_desc_init_by_tag(md, v->rank, d, dnnl_f32, tag);
}

void ed_layer_free(ed_layer *l)
{
    if (l->prim) dnnl_primitive_destroy(l->prim);
    if (l->pd) dnnl_primitive_desc_destroy(l->pd);
    memset(l, 0, sizeof(*l));
}

static int const_view(const ek_view *v)
{
    return v && v->data && v->dtype == ENG_FLOAT;
}

int ed_has_weights(eg_op op)
{
    return op == EG_OP_CONV || op == EG_OP_GEMM || op == EG_OP_MATMUL || op == EG_OP_CONVTRANSPOSE;
}

int ed_act_matmul(const eg_node *n, ek_view *const *in, int nin)
{
    /* attention's Q.K^T and P.V: two activations of one rank (3 or 4), equal
     * batch dims, plain row-major layout */
    if (n->op != EG_OP_MATMUL || nin != 2 || !in[0] || !in[1] || in[1]->data ||
        in[1]->dtype != ENG_FLOAT || in[0]->rank != in[1]->rank || in[0]->nhwc || in[1]->nhwc ||
        (in[0]->rank != 3 && in[0]->rank != 4) || n->act1.kind)
        return 0;
    for (int d = 0; d < in[0]->rank - 2; d++)
        if (in[0]->dims[d] != in[1]->dims[d]) return 0;
    return 1;
}

int ed_supports(const eng_model *m, int node, ek_view *const *in, int nin)
{
    return ed_eligible(m, node, in, nin) &&
           (!ed_has_weights(m->g->nodes[node].op) || m->conv[node].ready ||
            ed_act_matmul(&m->g->nodes[node], in, nin));
}

int ed_eligible(const eng_model *m, int node, ek_view *const *in, int nin)
{
    const eg_node *n = &m->g->nodes[node];
    if (!m->dnn || m->opts.reference_only || !in[0] || in[0]->dtype != ENG_FLOAT) return 0;
    switch (n->op) {
    case EG_OP_CONV:
        return in[0]->rank == 4 && nin > 1 && const_view(in[1]) &&
               (nin < 3 || !in[2] || const_view(in[2]));
    case EG_OP_CONVTRANSPOSE: { /* 2-D, one group, pads oneDNN can express */
        int64_t st[3], dl[3], pl[3], pr[3];
        if (in[0]->rank != 4 || nin < 2 || !const_view(in[1]) ||
            (nin > 2 && in[2] && !const_view(in[2])) || eg_attr_int(n, "group", 1) != 1 ||
            ek_convt_geom(n, in, nin, st, dl, pl, pr, NULL, 0))
            return 0;
        return pl[0] >= 0 && pl[1] >= 0 && pr[0] >= 0 && pr[1] >= 0;
    }
    case EG_OP_MAXPOOL:
    case EG_OP_AVGPOOL: {
        if (in[0]->rank != 4 || (n->nout > 1 && n->out[1] >= 0)) return 0; /* Indices: C */
        int64_t ks[2] = {0, 0};
        const eg_attr *k = eg_attr_find(n, "kernel_shape");
        if (!k || k->n != 2) return 0;
        ks[0] = k->ints[0], ks[1] = k->ints[1];
        ek_geom g;
        if (ek_geom_init(&g, n, in[0]->dims, 4, ks, (int)eg_attr_int(n, "ceil_mode", 0), NULL, 0))
            return 0;
        /* oneDNN counts the ceil overhang as padding; ONNX does not */
        int incl = n->op == EG_OP_AVGPOOL && eg_attr_int(n, "count_include_pad", 0);
        return !incl || (g.pad_re[1] == g.pad_r[1] && g.pad_re[2] == g.pad_r[2]);
    }
    case EG_OP_GEMM: {
        const ek_view *C = nin > 2 ? in[2] : NULL;
        if (in[0]->rank != 2 || !const_view(in[1]) || eg_attr_int(n, "transA", 0) ||
            eg_attr_float(n, "alpha", 1.0f) != 1.0f)
            return 0;
        int64_t N = in[1]->dims[eg_attr_int(n, "transB", 0) ? 0 : 1];
        return !C || (const_view(C) && eg_attr_float(n, "beta", 1.0f) == 1.0f && ek_numel(C) == N &&
                      C->dims[C->rank - 1] == N);
    }
    case EG_OP_MATMUL: /* [.., S, K] x [K, N]: rows are contiguous, one inner product */
        if (ed_act_matmul(n, in, nin)) return 1;
        return (in[0]->rank == 2 || in[0]->rank == 3) && nin > 1 && const_view(in[1]) &&
               in[1]->rank == 2 && (nin < 3 || !in[2] || const_view(in[2]));
    default: return 0;
    }
}

static void append_act(dnnl_post_ops_t po, const eg_act *a)
{
    switch (a->kind) {
    case EG_ACT_NONE: break;
    case EG_ACT_RELU:
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, a->alpha, 0.0f);
        break;
    case EG_ACT_CLIP:
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, a->alpha, a->beta);
        break;
    case EG_ACT_SIGMOID:
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0.0f, 0.0f);
        break;
    case EG_ACT_HARDSIGMOID:
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_linear, a->alpha, a->beta);
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 1.0f);
        break;
    case EG_ACT_HARDSWISH:
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_hardswish, 0.0f, 0.0f);
        break;
    case EG_ACT_SWISH:
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f);
        break;
    case EG_ACT_GELU:
        dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
        break;
    }
}

static int act_len(const eg_act *a)
{
    return a->kind == EG_ACT_NONE ? 0 : (a->kind == EG_ACT_HARDSIGMOID ? 2 : 1);
}

int ed_sum_inplace(const eg_graph *g, int ni)
{
    const eg_node *n = &g->nodes[ni];
    if (n->sum_in < 0) return 0;
    const eg_value *v = &g->values[n->sum_in];
    if (v->is_output || v->is_input || v->data) return 0;
    for (int k = ni + 1; k < g->nnodes; k++) {
        const eg_node *r = &g->nodes[k];
        if (r->dead) continue;
        if (r->sum_in == n->sum_in) return 0;
        for (int i = 0; i < r->nin; i++)
            if (r->in[i] == n->sum_in) return 0;
    }
    return 1;
}

int ed_sum_index(const eg_node *n)
{
    return act_len(&n->act1);
}

/* src_dt other than f32: the int8 form (u8/s8 source, s8 weights, f32 dst) */
static int conv_desc(const eng_model *m, const eg_node *n, ek_view *const *in, const ek_view *out,
                     const dnnl_memory_desc_t *wmd, dnnl_data_type_t src_dt,
                     dnnl_convolution_desc_t *cd, char *err, size_t errlen)
{
    const ek_view *x = in[0], *w = in[1];
    ek_geom g;
    int rc = ek_geom_init(&g, n, x->dims, 4, w->dims + 2, 0, err, errlen);
    if (rc) return rc;
    (void)m;
    int64_t G = eg_attr_int(n, "group", 1);
    dnnl_memory_desc_t src, wei, bia, dst;
    ek_view xs = *x, ys = *out;
    xs.nhwc = ys.nhwc = 1;
    ed_md(&xs, &src);
    ed_md(&ys, &dst);
    dnnl_data_type_t wdt = dnnl_f32;
    if (src_dt != dnnl_f32) {
        dnnl_dims_t sd = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
        dnnl_memory_desc_init_by_tag(&src, 4, sd, src_dt, dnnl_nhwc);
        wdt = dnnl_s8;
    }
    if (wmd) {
        wei = *wmd;
    } else if (G > 1) {
        dnnl_dims_t d = {G, w->dims[0] / G, w->dims[1], w->dims[2], w->dims[3]};
        dnnl_memory_desc_init_by_tag(&wei, 5, d, wdt, dnnl_format_tag_any);
    } else {
        dnnl_dims_t d = {w->dims[0], w->dims[1], w->dims[2], w->dims[3]};
        dnnl_memory_desc_init_by_tag(&wei, 4, d, wdt, dnnl_format_tag_any);
    }
    dnnl_dims_t bd = {w->dims[0]};
    dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_a);
    int has_bias = n->nin > 2 && n->in[2] >= 0;
    dnnl_dims_t st = {g.stride[1], g.stride[2]}, dl = {g.dil[1] - 1, g.dil[2] - 1};
    dnnl_dims_t pl = {g.pad_l[1], g.pad_l[2]}, pr = {g.pad_re[1], g.pad_re[2]};
    if (dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_inference,
                                                   dnnl_convolution_direct, &src, &wei,
                                                   has_bias ? &bia : NULL, &dst, st, dl, pl, pr))
        return eg_err(err, errlen, ENG_EBACKEND, "node '%s' (Conv): oneDNN rejected the geometry",
                      n->name);
    return 0;
}

/* oscales: per-output-channel scales of an int8 Conv (dequantization), or NULL */
static int make_pd(const eng_model *m, const eg_node *n, const_dnnl_op_desc_t desc,
                   const ek_view *out, const float *oscales, ed_layer *l, char *err, size_t errlen)
{
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    dnnl_primitive_attr_create(&attr);
    dnnl_post_ops_create(&po);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (oscales) dnnl_primitive_attr_set_output_scales(attr, out->dims[1], 1 << 1, oscales);
    if (n->op == EG_OP_CONV) {
        append_act(po, &n->act1);
        if (n->sum_in >= 0) {
            ek_view s = *out;
            s.nhwc = 1;
            dnnl_memory_desc_t smd;
            ed_md(&s, &smd);
            /* in place (dst already holds the residual) lets oneDNN keep its
             * brgemm 1x1 kernel; a binary add post-op made it pick jit_1x1 */
            if (l->sum_inplace)
                dnnl_post_ops_append_sum(po, 1.0f);
            else
                dnnl_post_ops_append_binary(po, dnnl_binary_add, &smd);
        }
        append_act(po, &n->act2);
        if (l->post_sigmoid) dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_logistic, 0, 0);
        dnnl_primitive_attr_set_post_ops(attr, po);
    } else if (n->act1.kind) { /* MatMul with a fused GELU */
        append_act(po, &n->act1);
        dnnl_primitive_attr_set_post_ops(attr, po);
    }
    dnnl_status_t st = dnnl_primitive_desc_create(&l->pd, desc, attr, m->dnn, NULL);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        l->pd = NULL;
        return eg_err(err, errlen, ENG_EBACKEND,
                      "node '%s' (%s): oneDNN has no implementation (%d)", n->name,
                      eg_op_name(n->op), (int)st);
    }
    const char *impl = "?";
    dnnl_primitive_desc_query(l->pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(l->impl, sizeof(l->impl), "%s", impl);
    return 0;
}

static int create_conv(const eng_model *m, const eg_node *n, ek_view *const *in, const ek_view *out,
                       const dnnl_memory_desc_t *wmd, ed_layer *l, char *err, size_t errlen)
{
    dnnl_convolution_desc_t cd;
    int rc = conv_desc(m, n, in, out, wmd, dnnl_f32, &cd, err, errlen);
    return rc ? rc : make_pd(m, n, &cd, out, NULL, l, err, errlen);
}

static int create_ip_dt(const eng_model *m, const eg_node *n, ek_view *const *in,
                        const ek_view *out, const dnnl_memory_desc_t *wmd, dnnl_data_type_t src_dt,
                        const float *oscales, ed_layer *l, char *err, size_t errlen);

int ed_create_int8(const eng_model *m, int node, ek_view *const *in, const ek_view *out,
                   int is_unsigned, const float *oscales, int threads, ed_layer *l, char *err,
                   size_t errlen)
{
    const eg_node *n = &m->g->nodes[node];
    int inplace = l->sum_inplace;
    memset(l, 0, sizeof(*l));
    l->sum_inplace = inplace;
    ed_set_threads(threads);
    dnnl_data_type_t dt = is_unsigned ? dnnl_u8 : dnnl_s8;
    int rc;
    if (n->op == EG_OP_GEMM) {
        rc = create_ip_dt(m, n, in, out, NULL, dt, oscales, l, err, errlen);
    } else {
        dnnl_convolution_desc_t cd;
        rc = conv_desc(m, n, in, out, NULL, dt, &cd, err, errlen);
        rc = rc ? rc : make_pd(m, n, &cd, out, oscales, l, err, errlen);
    }
    if (rc) return rc;
    if (dnnl_primitive_create(&l->prim, l->pd) != dnnl_success) {
        l->prim = NULL;
        ed_layer_free(l);
        return eg_err(err, errlen, ENG_EBACKEND, "node '%s': oneDNN primitive creation failed",
                      n->name);
    }
    return 0;
}

/* ConvTranspose as a oneDNN deconvolution: NHWC activations, ONNX weights
 * [IC, OC, KH, KW] are oneDNN's "iohw" of dims {OC, IC, KH, KW}. */
static int create_deconv(const eng_model *m, const eg_node *n, ek_view *const *in,
                         const ek_view *out, const dnnl_memory_desc_t *wmd, ed_layer *l, char *err,
                         size_t errlen)
{
    int64_t st[3], dl[3], pl[3], pr[3];
    int rc = ek_convt_geom(n, in, n->nin, st, dl, pl, pr, err, errlen);
    if (rc) return rc;
    ek_view xs = *in[0], ys = *out;
    xs.nhwc = ys.nhwc = 1;
    dnnl_memory_desc_t src, dst, wei, bia;
    ed_md(&xs, &src);
    ed_md(&ys, &dst);
    const ek_view *w = in[1];
    dnnl_dims_t wd = {w->dims[1], w->dims[0], w->dims[2], w->dims[3]}, bd = {w->dims[1]};
    if (wmd)
        wei = *wmd;
    else
        dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_a);
    int has_bias = n->nin > 2 && n->in[2] >= 0;
    dnnl_dims_t s2 = {st[0], st[1]}, d2 = {dl[0] - 1, dl[1] - 1}, l2 = {pl[0], pl[1]},
                r2 = {pr[0], pr[1]};
    dnnl_deconvolution_desc_t dd;
    if (dnnl_dilated_deconvolution_forward_desc_init(&dd, dnnl_forward_inference,
                                                     dnnl_deconvolution_direct, &src, &wei,
                                                     has_bias ? &bia : NULL, &dst, s2, d2, l2, r2))
        return eg_err(err, errlen, ENG_EBACKEND, "node '%s': oneDNN rejected the deconvolution",
                      n->name);
    return make_pd(m, n, &dd, out, NULL, l, err, errlen);
}

static int create_pool(const eng_model *m, const eg_node *n, ek_view *const *in, const ek_view *out,
                       ed_layer *l, char *err, size_t errlen)
{
    const eg_attr *k = eg_attr_find(n, "kernel_shape");
    int64_t ks[2] = {k->ints[0], k->ints[1]};
    ek_geom g;
    int rc =
        ek_geom_init(&g, n, in[0]->dims, 4, ks, (int)eg_attr_int(n, "ceil_mode", 0), err, errlen);
    if (rc) return rc;
    ek_view xs = *in[0], ys = *out;
    xs.nhwc = ys.nhwc = 1;
    dnnl_memory_desc_t src, dst;
    ed_md(&xs, &src);
    ed_md(&ys, &dst);
    dnnl_alg_kind_t alg = n->op == EG_OP_MAXPOOL ? dnnl_pooling_max
                          : eg_attr_int(n, "count_include_pad", 0)
                              ? dnnl_pooling_avg_include_padding
                              : dnnl_pooling_avg_exclude_padding;
    dnnl_dims_t st = {g.stride[1], g.stride[2]}, kd = {g.k[1], g.k[2]};
    dnnl_dims_t dl = {g.dil[1] - 1, g.dil[2] - 1};
    dnnl_dims_t pl = {g.pad_l[1], g.pad_l[2]}, pr = {g.pad_re[1], g.pad_re[2]};
    dnnl_pooling_v2_desc_t pd;
    if (dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_inference, alg, &src, &dst, st, kd, dl,
                                          pl, pr))
        return eg_err(err, errlen, ENG_EBACKEND, "node '%s': oneDNN rejected the pooling", n->name);
    return make_pd(m, n, &pd, out, NULL, l, err, errlen);
}

/* Gemm and MatMul with constant weights as an inner product: weights [N,K] in
 * the layout oneDNN picks (reordered at load like a conv's), bias [N]. */
static int create_ip(const eng_model *m, const eg_node *n, ek_view *const *in, const ek_view *out,
                     const dnnl_memory_desc_t *wmd, ed_layer *l, char *err, size_t errlen)
{
    return create_ip_dt(m, n, in, out, wmd, dnnl_f32, NULL, l, err, errlen);
}

/* src_dt other than f32: the int8 Gemm (u8/s8 rows, s8 weights, f32 dst) */
static int create_ip_dt(const eng_model *m, const eg_node *n, ek_view *const *in,
                        const ek_view *out, const dnnl_memory_desc_t *wmd, dnnl_data_type_t src_dt,
                        const float *oscales, ed_layer *l, char *err, size_t errlen)
{
    int64_t K = in[0]->dims[in[0]->rank - 1], N = out->dims[out->rank - 1];
    int64_t M = K ? ek_numel(in[0]) / K : 0; /* a 3-D MatMul input flattens to rows */
    dnnl_dims_t sd = {M, K}, wd = {N, K}, bd = {N}, dd = {M, N};
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_memory_desc_init_by_tag(&src, 2, sd, src_dt, dnnl_ab);
    if (wmd)
        wei = *wmd;
    else
        dnnl_memory_desc_init_by_tag(&wei, 2, wd, src_dt == dnnl_f32 ? dnnl_f32 : dnnl_s8,
                                     dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bia, 1, bd, dnnl_f32, dnnl_a);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab);
    int has_bias = n->nin > 2 && n->in[2] >= 0; /* Gemm's C, or a fused MatMul bias */
    dnnl_inner_product_desc_t ipd;
    if (dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, &src, &wei,
                                             has_bias ? &bia : NULL, &dst))
        return eg_err(err, errlen, ENG_EBACKEND, "node '%s': oneDNN rejected the inner product",
                      n->name);
    return make_pd(m, n, &ipd, out, oscales, l, err, errlen);
}

static int create_matmul(const eng_model *m, const eg_node *n, ek_view *const *in,
                         const ek_view *out, ed_layer *l, char *err, size_t errlen)
{
    int r = in[0]->rank;
    dnnl_dims_t ad, bd, cd;
    for (int d = 0; d < r; d++)
        ad[d] = in[0]->dims[d], bd[d] = in[1]->dims[d], cd[d] = out->dims[d];
    dnnl_format_tag_t tag = r == 3 ? dnnl_abc : dnnl_abcd;
    dnnl_memory_desc_t a, b, c;
    dnnl_memory_desc_init_by_tag(&a, r, ad, dnnl_f32, tag);
    dnnl_memory_desc_init_by_tag(&b, r, bd, dnnl_f32, tag);
    dnnl_memory_desc_init_by_tag(&c, r, cd, dnnl_f32, tag);
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &a, &b, NULL, &c))
        return eg_err(err, errlen, ENG_EBACKEND, "node '%s': oneDNN rejected the matmul", n->name);
    return make_pd(m, n, &md, out, NULL, l, err, errlen);
}

int ed_create(const eng_model *m, int node, ek_view *const *in, const ek_view *out,
              const dnnl_memory_desc_t *wmd, int threads, ed_layer *l, char *err, size_t errlen)
{
    const eg_node *n = &m->g->nodes[node];
    int inplace = l->sum_inplace, sig = l->post_sigmoid;
    memset(l, 0, sizeof(*l));
    l->sum_inplace = inplace;
    l->post_sigmoid = sig && n->op == EG_OP_CONV;
    ed_set_threads(threads);
    int rc;
    if (n->op == EG_OP_CONV)
        rc = create_conv(m, n, in, out, wmd, l, err, errlen);
    else if (n->op == EG_OP_MAXPOOL || n->op == EG_OP_AVGPOOL)
        rc = create_pool(m, n, in, out, l, err, errlen);
    else if (n->op == EG_OP_CONVTRANSPOSE)
        rc = create_deconv(m, n, in, out, wmd, l, err, errlen);
    else if (ed_act_matmul(n, in, n->nin))
        rc = create_matmul(m, n, in, out, l, err, errlen);
    else
        rc = create_ip(m, n, in, out, wmd, l, err, errlen);
    if (rc) return rc;
    if (dnnl_primitive_create(&l->prim, l->pd) != dnnl_success) {
        l->prim = NULL;
        ed_layer_free(l);
        return eg_err(err, errlen, ENG_EBACKEND, "node '%s': oneDNN primitive creation failed",
                      n->name);
    }
    return 0;
}

/* Runs a reorder from plain weights to `dst` on the calling thread only. */
static int reorder_weights(const eng_model *m, const dnnl_memory_desc_t *src_md, void *src,
                           const dnnl_memory_desc_t *dst_md, void *dst)
{
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    dnnl_memory_t ms, md;
    dnnl_stream_t s;
    if (dnnl_reorder_primitive_desc_create(&rpd, src_md, m->dnn, dst_md, m->dnn, NULL))
        return -ENG_EBACKEND;
    int rc = dnnl_primitive_create(&r, rpd) ? -ENG_EBACKEND : 0;
    dnnl_primitive_desc_destroy(rpd);
    if (rc) return rc;
    dnnl_memory_create(&ms, src_md, m->dnn, src);
    dnnl_memory_create(&md, dst_md, m->dnn, dst);
    dnnl_stream_create(&s, m->dnn, dnnl_stream_default_flags);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    if (dnnl_primitive_execute(r, s, 2, args) || dnnl_stream_wait(s)) rc = -ENG_EBACKEND;
    dnnl_stream_destroy(s);
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(md);
    dnnl_primitive_destroy(r);
    return rc;
}

int ed_reorder_conv_to(const eng_model *m, const eg_node *n, const ek_view *w,
                       const dnnl_memory_desc_t *wmd, void *dst)
{
    int64_t G = eg_attr_int(n, "group", 1);
    dnnl_memory_desc_t plain;
    if (n->op == EG_OP_CONVTRANSPOSE) {
        dnnl_dims_t d = {w->dims[1], w->dims[0], w->dims[2], w->dims[3]};
        dnnl_memory_desc_init_by_tag(&plain, 4, d, dnnl_f32, dnnl_iohw);
    } else if (n->op != EG_OP_CONV) {
        /* ONNX B is [N,K] with transB, else [K,N]: "ab" or "ba" of dims {N,K} */
        int tb = n->op == EG_OP_GEMM && eg_attr_int(n, "transB", 0);
        dnnl_dims_t d = {tb ? w->dims[0] : w->dims[1], tb ? w->dims[1] : w->dims[0]};
        dnnl_memory_desc_init_by_tag(&plain, 2, d, dnnl_f32, tb ? dnnl_ab : dnnl_ba);
    } else if (wmd->ndims == 5) {
        dnnl_dims_t d = {G, w->dims[0] / G, w->dims[1], w->dims[2], w->dims[3]};
        dnnl_memory_desc_init_by_tag(&plain, 5, d, dnnl_f32, dnnl_goihw);
    } else {
        dnnl_dims_t d = {w->dims[0], w->dims[1], w->dims[2], w->dims[3]};
        dnnl_memory_desc_init_by_tag(&plain, 4, d, dnnl_f32, dnnl_oihw);
    }
    return reorder_weights(m, &plain, w->data, wmd, dst);
}

int ed_reorder_conv(const eng_model *m, const eg_node *n, const ek_view *w,
                    const dnnl_memory_desc_t *wmd, void **out)
{
    void *buf = eg_alloc(dnnl_memory_desc_get_size(wmd));
    if (!buf) return -ENG_ENOMEM;
    int rc = ed_reorder_conv_to(m, n, w, wmd, buf);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

const void *ed_conv_weights(const eng_model *cm, int ni, const ek_view *w,
                            const dnnl_memory_desc_t *md)
{
    /* The model is logically immutable; this cache is the one exception. */
    eng_model *m = (eng_model *)cm;
    em_conv *c = &m->conv[ni];
    if (c->ready && dnnl_memory_desc_equal(&c->wmd, md)) return c->w;
    const void *found = NULL;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < c->nalt && !found; i++)
        if (dnnl_memory_desc_equal(&c->alt_md[i], md)) found = c->alt_w[i];
    if (!found && c->nalt < EM_MAX_ALT) {
        void *buf = NULL;
        if (!ed_reorder_conv(m, &m->g->nodes[ni], w, md, &buf)) {
            c->alt_md[c->nalt] = *md;
            c->alt_w[c->nalt++] = buf;
            found = buf;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return found;
}
