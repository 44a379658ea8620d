/* ref_attn: the fused attention node that eg_fuse_attention (passes_ext.c) makes of
 * MatMul(Q, K^T) -> scale -> + mask -> Softmax(last axis) -> MatMul(., V), with
 * the head transposes around it absorbed as strides.
 *
 * Inputs: Q, K, V and an optional additive mask (numpy-broadcast to
 * [B, H, Sq, Sk]). Attributes: scale (float); q_bshd / v_bshd: Q and V are
 * [B, S, H, D] (the Reshape before the head Transpose) rather than [B, H, S, D];
 * k_bshd: K is [B, Sk, H, D] rather than the transposed [B, H, D, Sk]; o_bshd:
 * the output is written [B, Sq, H, Dv] (what the Transpose after P.V made).
 * Output 1 is the kernel's scratch ([Sk*D + Sk*Dv + 4*Sk] floats), a plan-time
 * arena slot, so a run allocates nothing.
 *
 * Per (batch, head) K is gathered once into rows of Sk (d-major) and V into
 * contiguous rows; then each query row makes its scores, softmax and P.V in a
 * buffer of Sk floats: the [Sq, Sk] probability matrix is never written out.
 * With AVX-512 four query rows go together (each K and V vector loaded serves
 * four rows), 16 lanes wide (exp by a polynomial, relative error < 3e-7);
 * elsewhere plain C, one row at a time. */
#include "engine/kernels_util.h"
#include "engine/simd_exp.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define ATT_X86 1
#endif

typedef struct att_geom {
    int64_t B, H, Sq, Sk, D, Dv;
    /* element strides in canonical order: Q/V/out [b, h, s, d], K [b, h, d, j],
     * mask [b, h, i, j] (0 where broadcast) */
    int64_t q[4], k[4], v[4], o[4], m[4];
    float scale;
} att_geom;

static void strides_bshd(int64_t B, int64_t H, int64_t S, int64_t D, int bshd, int64_t *st)
{
    (void)B;
    if (bshd)
        st[0] = S * H * D, st[1] = D, st[2] = H * D, st[3] = 1;
    else
        st[0] = H * S * D, st[1] = S * D, st[2] = D, st[3] = 1;
}

static int geom(ek_args *a, att_geom *g)
{
    const ek_view *q = a->in[0], *k = a->in[1], *v = a->in[2], *m = a->nin > 3 ? a->in[3] : NULL;
    const eg_node *n = a->node;
    int qb = eg_attr_int(n, "q_bshd", 0) != 0, kb = eg_attr_int(n, "k_bshd", 0) != 0,
        vb = eg_attr_int(n, "v_bshd", 0) != 0, ob = eg_attr_int(n, "o_bshd", 0) != 0;
    if (!q || !k || !v || q->rank != 4 || k->rank != 4 || v->rank != 4 || q->dtype != ENG_FLOAT ||
        k->dtype != ENG_FLOAT || v->dtype != ENG_FLOAT || q->nhwc || k->nhwc || v->nhwc ||
        (m && (m->dtype != ENG_FLOAT || m->rank > 4 || m->nhwc)))
        return KFAIL(a, ENG_EUNSUPPORTED,
                     "node '%s' (attention): needs float rank-4 Q, K, V and a float mask",
                     KNAME(a));
    g->B = q->dims[0];
    g->H = q->dims[qb ? 2 : 1];
    g->Sq = q->dims[qb ? 1 : 2];
    g->D = q->dims[3];
    g->Sk = kb ? k->dims[1] : k->dims[3];
    int64_t kh = kb ? k->dims[2] : k->dims[1], kd = kb ? k->dims[3] : k->dims[2];
    int64_t vh = v->dims[vb ? 2 : 1], vs = v->dims[vb ? 1 : 2];
    g->Dv = v->dims[3];
    if (k->dims[0] != g->B || v->dims[0] != g->B || kh != g->H || vh != g->H || kd != g->D ||
        vs != g->Sk)
        return KFAIL(a, ENG_ESHAPE,
                     "node '%s' (attention): Q, K and V disagree on batch, heads, depth or "
                     "sequence length",
                     KNAME(a));
    strides_bshd(g->B, g->H, g->Sq, g->D, qb, g->q);
    strides_bshd(g->B, g->H, g->Sk, g->Dv, vb, g->v);
    strides_bshd(g->B, g->H, g->Sq, g->Dv, ob, g->o);
    if (kb) /* [B, Sk, H, D] read as [b, h, d, j] */
        g->k[0] = g->Sk * g->H * g->D, g->k[1] = g->D, g->k[2] = 1, g->k[3] = g->H * g->D;
    else
        g->k[0] = g->H * g->D * g->Sk, g->k[1] = g->D * g->Sk, g->k[2] = g->Sk, g->k[3] = 1;
    memset(g->m, 0, sizeof(g->m));
    if (m) {
        const int64_t full[4] = {g->B, g->H, g->Sq, g->Sk};
        int64_t st = 1;
        for (int d = m->rank - 1; d >= 0; d--) {
            int c = 4 - m->rank + d;
            if (m->dims[d] != 1 && m->dims[d] != full[c])
                return KFAIL(a, ENG_ESHAPE,
                             "node '%s' (attention): the mask's dim %d (%lld) and the scores' "
                             "(%lld) do not broadcast",
                             KNAME(a), d, (long long)m->dims[d], (long long)full[c]);
            g->m[c] = m->dims[d] == 1 ? 0 : st;
            st *= m->dims[d];
        }
    }
    g->scale = eg_attr_float(n, "scale", 1.0f);
    return 0;
}

