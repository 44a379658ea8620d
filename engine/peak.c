/* FMA throughput kernels, one per ISA, for the measured peak (peak.h).
 *
 * Each kernel keeps enough independent accumulator chains in registers to
 * cover the FMA latency on every pipe (latency 4 x 2 pipes = 8 in flight on
 * Zen 4 and Skylake-SP; 12-16 chains leave margin) and nothing else in the
 * loop but the counter. acc = acc * a + b with a = 1, b = 0 read through
 * volatiles keeps the values constant (no overflow, no denormals) while the
 * compiler cannot fold the work away; each chain starts at its own value, or
 * the compiler merges identical chains into one. The kernels are built with target
 * attributes so the rest of the engine keeps the build's baseline ISA. */
#include "engine/peak.h"

#include <errno.h>
#include <oneapi/dnnl/dnnl.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PEAK_X86 1
#endif

/* Iterations per timed chunk: 0.1-1 ms at any ISA, so the clock reads cost
 * nothing and the run stops within a millisecond of its deadline. */
#define PEAK_CHUNK 65536L

static volatile float peak_one = 1.0f, peak_zero = 0.0f;
static volatile float peak_sink;

static double peak_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#ifdef PEAK_X86
/* 16 zmm chains x 16 floats x 2 FLOP = 512 FLOP per iteration. */
__attribute__((target("avx512f"))) static float peak_avx512(long iters)
{
    __m512 a = _mm512_set1_ps(peak_one), b = _mm512_set1_ps(peak_zero);
#define PEAK_V(k) _mm512_set1_ps(peak_one + k)
    __m512 c0 = PEAK_V(0), c1 = PEAK_V(1), c2 = PEAK_V(2), c3 = PEAK_V(3), c4 = PEAK_V(4);
    __m512 c5 = PEAK_V(5), c6 = PEAK_V(6), c7 = PEAK_V(7), c8 = PEAK_V(8), c9 = PEAK_V(9);
    __m512 c10 = PEAK_V(10), c11 = PEAK_V(11), c12 = PEAK_V(12), c13 = PEAK_V(13);
    __m512 c14 = PEAK_V(14), c15 = PEAK_V(15);
#undef PEAK_V
    for (long i = 0; i < iters; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b), c1 = _mm512_fmadd_ps(c1, a, b);
        c2 = _mm512_fmadd_ps(c2, a, b), c3 = _mm512_fmadd_ps(c3, a, b);
        c4 = _mm512_fmadd_ps(c4, a, b), c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b), c7 = _mm512_fmadd_ps(c7, a, b);
        c8 = _mm512_fmadd_ps(c8, a, b), c9 = _mm512_fmadd_ps(c9, a, b);
        c10 = _mm512_fmadd_ps(c10, a, b), c11 = _mm512_fmadd_ps(c11, a, b);
        c12 = _mm512_fmadd_ps(c12, a, b), c13 = _mm512_fmadd_ps(c13, a, b);
        c14 = _mm512_fmadd_ps(c14, a, b), c15 = _mm512_fmadd_ps(c15, a, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15)));
    return _mm512_reduce_add_ps(s);
}

/* 12 ymm chains (of 16 registers: a and b take two) x 8 floats x 2 FLOP. */
__attribute__((target("avx2,fma"))) static float peak_avx2(long iters)
{
    __m256 a = _mm256_set1_ps(peak_one), b = _mm256_set1_ps(peak_zero);
#define PEAK_V(k) _mm256_set1_ps(peak_one + k)
    __m256 c0 = PEAK_V(0), c1 = PEAK_V(1), c2 = PEAK_V(2), c3 = PEAK_V(3), c4 = PEAK_V(4);
    __m256 c5 = PEAK_V(5), c6 = PEAK_V(6), c7 = PEAK_V(7), c8 = PEAK_V(8), c9 = PEAK_V(9);
    __m256 c10 = PEAK_V(10), c11 = PEAK_V(11);
#undef PEAK_V
    for (long i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b), c1 = _mm256_fmadd_ps(c1, a, b);
        c2 = _mm256_fmadd_ps(c2, a, b), c3 = _mm256_fmadd_ps(c3, a, b);
        c4 = _mm256_fmadd_ps(c4, a, b), c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b), c7 = _mm256_fmadd_ps(c7, a, b);
        c8 = _mm256_fmadd_ps(c8, a, b), c9 = _mm256_fmadd_ps(c9, a, b);
        c10 = _mm256_fmadd_ps(c10, a, b), c11 = _mm256_fmadd_ps(c11, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float f[8];
    _mm256_storeu_ps(f, s);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}

