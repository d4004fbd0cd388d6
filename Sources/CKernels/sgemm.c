// The general GEMM (dk_sgemm): any transposition of A and B, optional accumulation into C, split
// over DinoKit's pool. Training needs all three products of a linear layer — X·Wᵀ forward,
// dX = dY·W and dW += dYᵀ·X — and attention's backward products; all run here on the same
// micro-kernel as inference, so no result depends on which kernel a BLAS library picks.
//
// Loop order (BLIS's): columns of B in blocks of at most DK_SG_NC, k in blocks of at most DK_KC;
// each (column block, k block) of op(B) is packed once into panels shared by every thread, then
// the row blocks of C (DK_MC rows, times a group of panels when there are few row blocks) are
// handed out from a counter, so a thread that loses its core to another process for a while
// costs the loop its share of work, not a whole static range. A is read in place unless it is
// transposed; then each task copies its rows × kc block into a per-thread buffer first (a copy
// is read by all the task's panels, so it costs about 1/ncols of the products).
#include <string.h>
#include "internal.h"

// Floats of one packed B block (k block × column block): 4 MB, shared by the threads in L3.
#define DK_SG_BLOCK (1L << 20)

typedef struct {
    int trans_a, trans_b, accumulate;
    int copy_a; // A rows are a multiple of 8 KB apart: copy the block (see dk_sgemm)
    int m, k;
    const float *a, *b;
    long lda, ldb;
    float *c;
    long ldc;
    float b_scale; // alpha, when it is folded into the packed B (accumulating)
    dk_epilogue e;
    const dk_ops *ops;
    // The current block.
    int jc, nc, pc, kc, flags;
    int panels, groups, group_panels, row_blocks;
    float *bp;
    int pack_tasks;
    long next; // task counter (atomic)
} dk_sg_job;

// Packs columns [col0, col0 + ncols) of op(B)'s rows [pc, pc + kc) as panels 0..: panel q, row kk
// holds op(B)[pc + kk][col0 + 32q + j], zero past the block's columns.
static void dk_sg_pack_b(const dk_sg_job *j, float *dst, int col0, int ncols) {
    const int panels = (ncols + DK_NR - 1) / DK_NR, kc = j->kc;
    const float s = j->b_scale;
    for (int q = 0; q < panels; q++) {
        float *d = dst + (size_t)q * kc * DK_NR;
        const int c0 = col0 + q * DK_NR;
        const int w = ncols - q * DK_NR < DK_NR ? ncols - q * DK_NR : DK_NR;
        if (!j->trans_b) {
            // op(B) = B, k × n row-major: each panel row is a contiguous run.
            for (int kk = 0; kk < kc; kk++) {
                const float *src = j->b + (long)(j->pc + kk) * j->ldb + c0;
                float *row = d + (size_t)kk * DK_NR;
                int x = 0;
                if (s == 1.0f) for (; x < w; x++) row[x] = src[x];
                else for (; x < w; x++) row[x] = s * src[x];
                for (; x < DK_NR; x++) row[x] = 0.0f;
            }
        } else {
            // op(B) = Bᵀ, B stored n × k: column c of op(B) is row c of B. Read 8 k-steps of each
            // of the panel's rows at a time, so every source cache line is used while loaded.
            int kk = 0;
            for (; kk + 8 <= kc; kk += 8) {
                float *row = d + (size_t)kk * DK_NR;
                for (int x = 0; x < w; x++) {
                    const float *src = j->b + (long)(c0 + x) * j->ldb + j->pc + kk;
                    for (int t = 0; t < 8; t++) row[t * DK_NR + x] = s * src[t];
                }
                for (int x = w; x < DK_NR; x++)
                    for (int t = 0; t < 8; t++) row[t * DK_NR + x] = 0.0f;
            }
            for (; kk < kc; kk++) {
                float *row = d + (size_t)kk * DK_NR;
                int x = 0;
                for (; x < w; x++) row[x] = s * j->b[(long)(c0 + x) * j->ldb + j->pc + kk];
                for (; x < DK_NR; x++) row[x] = 0.0f;
            }
        }
    }
}

