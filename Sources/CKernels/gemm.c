// The GEMM driver around the micro-kernel (BLIS's loop order): rows in blocks of DK_MC, k in
// blocks of at most DK_KC, then one packed B panel at a time against every micro-tile of the row
// block. A kc × 32 panel (≤ 48 KB) stays in L1/L2 while the row tiles stream past it, and the row
// block's kc-slice of A stays in L2 while the panels go by. With AVX-512 that slice is first packed
// into 12-row micro-panels (`pack_a`), so a tile of 12 rows reads A as one stream; other paths read
// A in place. DK_KC = 384 keeps D = 384 products and the attention's
// P V (k = tokens = 257) in one k block, so C is written once; longer k (fc2: 1536) makes
// 384-deep blocks that accumulate in C.
#include "internal.h"

#define DK_KCP 384 // bf16 k block, in pairs

static void dk_gemm_bf16_run(const dk_bf16_ops *ops, int m, int n, int kp, const uint32_t *ap, int ap_rows,
                             int ap_row0, const uint32_t *b, float *c, long ldc, const dk_epilogue *e,
                             const uint32_t *after);
static int dk_kp_block(int kp);
static void dk_gemm_int8_run(const dk_int8_ops *ops, int m, int n, int kq, const uint32_t *ap, int ap_rows, int ap_row0,
                             const uint32_t *b, const dk_int8_scales *s, float *c, long ldc, const dk_epilogue *e,
                             const uint32_t *after);
static void dk_int8_pack_rows(const dk_int8_ops *ops, uint32_t *ap, float *sa, const float *a, long lda, int m, int k,
                              int r0, int rows, int scales_ready);
static int dk_int8_tensor_scales(float *sa, const float *a, long lda, int m, int k);
static size_t dk_int8_a_words(const dk_int8_ops *ops, int m, int kq);

size_t dk_packed_count(int n, int k) {
    if (n <= 0 || k <= 0) return 0;
    return (size_t)((n + DK_NR - 1) / DK_NR) * DK_NR * (size_t)k;
}

