// The AVX-512 kernels (simd_body.h with 16-lane vectors). Compiled for AVX-512 per function, so
// the package needs no -mavx512f; only called when the CPU has it (dispatch.c).
#if defined(__x86_64__)
#include <immintrin.h>
#include "internal.h"

// Coverage-guided fuzzing builds (Fuzz/: libFuzzer coverage + AddressSanitizer on every C target)
// leave these kernels uninstrumented. No reader calls them, and ASan's instrumentation of the
// unrolled tiles takes clang over 7 minutes on this file alone (25 s without), most of the
// fuzz build.
#if defined(__has_feature)
#if __has_feature(coverage_sanitizer)
#pragma clang attribute push(__attribute__((no_sanitize("address", "coverage"))), apply_to = function)
#define DK_AVX512_UNINSTRUMENTED 1
#endif
#endif

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

#define V_BF16_LO(w) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(w), 16))
#define V_BF16_HI(w) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(w), _mm512_set1_epi32((int)0xffff0000u)))

#define DK_TILE_ROWS 6
// 24 accumulators, two B vectors and a broadcast: 27 of the 32 zmm registers.
#define DK_PACKED_ROWS 12
// The widening bf16 tile: 24 accumulators, four widened B vectors, two broadcasts.
#define DK_BF16_ROWS 12
#include "simd_body.h"

// ---- bf16 ------------------------------------------------------------------------------------

// torch's bf16 rounding of 16 floats, in the low half of each 32-bit lane.
static inline __attribute__((always_inline)) ATTR __m512i dk512_bf16_round(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    return _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
}

// dk_pack_a_bf16_portable for whole tiles of mr ≤ 16 rows: per 16 pairs (32 floats) of each row, rounded
// and narrowed to 16 words, then a 16 × 16 register transpose and one masked store per pair. An
// odd k's last pair and partial tiles go element by element.
static ATTR void dk512_pack_a_bf16(uint32_t *dst, const float *a, long lda, int m, int k, int q0, int qc, int mr) {
    const __mmask16 keep = dk512_mask(mr);
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + (long)t0 * qc;
        const float *src = a + (long)t0 * lda;
        int q = 0;
        if (rows == mr && mr <= 16) {
            for (; q + 16 <= qc && 2 * (q0 + q + 16) <= k; q += 16) {
                __m512 r[16];
                for (int i = 0; i < 16; i++) {
                    if (i < rows) {
                        const float *x = src + i * lda + 2 * (q0 + q);
                        const __m256i lo = _mm512_cvtepi32_epi16(dk512_bf16_round(_mm512_loadu_ps(x)));
                        const __m256i hi = _mm512_cvtepi32_epi16(dk512_bf16_round(_mm512_loadu_ps(x + 16)));
                        r[i] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
                    } else {
                        r[i] = _mm512_setzero_ps();
                    }
                }
                dk512_transpose16(r);
                for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps((float *)(d + (long)(q + j) * rows), keep, r[j]);
            }
        }
        if (q < qc) dk_pack_a_bf16_portable(d + (long)q * rows, src, lda, rows, k, q0 + q, qc - q, rows);
    }
}

#define ATTR_BF16 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512bf16,avx2,fma")))

// One pair of k steps of the native tile: each vdpbf16ps adds, per column, a[2q]·b[2q] +
// a[2q+1]·b[2q+1] (exact products, float sums) to the accumulator.
static inline __attribute__((always_inline)) ATTR_BF16 void dk512_bf16_step(const int MR, __m512 *acc0, __m512 *acc1,
                                                                            const uint32_t *a, const uint32_t *b) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + 16);
#pragma unroll
    for (int i = 0; i < MR; i++) {
        const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
        acc0[i] = _mm512_dpbf16_ps(acc0[i], ai, b0);
        acc1[i] = _mm512_dpbf16_ps(acc1[i], ai, b1);
    }
}

