// The AVX-512 kernels (simd_body.h with 16-lane vectors). Compiled for AVX-512 per function, so
// the package needs no -mavx512f; only called when the CPU has it (dispatch.c).
#if defined(__x86_64__)
#include <immintrin.h>
#include "internal.h"

#define ATTR __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define VL 16
typedef __m512 vf;
#define FN(name) dk512_##name

static inline __attribute__((always_inline)) ATTR __mmask16 dk512_mask(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
}

static inline __attribute__((always_inline)) ATTR __m512 dk512_recip(__m512 x) {
    __m512 r = _mm512_rcp14_ps(x);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
}

#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_LOADN(p, n) _mm512_maskz_loadu_ps(dk512_mask(n), (p))
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps((p), dk512_mask(n), (v))
#define V_LOADN_FILL(p, n, fill) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), dk512_mask(n), (p))
#define V_ZERO_PAST(v, n) _mm512_maskz_mov_ps(dk512_mask(n), (v))
#define V_SET1(x) _mm512_set1_ps(x)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
// 1/x for x in [1, ∞): the 14-bit estimate and one Newton step, within 2 ulp (cheaper than a divide).
#define V_RECIP(x) dk512_recip(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MIN(a, b) _mm512_min_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_ABS(a) _mm512_abs_ps(a)
#define V_ROUND(a) _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_POW2(p, n) _mm512_scalef_ps(p, n)
#define V_ZERO_IF_LT(y, x, lo) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), y)
#define V_COPYSIGN(mag, sgn)                                                                        \
    _mm512_castsi512_ps(_mm512_or_si512(                                                            \
        _mm512_and_si512(_mm512_castps_si512(mag), _mm512_set1_epi32(0x7fffffff)),                  \
        _mm512_and_si512(_mm512_castps_si512(sgn), _mm512_set1_epi32((int)0x80000000u))))
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_HMAX(v) _mm512_reduce_max_ps(v)

#define DK_TILE_ROWS 6
#include "simd_body.h"

const dk_ops dk_ops_avx512 = {
    .rows = DK_TILE_ROWS,
    .tile = dk512_tile,
    .layernorm = dk512_layernorm,
    .gelu = dk512_gelu,
    .gelu_backward = dk512_gelu_backward,
    .silu = dk512_silu,
    .swiglu = dk512_swiglu,
    .softmax = dk512_softmax,
    .softmax_exp = dk512_softmax_exp,
    .residual = dk512_residual,
};
#endif
