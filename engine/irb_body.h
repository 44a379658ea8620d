/* irb_body: the fused inverted residual kernel, written once over vector macros
 * and compiled per ISA by irb_avx512.c and irb_avx2.c (each defines VL, vf,
 * vmask, the V* macros and EF_RUN before including this file).
 *
 * Per output row: the input rows the depthwise needs are expanded (a GEMM of
 * the row's pixels by the expand weights, + bias, clip) into a ring of three
 * rows with a zero column each side (the depthwise's padding); the depthwise
 * row is computed from the ring, then the project GEMM (+ bias, + residual)
 * writes the output row. The GEMMs use register tiles of MR pixels x NR
 * vectors of channels with the pixel's input broadcast. */

/* One register tile: C[MR][NR*VL] = A[MR][K] * B[K][NR*VL] + bias, clipped to
 * [lo, hi] when clip, + R when R; the last vector stores through `last`. */
static inline __attribute__((always_inline)) void
ef_tile(const int MR, const int NR, int64_t K, const float *A, int64_t lda, const float *B,
        int64_t ldb, const float *bias, int clip, vf lo, vf hi, const float *R, int64_t ldr,
        float *C, int64_t ldc, vmask last)
{
    vf acc[MR_MAX][3];
#pragma GCC unroll 3
    for (int j = 0; j < NR; j++) {
        vf bv = VLOAD(bias + j * VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) acc[i][j] = bv;
    }
    for (int64_t k = 0; k < K; k++) {
        vf bk[3];
#pragma GCC unroll 3
        for (int j = 0; j < NR; j++) bk[j] = VLOAD(B + k * ldb + j * VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            vf a = VBCAST(A[i * lda + k]);
#pragma GCC unroll 3
            for (int j = 0; j < NR; j++) acc[i][j] = VFMA(a, bk[j], acc[i][j]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 3
        for (int j = 0; j < NR; j++) {
            vf v = acc[i][j];
            vmask m = j == NR - 1 ? last : VFULL;
            if (clip) v = VMIN(VMAX(v, lo), hi);
            if (R) v = VADD(v, VLOADM(R + i * ldr + j * VL, m));
            VSTOREM(C + i * ldc + j * VL, v, m);
        }
    }
}

#define EF_TILE_FN(MR, NR)                                                                         \
    static void ef_tile_##MR##_##NR(                                                               \
        int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, const float *bias,    \
        int clip, vf lo, vf hi, const float *R, int64_t ldr, float *C, int64_t ldc, vmask last)    \
    {                                                                                              \
        ef_tile(MR, NR, K, A, lda, B, ldb, bias, clip, lo, hi, R, ldr, C, ldc, last);              \
    }
typedef void (*ef_tile_fn)(int64_t, const float *, int64_t, const float *, int64_t, const float *,
                           int, vf, vf, const float *, int64_t, float *, int64_t, vmask);
EF_TILE_FN(1, 1)
EF_TILE_FN(2, 1)
EF_TILE_FN(3, 1)
EF_TILE_FN(4, 1)
EF_TILE_FN(5, 1)
EF_TILE_FN(6, 1)
#if MR_MAX > 6
EF_TILE_FN(7, 1)
EF_TILE_FN(8, 1)
EF_TILE_FN(9, 1)
EF_TILE_FN(10, 1)
EF_TILE_FN(11, 1)
EF_TILE_FN(12, 1)
#endif
EF_TILE_FN(1, 2)
EF_TILE_FN(2, 2)
EF_TILE_FN(3, 2)
EF_TILE_FN(4, 2)
EF_TILE_FN(5, 2)
EF_TILE_FN(6, 2)
#if MR_MAX > 6
EF_TILE_FN(7, 2)
EF_TILE_FN(8, 2)
EF_TILE_FN(9, 2)
EF_TILE_FN(10, 2)
EF_TILE_FN(11, 2)
EF_TILE_FN(12, 2)
#endif
static const ef_tile_fn ef_tiles[2][MR_MAX] = {
    {ef_tile_1_1, ef_tile_2_1, ef_tile_3_1, ef_tile_4_1, ef_tile_5_1, ef_tile_6_1,
#if MR_MAX > 6
     ef_tile_7_1, ef_tile_8_1, ef_tile_9_1, ef_tile_10_1, ef_tile_11_1, ef_tile_12_1
#endif
    },
    {ef_tile_1_2, ef_tile_2_2, ef_tile_3_2, ef_tile_4_2, ef_tile_5_2, ef_tile_6_2,
#if MR_MAX > 6
     ef_tile_7_2, ef_tile_8_2, ef_tile_9_2, ef_tile_10_2, ef_tile_11_2, ef_tile_12_2
#endif
    }};

/* 3 vectors x up to MR3_MAX pixels (AVX2 4 x 24, AVX-512 8 x 48: fewer loads
 * per FMA than 2 vectors, and an odd vector count does not end in a 1-vector
 * tile with 1 broadcast per FMA) */
EF_TILE_FN(1, 3)
EF_TILE_FN(2, 3)
EF_TILE_FN(3, 3)
EF_TILE_FN(4, 3)
#if MR3_MAX > 4
EF_TILE_FN(5, 3)
EF_TILE_FN(6, 3)
EF_TILE_FN(7, 3)
EF_TILE_FN(8, 3)
#endif
static const ef_tile_fn ef_tiles3[MR3_MAX] = {ef_tile_1_3, ef_tile_2_3, ef_tile_3_3,
                                              ef_tile_4_3,
#if MR3_MAX > 4
                                              ef_tile_5_3, ef_tile_6_3, ef_tile_7_3,
                                              ef_tile_8_3
#endif
};

#if VL == 16
/* AVX-512, the last 24 of the channels (8 mod 16): a zmm and a ymm per pixel
 * instead of two zmm, the upper one 1/2 masked off (Zen 4 runs a ymm FMA in one
 * of its two 256-bit pipes, a zmm in both). */
static inline __attribute__((always_inline)) void ef_half(const int MR, int64_t K, const float *A,
                                                          int64_t lda, const float *B, int64_t ldb,
                                                          const float *bias, int clip, vf lo, vf hi,
                                                          const float *R, int64_t ldr, float *C,
                                                          int64_t ldc)
{
    __m512 acc[MR_MAX];
    __m256 acc2[MR_MAX];
    __m512 b0 = _mm512_loadu_ps(bias);
    __m256 b1 = _mm256_loadu_ps(bias + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i] = b0, acc2[i] = b1;
    for (int64_t k = 0; k < K; k++) {
        __m512 w0 = _mm512_loadu_ps(B + k * ldb);
        __m256 w1 = _mm256_loadu_ps(B + k * ldb + 16);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(A[i * lda + k]);
            acc[i] = _mm512_fmadd_ps(a, w0, acc[i]);
            acc2[i] = _mm256_fmadd_ps(_mm512_castps512_ps256(a), w1, acc2[i]);
        }
    }
    __m256 lo2 = _mm512_castps512_ps256(lo), hi2 = _mm512_castps512_ps256(hi);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        __m512 v = acc[i];
        __m256 v2 = acc2[i];
        if (clip) {
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            v2 = _mm256_min_ps(_mm256_max_ps(v2, lo2), hi2);
        }
        if (R) {
            v = _mm512_add_ps(v, _mm512_loadu_ps(R + i * ldr));
            v2 = _mm256_add_ps(v2, _mm256_loadu_ps(R + i * ldr + 16));
        }
        _mm512_storeu_ps(C + i * ldc, v);
        _mm256_storeu_ps(C + i * ldc + 16, v2);
    }
}