static inline __attribute__((always_inline)) ATTR_BF16 void
dk512_bf16_native_part(const int MR_, int cols, int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                       int flags, const dk_epilogue *e, long row0, long col0, const char *pf, const char *pf_end) {
    const int MR = MR_ > DK_PACKED_ROWS ? DK_PACKED_ROWS : MR_;
    __m512 acc0[DK_PACKED_ROWS], acc1[DK_PACKED_ROWS];
    const int n0 = cols < 16 ? cols : 16, n1 = cols - n0;
    dk512_tile_start(MR, acc0, acc1, n0, n1, c, ldc, flags, e, col0);
    int q = 0;
    for (; q + 2 <= kp; q += 2) {
        if (pf < pf_end) {
            __builtin_prefetch(pf, 0, 2);
            pf += 64;
        }
        dk512_bf16_step(MR, acc0, acc1, a, b);
        dk512_bf16_step(MR, acc0, acc1, a + MR, b + DK_NR);
        a += 2 * MR;
        b += 2 * DK_NR;
    }
    if (q < kp) dk512_bf16_step(MR, acc0, acc1, a, b);
    dk512_tile_finish(MR, acc0, acc1, cols, c, ldc, flags, e, row0, col0);
}

static ATTR_BF16 void dk512_tile_bf16_native(int mr, int nr, int kp, const uint32_t *a, const uint32_t *b, float *c,
                                             long ldc, int flags, const dk_epilogue *e, long row0, long col0,
                                             const char *pf, const char *pf_end) {
    switch (mr > DK_PACKED_ROWS ? DK_PACKED_ROWS : mr) {
#define DK_NATIVE_CASE(R) \
    case R: dk512_bf16_native_part(R, nr, kp, a, b, c, ldc, flags, e, row0, col0, pf, pf_end); break;
        DK_NATIVE_CASE(12) DK_NATIVE_CASE(11) DK_NATIVE_CASE(10) DK_NATIVE_CASE(9) DK_NATIVE_CASE(8) DK_NATIVE_CASE(7)
        DK_NATIVE_CASE(6) DK_NATIVE_CASE(5) DK_NATIVE_CASE(4) DK_NATIVE_CASE(3) DK_NATIVE_CASE(2)
#undef DK_NATIVE_CASE
    default: dk512_bf16_native_part(1, nr, kp, a, b, c, ldc, flags, e, row0, col0, pf, pf_end); break;
    }
}

// ---- bf16 with AMX (TDPBF16PS) -----------------------------------------------------------------
//
// A tile of up to 16 rows × one panel (32 columns) as two 16 × 16 AMX accumulator tiles: per 16
// pairs of k (32 k steps), one A tile (16 rows × 16 words) and two B tiles (16 pairs × 16
// columns, straight from the panel with a 128-byte row stride) and two TDPBF16PS. A is packed
// for it (`dk512_pack_a_amx`): per row tile, each block of 16 pairs as rows × 16 words (row-major),
// the pairs past the last whole block in the ordinary layout, which the vdpbf16ps step finishes
// in registers. Rows past the tile's own are read from whatever follows (the buffers are padded)
// and their sums thrown away: a row of C depends on its row of A only. The sums go through
// memory into the float accumulators, which then start from the bias or C's partial sums as in
// every other tile, and the float epilogue follows.

#define ATTR_AMX __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512bf16,avx2,fma,amx-tile,amx-bf16")))

static ATTR void dk512_pack_a_amx(uint32_t *dst, const float *a, long lda, int m, int k, int q0, int qc, int mr) {
    const int blocks = qc / 16;
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + (long)t0 * qc;
        const float *src = a + (long)t0 * lda;
        for (int blk = 0; blk < blocks; blk++) {
            const int kk = 2 * (q0 + 16 * blk);
            for (int i = 0; i < rows; i++) {
                uint32_t *row = d + ((long)blk * rows + i) * 16;
                if (kk + 32 <= k) {
                    const float *x = src + i * lda + kk;
                    const __m256i lo = _mm512_cvtepi32_epi16(dk512_bf16_round(_mm512_loadu_ps(x)));
                    const __m256i hi = _mm512_cvtepi32_epi16(dk512_bf16_round(_mm512_loadu_ps(x + 16)));
                    _mm512_storeu_si512(row, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
                } else {
                    for (int q = 0; q < 16; q++) {
                        const float *x = src + i * lda + kk + 2 * q;
                        row[q] = (uint32_t)dk_bf16_round(x[0]) | (kk + 2 * q + 1 < k ? (uint32_t)dk_bf16_round(x[1]) << 16 : 0u);
                    }
                }
            }
        }
        if (blocks * 16 < qc)
            dk_pack_a_bf16_portable(d + (long)blocks * 16 * rows, src, lda, rows, k, q0 + 16 * blocks, qc - 16 * blocks,
                                    rows);
    }
}

