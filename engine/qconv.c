/* qconv: opt-in int8 convolutions on oneDNN (eng_model_calibrate_int8).
 *
 * At batch 1 the f32 1x1 convolutions already run near the FMA peak, so the
 * only way to make them much faster is to do less work per multiply: oneDNN's
 * int8 kernels (VNNI on AVX-512) measured 2-6x faster than f32 on
 * MobileNetV2's 1x1 shapes. Only dense (one-group) Convs with at least 8 input
 * channels go int8: depthwise measured slower in int8 and a 1- or 3-channel
 * stem wastes VNNI's 4-wide dot products, so those stay f32.
 *
 * Gemms with constant weights (a classifier) go int8 too: 4x fewer weight
 * bytes to stream per run.
 *
 * Scheme: symmetric, per-tensor activations and per-output-channel weights.
 * A calibration run of the f32 plan records each eligible layer's input range;
 * the input is then quantized by a step in front of the layer (u8 when the
 * range is never negative, as after ReLU6, else s8), the layer accumulates in
 * int32 and writes f32 through per-channel output scales, so bias, the fused
 * activation and the residual sum stay f32 and every tensor between layers
 * keeps its f32 layout. Results differ from f32 by quantization error: the
 * caller measures top-1 agreement (tests/engine/test_int8.py). */
#include "engine/model.h"

#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Gemm's B is [N,K] with transB, else [K,N]. */
static int trans_b(const eg_node *n)
{
    return eg_attr_int(n, "transB", 0) != 0;
}

int eq_eligible(const eng_model *m, int ni)
{
    const eg_node *n = &m->g->nodes[ni];
    if ((n->op != EG_OP_CONV && n->op != EG_OP_GEMM) || n->dead || !m->dnn || !m->conv ||
        !m->conv[ni].ready || n->nin < 2 || n->in[1] < 0)
        return 0;
    const eg_value *w = &m->g->values[n->in[1]];
    if (!w->data || w->dtype != ENG_FLOAT) return 0;
    if (n->op == EG_OP_GEMM) /* the classifier: 5 MB of f32 weights streamed per run */
        return w->rank == 2 && w->dims[trans_b(n) ? 1 : 0] >= 8 && !eg_attr_int(n, "transA", 0) &&
               eg_attr_float(n, "alpha", 1.0f) == 1.0f && eg_attr_float(n, "beta", 1.0f) == 1.0f;
    return eg_attr_int(n, "group", 1) == 1 && w->rank == 4 && w->dims[1] >= 8;
}

/* Output channels of an eligible node: a Conv's OC, a Gemm's N. */
static int64_t out_channels(const eng_model *m, int ni)
{
    const eg_node *n = &m->g->nodes[ni];
    const eg_value *w = &m->g->values[n->in[1]];
    return n->op == EG_OP_GEMM && !trans_b(n) ? w->dims[1] : w->dims[0];
}

/* The plain f32 layout of node ni's weights, with the output channels as dim 0. */
static void plain_md(const eng_model *m, int ni, dnnl_memory_desc_t *md)
{
    const eg_node *n = &m->g->nodes[ni];
    const eg_value *w = &m->g->values[n->in[1]];
    if (n->op == EG_OP_GEMM) {
        int tb = trans_b(n);
        dnnl_dims_t d = {tb ? w->dims[0] : w->dims[1], tb ? w->dims[1] : w->dims[0]};
        dnnl_memory_desc_init_by_tag(md, 2, d, dnnl_f32, tb ? dnnl_ab : dnnl_ba);
    } else {
        dnnl_dims_t d = {w->dims[0], w->dims[1], w->dims[2], w->dims[3]};
        dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, dnnl_oihw);
    }
}

const float *eq_out_scales(const eng_model *m, int ni)
{
    return m->conv[ni].q_oscale;
}

const float *eq_bias(const eng_model *m, int ni)
{
    return m->conv[ni].q_bias;
}

/* x * scale rounded to nearest even and saturated, 8 lanes at a time: what
 * oneDNN's quantizing reorder computes, at memory speed (its reorder took ~4x
 * longer on MobileNetV2's expanded tensors). Clamping in float first keeps
 * huge values and NaN (-> lo) out of the integer conversion. */
