/* gemv: the batch-1 Gemm kernel (gemv.h). Each block of columns keeps two sets
 * of 4 accumulators (even and odd k) so 8 FMA chains cover the FMA latency;
 * the packed weights stream through once per run in address order, which
 * the hardware prefetcher follows. */
#include "engine/gemv.h"

#include "engine/graph.h"
#include "engine/irb.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

struct ev_gemv {
    int64_t K, Kp, N, Np; /* Kp: K rounded up to even, Np: to the block */
    int isa, bw;          /* bw: block width in floats (4 vectors) */
    float *w;             /* [Np / bw][Kp][bw], zero padded */
    float *bias;          /* [Np] */
};

ev_gemv *ev_gemv_create(int64_t K, int64_t N, const float *B, int trans_b, const float *bias,
                        int isa)
{
    if (K < 1 || N < 1 || (isa != EF_ISA_AVX2 && isa != EF_ISA_AVX512) || isa > ef_isa())
        return NULL;
    ev_gemv *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->K = K, g->N = N, g->isa = isa;
    g->bw = isa == EF_ISA_AVX512 ? 64 : 32;
    g->Kp = (K + 1) / 2 * 2;
    g->Np = (N + g->bw - 1) / g->bw * g->bw;
    g->w = eg_alloc_big((size_t)(g->Kp * g->Np) * sizeof(float));
    g->bias = eg_alloc((size_t)g->Np * sizeof(float));
    if (!g->w || !g->bias) {
        ev_gemv_free(g);
        return NULL;
    }
    for (int64_t j = 0; j < N; j++) {
        float *blk = g->w + (j / g->bw) * g->Kp * g->bw + j % g->bw;
        for (int64_t k = 0; k < K; k++) blk[k * g->bw] = trans_b ? B[j * K + k] : B[k * N + j];
        g->bias[j] = bias ? bias[j] : 0;
    }
    return g;
}

void ev_gemv_free(ev_gemv *g)
{
    if (!g) return;
    free(g->w);
    free(g->bias);
    free(g);
}

int ev_gemv_isa(const ev_gemv *g)
{
    return g->isa;
}

__attribute__((target("avx512f"))) static void run_avx512(const ev_gemv *g, const float *x,
                                                          float *y, float *tail)
{
    for (int64_t j = 0; j < g->Np; j += 64) {
        const float *p = g->w + j * g->Kp;
        __m512 a0 = _mm512_load_ps(g->bias + j), a1 = _mm512_load_ps(g->bias + j + 16);
        __m512 a2 = _mm512_load_ps(g->bias + j + 32), a3 = _mm512_load_ps(g->bias + j + 48);
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int64_t k = 0; k + 1 < g->K; k += 2, p += 128) {
            __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
            a0 = _mm512_fmadd_ps(x0, _mm512_load_ps(p), a0);
            a1 = _mm512_fmadd_ps(x0, _mm512_load_ps(p + 16), a1);
            a2 = _mm512_fmadd_ps(x0, _mm512_load_ps(p + 32), a2);
            a3 = _mm512_fmadd_ps(x0, _mm512_load_ps(p + 48), a3);
            c0 = _mm512_fmadd_ps(x1, _mm512_load_ps(p + 64), c0);
            c1 = _mm512_fmadd_ps(x1, _mm512_load_ps(p + 80), c1);
            c2 = _mm512_fmadd_ps(x1, _mm512_load_ps(p + 96), c2);
            c3 = _mm512_fmadd_ps(x1, _mm512_load_ps(p + 112), c3);
        }
        if (g->K % 2) { /* the last, unpaired row */
            __m512 x0 = _mm512_set1_ps(x[g->K - 1]);
            a0 = _mm512_fmadd_ps(x0, _mm512_load_ps(p), a0);
            a1 = _mm512_fmadd_ps(x0, _mm512_load_ps(p + 16), a1);
            a2 = _mm512_fmadd_ps(x0, _mm512_load_ps(p + 32), a2);
            a3 = _mm512_fmadd_ps(x0, _mm512_load_ps(p + 48), a3);
        }
        float *o = j + 64 <= g->N ? y + j : tail;
        _mm512_storeu_ps(o, _mm512_add_ps(a0, c0));
        _mm512_storeu_ps(o + 16, _mm512_add_ps(a1, c1));
        _mm512_storeu_ps(o + 32, _mm512_add_ps(a2, c2));
        _mm512_storeu_ps(o + 48, _mm512_add_ps(a3, c3));
    }
}