void dk_pack_transposed(float *dst, const float *w, int n, int k, long ldw) {
    const dk_ops *ops = dk_current_ops();
    if (ops->pack_transposed) {
        ops->pack_transposed(dst, w, n, k, ldw);
        return;
    }
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

// The next panel's lines are asked into L2 while the tiles of this one run: a panel is read once
// per row block, from L3 when the weights are larger than L2 (a ViT-S block's are 7 MB), and the
// first tile to touch an unfetched panel would otherwise wait on each of its lines. Tile `tile` of
// `tiles` gets its share [*begin, *end) of the panel's kc·DK_NR floats; the packed tile spreads
// them over its k steps, the in-place one takes them in a burst before it starts.
static inline void dk_prefetch_share(const float *next, int kc, int tile, int tiles, const char **begin,
                                     const char **end) {
    const long bytes = (long)kc * DK_NR * (long)sizeof(float), lines = bytes / 64;
    const long per = (lines + tiles - 1) / tiles;
    long l0 = tile * per, l1 = (tile + 1) * per;
    if (!next || l0 > lines) l0 = lines;
    if (!next || l1 > lines) l1 = lines;
    *begin = (const char *)next + 64 * l0;
    *end = (const char *)next + 64 * l1;
}

static int dk_k_block(int k) {
    const int kblocks = k > 0 ? (k + DK_KC - 1) / DK_KC : 1;
    return (k + kblocks - 1) / kblocks;
}

void dk_gemm_run(int m, int n, int k, const float *a, long lda, const dk_packed_a *pa, const float *b, long ldb,
                 long panel_stride, float *c, long ldc, const dk_epilogue *e, const float *after) {
    if (m <= 0 || n <= 0) return;
    const dk_ops *ops = dk_current_ops();
    if (k < 0) k = 0;
    const int kblocks = k > 0 ? (k + DK_KC - 1) / DK_KC : 1;
    const int kc = dk_k_block(k);
    const int panels = (n + DK_NR - 1) / DK_NR;
    // Without a packed A from the caller, A is packed here per row block and k block (one address
    // stream, taller tiles) when the path has the packed tile and panels are contiguous. The copy
    // costs about 1/n of the products: not worth it below 4 panels (the attention's P V, n = 64).
    float *ap = !pa && ops->tile_packed && ldb == DK_NR && k > 0 && panels >= 4
                    ? dk_scratch(DK_SCRATCH_PACKED_A, (size_t)DK_MC * kc)
                    : 0;
    const int packed = pa || ap;
    const int mr_max = packed ? ops->packed_rows : ops->rows;
    for (int i0 = 0; i0 < m; i0 += DK_MC) {
        const int mc = m - i0 < DK_MC ? m - i0 : DK_MC;
        const int tiles = (mc + mr_max - 1) / mr_max;
        for (int kb = 0; kb < kblocks; kb++) {
            const int p0 = kb * kc, kcur = k - p0 < kc ? k - p0 : kc;
            const int flags = (kb > 0 ? DK_TILE_LOAD_C : 0) | (kb == kblocks - 1 ? DK_TILE_FINAL : 0);
            const float *apk = ap;
            if (ap) ops->pack_a(ap, a + (long)i0 * lda + p0, lda, mc, kcur, mr_max);
            if (pa) apk = pa->base + (size_t)pa->rows * p0 + (size_t)(pa->row0 + i0) * kcur;
            for (int jp = 0; jp < panels; jp++) {
                const int nr = n - jp * DK_NR < DK_NR ? n - jp * DK_NR : DK_NR;
                const float *panel = b + jp * panel_stride + (long)p0 * ldb;
                // The next panel, or the next k block's first one, or the next task's.
                const float *next = jp + 1 < panels     ? panel + panel_stride
                                    : kb + 1 < kblocks ? b + (long)(p0 + kc) * ldb
                                    : i0 + DK_MC < m   ? b
                                                       : after;
                for (int ir = 0, t = 0; ir < mc; ir += mr_max, t++) {
                    const int mr = mc - ir < mr_max ? mc - ir : mr_max;
                    const long row = i0 + ir;
                    const char *pf, *pf_end;
                    dk_prefetch_share(ldb == DK_NR ? next : 0, kcur, t, tiles, &pf, &pf_end);
                    if (packed) {
                        ops->tile_packed(mr, nr, kcur, apk + (long)ir * kcur, mr, panel, ldb, c + row * ldc + (long)jp * DK_NR,
                                         ldc, flags, e, row, (long)jp * DK_NR, pf, pf_end);
                    } else {
                        for (; pf < pf_end; pf += 64) __builtin_prefetch(pf, 0, 2);
                        ops->tile(mr, nr, kcur, a + row * lda + p0, lda, panel, ldb, c + row * ldc + (long)jp * DK_NR,
                                  ldc, flags, e, row, (long)jp * DK_NR);
                    }
                }
            }
        }
        if (e && e->kind == DK_EPI_RESIDUAL && e->ln_out) {
            ops->layernorm(mc, n, e->residual + i0 * e->ldr, e->ldr, e->ln_out + i0 * e->ld_ln, e->ld_ln, e->ln_weight,
                           e->ln_bias, e->ln_eps, 0, 0);
        }
    }
}

void dk_gemm(int m, int n, int k, const float *a, long lda, const float *b, long ldb, long panel_stride, float *c,
             long ldc, const dk_epilogue *e) {
    dk_gemm_run(m, n, k, a, lda, 0, b, ldb, panel_stride, c, ldc, e, 0);
}

void dk_gemm_packed(int m, int n, int k, const float *a, long lda, const float *bp, float *c, long ldc,
                    const dk_epilogue *e) {
    dk_gemm(m, n, k, a, lda, bp, DK_NR, (long)k * DK_NR, c, ldc, e);
}

int dk_tile_rows(void) {
    const dk_ops *ops = dk_current_ops();
    return ops->tile_packed ? ops->packed_rows : ops->rows;
}

// ---- the same GEMM split over the pool by columns ------------------------------------------------
//
// For a few hundred rows (one image's tokens) a split by rows makes every thread stream every
// weight panel and fixes each thread's share in advance, so a thread that runs slower (a vCPU
// sharing its core for a while) holds the others at the end of the loop. Here the tasks are
// panel groups × row blocks: each thread owns a contiguous range of them and takes them in order
// (prefetching, during a task's last panel, the first panel of the next), then takes what is left
// of the others' ranges, so each weight panel is read by one thread (or by the two that share its
// row blocks) and a slow thread costs at most one small task. When the path packs A, the threads
// first pack all of it together (tasks of row tiles × k blocks), so no task repacks the rows
// another task already packed.

#define DK_PACK_ROWS 48   // rows per packing task (a multiple of every packed tile height)
#define DK_COL_ROWS 288   // most rows per task
#define DK_COL_WORKERS 64 // most threads a column-split GEMM uses

typedef struct {
    int m, n, k;
    const float *a, *bp;
    long lda, ldc;
    float *c;
    const dk_epilogue *e;
    int row_blocks, rows_per_block, group_panels, groups;
    float *ap;              // the packed A (NULL: read in place)
    int pack_tasks, kblocks, mr;
    long pack_next, packed; // packing tasks claimed, finished (atomic)
    // bf16 (b16 not NULL): B packed in pairs (bp16, kp pairs), A packed in pairs into ap16 (always).
    const dk_bf16_ops *b16;
    const uint32_t *bp16;
    uint32_t *ap16;
    int kp;
    // int8 (i8 not NULL): B quantized in quads (w8, kq quads), A quantized into ap8 with its row
    // scales in sa8; a packing task is a block of rows over all of k (the scales need whole rows).
    const dk_int8_ops *i8;
    const dk_int8_weights *w8;
    uint32_t *ap8;
    float *sa8;
    int kq, scales_ready;
    // GEMM tasks: worker w owns the range up to end[w] and claims it in order through next[w] (so
    // the panel it prefetches at the end of a task is the one its next task reads); a worker whose
    // range is done claims from the others' (atomic).
    int workers;
    long next[DK_COL_WORKERS], end[DK_COL_WORKERS];
} dk_cols_job;

static void dk_cols_pack(dk_cols_job *j, long t) {
    if (j->i8) {
        const int r0 = (int)t * DK_PACK_ROWS, rows = j->m - r0 < DK_PACK_ROWS ? j->m - r0 : DK_PACK_ROWS;
        dk_int8_pack_rows(j->i8, j->ap8, j->sa8, j->a, j->lda, j->m, j->k, r0, rows, j->scales_ready);
        return;
    }
    if (j->b16) {
        const int kb = (int)(t % j->kblocks), r0 = (int)(t / j->kblocks) * DK_PACK_ROWS;
        const int kc = dk_kp_block(j->kp), p0 = kb * kc, kcur = j->kp - p0 < kc ? j->kp - p0 : kc;
        const int rows = j->m - r0 < DK_PACK_ROWS ? j->m - r0 : DK_PACK_ROWS;
        j->b16->pack_a(j->ap16 + ((size_t)j->m * p0 + (size_t)r0 * kcur) * j->b16->a_words, j->a + (long)r0 * j->lda,
                       j->lda, rows, j->k, p0, kcur, j->mr);
        return;
    }
    const int kb = (int)(t % j->kblocks), r0 = (int)(t / j->kblocks) * DK_PACK_ROWS;
    const int kc = dk_k_block(j->k), p0 = kb * kc, kcur = j->k - p0 < kc ? j->k - p0 : kc;
    const int rows = j->m - r0 < DK_PACK_ROWS ? j->m - r0 : DK_PACK_ROWS;
    dk_current_ops()->pack_a(j->ap + (size_t)j->m * p0 + (size_t)r0 * kcur, j->a + (long)r0 * j->lda + p0, j->lda, rows,
                             kcur, j->mr);
}

static void dk_cols_run(dk_cols_job *j, long t) {
    const int g = (int)(t / j->row_blocks), rb = (int)(t % j->row_blocks);
    const int r0 = rb * j->rows_per_block, rows = j->m - r0 < j->rows_per_block ? j->m - r0 : j->rows_per_block;
    const int p0 = g * j->group_panels, col0 = p0 * DK_NR;
    const int ncols = j->n - col0 < j->group_panels * DK_NR ? j->n - col0 : j->group_panels * DK_NR;
    if (rows <= 0 || ncols <= 0) return;
    // The tile kernel locates bias, gamma and residual from the tile's row and column within the
    // call: shift them to this task's corner. The row LayerNorm needs whole rows: the caller runs it.
    dk_epilogue e = {.kind = DK_EPI_STORE, .alpha = 1.0f};
    if (j->e) {
        e = *j->e;
        if (e.bias) e.bias += col0;
        if (e.gamma) e.gamma += col0;
        if (e.row_scale) e.row_scale += r0;
        if (e.residual) e.residual += (long)r0 * e.ldr + col0;
        e.ln_out = 0;
    }
    const int panels = (j->n + DK_NR - 1) / DK_NR;
    if (j->i8) {
        const long pstride = (long)j->kq * DK_NR;
        const uint32_t *after8 = p0 + j->group_panels < panels ? j->w8->panels + (size_t)(p0 + j->group_panels) * pstride : 0;
        const dk_int8_scales s = {.row = j->sa8 + r0, .col = j->w8->scales + col0, .col_sum = j->w8->sums + col0};
        dk_gemm_int8_run(j->i8, rows, ncols, j->kq, j->ap8, j->m, r0, j->w8->panels + (size_t)p0 * pstride, &s,
                         j->c + (long)r0 * j->ldc + col0, j->ldc, &e, after8);
        return;
    }
    if (j->b16) {
        const long pstride = (long)j->kp * DK_NR;
        const uint32_t *after16 = p0 + j->group_panels < panels ? j->bp16 + (size_t)(p0 + j->group_panels) * pstride : 0;
        dk_gemm_bf16_run(j->b16, rows, ncols, j->kp, j->ap16, j->m, r0, j->bp16 + (size_t)p0 * pstride,
                         j->c + (long)r0 * j->ldc + col0, j->ldc, &e, after16);
        return;
    }
    const dk_packed_a pa = {.base = j->ap, .rows = j->m, .row0 = r0};
    const float *after = p0 + j->group_panels < panels ? j->bp + (size_t)(p0 + j->group_panels) * j->k * DK_NR : 0;
    dk_gemm_run(rows, ncols, j->k, j->a + (long)r0 * j->lda, j->lda, j->ap ? &pa : 0, j->bp + (size_t)p0 * j->k * DK_NR,
                DK_NR, (long)j->k * DK_NR, j->c + (long)r0 * j->ldc + col0, j->ldc, &e, after);
}

// The next GEMM task for `worker`: its own next one, else one from another worker's range.
static long dk_cols_claim(dk_cols_job *j, int worker) {
    for (int v = 0; v < j->workers; v++) {
        const int w = (worker + v) % j->workers;
        if (__atomic_load_n(&j->next[w], __ATOMIC_RELAXED) >= j->end[w]) continue;
        const long t = __atomic_fetch_add(&j->next[w], 1, __ATOMIC_RELAXED);
        if (t < j->end[w]) return t;
    }
    return -1;
}

static void dk_cols_task(void *ctx, int worker, int count) {
    (void)count;
    dk_cols_job *j = ctx;
    if (j->ap || j->ap16 || j->ap8) {
        for (;;) {
            const long t = __atomic_fetch_add(&j->pack_next, 1, __ATOMIC_RELAXED);
            if (t >= j->pack_tasks) break;
            dk_cols_pack(j, t);
            __atomic_add_fetch(&j->packed, 1, __ATOMIC_RELEASE);
        }
        // Every packing task is claimed; the last ones may still be running on other threads.
        while (__atomic_load_n(&j->packed, __ATOMIC_ACQUIRE) < j->pack_tasks) dk_pause();
    }
    for (long t; (t = dk_cols_claim(j, worker)) >= 0;) dk_cols_run(j, t);
}

static void dk_columns_run(int m, int n, int k, const float *a, long lda, const float *bp, const uint32_t *bp16,
                           const dk_int8_weights *w8, float *c, long ldc, const dk_epilogue *e, int threads) {
    if (m <= 0 || n <= 0) return;
    const dk_ops *ops = dk_current_ops();
    const dk_bf16_ops *b16 = bp16 ? dk_current_bf16_ops() : 0;
    const dk_int8_ops *i8 = w8 ? dk_current_int8_ops() : 0;
    const int panels = (n + DK_NR - 1) / DK_NR;
    const int mr = i8 ? i8->rows : b16 ? b16->rows : ops->tile_packed ? ops->packed_rows : ops->rows;
    // About 32 tasks per thread: panels first (each read once), then row blocks of at least 48
    // rows when there are few panels (proj and fc2: 12). Row blocks of at most DK_COL_ROWS rows,
    // so that a task's rows of A stay in L2 while its panels go by.
    const int want = 32 * (threads > 1 ? threads : 1);
    int row_blocks = panels >= want ? 1 : (want + panels - 1) / panels;
    const int max_blocks = m / 48 > 1 ? m / 48 : 1;
    if (row_blocks > max_blocks) row_blocks = max_blocks;
    if (row_blocks < (m + DK_COL_ROWS - 1) / DK_COL_ROWS) row_blocks = (m + DK_COL_ROWS - 1) / DK_COL_ROWS;
    int rows_per_block = (m + row_blocks - 1) / row_blocks;
    rows_per_block = (rows_per_block + mr - 1) / mr * mr;
    row_blocks = (m + rows_per_block - 1) / rows_per_block;
    int group_panels = (panels * row_blocks + want - 1) / want;
    if (group_panels < 1) group_panels = 1;
    dk_cols_job j = {.m = m, .n = n, .k = k, .a = a, .bp = bp, .lda = lda, .ldc = ldc, .c = c, .e = e,
                     .row_blocks = row_blocks, .rows_per_block = rows_per_block, .group_panels = group_panels,
                     .groups = (panels + group_panels - 1) / group_panels, .mr = mr};
    if (i8) {
        j.i8 = i8;
        j.w8 = w8;
        j.kq = k > 0 ? (k + 3) / 4 : 0;
        const size_t words = dk_int8_a_words(i8, m, j.kq);
        j.ap8 = (uint32_t *)dk_scratch(DK_SCRATCH_PACKED_A_SHARED, words + (size_t)m);
        j.sa8 = (float *)(j.ap8 + words);
        j.pack_tasks = (m + DK_PACK_ROWS - 1) / DK_PACK_ROWS;
        j.scales_ready = dk_int8_tensor_scales(j.sa8, a, lda, m, k);
    } else if (b16) {
        j.b16 = b16;
        j.bp16 = bp16;
        j.kp = k > 0 ? (k + 1) / 2 : 0;
        if (j.kp > 0) {
            j.ap16 = (uint32_t *)dk_scratch(DK_SCRATCH_PACKED_A_SHARED, (size_t)m * j.kp * j.b16->a_words + DK_BF16_A_PAD);
            j.kblocks = (j.kp + DK_KCP - 1) / DK_KCP;
            j.pack_tasks = (m + DK_PACK_ROWS - 1) / DK_PACK_ROWS * j.kblocks;
        }
    } else if (ops->tile_packed && k > 0) {
        j.ap = dk_scratch(DK_SCRATCH_PACKED_A_SHARED, (size_t)m * k);
        j.kblocks = (k + DK_KC - 1) / DK_KC;
        j.pack_tasks = (m + DK_PACK_ROWS - 1) / DK_PACK_ROWS * j.kblocks;
    }
    const long tasks = (long)j.groups * j.row_blocks;
    int workers = threads < tasks ? threads : (int)tasks;
    if (workers > DK_COL_WORKERS) workers = DK_COL_WORKERS;
    if (workers < 1) workers = 1;
    j.workers = workers;
    for (int w = 0; w < workers; w++) {
        j.next[w] = tasks * w / workers;
        j.end[w] = tasks * (w + 1) / workers;
    }
    if (workers > 1) dk_parallel(workers, dk_cols_task, &j);
    else dk_cols_task(&j, 0, 1);
}

// ---- bf16 ------------------------------------------------------------------------------------
//
// The same loops over bf16-packed B: A is rounded to bf16 as it is packed (pairs of k per word),
// k in blocks of at most DK_KCP pairs (a panel block of DK_KCP · DK_NR words is 48 KB, as the
// float path's), every tile from packed A.


void dk_f32_to_bf16(uint16_t *dst, const float *src, long n) {
    for (long i = 0; i < n; i++) dst[i] = dk_bf16_round(src[i]);
}

void dk_bf16_to_f32(float *dst, const uint16_t *src, long n) {
    for (long i = 0; i < n; i++) dst[i] = dk_bf16_lo(src[i]);
}

size_t dk_packed_bf16_count(int n, int k) {
    if (n <= 0 || k <= 0) return 0;
    return (size_t)((n + DK_NR - 1) / DK_NR) * DK_NR * (size_t)((k + 1) / 2);
}

void dk_pack_transposed_bf16(uint32_t *dst, const uint16_t *w, int n, int k, long ldw) {
    const int panels = (n + DK_NR - 1) / DK_NR, kp = (k + 1) / 2;
    for (int p = 0; p < panels; p++) {
        uint32_t *d = dst + (size_t)p * kp * DK_NR;
        const int rows = n - p * DK_NR < DK_NR ? n - p * DK_NR : DK_NR;
        for (int q = 0; q < kp; q++) {
            uint32_t *row = d + (size_t)q * DK_NR;
            int j = 0;
            for (; j < rows; j++) {
                const uint16_t *src = w + (long)(p * DK_NR + j) * ldw + 2 * q;
                row[j] = (uint32_t)dk_bf16_canonical(src[0]) | (2 * q + 1 < k ? (uint32_t)dk_bf16_canonical(src[1]) << 16 : 0u);
            }
            for (; j < DK_NR; j++) row[j] = 0;
        }
    }
}

void dk_pack_a_bf16_portable(uint32_t *dst, const float *a, long lda, int m, int k, int q0, int qc, int mr) {
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + (long)t0 * qc;
        for (int q = 0; q < qc; q++) {
            const int kk = 2 * (q0 + q);
            for (int i = 0; i < rows; i++) {
                const float *x = a + (long)(t0 + i) * lda + kk;
                d[(long)q * rows + i] = (uint32_t)dk_bf16_round(x[0]) | (kk + 1 < k ? (uint32_t)dk_bf16_round(x[1]) << 16 : 0u);
            }
        }
    }
}