__attribute__((target("avx2"))) static int64_t quantize_avx2(const float *x, void *q, int64_t n,
                                                             float scale, int is_unsigned)
{
    const __m256 s = _mm256_set1_ps(scale);
    const __m256 lo = _mm256_set1_ps(is_unsigned ? 0.0f : -128.0f);
    const __m256 hi = _mm256_set1_ps(is_unsigned ? 255.0f : 127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v[4];
        for (int k = 0; k < 4; k++) {
            __m256 f = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), s);
            v[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(f, lo), hi));
        }
        __m256i a = _mm256_packs_epi32(v[0], v[1]), b = _mm256_packs_epi32(v[2], v[3]);
        __m256i bytes = is_unsigned ? _mm256_packus_epi16(a, b) : _mm256_packs_epi16(a, b);
        _mm256_storeu_si256((__m256i *)((char *)q + i), _mm256_permutevar8x32_epi32(bytes, order));
    }
    return i;
}

void eq_quantize(const float *x, void *q, int64_t n, float scale, int is_unsigned)
{
    int64_t i = __builtin_cpu_supports("avx2") ? quantize_avx2(x, q, n, scale, is_unsigned) : 0;
    float lo = is_unsigned ? 0.0f : -128.0f, hi = is_unsigned ? 255.0f : 127.0f;
    for (; i < n; i++) {
        float v = fminf(fmaxf(x[i] * scale, lo), hi);
        int r = (int)nearbyintf(v);
        if (is_unsigned)
            ((uint8_t *)q)[i] = (uint8_t)r;
        else
            ((int8_t *)q)[i] = (int8_t)r;
    }
}

/* Plain f32 weights -> s8 in layout md, scaled 127 / wmax per output channel. */
static void *quantize_weights(const eng_model *m, int ni, const ek_view *w,
                              const dnnl_memory_desc_t *md)
{
    const em_conv *c = &m->conv[ni];
    int64_t oc = out_channels(m, ni);
    float *sc = malloc((size_t)oc * sizeof(float));
    void *buf = eg_alloc(dnnl_memory_desc_get_size(md));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t ms = NULL, mdm = NULL;
    dnnl_stream_t s = NULL;
    int ok = sc && buf;
    for (int64_t o = 0; ok && o < oc; o++) sc[o] = c->q_wmax[o] > 0 ? 127.0f / c->q_wmax[o] : 1.0f;
    dnnl_memory_desc_t plain;
    plain_md(m, ni, &plain);
    ok = ok && !dnnl_primitive_attr_create(&attr) &&
         !dnnl_primitive_attr_set_output_scales(attr, oc, 1 << 0, sc) &&
         !dnnl_reorder_primitive_desc_create(&rpd, &plain, m->dnn, md, m->dnn, attr) &&
         !dnnl_primitive_create(&r, rpd) && !dnnl_memory_create(&ms, &plain, m->dnn, w->data) &&
         !dnnl_memory_create(&mdm, md, m->dnn, buf) &&
         !dnnl_stream_create(&s, m->dnn, dnnl_stream_default_flags);
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, mdm}};
        ok = !dnnl_primitive_execute(r, s, 2, args) && !dnnl_stream_wait(s);
    }
    if (s) dnnl_stream_destroy(s);
    if (ms) dnnl_memory_destroy(ms);
    if (mdm) dnnl_memory_destroy(mdm);
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    free(sc);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

