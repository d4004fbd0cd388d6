#ifndef DINOKIT_CKERNELS_INTERNAL_H
#define DINOKIT_CKERNELS_INTERNAL_H

#include "CKernels.h"

// GEMM blocking (gemm.c, sgemm.c): k in blocks of at most DK_KC, rows in blocks of DK_MC (a
// multiple of every path's tile height).
#define DK_KC 384
#define DK_MC 144

// Tile flags for the micro-kernel.
enum {
    DK_TILE_LOAD_C = 1, // start from the partial sums in C (a later k block), else from the bias / zero
    DK_TILE_FINAL = 2,  // last k block: apply alpha and the epilogue, else store partial sums to C
};

// One instruction set's kernels. `tile` computes an mr × nr (mr ≤ DK_MR, nr ≤ DK_NR) block of C
// over kc steps of k: a (row stride lda) against one packed panel b (row stride ldb, DK_NR
// readable floats per row). row0/col0 locate the tile in C for the epilogue's bias, gamma and
// residual.
typedef struct {
    int rows; // micro-tile rows (≤ DK_MR)
    void (*tile)(int mr, int nr, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                 int flags, const dk_epilogue *e, long row0, long col0);
    // Optional (NULL: A is always read in place): the tile over A packed by dk_pack_a, for tiles of
    // up to packed_rows rows, prefetching the lines of [pf, pf_end) into L2 as it goes.
    int packed_rows;
    // A's k steps are lda floats apart (mr for pack_a's layout), its rows adjacent.
    void (*tile_packed)(int mr, int nr, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                        int flags, const dk_epilogue *e, long row0, long col0, const char *pf, const char *pf_end);
    void (*pack_a)(float *dst, const float *a, long lda, int m, int kc, int mr); // see below
    // Optional (NULL: the portable loop): dk_pack_transposed.
    void (*pack_transposed)(float *dst, const float *w, int n, int k, long ldw);
    void (*layernorm)(int rows, int cols, const float *x, long ldx, float *y, long ldy, const float *w,
                      const float *b, float eps, float *mean, float *rstd);
    void (*gelu)(float *y, const float *x, long n);
    void (*gelu_backward)(float *dx, const float *dy, const float *x, long n);
    void (*silu)(float *y, const float *x, long n);
    void (*swiglu)(float *y, const float *u, int rows, int hidden);
    void (*softmax)(float *x, int rows, int cols, long ld);
    // exp(x − row max) in place, and 1 / (row sum) into inv: the softmax before its normalisation.
    void (*softmax_exp)(float *x, int rows, int cols, long ld, float *inv);
    // The same down the columns (one softmax per column of rows values), for paths with tile_packed.
    void (*softmax_exp_columns)(float *x, int rows, int cols, long ld, float *inv);
    void (*residual)(float *x, const float *branch, const float *gamma, int rows, int cols);
} dk_ops;

extern const dk_ops dk_ops_scalar;
#if defined(__x86_64__)
extern const dk_ops dk_ops_avx2;
extern const dk_ops dk_ops_avx512;
#endif

const dk_ops *dk_current_ops(void);

// The bf16 GEMM's kernels for one path (see CKernels.h). `tile` computes an mr × nr block of C
// (mr ≤ rows) over kp pairs of k: A packed by `pack_a` in `a_words` words per row and pair — 1:
// bf16 of A[i][2q] | bf16 of A[i][2q + 1] << 16; 2: the same two bf16 values widened to floats,
// so that a tile without a bf16 instruction broadcasts them straight from memory instead of
// widening each row's word (two more vector operations per row and pair than the FMAs leave room
// for) — against one panel b (DK_NR words per pair); epilogue and prefetch range as
// dk_ops.tile_packed.
typedef void (*dk_tile_bf16_fn)(int mr, int nr, int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                                int flags, const dk_epilogue *e, long row0, long col0, const char *pf,
                                const char *pf_end);
// Packs pairs [q0, q0 + qc) of rows [0, m) of A (k floats per row, row stride lda; the pair past
// an odd k is zero) as `pack_a`'s layout with pairs for steps: tile t at dst + t·mr·qc·a_words.
typedef void (*dk_pack_a_bf16_fn)(uint32_t *dst, const float *a, long lda, int m, int k, int q0, int qc, int mr);
typedef struct {
    const char *name;
    int rows;
    dk_tile_bf16_fn tile;
    dk_pack_a_bf16_fn pack_a; // dk_pack_a_bf16_portable, dk_pack_a_bf16_widened or the path's own
    int a_words;              // 32-bit words per row and pair in the packed A: 1 or 2 (widened)
} dk_bf16_ops;