static int dk_kp_block(int kp) {
    const int kblocks = kp > 0 ? (kp + DK_KCP - 1) / DK_KCP : 1;
    return (kp + kblocks - 1) / kblocks;
}

// The widened layout (a_words 2): per pair and row, the two bf16 values as floats.
void dk_pack_a_bf16_widened(uint32_t *dst, const float *a, long lda, int m, int k, int q0, int qc, int mr) {
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + 2L * t0 * qc;
        for (int i = 0; i < rows; i++) {
            const float *x = a + (long)(t0 + i) * lda;
            for (int q = 0; q < qc; q++) {
                const int kk = 2 * (q0 + q);
                uint32_t *w = d + 2L * ((long)q * rows + i);
                w[0] = (uint32_t)dk_bf16_round(x[kk]) << 16;
                w[1] = kk + 1 < k ? (uint32_t)dk_bf16_round(x[kk + 1]) << 16 : 0u;
            }
        }
    }
}


// Rows [row0, row0 + m) of A packed whole (k block kb of its `rows` rows at ap + rows·q0, as
// dk_gemm_run's dk_packed_a) against n columns of B (panel stride kp·DK_NR).
static void dk_gemm_bf16_run(const dk_bf16_ops *ops, int m, int n, int kp, const uint32_t *ap, int ap_rows,
                             int ap_row0, const uint32_t *b, float *c, long ldc, const dk_epilogue *e,
                             const uint32_t *after) {
    if (m <= 0 || n <= 0) return;
    const int kblocks = kp > 0 ? (kp + DK_KCP - 1) / DK_KCP : 1;
    const int kc = dk_kp_block(kp);
    const int panels = (n + DK_NR - 1) / DK_NR, mr_max = ops->rows;
    const long panel_stride = (long)kp * DK_NR;
    for (int i0 = 0; i0 < m; i0 += DK_MC) {
        const int mc = m - i0 < DK_MC ? m - i0 : DK_MC;
        const int tiles = (mc + mr_max - 1) / mr_max;
        for (int kb = 0; kb < kblocks; kb++) {
            const int p0 = kb * kc, kcur = kp - p0 < kc ? kp - p0 : kc;
            const int flags = (kb > 0 ? DK_TILE_LOAD_C : 0) | (kb == kblocks - 1 ? DK_TILE_FINAL : 0);
            const uint32_t *apk = ap + ((size_t)ap_rows * p0 + (size_t)(ap_row0 + i0) * kcur) * ops->a_words;
            for (int jp = 0; jp < panels; jp++) {
                const int nr = n - jp * DK_NR < DK_NR ? n - jp * DK_NR : DK_NR;
                const uint32_t *panel = b + jp * panel_stride + (long)p0 * DK_NR;
                const uint32_t *next = jp + 1 < panels     ? panel + panel_stride
                                       : kb + 1 < kblocks ? b + (long)(p0 + kc) * DK_NR
                                       : i0 + DK_MC < m   ? b
                                                          : after;
                for (int ir = 0, t = 0; ir < mc; ir += mr_max, t++) {
                    const int mr = mc - ir < mr_max ? mc - ir : mr_max;
                    const long row = i0 + ir;
                    const char *pf, *pf_end;
                    dk_prefetch_share((const float *)next, kcur, t, tiles, &pf, &pf_end);
                    ops->tile(mr, nr, kcur, apk + (long)ir * kcur * ops->a_words, panel, c + row * ldc + (long)jp * DK_NR, ldc, flags,
                              e, row, (long)jp * DK_NR, pf, pf_end);
                }
            }
        }
        if (e && e->kind == DK_EPI_RESIDUAL && e->ln_out) {
            dk_current_ops()->layernorm(mc, n, e->residual + i0 * e->ldr, e->ldr, e->ln_out + i0 * e->ld_ln, e->ld_ln,
                                        e->ln_weight, e->ln_bias, e->ln_eps, 0, 0);
        }
    }
}

