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

// ---- int8 -------------------------------------------------------------------------------------
//
// Without vpdpbusd, a quad's four products come from pmaddubsw on |a| (unsigned) and b · sign(a)
// (signed): each pair of products is at most 2 · 127 · 127 = 32258, inside int16, so nothing
// saturates, and pmaddwd against ones adds the pairs into the int32 lane of the column: the exact
// sum, as vpdpbusd and TDPBSSD give it. Half a panel (16 columns) per pass, 4 rows.
#define DK_INT8_ROWS 4

static ATTR void dk256_int8_row_scales(float *s, const float *a, long lda, int m, int k) {
    const __m256i abs = _mm256_set1_epi32(0x7fffffff);
    for (int i = 0; i < m; i++) {
        const float *x = a + (long)i * lda;
        __m256i mx = _mm256_setzero_si256();
        int p = 0;
        for (; p + 8 <= k; p += 8) mx = _mm256_max_epu32(mx, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + p)), abs));
        uint32_t lanes[8], m32 = 0;
        _mm256_storeu_si256((__m256i *)lanes, mx);
        for (int l = 0; l < 8; l++) m32 = lanes[l] > m32 ? lanes[l] : m32;
        for (; p < k; p++) {
            uint32_t u;
            __builtin_memcpy(&u, x + p, 4);
            u &= 0x7fffffffu;
            m32 = u > m32 ? u : m32;
        }
        float amax;
        __builtin_memcpy(&amax, &m32, 4);
        s[i] = dk_int8_scale(amax);
    }
}

// The quad layout, signed; 8 k steps (two quads) of a row at a time.
static ATTR void dk256_pack_a_int8(uint32_t *dst, const float *a, long lda, const float *scale, int m, int k, int q0,
                                   int qc, int mr) {
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + (long)t0 * qc;
        for (int i = 0; i < rows; i++) {
            const float *x = a + (long)(t0 + i) * lda;
            const float s = scale[t0 + i];
            const __m256 vs = _mm256_set1_ps(s);
            int q = 0;
            for (; q + 2 <= qc && 4 * (q0 + q + 2) <= k; q += 2) {
                __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + 4 * (q0 + q)), vs);
                v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
                const __m256i w16 = _mm256_packs_epi32(_mm256_cvtps_epi32(v), _mm256_setzero_si256());
                const __m256i w8 = _mm256_packs_epi16(w16, _mm256_setzero_si256());
                d[(long)q * rows + i] = (uint32_t)_mm256_extract_epi32(w8, 0);
                d[(long)(q + 1) * rows + i] = (uint32_t)_mm256_extract_epi32(w8, 4);
            }
            for (; q < qc; q++) d[(long)q * rows + i] = dk_int8_quad(x, 4 * (q0 + q), k, s, 0);
        }
    }
}

static inline __attribute__((always_inline)) ATTR void
dk256_int8_part(const int MR_, int cols, int kq, const uint32_t *a, int mr, const uint32_t *b, float *c, long ldc,
                int flags, const dk_epilogue *e, const dk_int8_scales *s, long row0, long col0) {
    const int MR = MR_ > DK_INT8_ROWS ? DK_INT8_ROWS : MR_;
    __m256i acc0[DK_INT8_ROWS], acc1[DK_INT8_ROWS];
    const int n0 = cols < VL ? cols : VL, n1 = cols - n0;
#pragma unroll
    for (int i = 0; i < MR; i++) {
        acc0[i] = flags & DK_TILE_LOAD_C ? _mm256_castps_si256(V_LOADN(c + i * ldc, n0)) : _mm256_setzero_si256();
        acc1[i] = flags & DK_TILE_LOAD_C ? _mm256_castps_si256(V_LOADN(c + i * ldc + VL, n1)) : _mm256_setzero_si256();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int q = 0; q < kq; q++, a += mr, b += DK_NR) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)b), b1 = _mm256_loadu_si256((const __m256i *)(b + VL));
#pragma unroll
        for (int i = 0; i < MR; i++) {
            const __m256i ai = _mm256_set1_epi32((int)a[i]), aa = _mm256_abs_epi8(ai);
            acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(b0, ai)), ones));
            acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(b1, ai)), ones));
        }
    }
    if (!(flags & DK_TILE_FINAL)) {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            V_STOREN(c + i * ldc, _mm256_castsi256_ps(acc0[i]), n0);
            V_STOREN(c + i * ldc + VL, _mm256_castsi256_ps(acc1[i]), n1);
        }
        return;
    }
    const float *bias = e ? e->bias : 0;
    const vf sw0 = V_LOADN(s->col + col0, n0), sw1 = V_LOADN(s->col + col0 + VL, n1);
    const vf b0 = bias ? V_LOADN(bias + col0, n0) : V_SET1(0.0f), b1 = bias ? V_LOADN(bias + col0 + VL, n1) : V_SET1(0.0f);
    vf f0[DK_INT8_ROWS], f1[DK_INT8_ROWS];
#pragma unroll
    for (int i = 0; i < MR; i++) {
        const vf sa = V_SET1(s->row[row0 + i]);
        f0[i] = V_ADD(V_MUL(V_MUL(_mm256_cvtepi32_ps(acc0[i]), sa), sw0), b0);
        f1[i] = V_ADD(V_MUL(V_MUL(_mm256_cvtepi32_ps(acc1[i]), sa), sw1), b1);
    }
    dk256_tile_finish(MR, f0, f1, cols, c, ldc, DK_TILE_FINAL, e, row0, col0);
}

static ATTR void dk256_tile_int8(int mr, int nr, int kq, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                                 int flags, const dk_epilogue *e, const dk_int8_scales *s, long row0, long col0,
                                 const char *pf, const char *pf_end) {
    for (; pf < pf_end; pf += 64) __builtin_prefetch(pf, 0, 2);
    for (int h = 0; h * DK_HALF < nr; h++) {
        int cols = nr - h * DK_HALF;
        if (cols > DK_HALF) cols = DK_HALF;
        switch (mr > DK_INT8_ROWS ? DK_INT8_ROWS : mr) {
#define DK_INT8_CASE(R) \
    case R: dk256_int8_part(R, cols, kq, a, mr, b + h * DK_HALF, c + h * DK_HALF, ldc, flags, e, s, row0, col0 + h * DK_HALF); break;
            DK_INT8_CASE(4) DK_INT8_CASE(3) DK_INT8_CASE(2)
#undef DK_INT8_CASE
        default: dk256_int8_part(1, cols, kq, a, mr, b + h * DK_HALF, c + h * DK_HALF, ldc, flags, e, s, row0, col0 + h * DK_HALF); break;
        }
    }
}

const dk_int8_ops dk_int8_ops_avx2 = {
    .name = "avx2: int8 pmaddubsw to int32",
    .rows = DK_INT8_ROWS,
    .quad_align = 1,
    .tile = dk256_tile_int8,
    .pack_a = dk256_pack_a_int8,
    .row_scales = dk256_int8_row_scales,
};

const dk_bf16_ops dk_bf16_ops_avx2 = {
    .name = "avx2: bf16 widened to f32 FMA",
    .rows = DK_BF16_ROWS,
    .tile = dk256_tile_bf16,
    .pack_a = dk_pack_a_bf16_widened,
    .a_words = 2,
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
