/* Measured floating-point peak of one core, for `aiinfer bench`'s "% of peak".
 *
 * An assumed FLOP/cycle figure is wrong on half the x86 market (Zen 4 runs
 * AVX-512 as 2 x 256-bit, so 32 f32 FLOP/cycle, not 64), and the clock under
 * load is unknown; timing a kernel of independent FMAs on the bench's own
 * thread, right after the bench, gives the ceiling at the same frequency and
 * load. The ISA is the one oneDNN runs (ONEDNN_MAX_CPU_ISA respected). */
#ifndef ENGINE_PEAK_H
#define ENGINE_PEAK_H

typedef enum {
    ENG_ISA_NONE = 0, /* not x86, or below SSE4.1: no vector kernel measured */
    ENG_ISA_SSE41,    /* 128-bit mulps + addps (no FMA) */
    ENG_ISA_AVX2,     /* 256-bit FMA (AVX2 + FMA3) */
    ENG_ISA_AVX512,   /* 512-bit FMA (AVX-512F) */
} eng_isa;

/* The vector ISA oneDNN's kernels use in this process (dnnl_get_effective_cpu_isa
 * mapped down; AVX without AVX2 counts as SSE4.1 here). */
eng_isa eng_dnn_isa(void);

/* "AVX-512", "AVX2", "SSE4.1" or "none". */
const char *eng_isa_name(eng_isa isa);

/* Whether this CPU can run isa's peak kernel. */
int eng_isa_supported(eng_isa isa);

/* Single-precision GFLOP/s of the calling thread running isa's kernel for about
 * `seconds` (an FMA counts 2 FLOP, as in the models' MAC counts); -ENOTSUP when
 * the CPU lacks isa or isa is ENG_ISA_NONE, -EINVAL for seconds <= 0. */
double eng_fma_peak(eng_isa isa, double seconds);

#endif