void dk_gemm_bf16_packed(int m, int n, int k, const float *a, long lda, const uint32_t *bp, float *c, long ldc,
                         const dk_epilogue *e) {
    if (m <= 0 || n <= 0) return;
    const dk_bf16_ops *ops = dk_current_bf16_ops();
    const int kp = k > 0 ? (k + 1) / 2 : 0;
    uint32_t *ap = 0;
    if (kp > 0) {
        ap = (uint32_t *)dk_scratch(DK_SCRATCH_PACKED_A, (size_t)m * kp * ops->a_words + DK_BF16_A_PAD);
        const int kc = dk_kp_block(kp);
        for (int p0 = 0; p0 < kp; p0 += kc) {
            const int kcur = kp - p0 < kc ? kp - p0 : kc;
            ops->pack_a(ap + (size_t)m * p0 * ops->a_words, a, lda, m, k, p0, kcur, ops->rows);
        }
    }
    dk_gemm_bf16_run(ops, m, n, kp, ap, m, 0, bp, c, ldc, e, 0);
}

void dk_gemm_packed_columns(int m, int n, int k, const float *a, long lda, const float *bp, float *c, long ldc,
                            const dk_epilogue *e, int threads) {
    dk_columns_run(m, n, k, a, lda, bp, 0, 0, c, ldc, e, threads);
}