static int infer_attention(ek_args *a)
{
    att_geom g;
    int rc = geom(a, &g);
    if (rc) return rc;
    int64_t od[4] = {g.B, g.H, g.Sq, g.Dv};
    if (eg_attr_int(a->node, "o_bshd", 0)) od[1] = g.Sq, od[2] = g.H;
    ku_shape(a->out[0], ENG_FLOAT, 4, od);
    if (a->nout > 1 && a->out[1]) {
        int64_t sd[1] = {g.Sk * (g.D + g.Dv + 4) + 16};
        ku_shape(a->out[1], ENG_FLOAT, 1, sd);
    }
    return 0;
}

/* Scores of one query row into s[Sk], already scaled and masked. */
static void row_scores_c(const att_geom *g, const float *q, const float *kt, const float *mrow,
                         float *s)
{
    for (int64_t j = 0; j < g->Sk; j++) s[j] = 0;
    for (int64_t d = 0; d < g->D; d++) {
        float qd = q[d];
        const float *kr = kt + d * g->Sk;
        for (int64_t j = 0; j < g->Sk; j++) s[j] += qd * kr[j];
    }
    for (int64_t j = 0; j < g->Sk; j++) s[j] = s[j] * g->scale + (mrow ? mrow[j * g->m[3]] : 0.0f);
}

static void row_softmax_pv_c(const att_geom *g, float *s, const float *vr, float *o, int64_t ost)
{
    float mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < g->Sk; j++) mx = s[j] > mx ? s[j] : mx;
    for (int64_t j = 0; j < g->Sk; j++) sum += (s[j] = expf(s[j] - mx));
    float inv = 1.0f / sum;
    for (int64_t d = 0; d < g->Dv; d++) {
        float acc = 0;
        for (int64_t j = 0; j < g->Sk; j++) acc += s[j] * vr[j * g->Dv + d];
        o[d * ost] = acc * inv;
    }
}

#ifdef ATT_X86