typedef void (*ef_half_fn)(int64_t, const float *, int64_t, const float *, int64_t, const float *,
                           int, vf, vf, const float *, int64_t, float *, int64_t);
#define EF_HALF_FN(MR)                                                                             \
    static void ef_half_##MR(int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,  \
                             const float *bias, int clip, vf lo, vf hi, const float *R,            \
                             int64_t ldr, float *C, int64_t ldc)                                   \
    {                                                                                              \
        ef_half(MR, K, A, lda, B, ldb, bias, clip, lo, hi, R, ldr, C, ldc);                        \
    }
EF_HALF_FN(1)
EF_HALF_FN(2)
EF_HALF_FN(3)
EF_HALF_FN(4)
EF_HALF_FN(5)
EF_HALF_FN(6)
EF_HALF_FN(7)
EF_HALF_FN(8)
EF_HALF_FN(9)
EF_HALF_FN(10)
EF_HALF_FN(11)
EF_HALF_FN(12)
static const ef_half_fn ef_halves[MR_MAX] = {ef_half_1, ef_half_2,  ef_half_3,  ef_half_4,
                                             ef_half_5, ef_half_6,  ef_half_7,  ef_half_8,
                                             ef_half_9, ef_half_10, ef_half_11, ef_half_12};
#endif