extern const dk_bf16_ops dk_bf16_ops_scalar;
#if defined(__x86_64__)
extern const dk_bf16_ops dk_bf16_ops_avx2;
extern const dk_bf16_ops dk_bf16_ops_avx512;        // widening
extern const dk_bf16_ops dk_bf16_ops_avx512_native; // vdpbf16ps
extern const dk_bf16_ops dk_bf16_ops_avx512_amx;    // AMX tdpbf16ps
#endif
// Bytes the AMX tile may read past the end of a packed A (rows past a partial tile).
#define DK_BF16_A_PAD (16 * 16)
const dk_bf16_ops *dk_current_bf16_ops(void);
void dk_pack_a_bf16_portable(uint32_t *dst, const float *a, long lda, int m, int k, int q0, int qc, int mr);
void dk_pack_a_bf16_widened(uint32_t *dst, const float *a, long lda, int m, int k, int q0, int qc, int mr);

// torch's rounding of one float to bfloat16 (round to nearest even; any NaN → 0x7FC0).
static inline uint16_t dk_bf16_round(float x) {
    uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
// A bfloat16 value as `dk_bf16_round` of its float gives it back: itself, or 0x7FC0 for any NaN.
static inline uint16_t dk_bf16_canonical(uint16_t b) { return (b & 0x7fffu) > 0x7f80u ? 0x7fc0 : b; }
static inline float dk_bf16_lo(uint32_t w) {
    uint32_t u = w << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}
static inline float dk_bf16_hi(uint32_t w) {
    uint32_t u = w & 0xffff0000u;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}


// ---- int8 (see CKernels.h) -------------------------------------------------------------------
//
// The quantization rule, one definition for every path: a row's (or weight row's) scale is
// max |x| / 127 (1 when that is 0: an all-zero or all-tiny row), and x becomes
// clamp(rint(x / scale), -127, 127). max |x| is taken on the bit patterns (|x|'s bits order as the
// values do, NaN above inf), so a row with a NaN gets a NaN scale and NaN outputs on every path,
// and the clamp sends NaN to -127 as maxps(q, -127) does.
static inline float dk_int8_abs_max(const float *x, long n) {
    uint32_t m = 0;
    for (long i = 0; i < n; i++) {
        uint32_t u;
        __builtin_memcpy(&u, x + i, 4);
        u &= 0x7fffffffu;
        m = u > m ? u : m;
    }
    float f;
    __builtin_memcpy(&f, &m, 4);
    return f;
}
static inline float dk_int8_scale(float abs_max) {
    const float s = abs_max / 127.0f;
    return s == 0.0f ? 1.0f : s;
}
static inline int dk_int8_quantize(float x, float scale) {
    float q = x / scale;
    q = q > -127.0f ? q : -127.0f;
    q = q < 127.0f ? q : 127.0f;
    return (int)__builtin_rintf(q);
}
// One quad of a packed A: x[kk … kk + 3] quantized with `scale` (0 past k), one byte each (low
// first), XOR `flip` (0x80808080 for vpdpbusd's unsigned operand, else 0).
static inline uint32_t dk_int8_quad(const float *x, int kk, int k, float scale, uint32_t flip) {
    uint32_t word = 0;
    for (int b = 0; b < 4; b++) {
        const int v = kk + b < k ? dk_int8_quantize(x[kk + b], scale) : 0;
        word |= (uint32_t)(uint8_t)(int8_t)v << (8 * b);
    }
    return word ^ flip;
}

// What the int8 tile needs besides A and B to finish: y = (float(acc) · row[row0 + i]) ·
// col[col0 + j] + bias[col0 + j].
typedef struct {
    const float *row;       // s_a of each row of the call's A
    const float *col;       // s_w of each column
    const int32_t *col_sum; // Σ_k q_w of each column (the u8 offset's correction)
} dk_int8_scales;

// The int8 GEMM's kernels for one path. `tile` computes an mr × nr block of C (mr ≤ rows) over
// kq quads of k (4 k steps per 32-bit word) from A packed by `pack_a` against one panel b
// (DK_NR words per quad); int32 sums go through C between k blocks (flags as dk_ops.tile), the
// last block converts and runs the float epilogue. `pack_a` quantizes quads [q0, q0 + qc) of
// rows [0, m) of A (k floats per row, row stride lda; bytes past k are zero) with the rows' scales
// into the path's layout: tile t at dst + t·mr·qc', qc' = qc rounded up to quad_align; each quad
// is 4 signed bytes, or 4 bytes + 128 (`vpdpbusd`'s unsigned operand) on the VNNI path.
typedef void (*dk_tile_int8_fn)(int mr, int nr, int kq, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                                int flags, const dk_epilogue *e, const dk_int8_scales *s, long row0, long col0,
                                const char *pf, const char *pf_end);
typedef void (*dk_pack_a_int8_fn)(uint32_t *dst, const float *a, long lda, const float *scale, int m, int k, int q0,
                                  int qc, int mr);
typedef struct {
    const char *name;
    int rows;
    int quad_align; // quads per packed k block rounded up to this (AMX: 16, whole A tiles)
    dk_tile_int8_fn tile;
    dk_pack_a_int8_fn pack_a;
    void (*row_scales)(float *s, const float *a, long lda, int m, int k); // NULL: the portable loop
} dk_int8_ops;

extern const dk_int8_ops dk_int8_ops_scalar;
#if defined(__x86_64__)
extern const dk_int8_ops dk_int8_ops_avx2;        // pmaddubsw on |a| and sign-adjusted b (also avx512 without VNNI)
extern const dk_int8_ops dk_int8_ops_avx512_vnni; // vpdpbusd
extern const dk_int8_ops dk_int8_ops_avx512_amx;  // AMX tdpbssd
#endif
// Words the AMX tile may read past the end of a packed A (rows past a partial tile) or of a packed
// B (quads past the last block, multiplied by A's zero padding).
#define DK_INT8_A_PAD (16 * 16)
#define DK_INT8_B_PAD (16 * DK_NR)
const dk_int8_ops *dk_current_int8_ops(void);
// The portable pack_a (`flip` as dk_int8_quad's).
void dk_pack_a_int8_portable(uint32_t *dst, const float *a, long lda, const float *scale, int m, int k, int q0, int qc,
                             int mr, uint32_t flip);
void dk_int8_row_scales_portable(float *s, const float *a, long lda, int m, int k);


// A packed whole for a GEMM: k block kb (columns p0 …) of rows [0, rows) is `pack_a`'s layout at
// base + rows·p0. `row0` is where the GEMM's first row sits in it (a multiple of the packed tile
// height).
typedef struct {
    const float *base;
    int rows, row0;
} dk_packed_a;

// dk_gemm, reading A from `pa` when given (then the path must have `tile_packed`). `after`, when
// not NULL, is the panel the calling thread will most likely need next (its next task's): it is
// prefetched while the last panel of this call runs.
void dk_gemm_run(int m, int n, int k, const float *a, long lda, const dk_packed_a *pa, const float *b, long ldb,
                 long panel_stride, float *c, long ldc, const dk_epilogue *e, const float *after);

// One spin-wait step (pool.c).
void dk_pause(void);

// Per-thread scratch (scratch.c): slot's buffer with room for count floats, 64-byte aligned, kept
// for the thread's next calls (contents not preserved when it grows); NULL if allocation fails.
enum {
    DK_SCRATCH_SGEMM_B,
    DK_SCRATCH_SGEMM_A,
    DK_SCRATCH_ATTENTION,
    DK_SCRATCH_PACKED_A,        // dk_gemm's A, one row block
    DK_SCRATCH_PACKED_A_SHARED, // dk_gemm_packed_columns' whole A, read by every thread of the loop
    DK_SCRATCH_ATTENTION_SCORES, // a block of the attention's scores when the caller keeps probabilities
    DK_SCRATCH_SLOTS
};
float *dk_scratch(int slot, size_t count);

// `pack_a` lays out rows [0, m) × the first kc columns of A (row stride lda) for `tile_packed`: the
// tile t (rows t·mr … t·mr + rows_t − 1) starts at dst + t·mr·kc and holds, for each k step, its
// rows_t values.

#endif