__attribute__((target("avx2,fma"))) static void run_avx2(const ev_gemv *g, const float *x, float *y,
                                                         float *tail)
{
    for (int64_t j = 0; j < g->Np; j += 32) {
        const float *p = g->w + j * g->Kp;
        __m256 a0 = _mm256_load_ps(g->bias + j), a1 = _mm256_load_ps(g->bias + j + 8);
        __m256 a2 = _mm256_load_ps(g->bias + j + 16), a3 = _mm256_load_ps(g->bias + j + 24);
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int64_t k = 0; k + 1 < g->K; k += 2, p += 64) {
            __m256 x0 = _mm256_set1_ps(x[k]), x1 = _mm256_set1_ps(x[k + 1]);
            a0 = _mm256_fmadd_ps(x0, _mm256_load_ps(p), a0);
            a1 = _mm256_fmadd_ps(x0, _mm256_load_ps(p + 8), a1);
            a2 = _mm256_fmadd_ps(x0, _mm256_load_ps(p + 16), a2);
            a3 = _mm256_fmadd_ps(x0, _mm256_load_ps(p + 24), a3);
            c0 = _mm256_fmadd_ps(x1, _mm256_load_ps(p + 32), c0);
            c1 = _mm256_fmadd_ps(x1, _mm256_load_ps(p + 40), c1);
            c2 = _mm256_fmadd_ps(x1, _mm256_load_ps(p + 48), c2);
            c3 = _mm256_fmadd_ps(x1, _mm256_load_ps(p + 56), c3);
        }
        if (g->K % 2) {
            __m256 x0 = _mm256_set1_ps(x[g->K - 1]);
            a0 = _mm256_fmadd_ps(x0, _mm256_load_ps(p), a0);
            a1 = _mm256_fmadd_ps(x0, _mm256_load_ps(p + 8), a1);
            a2 = _mm256_fmadd_ps(x0, _mm256_load_ps(p + 16), a2);
            a3 = _mm256_fmadd_ps(x0, _mm256_load_ps(p + 24), a3);
        }
        float *o = j + 32 <= g->N ? y + j : tail;
        _mm256_storeu_ps(o, _mm256_add_ps(a0, c0));
        _mm256_storeu_ps(o + 8, _mm256_add_ps(a1, c1));
        _mm256_storeu_ps(o + 16, _mm256_add_ps(a2, c2));
        _mm256_storeu_ps(o + 24, _mm256_add_ps(a3, c3));
    }
}

void ev_gemv_run(const ev_gemv *g, const float *x, float *y)
{
    float tail[64];
    if (g->isa == EF_ISA_AVX512)
        run_avx512(g, x, y, tail);
    else
        run_avx2(g, x, y, tail);
    int64_t t = g->N % g->bw; /* the last block's columns that exist */
    if (t) memcpy(y + g->N - t, tail, (size_t)t * sizeof(float));
}

/* ---- where it runs: plan.c asks per Gemm node -------------------------------- */

#include "engine/model.h"

/* Weights of at least 256 KB: where oneDNN's batch-1 inner product was slow
 * (the classifier); smaller ones were not measured and stay on oneDNN. */
#define EV_MIN_WEIGHTS (64 * 1024)

const ev_gemv *ev_match(const eng_model *m, int ni, const ek_view *a, int threads)
{
    const eg_node *n = &m->g->nodes[ni];
    if (n->op != EG_OP_GEMM || threads != 1 || !m->dnn || m->opts.reference_only || m->no_fuse ||
        n->nin < 2 || n->in[1] < 0 || m->conv[ni].q_in > 0 || n->act1.kind || n->act2.kind ||
        n->sum_in >= 0 || !a || a->rank != 2 || a->dims[0] != 1 || a->dtype != ENG_FLOAT || a->nhwc)
        return NULL;
    const char *env = getenv("AIINFER_GEMV");
    if (env && !strcmp(env, "0")) return NULL;
    const eg_value *B = &m->g->values[n->in[1]];
    int tb = eg_attr_int(n, "transB", 0) != 0;
    if (!B->data || B->dtype != ENG_FLOAT || B->rank != 2 || eg_attr_int(n, "transA", 0) ||
        eg_attr_float(n, "alpha", 1.0f) != 1.0f)
        return NULL;
    int64_t K = B->dims[tb ? 1 : 0], N = B->dims[tb ? 0 : 1];
    if (a->dims[1] != K || K * N < EV_MIN_WEIGHTS) return NULL;
    const float *bias = NULL;
    if (n->nin > 2 && n->in[2] >= 0) { /* C: a constant [N] (or [1, N]) added as is */
        const eg_value *C = &m->g->values[n->in[2]];
        int64_t cn = 1;
        for (int d = 0; d < C->rank; d++) cn *= C->dims[d];
        if (!C->data || C->dtype != ENG_FLOAT || cn != N || C->dims[C->rank - 1] != N ||
            eg_attr_float(n, "beta", 1.0f) != 1.0f)
            return NULL;
        bias = C->data;
    }
    int isa = ef_isa();
    if (isa == EF_ISA_NONE) return NULL;
    eng_model *mm = (eng_model *)m; /* the shared cache, under the lock */
    pthread_mutex_lock(&mm->lock);
    em_conv *c = &mm->conv[ni];
    if (!c->gemv) c->gemv = ev_gemv_create(K, N, B->data, tb, bias, isa);
    const ev_gemv *g = c->gemv && ev_gemv_isa(c->gemv) == isa ? c->gemv : NULL;
    pthread_mutex_unlock(&mm->lock);
    return g;
}