void dk_gemm_bf16_packed_columns(int m, int n, int k, const float *a, long lda, const uint32_t *bp, float *c,
                                 long ldc, const dk_epilogue *e, int threads) {
    dk_columns_run(m, n, k, a, lda, 0, bp, 0, c, ldc, e, threads);
}

// ---- int8 ------------------------------------------------------------------------------------
//
// The same loops over int8-packed B: A is quantized as it is packed (its rows' scales first, over
// the whole row), k in blocks of at most DK_KCQ quads (a panel block of DK_KCQ · DK_NR words is
// 48 KB, as the float path's); int32 partial sums wait in C between k blocks.

#define DK_KCQ 384

size_t dk_packed_int8_count(int n, int k) {
    if (n <= 0 || k <= 0) return 0;
    return (size_t)((n + DK_NR - 1) / DK_NR) * DK_NR * (size_t)((k + 3) / 4) + DK_INT8_B_PAD;
}

void dk_pack_transposed_int8(uint32_t *panels, float *scales, int32_t *sums, const float *w, int n, int k, long ldw) {
    const int np = (n + DK_NR - 1) / DK_NR, kq = (k + 3) / 4;
    for (int o = 0; o < np * DK_NR; o++) {
        scales[o] = o < n ? dk_int8_scale(dk_int8_abs_max(w + (long)o * ldw, k)) : 1.0f;
        sums[o] = 0;
    }
    for (int p = 0; p < np; p++) {
        uint32_t *d = panels + (size_t)p * kq * DK_NR;
        for (int j = 0; j < DK_NR; j++) {
            const int o = p * DK_NR + j;
            for (int g = 0; g < kq; g++) {
                uint32_t word = 0;
                for (int b = 0; o < n && b < 4 && 4 * g + b < k; b++) {
                    const int q = dk_int8_quantize(w[(long)o * ldw + 4 * g + b], scales[o]);
                    sums[o] += q;
                    word |= (uint32_t)(uint8_t)(int8_t)q << (8 * b);
                }
                d[(size_t)g * DK_NR + j] = word;
            }
        }
    }
    for (size_t i = 0; i < DK_INT8_B_PAD; i++) panels[(size_t)np * kq * DK_NR + i] = 0;
}