typedef struct {
    unsigned char palette, start_row, reserved[14];
    unsigned short colsb[16];
    unsigned char rows[16];
} dk_amx_config;

static _Thread_local int dk_amx_configured;

static inline __attribute__((always_inline)) ATTR_AMX void dk512_amx_configure(void) {
    if (dk_amx_configured) return;
    dk_amx_config cfg;
    __builtin_memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 5; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
    dk_amx_configured = 1;
}

static inline __attribute__((always_inline)) ATTR_BF16 void
dk512_amx_finish(const int MR, const float *sums, int tail, const uint32_t *a, const uint32_t *b, int cols, float *c,
                 long ldc, int flags, const dk_epilogue *e, long row0, long col0) {
    __m512 acc0[16], acc1[16];
    const int n0 = cols < 16 ? cols : 16, n1 = cols - n0;
    dk512_tile_start(MR, acc0, acc1, n0, n1, c, ldc, flags, e, col0);
#pragma unroll
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_add_ps(acc0[i], _mm512_loadu_ps(sums + i * 32));
        acc1[i] = _mm512_add_ps(acc1[i], _mm512_loadu_ps(sums + i * 32 + 16));
    }
    for (int q = 0; q < tail; q++) dk512_bf16_step(MR, acc0, acc1, a + q * MR, b + q * DK_NR);
    dk512_tile_finish(MR, acc0, acc1, cols, c, ldc, flags, e, row0, col0);
}

static ATTR_AMX void dk512_tile_bf16_amx(int mr, int nr, int kp, const uint32_t *a, const uint32_t *b, float *c,
                                         long ldc, int flags, const dk_epilogue *e, long row0, long col0,
                                         const char *pf, const char *pf_end) {
    float sums[16 * 32] __attribute__((aligned(64)));
    const int blocks = kp / 16, tail = kp - 16 * blocks;
    if (blocks > 0) {
        dk512_amx_configure();
        _tile_zero(0);
        _tile_zero(1);
        for (int blk = 0; blk < blocks; blk++) {
            for (int l = 0; l < 4 && pf < pf_end; l++, pf += 64) __builtin_prefetch(pf, 0, 2);
            _tile_loadd(2, a + (long)blk * mr * 16, 64);
            _tile_loadd(3, b + (long)blk * 16 * DK_NR, 128);
            _tile_loadd(4, b + (long)blk * 16 * DK_NR + 16, 128);
            _tile_dpbf16ps(0, 2, 3);
            _tile_dpbf16ps(1, 2, 4);
        }
        _tile_stored(0, sums, 128);
        _tile_stored(1, sums + 16, 128);
    } else {
        __builtin_memset(sums, 0, sizeof sums);
    }
    for (; pf < pf_end; pf += 64) __builtin_prefetch(pf, 0, 2);
    const uint32_t *ta = a + (long)blocks * 16 * mr, *tb = b + (long)blocks * 16 * DK_NR;
    switch (mr > 16 ? 16 : mr) {
#define DK_AMX_CASE(R) \
    case R: dk512_amx_finish(R, sums, tail, ta, tb, nr, c, ldc, flags, e, row0, col0); break;
        DK_AMX_CASE(16) DK_AMX_CASE(15) DK_AMX_CASE(14) DK_AMX_CASE(13) DK_AMX_CASE(12) DK_AMX_CASE(11) DK_AMX_CASE(10)
        DK_AMX_CASE(9) DK_AMX_CASE(8) DK_AMX_CASE(7) DK_AMX_CASE(6) DK_AMX_CASE(5) DK_AMX_CASE(4) DK_AMX_CASE(3)
        DK_AMX_CASE(2)
#undef DK_AMX_CASE
    default: dk512_amx_finish(1, sums, tail, ta, tb, nr, c, ldc, flags, e, row0, col0); break;
    }
}

