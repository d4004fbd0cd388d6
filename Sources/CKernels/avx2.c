// The AVX2 + FMA kernels (simd_body.h with 8-lane vectors; a 32-column panel takes two passes of
// the 6 × 16 tile). Compiled for AVX2 per function; only called when the CPU has it.
#if defined(__x86_64__)
#include <immintrin.h>
#include "internal.h"

#define ATTR __attribute__((target("avx2,fma")))
#define VL 8
typedef __m256 vf;
#define FN(name) dk256_##name

static inline __attribute__((always_inline)) ATTR __m256i dk256_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __attribute__((always_inline)) ATTR float dk256_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline)) ATTR float dk256_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// p · 2^n for integral n in [-126, 128] (128 gives +inf), by building 2^n's exponent bits.
static inline __attribute__((always_inline)) ATTR __m256 dk256_pow2(__m256 p, __m256 n) {
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_LOADN(p, n) _mm256_maskload_ps((p), dk256_mask(n))
#define V_STOREN(p, v, n) _mm256_maskstore_ps((p), dk256_mask(n), (v))
#define V_LOADN_FILL(p, n, fill)                                                                    \
    _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps((p), dk256_mask(n)), _mm256_castsi256_ps(dk256_mask(n)))
#define V_ZERO_PAST(v, n) _mm256_and_ps((v), _mm256_castsi256_ps(dk256_mask(n)))
#define V_SET1(x) _mm256_set1_ps(x)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_RECIP(x) _mm256_div_ps(_mm256_set1_ps(1.0f), x)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MIN(a, b) _mm256_min_ps(a, b)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_ABS(a) _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))
#define V_ROUND(a) _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_POW2(p, n) dk256_pow2(p, n)
#define V_ZERO_IF_LT(y, x, lo) _mm256_and_ps(y, _mm256_cmp_ps(x, lo, _CMP_GE_OQ))
#define V_COPYSIGN(mag, sgn)                                                                        \
    _mm256_or_ps(_mm256_and_ps(mag, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))),            \
                 _mm256_and_ps(sgn, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))))
#define V_HSUM(v) dk256_hsum(v)
#define V_HMAX(v) dk256_hmax(v)

#define V_BF16_LO(w) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(w), 16))
#define V_BF16_HI(w) _mm256_and_ps((w), _mm256_castsi256_ps(_mm256_set1_epi32((int)0xffff0000u)))

#define DK_TILE_ROWS 6
// bf16 tile: 8 accumulators, four widened B vectors and two broadcasts: 14 of the 16 ymm registers.
#define DK_BF16_ROWS 4
#include "simd_body.h"

const dk_bf16_ops dk_bf16_ops_avx2 = {
    .name = "avx2: bf16 widened to f32 FMA",
    .rows = DK_BF16_ROWS,
    .tile = dk256_tile_bf16,
    .pack_a = 0,
};

const dk_ops dk_ops_avx2 = {
    .rows = DK_TILE_ROWS,
    .tile = dk256_tile,
    .layernorm = dk256_layernorm,
    .gelu = dk256_gelu,
    .gelu_backward = dk256_gelu_backward,
    .silu = dk256_silu,
    .swiglu = dk256_swiglu,
    .softmax = dk256_softmax,
    .softmax_exp = dk256_softmax_exp,
    .residual = dk256_residual,
};
#endif