/* C[M][N] = A[M][K] * B[K][ldb] (+ bias, clip, + R); N the real channel
 * count, B and bias padded to a multiple of VL. */
static void ef_gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                    int64_t ldb, const float *bias, int clip, float flo, float fhi, const float *R,
                    int64_t ldr, float *C, int64_t ldc)
{
    vf lo = VSET1(flo), hi = VSET1(fhi);
    int64_t nv = (N + VL - 1) / VL;
    for (int64_t j = 0; j < nv;) {
        int nr = nv - j >= 2 ? 2 : 1, mrmax = MR_MAX;
        if (nv - j >= 3 && ((nv - j) % 2 || (nv - j) % 3 == 0)) nr = 3, mrmax = MR3_MAX;
        int64_t valid = N - (j + nr - 1) * VL;
        vmask last = VMASK(valid);
        for (int64_t i = 0; i < M; i += mrmax) {
            int mr = M - i >= mrmax ? mrmax : (int)(M - i);
            const float *Ri = R ? R + i * ldr + j * VL : NULL;
#if VL == 16
            if (nr == 2 && valid <= VL / 2) {
                ef_halves[mr - 1](K, A + i * lda, lda, B + j * VL, ldb, bias + j * VL, clip, lo, hi,
                                  Ri, ldr, C + i * ldc + j * VL, ldc);
                continue;
            }
#endif
            ef_tile_fn f = nr == 3 ? ef_tiles3[mr - 1] : ef_tiles[nr - 1][mr - 1];
            f(K, A + i * lda, lda, B + j * VL, ldb, bias + j * VL, clip, lo, hi, Ri, ldr,
              C + i * ldc + j * VL, ldc, last);
        }
        j += nr;
    }
}

/* One depthwise output row from the three padded ring rows r[0..2]. */
static void ef_dw_row(const ef_block *b, const float *const r[3], float *out)
{
    const int64_t C = b->cexp_p, ow = b->ow;
    const int s = b->s.stride;
    vf lo = VSET1(b->s.lo2), hi = VSET1(b->s.hi2);
    for (int64_t c = 0; c < C; c += VL) {
        vf w[9];
        for (int t = 0; t < 9; t++) w[t] = VLOAD(b->wd + t * C + c);
        vf bias = VLOAD(b->bd + c);
        int64_t ox = 0;
        for (; s == 1 && ox + 4 <= ow; ox += 4) {
            /* stride 1: the 4 pixels share columns, 6 loads a row for 12 FMAs */
            vf a0 = bias, a1 = bias, a2 = bias, a3 = bias;
#pragma GCC unroll 3
            for (int ky = 0; ky < 3; ky++) {
                const float *row = r[ky] + ox * C + c;
                vf c0 = VLOAD(row), c1 = VLOAD(row + C), c2 = VLOAD(row + 2 * C);
                vf c3 = VLOAD(row + 3 * C), c4 = VLOAD(row + 4 * C), c5 = VLOAD(row + 5 * C);
                vf w0 = w[ky * 3], w1 = w[ky * 3 + 1], w2 = w[ky * 3 + 2];
                a0 = VFMA(c0, w0, a0), a1 = VFMA(c1, w0, a1), a2 = VFMA(c2, w0, a2);
                a3 = VFMA(c3, w0, a3);
                a0 = VFMA(c1, w1, a0), a1 = VFMA(c2, w1, a1), a2 = VFMA(c3, w1, a2);
                a3 = VFMA(c4, w1, a3);
                a0 = VFMA(c2, w2, a0), a1 = VFMA(c3, w2, a1), a2 = VFMA(c4, w2, a2);
                a3 = VFMA(c5, w2, a3);
            }
            float *o = out + ox * C + c;
            VSTORE(o, VMIN(VMAX(a0, lo), hi));
            VSTORE(o + C, VMIN(VMAX(a1, lo), hi));
            VSTORE(o + 2 * C, VMIN(VMAX(a2, lo), hi));
            VSTORE(o + 3 * C, VMIN(VMAX(a3, lo), hi));
        }
        for (; ox + 4 <= ow; ox += 4) {
            vf a0 = bias, a1 = bias, a2 = bias, a3 = bias;
#pragma GCC unroll 3
            for (int ky = 0; ky < 3; ky++) {
                const float *row = r[ky] + ox * s * C + c;
#pragma GCC unroll 3
                for (int kx = 0; kx < 3; kx++) {
                    vf wk = w[ky * 3 + kx];
                    a0 = VFMA(VLOAD(row + (0 * s + kx) * C), wk, a0);
                    a1 = VFMA(VLOAD(row + (1 * s + kx) * C), wk, a1);
                    a2 = VFMA(VLOAD(row + (2 * s + kx) * C), wk, a2);
                    a3 = VFMA(VLOAD(row + (3 * s + kx) * C), wk, a3);
                }
            }
            float *o = out + ox * C + c;
            VSTORE(o, VMIN(VMAX(a0, lo), hi));
            VSTORE(o + C, VMIN(VMAX(a1, lo), hi));
            VSTORE(o + 2 * C, VMIN(VMAX(a2, lo), hi));
            VSTORE(o + 3 * C, VMIN(VMAX(a3, lo), hi));
        }
        for (; ox < ow; ox++) {
            vf a0 = bias;
            for (int ky = 0; ky < 3; ky++) {
                const float *row = r[ky] + ox * s * C + c;
                for (int kx = 0; kx < 3; kx++) a0 = VFMA(VLOAD(row + kx * C), w[ky * 3 + kx], a0);
            }
            VSTORE(out + ox * C + c, VMIN(VMAX(a0, lo), hi));
        }
    }
}