/* No FMA below AVX2: 6 mulps and 6 addps chains (what oneDNN's SSE4.1 kernels
 * issue) x 4 floats x 1 FLOP each = 48 FLOP per iteration. */
__attribute__((target("sse4.1"))) static float peak_sse41(long iters)
{
    __m128 a = _mm_set1_ps(peak_one), b = _mm_set1_ps(peak_zero);
#define PEAK_V(k) _mm_set1_ps(peak_one + k)
    __m128 m0 = PEAK_V(0), m1 = PEAK_V(1), m2 = PEAK_V(2), m3 = PEAK_V(3), m4 = PEAK_V(4);
    __m128 m5 = PEAK_V(5), s0 = PEAK_V(6), s1 = PEAK_V(7), s2 = PEAK_V(8), s3 = PEAK_V(9);
    __m128 s4 = PEAK_V(10), s5 = PEAK_V(11);
#undef PEAK_V
    for (long i = 0; i < iters; i++) {
        m0 = _mm_mul_ps(m0, a), m1 = _mm_mul_ps(m1, a), m2 = _mm_mul_ps(m2, a);
        m3 = _mm_mul_ps(m3, a), m4 = _mm_mul_ps(m4, a), m5 = _mm_mul_ps(m5, a);
        s0 = _mm_add_ps(s0, b), s1 = _mm_add_ps(s1, b), s2 = _mm_add_ps(s2, b);
        s3 = _mm_add_ps(s3, b), s4 = _mm_add_ps(s4, b), s5 = _mm_add_ps(s5, b);
    }
    __m128 s = _mm_add_ps(_mm_add_ps(_mm_add_ps(m0, m1), _mm_add_ps(m2, m3)),
                          _mm_add_ps(_mm_add_ps(m4, m5), _mm_add_ps(s0, s1)));
    s = _mm_add_ps(s, _mm_add_ps(_mm_add_ps(s2, s3), _mm_add_ps(s4, s5)));
    float f[4];
    _mm_storeu_ps(f, s);
    return f[0] + f[1] + f[2] + f[3];
}
#endif

eng_isa eng_dnn_isa(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    /* the enum's values are cumulative bit masks: avx512_core_bf16 holds
     * avx512_core's bits, avx2_vnni avx2's */
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ||
        (isa & dnnl_cpu_isa_avx512_mic) == dnnl_cpu_isa_avx512_mic)
        return ENG_ISA_AVX512;
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2) return ENG_ISA_AVX2;
    if (isa & dnnl_cpu_isa_sse41) return ENG_ISA_SSE41;
    return ENG_ISA_NONE;
}

const char *eng_isa_name(eng_isa isa)
{
    switch (isa) {
    case ENG_ISA_AVX512: return "AVX-512";
    case ENG_ISA_AVX2: return "AVX2";
    case ENG_ISA_SSE41: return "SSE4.1";
    default: return "none";
    }
}

int eng_isa_supported(eng_isa isa)
{
#ifdef PEAK_X86
    __builtin_cpu_init();
    switch (isa) {
    case ENG_ISA_AVX512: return __builtin_cpu_supports("avx512f");
    case ENG_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case ENG_ISA_SSE41: return __builtin_cpu_supports("sse4.1");
    default: return 0;
    }
#else
    (void)isa;
    return 0;
#endif
}

double eng_fma_peak(eng_isa isa, double seconds)
{
    if (!(seconds > 0)) return -EINVAL;
    if (!eng_isa_supported(isa)) return -ENOTSUP;
#ifdef PEAK_X86
    float (*kernel)(long) = isa == ENG_ISA_AVX512 ? peak_avx512
                            : isa == ENG_ISA_AVX2 ? peak_avx2
                                                  : peak_sse41;
    double flop_per_iter = isa == ENG_ISA_AVX512 ? 16 * 16 * 2
                           : isa == ENG_ISA_AVX2 ? 12 * 8 * 2
                                                 : 12 * 4;
    peak_sink = kernel(PEAK_CHUNK); /* warm-up: wide units powered, clock settled */
    long chunks = 0;
    float sum = 0;
    double t0 = peak_now(), t;
    do {
        sum += kernel(PEAK_CHUNK);
        chunks++;
    } while ((t = peak_now()) - t0 < seconds);
    peak_sink = sum;
    return chunks * PEAK_CHUNK * flop_per_iter / (t - t0) / 1e9;
#else
    return -ENOTSUP;
#endif
}