// ---- int8 -------------------------------------------------------------------------------------
//
// AVX512_VNNI: `vpdpbusd` adds, per 32-bit lane, the four products of an unsigned byte quad (A)
// with a signed one (B). A is packed as q_a + 128 (bytes XOR 0x80), so each column's sum carries
// 128 · Σ_k q_w, which the accumulators start without: they start at −128 · Σ_k q_w (exact in
// int32). 24 accumulators, two B vectors and a broadcast, as the float tile.

#define ATTR_VNNI __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512vnni,avx2,fma")))

static ATTR void dk512_int8_row_scales(float *s, const float *a, long lda, int m, int k) {
    const __m512i abs = _mm512_set1_epi32(0x7fffffff);
    for (int i = 0; i < m; i++) {
        const float *x = a + (long)i * lda;
        __m512i mx = _mm512_setzero_si512();
        int p = 0;
        for (; p + 16 <= k; p += 16) mx = _mm512_max_epu32(mx, _mm512_and_si512(_mm512_loadu_si512(x + p), abs));
        if (p < k) mx = _mm512_max_epu32(mx, _mm512_and_si512(_mm512_maskz_loadu_epi32(dk512_mask(k - p), x + p), abs));
        const uint32_t m32 = (uint32_t)_mm512_reduce_max_epu32(mx);
        float amax;
        __builtin_memcpy(&amax, &m32, 4);
        s[i] = dk_int8_scale(amax);
    }
}

// 16 floats quantized with `scale` (dk_int8_quantize's steps: divide, clamp with NaN to −127,
// round to nearest even) to 16 signed bytes.
static inline __attribute__((always_inline)) ATTR __m128i dk512_int8_quantize16(__m512 x, __m512 scale) {
    __m512 q = _mm512_max_ps(_mm512_div_ps(x, scale), _mm512_set1_ps(-127.0f));
    q = _mm512_min_ps(q, _mm512_set1_ps(127.0f));
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(q));
}

// 16 quads (64 k steps) of one row as 16 words, bytes XOR flip.
static inline __attribute__((always_inline)) ATTR __m512i dk512_int8_quads16(const float *x, float scale, uint32_t flip) {
    const __m512 s = _mm512_set1_ps(scale);
    __m512i w = _mm512_castsi128_si512(dk512_int8_quantize16(_mm512_loadu_ps(x), s));
    w = _mm512_inserti32x4(w, dk512_int8_quantize16(_mm512_loadu_ps(x + 16), s), 1);
    w = _mm512_inserti32x4(w, dk512_int8_quantize16(_mm512_loadu_ps(x + 32), s), 2);
    w = _mm512_inserti32x4(w, dk512_int8_quantize16(_mm512_loadu_ps(x + 48), s), 3);
    return _mm512_xor_si512(w, _mm512_set1_epi32((int)flip));
}

// The quad layout with A + 128, for whole tiles of mr ≤ 16 rows: 16 quads of each row, then a
// 16 × 16 register transpose and one masked store per quad; k tails and partial tiles word by word.
static ATTR void dk512_pack_a_int8_u8(uint32_t *dst, const float *a, long lda, const float *scale, int m, int k, int q0,
                                      int qc, int mr) {
    const __mmask16 keep = dk512_mask(mr);
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + (long)t0 * qc;
        const float *src = a + (long)t0 * lda;
        int q = 0;
        if (rows == mr && mr <= 16) {
            for (; q + 16 <= qc && 4 * (q0 + q + 16) <= k; q += 16) {
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = i < rows ? _mm512_castsi512_ps(dk512_int8_quads16(src + i * lda + 4 * (q0 + q), scale[t0 + i], 0x80808080u))
                                    : _mm512_setzero_ps();
                dk512_transpose16(r);
                for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps((float *)(d + (long)(q + j) * rows), keep, r[j]);
            }
        }
        for (; q < qc; q++)
            for (int i = 0; i < rows; i++)
                d[(long)q * rows + i] = dk_int8_quad(src + i * lda, 4 * (q0 + q), k, scale[t0 + i], 0x80808080u);
    }
}