void dk_int8_quantize_rows(int8_t *q, float *scales, const float *x, long rows, long cols) {
    for (long r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        const float s = dk_int8_scale(dk_int8_abs_max(row, cols));
        scales[r] = s;
        for (long c = 0; c < cols; c++) q[r * cols + c] = (int8_t)dk_int8_quantize(row[c], s);
    }
}

void dk_int8_row_scales_portable(float *s, const float *a, long lda, int m, int k) {
    for (int i = 0; i < m; i++) s[i] = dk_int8_scale(dk_int8_abs_max(a + (long)i * lda, k));
}

void dk_int8_row_scales(float *s, const float *a, long lda, int m, int k) {
    const dk_int8_ops *ops = dk_current_int8_ops();
    (ops->row_scales ? ops->row_scales : dk_int8_row_scales_portable)(s, a, lda, m, k);
}

void dk_pack_a_int8_portable(uint32_t *dst, const float *a, long lda, const float *scale, int m, int k, int q0, int qc,
                             int mr, uint32_t flip) {
    for (int t0 = 0; t0 < m; t0 += mr) {
        const int rows = m - t0 < mr ? m - t0 : mr;
        uint32_t *d = dst + (long)t0 * qc;
        for (int q = 0; q < qc; q++)
            for (int i = 0; i < rows; i++)
                d[(long)q * rows + i] = dk_int8_quad(a + (long)(t0 + i) * lda, 4 * (q0 + q), k, scale[t0 + i], flip);
    }
}