void EF_RUN(const ef_block *b, int64_t n, const float *x, const float *res, float *y,
            float *scratch)
{
    const ef_shape *s = &b->s;
    const int64_t C = b->cexp_p, W = s->w, H = s->h;
    float *ring = scratch, *zero = ring + 3 * b->ring_row, *dw = zero + b->ring_row;
    memset(zero, 0, b->ring_row * sizeof(float));
    if (!b->has_expand) /* rows are copied in: the padding channels must be zero too */
        memset(ring, 0, 3 * b->ring_row * sizeof(float));
    for (int k = 0; k < 3; k++) { /* the padding columns; the expand writes 1..w */
        memset(ring + k * b->ring_row, 0, C * sizeof(float));
        memset(ring + k * b->ring_row + (W + 1) * C, 0, C * sizeof(float));
    }
    for (int64_t item = 0; item < n; item++) {
        const float *xi = x + item * H * W * s->cin;
        const float *ri = res ? res + item * b->oh * b->ow * s->cout : NULL;
        float *yi = y + item * b->oh * b->ow * s->cout;
        int64_t next = 0; /* next input row to expand */
        for (int64_t oy = 0; oy < b->oh; oy++) {
            int64_t top = oy * s->stride - 1;
            for (; !b->has_expand && next <= top + 2 && next < H; next++) {
                float *row = ring + (next % 3) * b->ring_row + C;
                const float *src = xi + next * W * s->cin;
                if (C == s->cin)
                    memcpy(row, src, (size_t)(W * C) * sizeof(float));
                else
                    for (int64_t px = 0; px < W; px++)
                        memcpy(row + px * C, src + px * s->cin, (size_t)s->cin * sizeof(float));
            }
            for (; next <= top + 2 && next < H; next++)
                ef_gemm(W, C, s->cin, xi + next * W * s->cin, s->cin, b->we, C, b->be, 1, s->lo1,
                        s->hi1, NULL, 0, ring + (next % 3) * b->ring_row + C, C);
            const float *r[3];
            for (int k = 0; k < 3; k++) {
                int64_t iy = top + k;
                r[k] = iy < 0 || iy >= H ? zero : ring + (iy % 3) * b->ring_row;
            }
            ef_dw_row(b, r, dw);
            ef_gemm(b->ow, s->cout, C, dw, C, b->wp, b->cout_p, b->bp, 0, 0, 0,
                    ri ? ri + oy * b->ow * s->cout : NULL, s->cout, yi + oy * b->ow * s->cout,
                    s->cout);
        }
    }
}