// Accumulators from C's int32 partial sums, or from −128 · Σ_k q_w (`offset`, the VNNI tile), or 0.
static inline __attribute__((always_inline)) ATTR void dk512_int8_start(const int MR, __m512i *acc0, __m512i *acc1,
                                                                        int n0, int n1, const float *c, long ldc,
                                                                        int flags, const int32_t *offset) {
    __m512i o0 = _mm512_setzero_si512(), o1 = o0;
    if (offset && !(flags & DK_TILE_LOAD_C)) {
        o0 = _mm512_sub_epi32(o0, _mm512_slli_epi32(_mm512_maskz_loadu_epi32(dk512_mask(n0), offset), 7));
        o1 = _mm512_sub_epi32(o1, _mm512_slli_epi32(_mm512_maskz_loadu_epi32(dk512_mask(n1), offset + 16), 7));
    }
#pragma unroll
    for (int i = 0; i < MR; i++) {
        acc0[i] = flags & DK_TILE_LOAD_C ? _mm512_maskz_loadu_epi32(dk512_mask(n0), c + i * ldc) : o0;
        acc1[i] = flags & DK_TILE_LOAD_C ? _mm512_maskz_loadu_epi32(dk512_mask(n1), c + i * ldc + 16) : o1;
    }
}

// int32 partial sums to C, or, after the last k block, y = (float(acc) · s_a) · s_w + bias and the
// float epilogue.
static inline __attribute__((always_inline)) ATTR void
dk512_int8_finish(const int MR, __m512i *acc0, __m512i *acc1, int cols, float *c, long ldc, int flags,
                  const dk_epilogue *e, const dk_int8_scales *s, long row0, long col0) {
    const int n0 = cols < 16 ? cols : 16, n1 = cols - n0;
    if (!(flags & DK_TILE_FINAL)) {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            _mm512_mask_storeu_epi32(c + i * ldc, dk512_mask(n0), acc0[i]);
            _mm512_mask_storeu_epi32(c + i * ldc + 16, dk512_mask(n1), acc1[i]);
        }
        return;
    }
    const float *bias = e ? e->bias : 0;
    const __m512 sw0 = _mm512_maskz_loadu_ps(dk512_mask(n0), s->col + col0);
    const __m512 sw1 = _mm512_maskz_loadu_ps(dk512_mask(n1), s->col + col0 + 16);
    const __m512 b0 = bias ? _mm512_maskz_loadu_ps(dk512_mask(n0), bias + col0) : _mm512_setzero_ps();
    const __m512 b1 = bias ? _mm512_maskz_loadu_ps(dk512_mask(n1), bias + col0 + 16) : _mm512_setzero_ps();
    __m512 f0[16], f1[16];
#pragma unroll
    for (int i = 0; i < MR; i++) {
        const __m512 sa = _mm512_set1_ps(s->row[row0 + i]);
        f0[i] = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc0[i]), sa), sw0), b0);
        f1[i] = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc1[i]), sa), sw1), b1);
    }
    dk512_tile_finish(MR, f0, f1, cols, c, ldc, DK_TILE_FINAL, e, row0, col0);
}

static inline __attribute__((always_inline)) ATTR_VNNI void dk512_int8_step(const int MR, __m512i *acc0, __m512i *acc1,
                                                                             const uint32_t *a, const uint32_t *b) {
    const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 16);
#pragma unroll
    for (int i = 0; i < MR; i++) {
        const __m512i ai = _mm512_set1_epi32((int)a[i]);
        acc0[i] = _mm512_dpbusd_epi32(acc0[i], ai, b0);
        acc1[i] = _mm512_dpbusd_epi32(acc1[i], ai, b1);
    }
}

static inline __attribute__((always_inline)) ATTR_VNNI void
dk512_int8_vnni_part(const int MR_, int cols, int kq, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                     int flags, const dk_epilogue *e, const dk_int8_scales *s, long row0, long col0, const char *pf,
                     const char *pf_end) {
    const int MR = MR_ > DK_PACKED_ROWS ? DK_PACKED_ROWS : MR_;
    __m512i acc0[DK_PACKED_ROWS], acc1[DK_PACKED_ROWS];
    const int n0 = cols < 16 ? cols : 16, n1 = cols - n0;
    dk512_int8_start(MR, acc0, acc1, n0, n1, c, ldc, flags, s->col_sum + col0);
    int q = 0;
    for (; q + 2 <= kq; q += 2) {
        if (pf < pf_end) {
            __builtin_prefetch(pf, 0, 2);
            pf += 64;
        }
        dk512_int8_step(MR, acc0, acc1, a, b);
        dk512_int8_step(MR, acc0, acc1, a + MR, b + DK_NR);
        a += 2 * MR;
        b += 2 * DK_NR;
    }
    if (q < kq) dk512_int8_step(MR, acc0, acc1, a, b);
    dk512_int8_finish(MR, acc0, acc1, cols, c, ldc, flags, e, s, row0, col0);
}