static int dk_kq_block(int kq) {
    const int kblocks = kq > 0 ? (kq + DK_KCQ - 1) / DK_KCQ : 1;
    return (kq + kblocks - 1) / kblocks;
}

static inline int dk_round_up(int x, int to) { return (x + to - 1) / to * to; }

// Words of A packed whole for `ops`: every k block rounded up to the path's quad alignment, and the
// AMX tile's over-read.
static size_t dk_int8_a_words(const dk_int8_ops *ops, int m, int kq) {
    const int kblocks = kq > 0 ? (kq + DK_KCQ - 1) / DK_KCQ : 1, kc = dk_kq_block(kq);
    const int last = kq - (kblocks - 1) * kc;
    return (size_t)m * ((size_t)(kblocks - 1) * dk_round_up(kc, ops->quad_align) + dk_round_up(last, ops->quad_align)) +
           DK_INT8_A_PAD;
}

// Rows [r0, r0 + rows) (r0 a multiple of the tile height) of A: their scales into sa + r0, then every
// k block of them, quantized, into A packed whole (m rows; block kb at ap + m · kb · kc').
static int dk_int8_tensor_scale = 0;

int dk_set_int8_tensor_scale(int on) {
    __atomic_store_n(&dk_int8_tensor_scale, on != 0, __ATOMIC_RELEASE);
    return on != 0;
}

// With the per-tensor hook on: every row's scale is the whole A's (max |x| over all rows / 127).
static int dk_int8_tensor_scales(float *sa, const float *a, long lda, int m, int k) {
    if (!__atomic_load_n(&dk_int8_tensor_scale, __ATOMIC_ACQUIRE)) return 0;
    float amax = 0;
    for (int i = 0; i < m; i++) {
        const float r = dk_int8_abs_max(a + (long)i * lda, k);
        amax = r > amax || r != r ? r : amax;
    }
    for (int i = 0; i < m; i++) sa[i] = dk_int8_scale(amax);
    return 1;
}

static void dk_int8_pack_rows(const dk_int8_ops *ops, uint32_t *ap, float *sa, const float *a, long lda, int m, int k,
                              int r0, int rows, int scales_ready) {
    if (!scales_ready)
        (ops->row_scales ? ops->row_scales : dk_int8_row_scales_portable)(sa + r0, a + (long)r0 * lda, lda, rows, k);
    const int kq = k > 0 ? (k + 3) / 4 : 0, kc = dk_kq_block(kq), kca = dk_round_up(kc, ops->quad_align);
    for (int p0 = 0, kb = 0; p0 < kq; p0 += kc, kb++) {
        const int kcur = kq - p0 < kc ? kq - p0 : kc;
        ops->pack_a(ap + (size_t)m * kb * kca + (size_t)r0 * dk_round_up(kcur, ops->quad_align), a + (long)r0 * lda, lda,
                    sa + r0, rows, k, p0, kcur, ops->rows);
    }
}