static inline __mmask16 tail(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

/* Scores of 4 query rows at once (rows past the last are computed from
 * duplicates and ignored): each K vector loaded feeds 4 rows, 16 accumulators. */
__attribute__((target("avx512f"))) static void scores4_512(const att_geom *g, const float *const *q,
                                                           const float *kt,
                                                           const float *const *mrow, float *s)
{
    int64_t Sk = g->Sk;
    __m512 sc = _mm512_set1_ps(g->scale);
    for (int64_t j0 = 0; j0 < Sk; j0 += 64) {
        __mmask16 km[4];
        for (int c = 0; c < 4; c++) km[c] = Sk - j0 - 16 * c > 0 ? tail(Sk - j0 - 16 * c) : 0;
        /* named accumulators: arrays indexed in loops end up on the stack at -O2 */
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00,
               a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00,
               a31 = a00, a32 = a00, a33 = a00;
        const float *kr = kt + j0;
        for (int64_t d = 0; d < g->D; d++, kr += Sk) {
            __m512 k0 = _mm512_maskz_loadu_ps(km[0], kr),
                   k1 = _mm512_maskz_loadu_ps(km[1], kr + 16),
                   k2 = _mm512_maskz_loadu_ps(km[2], kr + 32),
                   k3 = _mm512_maskz_loadu_ps(km[3], kr + 48), qd;
#define ATT_ROW(r)                                                                                 \
    qd = _mm512_set1_ps(q[r][d]);                                                                  \
    a##r##0 = _mm512_fmadd_ps(qd, k0, a##r##0);                                                    \
    a##r##1 = _mm512_fmadd_ps(qd, k1, a##r##1);                                                    \
    a##r##2 = _mm512_fmadd_ps(qd, k2, a##r##2);                                                    \
    a##r##3 = _mm512_fmadd_ps(qd, k3, a##r##3);
            ATT_ROW(0) ATT_ROW(1) ATT_ROW(2) ATT_ROW(3)
#undef ATT_ROW
        }
        __m512 a[4][4] = {
            {a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4 && km[c]; c++) {
                int64_t j = j0 + 16 * c;
                __m512 mv = _mm512_setzero_ps();
                if (mrow[r] && g->m[3] == 1)
                    mv = _mm512_maskz_loadu_ps(km[c], mrow[r] + j);
                else if (mrow[r] && g->m[3] == 0)
                    mv = _mm512_set1_ps(mrow[r][0]);
                else if (mrow[r])
                    for (int l = 0; l < 16 && j + l < Sk; l++) mv[l] = mrow[r][(j + l) * g->m[3]];
                _mm512_mask_storeu_ps(s + r * Sk + j, km[c], _mm512_fmadd_ps(a[r][c], sc, mv));
            }
    }
}

/* Softmax of one row of scores in place (unnormalised exps); returns 1 / sum. */
__attribute__((target("avx512f"))) static float softmax_512(float *s, int64_t Sk)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < Sk; j += 16)
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tail(Sk - j), s + j));
    __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < Sk; j += 16) {
        __mmask16 k = tail(Sk - j);
        __m512 e = ek_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), m));
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
        _mm512_mask_storeu_ps(s + j, k, e);
    }
    return 1.0f / _mm512_reduce_add_ps(sum);
}

/* P.V of 4 rows of probabilities (rows >= nr skipped at the store): each V
 * vector loaded feeds 4 rows; 32 output columns per pass, 8 accumulators. */