static ATTR_VNNI void dk512_tile_int8_vnni(int mr, int nr, int kq, const uint32_t *a, const uint32_t *b, float *c,
                                           long ldc, int flags, const dk_epilogue *e, const dk_int8_scales *s,
                                           long row0, long col0, const char *pf, const char *pf_end) {
    switch (mr > DK_PACKED_ROWS ? DK_PACKED_ROWS : mr) {
#define DK_VNNI_CASE(R) \
    case R: dk512_int8_vnni_part(R, nr, kq, a, b, c, ldc, flags, e, s, row0, col0, pf, pf_end); break;
        DK_VNNI_CASE(12) DK_VNNI_CASE(11) DK_VNNI_CASE(10) DK_VNNI_CASE(9) DK_VNNI_CASE(8) DK_VNNI_CASE(7)
        DK_VNNI_CASE(6) DK_VNNI_CASE(5) DK_VNNI_CASE(4) DK_VNNI_CASE(3) DK_VNNI_CASE(2)
#undef DK_VNNI_CASE
    default: dk512_int8_vnni_part(1, nr, kq, a, b, c, ldc, flags, e, s, row0, col0, pf, pf_end); break;
    }
}

// ---- int8 with AMX (TDPBSSD) -------------------------------------------------------------------
//
// As the bf16 AMX tile: up to 16 rows × one panel as two 16 × 16 int32 accumulator tiles; per 16
// quads (64 k steps) one A tile (16 rows × 64 signed bytes) and two B tiles straight from the
// panel (16 quads × 16 columns, 128-byte row stride), two TDPBSSD (signed × signed: no offset).
// A is packed per row tile as blocks of 16 quads, rows × 16 words each, zero past the k block:
// so the last block may read B past the block's quads (the next block's, or the panel padding)
// and add nothing. Rows past the tile's own are read from what follows and thrown away.

#define ATTR_AMX8 \
    __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512bf16,avx512vnni,avx2,fma,amx-tile,amx-bf16,amx-int8")))

static ATTR void dk512_pack_a_int8_amx(uint32_t *dst, const float *a, long lda, const float *scale, int m, int k, int q0,
                                       int qc, int mr) {
    const int blocks = (qc + 15) / 16;
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + (long)t0 * blocks * 16;
        for (int blk = 0; blk < blocks; blk++) {
            const int g0 = 16 * blk;
            for (int i = 0; i < rows; i++) {
                uint32_t *row = d + ((long)blk * rows + i) * 16;
                const float *x = a + (long)(t0 + i) * lda;
                if (g0 + 16 <= qc && 4 * (q0 + g0 + 16) <= k) {
                    _mm512_storeu_si512(row, dk512_int8_quads16(x + 4 * (q0 + g0), scale[t0 + i], 0));
                } else {
                    for (int g = 0; g < 16; g++)
                        row[g] = g0 + g < qc ? dk_int8_quad(x, 4 * (q0 + g0 + g), k, scale[t0 + i], 0) : 0;
                }
            }
        }
    }
}

static inline __attribute__((always_inline)) ATTR void dk512_amx8_finish(const int MR, const int32_t *sums, int cols,
                                                                         float *c, long ldc, int flags,
                                                                         const dk_epilogue *e, const dk_int8_scales *s,
                                                                         long row0, long col0) {
    __m512i acc0[16], acc1[16];
    const int n0 = cols < 16 ? cols : 16, n1 = cols - n0;
    dk512_int8_start(MR, acc0, acc1, n0, n1, c, ldc, flags, 0);
#pragma unroll
    for (int i = 0; i < MR; i++) {
        acc0[i] = _mm512_add_epi32(acc0[i], _mm512_loadu_si512(sums + i * 32));
        acc1[i] = _mm512_add_epi32(acc1[i], _mm512_loadu_si512(sums + i * 32 + 16));
    }
    dk512_int8_finish(MR, acc0, acc1, cols, c, ldc, flags, e, s, row0, col0);
}