// Rows [row0, row0 + m) of A packed whole (`ap_rows` rows, as dk_int8_pack_rows leaves it) against
// n columns of B (panel stride kq·DK_NR); s->row is indexed from this call's first row, s->col from
// its first column.
static void dk_gemm_int8_run(const dk_int8_ops *ops, int m, int n, int kq, const uint32_t *ap, int ap_rows, int ap_row0,
                             const uint32_t *b, const dk_int8_scales *s, float *c, long ldc, const dk_epilogue *e,
                             const uint32_t *after) {
    if (m <= 0 || n <= 0) return;
    const int kblocks = kq > 0 ? (kq + DK_KCQ - 1) / DK_KCQ : 1;
    const int kc = dk_kq_block(kq), kca = dk_round_up(kc, ops->quad_align);
    const int panels = (n + DK_NR - 1) / DK_NR, mr_max = ops->rows;
    const long panel_stride = (long)kq * DK_NR;
    for (int i0 = 0; i0 < m; i0 += DK_MC) {
        const int mc = m - i0 < DK_MC ? m - i0 : DK_MC;
        const int tiles = (mc + mr_max - 1) / mr_max;
        for (int kb = 0; kb < kblocks; kb++) {
            const int p0 = kb * kc, kcur = kq - p0 < kc ? kq - p0 : kc, kcura = dk_round_up(kcur, ops->quad_align);
            const int flags = (kb > 0 ? DK_TILE_LOAD_C : 0) | (kb == kblocks - 1 ? DK_TILE_FINAL : 0);
            const uint32_t *apk = ap + (size_t)ap_rows * kb * kca + (size_t)(ap_row0 + i0) * kcura;
            for (int jp = 0; jp < panels; jp++) {
                const int nr = n - jp * DK_NR < DK_NR ? n - jp * DK_NR : DK_NR;
                const uint32_t *panel = b + jp * panel_stride + (long)p0 * DK_NR;
                const uint32_t *next = jp + 1 < panels     ? panel + panel_stride
                                       : kb + 1 < kblocks ? b + (long)(p0 + kc) * DK_NR
                                       : i0 + DK_MC < m   ? b
                                                          : after;
                for (int ir = 0, t = 0; ir < mc; ir += mr_max, t++) {
                    const int mr = mc - ir < mr_max ? mc - ir : mr_max;
                    const long row = i0 + ir;
                    const char *pf, *pf_end;
                    dk_prefetch_share((const float *)next, kcur, t, tiles, &pf, &pf_end);
                    ops->tile(mr, nr, kcur, apk + (long)ir * kcura, panel, c + row * ldc + (long)jp * DK_NR, ldc, flags,
                              e, s, row, (long)jp * DK_NR, pf, pf_end);
                }
            }
        }
        if (e && e->kind == DK_EPI_RESIDUAL && e->ln_out) {
            dk_current_ops()->layernorm(mc, n, e->residual + i0 * e->ldr, e->ldr, e->ln_out + i0 * e->ld_ln, e->ld_ln,
                                        e->ln_weight, e->ln_bias, e->ln_eps, 0, 0);
        }
    }
}

// The int8 scales replace alpha and row_scale: a copy of `e` without them.
static dk_epilogue dk_int8_epilogue(const dk_epilogue *e) {
    dk_epilogue out = {.kind = DK_EPI_STORE, .alpha = 1.0f};
    if (e) out = *e;
    out.alpha = 1.0f;
    out.row_scale = 0;
    return out;
}

void dk_gemm_int8_packed(int m, int n, int k, const float *a, long lda, const dk_int8_weights *w, float *c, long ldc,
                         const dk_epilogue *e) {
    if (m <= 0 || n <= 0) return;
    const dk_int8_ops *ops = dk_current_int8_ops();
    const int kq = k > 0 ? (k + 3) / 4 : 0;
    const size_t words = dk_int8_a_words(ops, m, kq);
    uint32_t *ap = (uint32_t *)dk_scratch(DK_SCRATCH_PACKED_A, words + (size_t)m);
    float *sa = (float *)(ap + words);
    const int ready = dk_int8_tensor_scales(sa, a, lda, m, k);
    for (int r0 = 0; r0 < m; r0 += DK_PACK_ROWS)
        dk_int8_pack_rows(ops, ap, sa, a, lda, m, k, r0, m - r0 < DK_PACK_ROWS ? m - r0 : DK_PACK_ROWS, ready);
    const dk_epilogue e1 = dk_int8_epilogue(e);
    const dk_int8_scales s = {.row = sa, .col = w->scales, .col_sum = w->sums};
    dk_gemm_int8_run(ops, m, n, kq, ap, m, 0, w->panels, &s, c, ldc, &e1, 0);
}

void dk_gemm_int8_packed_columns(int m, int n, int k, const float *a, long lda, const dk_int8_weights *w, float *c,
                                 long ldc, const dk_epilogue *e, int threads) {
    const dk_epilogue e1 = dk_int8_epilogue(e);
    dk_columns_run(m, n, k, a, lda, 0, 0, w, c, ldc, &e1, threads);
}
