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

// A 16 × 16 block transposed in registers: r[i][j] becomes r[j][i] (4 stages of lane shuffles).
static inline __attribute__((always_inline)) ATTR void dk512_transpose16(__m512 *r) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    // r[4q + s] now holds, in each 128-bit lane L, column 4L + s of rows 4q … 4q + 3.
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);      // lanes 0, 2 of r[i], r[4+i]
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);  // lanes 1, 3
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

// dk_pack_a for whole tiles of mr ≤ 16 rows: 16 k steps at a time, a register transpose and one
// masked store of the tile's row values per k step. Partial tiles and k tails go element by element.
static ATTR void dk512_pack_a(float *dst, const float *a, long lda, int m, int kc, int mr) {
    const __mmask16 keep = dk512_mask(mr);
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        float *d = dst + (long)t0 * kc;
        const float *src = a + (long)t0 * lda;
        int p = 0;
        if (rows == mr && mr <= 16) {
            for (; p + 16 <= kc; p += 16) {
                __m512 r[16];
                for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src + i * lda + p) : _mm512_setzero_ps();
                dk512_transpose16(r);
                for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(d + (long)(p + j) * rows, keep, r[j]);
            }
        }
        for (; p < kc; p++)
            for (int i = 0; i < rows; i++) d[(long)p * rows + i] = src[i * lda + p];
    }
}

// dk_pack_transposed for AVX-512: each 32-row panel of w as two 16 × 16 transposes per 16 k steps.
static ATTR void dk512_pack_transposed(float *dst, const float *w, int n, int k, long ldw) {
    const int panels = (n + DK_NR - 1) / DK_NR;
    for (int q = 0; q < panels; q++) {
        float *d = dst + (size_t)q * k * DK_NR;
        const float *src = w + (long)q * DK_NR * ldw;
        const int rows = n - q * DK_NR < DK_NR ? n - q * DK_NR : DK_NR;
        int p = 0;
        for (; p + 16 <= k; p += 16) {
            for (int half = 0; half < 2; half++) {
                __m512 r[16];
                for (int i = 0; i < 16; i++) {
                    const int row = 16 * half + i;
                    r[i] = row < rows ? _mm512_loadu_ps(src + row * ldw + p) : _mm512_setzero_ps();
                }
                dk512_transpose16(r);
                for (int j = 0; j < 16; j++) _mm512_storeu_ps(d + (size_t)(p + j) * DK_NR + 16 * half, r[j]);
            }
        }
        for (; p < k; p++) {
            float *row = d + (size_t)p * DK_NR;
            int j = 0;
            for (; j < rows; j++) row[j] = src[(long)j * ldw + p];
            for (; j < DK_NR; j++) row[j] = 0.0f;
        }
    }
}

#define DK_TILE_ROWS 6
// 24 accumulators, two B vectors and a broadcast: 27 of the 32 zmm registers.
#define DK_PACKED_ROWS 12
#include "simd_body.h"

const dk_ops dk_ops_avx512 = {
    .rows = DK_TILE_ROWS,
    .tile = dk512_tile,
    .packed_rows = DK_PACKED_ROWS,
    .tile_packed = dk512_tile_packed,
    .pack_a = dk512_pack_a,
    .pack_transposed = dk512_pack_transposed,
    .layernorm = dk512_layernorm,
    .gelu = dk512_gelu,
    .gelu_backward = dk512_gelu_backward,
    .silu = dk512_silu,
    .swiglu = dk512_swiglu,
    .softmax = dk512_softmax,
    .softmax_exp = dk512_softmax_exp,
    .softmax_exp_columns = dk512_softmax_exp_columns,
    .residual = dk512_residual,
};
#endif