const void *eq_weights(const eng_model *cm, int ni, const ek_view *w, const dnnl_memory_desc_t *md)
{
    /* Like ed_conv_weights: the one cache in the otherwise immutable model. */
    eng_model *m = (eng_model *)cm;
    em_conv *c = &m->conv[ni];
    const void *found = NULL;
    pthread_mutex_lock(&m->lock);
    for (int k = 0; k < c->q_nw && !found; k++)
        if (dnnl_memory_desc_equal(&c->q_md[k], md)) found = c->q_w[k];
    if (!found && c->q_nw < EM_MAX_ALT) { /* beyond that, the layer stays f32 */
        void *buf = quantize_weights(m, ni, w, md);
        if (buf) {
            c->q_md[c->q_nw] = *md;
            c->q_w[c->q_nw++] = buf;
            found = buf;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return found;
}

/* Per-output-channel max |w| of Conv ni's plain OIHW weights. */
static float *weight_max(const eng_model *m, int ni)
{
    const eg_node *n = &m->g->nodes[ni];
    const eg_value *w = &m->g->values[n->in[1]];
    int64_t oc = out_channels(m, ni), per = eg_numel(w->rank, w->dims) / (oc ? oc : 1);
    /* row o of [OC, per] (Conv OIHW, Gemm [N,K]) or column o of Gemm's [K,N] */
    int64_t so = n->op == EG_OP_GEMM && !trans_b(n) ? 1 : per, sk = so == 1 ? oc : 1;
    float *mx = calloc((size_t)oc, sizeof(float));
    if (!mx) return NULL;
    const float *d = w->data;
    for (int64_t o = 0; o < oc; o++)
        for (int64_t k = 0; k < per; k++) mx[o] = fmaxf(mx[o], fabsf(d[o * so + k * sk]));
    return mx;
}

int eng_model_calibrate_int8(eng_model *m, int n, const float *const *items, char *err,
                             size_t errlen)
{
    if (!m || n < 1 || !items)
        return eg_err(err, errlen, ENG_EINVAL, "int8 calibration needs at least one input");
    if (!m->dnn)
        return eg_err(err, errlen, ENG_EINVAL, "int8 needs the oneDNN backend (not --reference)");
    if (m->dynamic || eng_model_num_inputs(m) != 1 || m->ins[0].dtype != ENG_FLOAT)
        return eg_err(err, errlen, ENG_EUNSUPPORTED,
                      "int8 calibration wants a model with one float input and fixed dims");
    const eg_graph *g = m->g;
    for (int ni = 0; ni < g->nnodes; ni++) m->conv[ni].q_in = 0; /* calibrate the f32 plan */
    float *range = malloc((size_t)g->nnodes * 2 * sizeof(float));
    void **outs = calloc((size_t)m->g->noutputs + 1, sizeof(void *));
    m->no_fuse = 1; /* the fused blocks never write the tensors calibration reads */
    ep_plan *p = range && outs ? ep_plan_build(m, 1, 1, err, errlen) : NULL;
    m->no_fuse = 0;
    void *arena = p ? eg_alloc(ep_plan_arena(p) + 64) : NULL;
    void *scratch = p ? eg_alloc(ep_plan_scratch(p) + 64) : NULL;
    dnnl_stream_t s = NULL;
    int rc = 0;
    if (!range || !outs || (p && (!arena || !scratch)))
        rc = eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    else if (!p)
        rc = -ENG_EBACKEND; /* message already in err */
    else if (dnnl_stream_create(&s, m->dnn, dnnl_stream_default_flags))
        rc = eg_err(err, errlen, ENG_EBACKEND, "oneDNN stream creation failed");
    for (int k = 0; !rc && k < m->g->noutputs; k++)
        if (!(outs[k] = eg_alloc((size_t)m->outs[k].item_count * 8 + 64)))
            rc = eg_err(err, errlen, ENG_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < g->nnodes; i++)
        range[2 * i] = INFINITY, range[2 * i + 1] = -INFINITY;
    if (!rc) ep_plan_set_ranges(p, range);
    for (int i = 0; !rc && i < n; i++) {
        const void *in[1] = {items[i]};
        rc = ep_plan_run(p, s, arena, scratch, in, outs, err, errlen);
    }
    int nq = 0;
    for (int ni = 0; !rc && ni < g->nnodes; ni++) {
        em_conv *c = &m->conv[ni];
        float lo = range[2 * ni], hi = range[2 * ni + 1];
        float amax = fmaxf(fabsf(lo), fabsf(hi));
        if (!eq_eligible(m, ni) || !(amax > 0) || !isfinite(amax)) continue;
        float *wmax = weight_max(m, ni);
        int64_t oc = out_channels(m, ni);
        const eg_node *n = &g->nodes[ni];
        const float *bias = n->nin > 2 && n->in[2] >= 0 ? g->values[n->in[2]].data : NULL;
        float *os = malloc((size_t)oc * sizeof(float));
        float *qb = bias ? malloc((size_t)oc * sizeof(float)) : NULL;
        if (!wmax || !os || (bias && !qb)) {
            free(wmax), free(os), free(qb);
            rc = eg_err(err, errlen, ENG_ENOMEM, "out of memory");
            break;
        }
        free(c->q_wmax), free(c->q_oscale), free(c->q_bias);
        c->q_unsigned = lo >= 0;
        c->q_in = (c->q_unsigned ? 255.0f : 127.0f) / amax;
        for (int64_t o = 0; o < oc; o++) {
            /* an all-zero channel: any scale works (its sums are 0); keep the bias exact */
            os[o] = wmax[o] > 0 ? wmax[o] / (127.0f * c->q_in) : 1.0f;
            if (qb) qb[o] = bias[o] / os[o];
        }
        c->q_wmax = wmax;
        c->q_oscale = os;
        c->q_bias = qb;
        nq++;
    }
    if (!rc && !nq)
        rc = eg_err(err, errlen, ENG_EUNSUPPORTED,
                    "no dense convolution (one group, >= 8 input channels) to run in int8");
    if (s) dnnl_stream_destroy(s);
    for (int k = 0; outs && k < m->g->noutputs; k++) free(outs[k]);
    free(outs);
    free(arena);
    free(scratch);
    ep_plan_free(p);
    free(range);
    return rc ? rc : nq;
}