static ATTR_AMX8 void dk512_tile_int8_amx(int mr, int nr, int kq, const uint32_t *a, const uint32_t *b, float *c,
                                          long ldc, int flags, const dk_epilogue *e, const dk_int8_scales *s,
                                          long row0, long col0, const char *pf, const char *pf_end) {
    int32_t sums[16 * 32] __attribute__((aligned(64)));
    const int blocks = (kq + 15) / 16;
    if (blocks > 0) {
        dk512_amx_configure();
        _tile_zero(0);
        _tile_zero(1);
        for (int blk = 0; blk < blocks; blk++) {
            for (int l = 0; l < 4 && pf < pf_end; l++, pf += 64) __builtin_prefetch(pf, 0, 2);
            _tile_loadd(2, a + (long)blk * mr * 16, 64);
            _tile_loadd(3, b + (long)blk * 16 * DK_NR, 128);
            _tile_loadd(4, b + (long)blk * 16 * DK_NR + 16, 128);
            _tile_dpbssd(0, 2, 3);
            _tile_dpbssd(1, 2, 4);
        }
        _tile_stored(0, sums, 128);
        _tile_stored(1, sums + 16, 128);
    } else {
        __builtin_memset(sums, 0, sizeof sums);
    }
    for (; pf < pf_end; pf += 64) __builtin_prefetch(pf, 0, 2);
    switch (mr > 16 ? 16 : mr) {
#define DK_AMX8_CASE(R) \
    case R: dk512_amx8_finish(R, sums, nr, c, ldc, flags, e, s, row0, col0); break;
        DK_AMX8_CASE(16) DK_AMX8_CASE(15) DK_AMX8_CASE(14) DK_AMX8_CASE(13) DK_AMX8_CASE(12) DK_AMX8_CASE(11)
        DK_AMX8_CASE(10) DK_AMX8_CASE(9) DK_AMX8_CASE(8) DK_AMX8_CASE(7) DK_AMX8_CASE(6) DK_AMX8_CASE(5) DK_AMX8_CASE(4)
        DK_AMX8_CASE(3) DK_AMX8_CASE(2)
#undef DK_AMX8_CASE
    default: dk512_amx8_finish(1, sums, nr, c, ldc, flags, e, s, row0, col0); break;
    }
}

const dk_int8_ops dk_int8_ops_avx512_vnni = {
    .name = "avx512_vnni: vpdpbusd",
    .rows = DK_PACKED_ROWS,
    .quad_align = 1,
    .tile = dk512_tile_int8_vnni,
    .pack_a = dk512_pack_a_int8_u8,
    .row_scales = dk512_int8_row_scales,
};

const dk_int8_ops dk_int8_ops_avx512_amx = {
    .name = "amx_int8: tdpbssd",
    .rows = 16,
    .quad_align = 16,
    .tile = dk512_tile_int8_amx,
    .pack_a = dk512_pack_a_int8_amx,
    .row_scales = dk512_int8_row_scales,
};

const dk_bf16_ops dk_bf16_ops_avx512_amx = {
    .name = "amx_bf16: tdpbf16ps",
    .rows = 16,
    .tile = dk512_tile_bf16_amx,
    .pack_a = dk512_pack_a_amx,
    .a_words = 1,
};

const dk_bf16_ops dk_bf16_ops_avx512 = {
    .name = "avx512: bf16 widened to f32 FMA",
    .rows = DK_BF16_ROWS,
    .tile = dk512_tile_bf16,
    .pack_a = dk_pack_a_bf16_widened,
    .a_words = 2,
};

const dk_bf16_ops dk_bf16_ops_avx512_native = {
    .name = "avx512_bf16: vdpbf16ps",
    .rows = DK_PACKED_ROWS,
    .tile = dk512_tile_bf16_native,
    .pack_a = dk512_pack_a_bf16,
    .a_words = 1,
};

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
#if defined(DK_AVX512_UNINSTRUMENTED)
#pragma clang attribute pop
#endif
#endif