// Copies op(A)'s rows [i0, i0 + mb) × k block into dst (row stride kc), for A stored transposed
// (k × m): dst[i][p] = A[pc + p][i0 + i].
static void dk_sg_pack_a(const dk_sg_job *j, float *dst, int i0, int mb) {
    const int kc = j->kc;
    int p = 0;
    // 8 rows of storage at a time: 8 contiguous reads per destination row of 8 floats.
    for (; p + 8 <= kc; p += 8) {
        const float *src = j->a + (long)(j->pc + p) * j->lda + i0;
        for (int i = 0; i < mb; i++) {
            float *o = dst + (size_t)i * kc + p;
            for (int t = 0; t < 8; t++) o[t] = src[(long)t * j->lda + i];
        }
    }
    for (; p < kc; p++) {
        const float *src = j->a + (long)(j->pc + p) * j->lda + i0;
        for (int i = 0; i < mb; i++) dst[(size_t)i * kc + p] = src[i];
    }
}

// Pack task t of j->pack_tasks: an even share of the block's panels.
static void dk_sg_pack_task(void *ctx, int t, int count) {
    (void)count;
    dk_sg_job *j = ctx;
    const int q0 = j->panels * t / j->pack_tasks, q1 = j->panels * (t + 1) / j->pack_tasks;
    if (q0 >= q1) return;
    const int col0 = q0 * DK_NR;
    int ncols = q1 * DK_NR > j->nc ? j->nc - col0 : (q1 - q0) * DK_NR;
    dk_sg_pack_b(j, j->bp + (size_t)q0 * j->kc * DK_NR, j->jc + col0, ncols);
}

// One task: row block `rb` × panel group `g` of the current block.
static void dk_sg_compute(dk_sg_job *j, int rb, int g) {
    const int i0 = rb * DK_MC, mb = j->m - i0 < DK_MC ? j->m - i0 : DK_MC;
    const int q0 = g * j->group_panels;
    const int q1 = q0 + j->group_panels < j->panels ? q0 + j->group_panels : j->panels;
    const float *a;
    long lda;
    if (j->trans_a || j->copy_a) {
        float *buf = dk_scratch(DK_SCRATCH_SGEMM_A, (size_t)DK_MC * j->kc);
        if (!buf) return;
        if (j->trans_a) dk_sg_pack_a(j, buf, i0, mb);
        else
            for (int i = 0; i < mb; i++)
                memcpy(buf + (size_t)i * j->kc, j->a + (long)(i0 + i) * j->lda + j->pc, (size_t)j->kc * sizeof(float));
        a = buf;
        lda = j->kc;
    } else {
        a = j->a + (long)i0 * j->lda + j->pc;
        lda = j->lda;
    }
    const int mr_max = j->ops->rows;
    for (int q = q0; q < q1; q++) {
        const int col = j->jc + q * DK_NR;
        const int nr = j->jc + j->nc - col < DK_NR ? j->jc + j->nc - col : DK_NR;
        const float *panel = j->bp + (size_t)q * j->kc * DK_NR;
        for (int ir = 0; ir < mb; ir += mr_max) {
            const int mr = mb - ir < mr_max ? mb - ir : mr_max;
            const long row = i0 + ir;
            j->ops->tile(mr, nr, j->kc, a + (long)ir * lda, lda, panel, DK_NR, j->c + row * j->ldc + col, j->ldc,
                         j->flags, &j->e, row, col);
        }
    }
}

static void dk_sg_compute_task(void *ctx, int worker, int count) {
    (void)worker;
    (void)count;
    dk_sg_job *j = ctx;
    const long tasks = (long)j->row_blocks * j->groups;
    for (;;) {
        const long t = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (t >= tasks) break;
        dk_sg_compute(j, (int)(t / j->groups), (int)(t % j->groups));
    }
}