__attribute__((target("avx512f"))) static void pv4_512(const att_geom *g, const float *s,
                                                       const float *inv, const float *vr,
                                                       float *const *o, int nr, int64_t ost)
{
    int64_t Sk = g->Sk, Dv = g->Dv;
    for (int64_t d0 = 0; d0 < Dv; d0 += 32) {
        __mmask16 k0 = tail(Dv - d0), k1 = Dv - d0 > 16 ? tail(Dv - d0 - 16) : 0;
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
               a30 = a00, a31 = a00;
        const float *vp = vr + d0;
        const float *s0 = s, *s1 = s + Sk, *s2 = s + 2 * Sk, *s3 = s + 3 * Sk;
        for (int64_t j = 0; j < Sk; j++, vp += Dv) {
            __m512 v0 = _mm512_maskz_loadu_ps(k0, vp), v1 = _mm512_maskz_loadu_ps(k1, vp + 16), pj;
#define ATT_ROW(r)                                                                                 \
    pj = _mm512_set1_ps(s##r[j]);                                                                  \
    a##r##0 = _mm512_fmadd_ps(pj, v0, a##r##0);                                                    \
    a##r##1 = _mm512_fmadd_ps(pj, v1, a##r##1);
            ATT_ROW(0) ATT_ROW(1) ATT_ROW(2) ATT_ROW(3)
#undef ATT_ROW
        }
        __m512 a[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
        for (int r = 0; r < nr; r++)
            for (int c = 0; c < 2; c++) {
                __mmask16 k = c ? k1 : k0;
                if (!k) continue;
                __m512 res = _mm512_mul_ps(a[r][c], _mm512_set1_ps(inv[r]));
                if (ost == 1)
                    _mm512_mask_storeu_ps(o[r] + d0 + 16 * c, k, res);
                else
                    for (int l = 0; l < 16 && d0 + 16 * c + l < Dv; l++)
                        o[r][(d0 + 16 * c + l) * ost] = res[l];
            }
    }
}

/* Query rows i0 .. i0+nr-1 (nr <= 4) of one (batch, head). */
__attribute__((target("avx512f"))) static void rows4_512(const att_geom *g, const float *Q,
                                                         const float *M, float *O, int64_t b,
                                                         int64_t h, int64_t i0, int nr,
                                                         const float *kt, const float *vr, float *s)
{
    const float *q[4], *mrow[4];
    float *o[4], inv[4];
    for (int r = 0; r < 4; r++) {
        int64_t i = i0 + (r < nr ? r : 0);
        q[r] = Q + b * g->q[0] + h * g->q[1] + i * g->q[2];
        mrow[r] = M ? M + b * g->m[0] + h * g->m[1] + i * g->m[2] : NULL;
        o[r] = O + b * g->o[0] + h * g->o[1] + i * g->o[2];
    }
    scores4_512(g, q, kt, mrow, s);
    for (int r = 0; r < 4; r++) inv[r] = r < nr ? softmax_512(s + r * g->Sk, g->Sk) : 0.0f;
    pv4_512(g, s, inv, vr, o, nr, g->o[3]);
}
#endif

static int run_attention(ek_args *a)
{
    att_geom g;
    int rc = geom(a, &g);
    if (rc) return rc;
    const float *Q = a->in[0]->data, *K = a->in[1]->data, *V = a->in[2]->data;
    const float *M = a->nin > 3 && a->in[3] ? a->in[3]->data : NULL;
    float *O = a->out[0]->data, *kt = a->out[1]->data, *vr = kt + g.Sk * g.D, *s = vr + g.Sk * g.Dv;
    int wide = 0;
    (void)wide;
#ifdef ATT_X86
    wide = __builtin_cpu_supports("avx512f");
#endif
    for (int64_t b = 0; b < g.B; b++)
        for (int64_t h = 0; h < g.H; h++) {
            const float *kp = K + b * g.k[0] + h * g.k[1], *vp = V + b * g.v[0] + h * g.v[1];
            for (int64_t d = 0; d < g.D; d++)
                for (int64_t j = 0; j < g.Sk; j++) kt[d * g.Sk + j] = kp[d * g.k[2] + j * g.k[3]];
            for (int64_t j = 0; j < g.Sk; j++)
                memcpy(vr + j * g.Dv, vp + j * g.v[2], (size_t)g.Dv * sizeof(float));
#ifdef ATT_X86
            if (wide) {
                for (int64_t i = 0; i < g.Sq; i += 4)
                    rows4_512(&g, Q, M, O, b, h, i, g.Sq - i < 4 ? (int)(g.Sq - i) : 4, kt, vr, s);
                continue;
            }
#endif
            for (int64_t i = 0; i < g.Sq; i++) {
                const float *q = Q + b * g.q[0] + h * g.q[1] + i * g.q[2];
                const float *mrow = M ? M + b * g.m[0] + h * g.m[1] + i * g.m[2] : NULL;
                float *o = O + b * g.o[0] + h * g.o[1] + i * g.o[2];
                row_scores_c(&g, q, kt, mrow, s);
                row_softmax_pv_c(&g, s, vr, o, g.o[3]);
            }
        }
    return 0;
}

const ek_op ek_op_attention = {infer_attention, run_attention, 0, 0};
