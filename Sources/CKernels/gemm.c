// The GEMM driver around the micro-kernel (BLIS's loop order): rows in blocks of DK_MC, k in
// blocks of at most DK_KC, then one packed B panel at a time against every micro-tile of the row
// block. A kc × 32 panel (≤ 48 KB) stays in L1/L2 while the row tiles stream past it, and the row
// block's kc-slice of A stays in L2 while the panels go by. A is read in place (packing it into
// micro-panels measured no faster). DK_KC = 384 keeps D = 384 products and the attention's
// P V (k = tokens = 257) in one k block, so C is written once; longer k (fc2: 1536) makes
// 384-deep blocks that accumulate in C.
#include "internal.h"

#define DK_KC 384
#define DK_MC 144

size_t dk_packed_count(int n, int k) {
    if (n <= 0 || k <= 0) return 0;
    return (size_t)((n + DK_NR - 1) / DK_NR) * DK_NR * (size_t)k;
}

void dk_pack_transposed(float *dst, const float *w, int n, int k, long ldw) {
    const int panels = (n + DK_NR - 1) / DK_NR;
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * k * DK_NR;
        const int rows = n - p * DK_NR < DK_NR ? n - p * DK_NR : DK_NR;
        const float *src = w + (long)p * DK_NR * ldw;
        // Contiguous writes, reads from `rows` streams (one cache line each per 16 steps of kk).
        for (int kk = 0; kk < k; kk++) {
            float *row = d + (size_t)kk * DK_NR;
            int j = 0;
            for (; j < rows; j++) row[j] = src[(long)j * ldw + kk];
            for (; j < DK_NR; j++) row[j] = 0.0f;
        }
    }
}

void dk_pack(float *dst, const float *b, int k, int n, long ldb) {
    const int panels = (n + DK_NR - 1) / DK_NR;
    for (int p = 0; p < panels; p++) {
        float *d = dst + (size_t)p * k * DK_NR;
        const int cols = n - p * DK_NR < DK_NR ? n - p * DK_NR : DK_NR;
        for (int kk = 0; kk < k; kk++) {
            const float *src = b + (long)kk * ldb + p * DK_NR;
            float *row = d + (size_t)kk * DK_NR;
            int j = 0;
            for (; j < cols; j++) row[j] = src[j];
            for (; j < DK_NR; j++) row[j] = 0.0f;
        }
    }
}

void dk_gemm(int m, int n, int k, const float *a, long lda, const float *b, long ldb, long panel_stride, float *c,
             long ldc, const dk_epilogue *e) {
    if (m <= 0 || n <= 0) return;
    const dk_ops *ops = dk_current_ops();
    if (k < 0) k = 0;
    const int kblocks = k > 0 ? (k + DK_KC - 1) / DK_KC : 1;
    const int kc = (k + kblocks - 1) / kblocks;
    const int panels = (n + DK_NR - 1) / DK_NR;
    const int mr_max = ops->rows;
    for (int i0 = 0; i0 < m; i0 += DK_MC) {
        const int mc = m - i0 < DK_MC ? m - i0 : DK_MC;
        for (int kb = 0; kb < kblocks; kb++) {
            const int p0 = kb * kc, kcur = k - p0 < kc ? k - p0 : kc;
            const int flags = (kb > 0 ? DK_TILE_LOAD_C : 0) | (kb == kblocks - 1 ? DK_TILE_FINAL : 0);
            for (int jp = 0; jp < panels; jp++) {
                const int nr = n - jp * DK_NR < DK_NR ? n - jp * DK_NR : DK_NR;
                const float *panel = b + jp * panel_stride + (long)p0 * ldb;
                for (int ir = 0; ir < mc; ir += mr_max) {
                    const int mr = mc - ir < mr_max ? mc - ir : mr_max;
                    const long row = i0 + ir;
                    ops->tile(mr, nr, kcur, a + row * lda + p0, lda, panel, ldb, c + row * ldc + (long)jp * DK_NR, ldc,
                              flags, e, row, (long)jp * DK_NR);
                }
            }
        }
        if (e && e->kind == DK_EPI_RESIDUAL && e->ln_out) {
            ops->layernorm(mc, n, e->residual + i0 * e->ldr, e->ldr, e->ln_out + i0 * e->ld_ln, e->ld_ln, e->ln_weight,
                           e->ln_bias, e->ln_eps, 0, 0);
        }
    }
}

void dk_gemm_packed(int m, int n, int k, const float *a, long lda, const float *bp, float *c, long ldc,
                    const dk_epilogue *e) {
    dk_gemm(m, n, k, a, lda, bp, DK_NR, (long)k * DK_NR, c, ldc, e);
}

int dk_tile_rows(void) { return dk_current_ops()->rows; }