void dk_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda, const float *b,
              long ldb, int accumulate, float *c, long ldc, const float *bias, int threads) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        if (accumulate) return;
        for (int i = 0; i < m; i++)
            for (int x = 0; x < n; x++) c[(long)i * ldc + x] = bias ? bias[x] : 0.0f;
        return;
    }
    dk_sg_job j = {0};
    j.trans_a = trans_a;
    j.trans_b = trans_b;
    j.accumulate = accumulate;
    j.m = m;
    j.k = k;
    j.a = a;
    j.b = b;
    j.lda = lda;
    j.ldb = ldb;
    j.c = c;
    j.ldc = ldc;
    j.ops = dk_current_ops();
    // Rows a multiple of 8 KB apart fall into a few cache sets (the DINO head's 2048- and
    // 65536-wide gradients): the row block would not stay in L2 between panels. A contiguous
    // copy costs about 1/ncols of the products.
    j.copy_a = !trans_a && lda % 2048 == 0 && n > 2 * DK_NR;
    // Accumulating, the kernel's final alpha would also scale the C it started from: fold alpha
    // into the packed B instead. The bias only starts a fresh C.
    j.b_scale = accumulate ? alpha : 1.0f;
    j.e.kind = DK_EPI_STORE;
    j.e.alpha = accumulate ? 1.0f : alpha;
    j.e.bias = accumulate ? 0 : bias;
    if (threads < 1) threads = 1;
    // Below ~64k multiply-adds a second thread costs more to wake than it saves.
    if ((double)m * n * k < 65536.0) threads = 1;

    const int kblocks = (k + DK_KC - 1) / DK_KC;
    const int kc_max = (k + kblocks - 1) / kblocks;
    long nc_max = DK_SG_BLOCK / kc_max / DK_NR * DK_NR;
    if (nc_max < DK_NR) nc_max = DK_NR;
    const int n_pad = (n + DK_NR - 1) / DK_NR * DK_NR;
    const int nc_block = n_pad < nc_max ? n_pad : (int)nc_max;
    float *bp = dk_scratch(DK_SCRATCH_SGEMM_B, (size_t)nc_block * kc_max);
    if (!bp) return;
    j.bp = bp;
    j.row_blocks = (m + DK_MC - 1) / DK_MC;

    for (int jc = 0; jc < n; jc += nc_block) {
        j.jc = jc;
        j.nc = n - jc < nc_block ? n - jc : nc_block;
        j.panels = (j.nc + DK_NR - 1) / DK_NR;
        // Few row blocks: split the panels too, so every thread has work (about 4 tasks each).
        int groups = 1;
        if (threads > 1 && j.row_blocks < 4 * threads) {
            groups = (4 * threads + j.row_blocks - 1) / j.row_blocks;
            if (groups > j.panels) groups = j.panels;
        }
        j.group_panels = (j.panels + groups - 1) / groups;
        j.groups = (j.panels + j.group_panels - 1) / j.group_panels;
        for (int kb = 0; kb < kblocks; kb++) {
            j.pc = kb * kc_max;
            j.kc = k - j.pc < kc_max ? k - j.pc : kc_max;
            j.flags = (kb > 0 || accumulate ? DK_TILE_LOAD_C : 0) | (kb == kblocks - 1 ? DK_TILE_FINAL : 0);
            j.pack_tasks = threads < j.panels ? threads : j.panels;
            if (j.pack_tasks > 1) dk_parallel(j.pack_tasks, dk_sg_pack_task, &j);
            else dk_sg_pack_b(&j, bp, jc, j.nc);
            j.next = 0;
            const long tasks = (long)j.row_blocks * j.groups;
            const int workers = threads < tasks ? threads : (int)tasks;
            if (workers > 1) dk_parallel(workers, dk_sg_compute_task, &j);
            else dk_sg_compute_task(&j, 0, 1);
        }
    }
}
