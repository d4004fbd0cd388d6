// The SIMD kernels, written once over a small vector vocabulary and compiled twice: avx512.c and
// avx2.c define VL (lanes), vf (vector type), ATTR (the function target), FN (name prefix) and
// the V_* operations, then include this file. Tails shorter than a vector use masked loads and
// stores (V_LOADN / V_STOREN) or scalar loops.

#define DK_HALF (2 * VL) // columns one tile pass covers: the whole panel with AVX-512, half with AVX2

// ---- exp, GELU, SiLU -------------------------------------------------------------------------

// exp(x) to about 1 ulp: x = n·ln2 + r, |r| ≤ ln2/2, with ln2 split in two for an exact
// reduction, and a degree-6 polynomial for exp(r) (the Cephes expf coefficients). Below the
// smallest normal the result is 0, above the largest float it is +inf.
static inline __attribute__((always_inline)) ATTR vf FN(exp)(vf x) {
    const vf lo = V_SET1(-87.33654f), hi = V_SET1(88.3762626647949f);
    vf xc = V_MIN(V_MAX(x, lo), hi);
    vf n = V_ROUND(V_MUL(xc, V_SET1(1.44269504088896341f)));
    vf r = V_FMA(n, V_SET1(-0.693359375f), xc);
    r = V_FMA(n, V_SET1(2.12194440e-4f), r);
    vf p = V_SET1(1.9875691500e-4f);
    p = V_FMA(p, r, V_SET1(1.3981999507e-3f));
    p = V_FMA(p, r, V_SET1(8.3334519073e-3f));
    p = V_FMA(p, r, V_SET1(4.1665795894e-2f));
    p = V_FMA(p, r, V_SET1(1.6666665459e-1f));
    p = V_FMA(p, r, V_SET1(5.0000001201e-1f));
    p = V_FMA(p, V_MUL(r, r), V_ADD(r, V_SET1(1.0f)));
    return V_ZERO_IF_LT(V_POW2(p, n), x, lo);
}

// Exact GELU in PyTorch's order, (x · 0.5) · (1 + erf(x · √½)). erf(u) = sign(u) · (1 − erfc(|u|))
// with erfc(z) = t · exp(−z² + P(t)), t = 1 / (1 + z/2): the Chebyshev fit of Numerical Recipes'
// erfcc, relative error below 1.2e-7 for every z ≥ 0, so 1 + erf is as good as PyTorch's own
// (which also rounds erf before adding 1).
static inline __attribute__((always_inline)) ATTR vf FN(erf_v)(vf u) {
    vf z = V_ABS(u);
    vf t = V_RECIP(V_FMA(z, V_SET1(0.5f), V_SET1(1.0f)));
    vf p = V_SET1(0.17087277f);
    p = V_FMA(p, t, V_SET1(-0.82215223f));
    p = V_FMA(p, t, V_SET1(1.48851587f));
    p = V_FMA(p, t, V_SET1(-1.13520398f));
    p = V_FMA(p, t, V_SET1(0.27886807f));
    p = V_FMA(p, t, V_SET1(-0.18628806f));
    p = V_FMA(p, t, V_SET1(0.09678418f));
    p = V_FMA(p, t, V_SET1(0.37409196f));
    p = V_FMA(p, t, V_SET1(1.00002368f));
    p = V_FMA(p, t, V_SET1(-1.26551223f));
    vf erfc = V_MUL(t, FN(exp)(V_SUB(p, V_MUL(z, z))));
    return V_COPYSIGN(V_SUB(V_SET1(1.0f), erfc), u);
}

static inline __attribute__((always_inline)) ATTR vf FN(gelu_v)(vf x) {
    vf erf = FN(erf_v)(V_MUL(x, V_SET1(0.70710678118654752f)));
    return V_MUL(V_MUL(x, V_SET1(0.5f)), V_ADD(V_SET1(1.0f), erf));
}

// GELU's derivative times the incoming gradient, as PyTorch's gelu_backward writes it:
// dy · (Φ(x) + x · φ(x)), Φ(x) = 0.5 · (1 + erf(x/√2)), φ(x) = exp(−x²/2) / √(2π).
static inline __attribute__((always_inline)) ATTR vf FN(gelu_grad_v)(vf dy, vf x) {
    vf cdf = V_MUL(V_SET1(0.5f), V_ADD(V_SET1(1.0f), FN(erf_v)(V_MUL(x, V_SET1(0.70710678118654752f)))));
    vf pdf = V_MUL(FN(exp)(V_MUL(V_MUL(V_SET1(-0.5f), x), x)), V_SET1(0.39894228040143268f));
    return V_MUL(dy, V_FMA(x, pdf, cdf));
}

static inline __attribute__((always_inline)) ATTR vf FN(silu_v)(vf x) {
    return V_DIV(x, V_ADD(V_SET1(1.0f), FN(exp)(V_SUB(V_SET1(0.0f), x))));
}

static ATTR void FN(gelu)(float *y, const float *x, long n) {
    long i = 0;
    for (; i + VL <= n; i += VL) V_STORE(y + i, FN(gelu_v)(V_LOAD(x + i)));
    if (i < n) V_STOREN(y + i, FN(gelu_v)(V_LOADN(x + i, (int)(n - i))), (int)(n - i));
}

static ATTR void FN(gelu_backward)(float *dx, const float *dy, const float *x, long n) {
    long i = 0;
    for (; i + VL <= n; i += VL) V_STORE(dx + i, FN(gelu_grad_v)(V_LOAD(dy + i), V_LOAD(x + i)));
    if (i < n) {
        const int r = (int)(n - i);
        V_STOREN(dx + i, FN(gelu_grad_v)(V_LOADN(dy + i, r), V_LOADN(x + i, r)), r);
    }
}

static ATTR void FN(silu)(float *y, const float *x, long n) {
    long i = 0;
    for (; i + VL <= n; i += VL) V_STORE(y + i, FN(silu_v)(V_LOAD(x + i)));
    if (i < n) V_STOREN(y + i, FN(silu_v)(V_LOADN(x + i, (int)(n - i))), (int)(n - i));
}

static ATTR void FN(swiglu)(float *y, const float *u, int rows, int hidden) {
    for (int r = 0; r < rows; r++) {
        const float *u1 = u + (long)r * 2 * hidden, *u2 = u1 + hidden;
        float *yr = y + (long)r * hidden;
        int i = 0;
        for (; i + VL <= hidden; i += VL) V_STORE(yr + i, V_MUL(FN(silu_v)(V_LOAD(u1 + i)), V_LOAD(u2 + i)));
        if (i < hidden) {
            int n = hidden - i;
            V_STOREN(yr + i, V_MUL(FN(silu_v)(V_LOADN(u1 + i, n)), V_LOADN(u2 + i, n)), n);
        }
    }
}

// ---- LayerNorm, softmax, residual -------------------------------------------------------------

// Mean as x0 + Σ(x − x0)/n and variance as Σ(x − mean)²/n: the shift keeps float partial sums
// small even for rows with a large common offset, and the final sums are taken in double, so
// mean and variance come out as the correctly rounded row statistics to within an ulp.
static ATTR void FN(layernorm)(int rows, int cols, const float *x, long ldx, float *y, long ldy, const float *w,
                               const float *b, float eps, float *mean, float *rstd) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * ldx;
        float *yr = y + (long)r * ldy;
        float x0 = xr[0];
        vf vx0 = V_SET1(x0), s = V_SET1(0.0f);
        int i = 0;
        for (; i + VL <= cols; i += VL) s = V_ADD(s, V_SUB(V_LOAD(xr + i), vx0));
        double sum = V_HSUM(s);
        for (int j = i; j < cols; j++) sum += (double)(xr[j] - x0);
        double m = (double)x0 + sum / cols;
        float mf = (float)m;
        vf vm = V_SET1(mf), q = V_SET1(0.0f);
        for (i = 0; i + VL <= cols; i += VL) {
            vf d = V_SUB(V_LOAD(xr + i), vm);
            q = V_FMA(d, d, q);
        }
        double sq = V_HSUM(q);
        for (int j = i; j < cols; j++) {
            double d = (double)xr[j] - mf;
            sq += d * d;
        }
        double var = sq / cols;
        float sf = (float)(1.0 / __builtin_sqrt(var + (double)eps));
        vf vs = V_SET1(sf);
        for (i = 0; i + VL <= cols; i += VL) {
            vf t = V_MUL(V_SUB(V_LOAD(xr + i), vm), vs);
            V_STORE(yr + i, V_FMA(t, V_LOAD(w + i), V_LOAD(b + i)));
        }
        if (i < cols) {
            int n = cols - i;
            vf t = V_MUL(V_SUB(V_LOADN(xr + i, n), vm), vs);
            V_STOREN(yr + i, V_FMA(t, V_LOADN(w + i, n), V_LOADN(b + i, n)), n);
        }
        if (mean) mean[r] = mf;
        if (rstd) rstd[r] = sf;
    }
}

static ATTR void FN(softmax_exp)(float *x, int rows, int cols, long ld, float *inv) {
    const int tail = cols % VL, full = cols - tail;
    for (int r = 0; r < rows; r++) {
        float *xr = x + (long)r * ld;
        vf vmax = V_SET1(-__builtin_inff());
        for (int i = 0; i < full; i += VL) vmax = V_MAX(vmax, V_LOAD(xr + i));
        if (tail) vmax = V_MAX(vmax, V_LOADN_FILL(xr + full, tail, -__builtin_inff()));
        vf vm = V_SET1(V_HMAX(vmax)), s = V_SET1(0.0f);
        for (int i = 0; i < full; i += VL) {
            vf e = FN(exp)(V_SUB(V_LOAD(xr + i), vm));
            V_STORE(xr + i, e);
            s = V_ADD(s, e);
        }
        if (tail) {
            vf e = V_ZERO_PAST(FN(exp)(V_SUB(V_LOADN(xr + full, tail), vm)), tail);
            V_STOREN(xr + full, e, tail);
            s = V_ADD(s, e);
        }
        inv[r] = 1.0f / V_HSUM(s);
    }
}

#ifdef DK_PACKED_ROWS
// softmax_exp down each column: max over the rows, exp(x − max) in place, 1 / sum into inv. A
// vector holds VL columns, so nothing is reduced across lanes.
static ATTR void FN(softmax_exp_columns)(float *x, int rows, int cols, long ld, float *inv) {
    for (int c0 = 0; c0 < cols; c0 += VL) {
        const int w = cols - c0 < VL ? cols - c0 : VL;
        vf vmax = V_SET1(-__builtin_inff());
        for (int r = 0; r < rows; r++) vmax = V_MAX(vmax, V_LOADN_FILL(x + (long)r * ld + c0, w, -__builtin_inff()));
        vf s = V_SET1(0.0f);
        for (int r = 0; r < rows; r++) {
            float *xr = x + (long)r * ld + c0;
            vf e = FN(exp)(V_SUB(V_LOADN(xr, w), vmax));
            V_STOREN(xr, e, w);
            s = V_ADD(s, e);
        }
        V_STOREN(inv + c0, V_DIV(V_SET1(1.0f), s), w);
    }
}
#endif

static ATTR void FN(softmax)(float *x, int rows, int cols, long ld) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (long)r * ld, inv;
        FN(softmax_exp)(xr, 1, cols, ld, &inv);
        vf vi = V_SET1(inv);
        int i = 0;
        for (; i + VL <= cols; i += VL) V_STORE(xr + i, V_MUL(V_LOAD(xr + i), vi));
        if (i < cols) V_STOREN(xr + i, V_MUL(V_LOADN(xr + i, cols - i), vi), cols - i);
    }
}

// x + gamma · branch, rounding the product first as PyTorch's `x + ls(branch)` does.
static ATTR void FN(residual)(float *x, const float *branch, const float *gamma, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (long)r * cols;
        const float *br = branch + (long)r * cols;
        int i = 0;
        for (; i + VL <= cols; i += VL) {
            vf g = gamma ? V_LOAD(gamma + i) : V_SET1(1.0f);
            V_STORE(xr + i, V_ADD(V_LOAD(xr + i), V_MUL(g, V_LOAD(br + i))));
        }
        if (i < cols) {
            int n = cols - i;
            vf g = gamma ? V_LOADN(gamma + i, n) : V_SET1(1.0f);
            V_STOREN(xr + i, V_ADD(V_LOADN(xr + i, n), V_MUL(g, V_LOADN(br + i, n))), n);
        }
    }
}

// ---- the GEMM micro-kernel ---------------------------------------------------------------------

// An MR × DK_HALF block of C: 2·MR accumulators, two vectors of B and one broadcast of A per k
// step. MR is a constant at every call site, so the loops unroll into registers. Two forms share
// the start (bias or partial sums) and the finish (alpha, row scale, epilogue): `tile_part` reads
// A in place, row stride lda; `tile_part_packed` reads A packed by `dk_pack_a` (the tile's rows
// interleaved, MR floats per k step), which lets a tile have up to DK_PACKED_ROWS rows: a single
// address stream for A instead of one per row.

static inline __attribute__((always_inline)) ATTR void
FN(tile_start)(const int MR, vf *acc0, vf *acc1, int n0, int n1, const float *c, long ldc, int flags,
               const dk_epilogue *e, long col0) {
    const float *bias = e ? e->bias : 0;
    const int scaled = e && (e->alpha != 1.0f || e->row_scale); // then the bias is added after scaling
    if (flags & DK_TILE_LOAD_C) {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            acc0[i] = V_LOADN(c + i * ldc, n0);
            acc1[i] = V_LOADN(c + i * ldc + VL, n1);
        }
    } else if (bias && !scaled) {
        vf b0 = V_LOADN(bias + col0, n0), b1 = V_LOADN(bias + col0 + VL, n1);
#pragma unroll
        for (int i = 0; i < MR; i++) {
            acc0[i] = b0;
            acc1[i] = b1;
        }
    } else {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            acc0[i] = V_SET1(0.0f);
            acc1[i] = V_SET1(0.0f);
        }
    }
}

static inline __attribute__((always_inline)) ATTR void
FN(tile_finish)(const int MR, vf *acc0, vf *acc1, int cols, float *c, long ldc, int flags, const dk_epilogue *e,
                long row0, long col0) {
    const int n0 = cols < VL ? cols : VL, n1 = cols - n0;
    if (!(flags & DK_TILE_FINAL)) {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            V_STOREN(c + i * ldc, acc0[i], n0);
            V_STOREN(c + i * ldc + VL, acc1[i], n1);
        }
        return;
    }
    const float alpha = e ? e->alpha : 1.0f;
    const float *bias = e ? e->bias : 0;
    const float *row_scale = e ? e->row_scale : 0;
    if (alpha != 1.0f || row_scale) {
        vf b0 = bias ? V_LOADN(bias + col0, n0) : V_SET1(0.0f);
        vf b1 = bias ? V_LOADN(bias + col0 + VL, n1) : V_SET1(0.0f);
#pragma unroll
        for (int i = 0; i < MR; i++) {
            vf va = V_SET1(row_scale ? alpha * row_scale[row0 + i] : alpha);
            acc0[i] = V_ADD(V_MUL(acc0[i], va), b0);
            acc1[i] = V_ADD(V_MUL(acc1[i], va), b1);
        }
    }
    const int kind = e ? e->kind : DK_EPI_STORE;
    if (kind == DK_EPI_RESIDUAL) {
        vf g0 = e->gamma ? V_LOADN(e->gamma + col0, n0) : V_SET1(1.0f);
        vf g1 = e->gamma ? V_LOADN(e->gamma + col0 + VL, n1) : V_SET1(1.0f);
#pragma unroll
        for (int i = 0; i < MR; i++) {
            float *r = e->residual + (row0 + i) * e->ldr + col0;
            V_STOREN(r, V_ADD(V_LOADN(r, n0), V_MUL(g0, acc0[i])), n0);
            V_STOREN(r + VL, V_ADD(V_LOADN(r + VL, n1), V_MUL(g1, acc1[i])), n1);
        }
        return;
    }
    if (kind == DK_EPI_GELU) {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            acc0[i] = FN(gelu_v)(acc0[i]);
            acc1[i] = FN(gelu_v)(acc1[i]);
        }
    }
    if (cols == DK_HALF) {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            V_STORE(c + i * ldc, acc0[i]);
            V_STORE(c + i * ldc + VL, acc1[i]);
        }
    } else {
#pragma unroll
        for (int i = 0; i < MR; i++) {
            V_STOREN(c + i * ldc, acc0[i], n0);
            V_STOREN(c + i * ldc + VL, acc1[i], n1);
        }
    }
}

static inline __attribute__((always_inline)) ATTR void
FN(tile_part)(const int MR_, int cols, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
              int flags, const dk_epilogue *e, long row0, long col0) {
    // Row counts above DK_TILE_ROWS are never called; clamping keeps their copies small.
    const int MR = MR_ > DK_TILE_ROWS ? DK_TILE_ROWS : MR_;
    vf acc0[DK_TILE_ROWS], acc1[DK_TILE_ROWS];
    const int n0 = cols < VL ? cols : VL, n1 = cols - n0;
    FN(tile_start)(MR, acc0, acc1, n0, n1, c, ldc, flags, e, col0);
    // Rows of A are addressed as base[i / 3] + (i % 3) · lda — one base register per three rows,
    // the row stride as a scaled index — so that 12 rows need 4 pointer registers, not 12.
    const char *base[(DK_TILE_ROWS + 2) / 3];
    const long stride = lda * (long)sizeof(float);
#pragma unroll
    for (int j = 0; j < (MR + 2) / 3; j++) base[j] = (const char *)(a + 3 * j * lda);
#pragma unroll 4
    for (int p = 0; p < kc; p++) {
        vf b0 = V_LOAD(b), b1 = V_LOAD(b + VL);
        b += ldb;
#pragma unroll
        for (int i = 0; i < MR; i++) {
            vf ai = V_SET1(*(const float *)(base[i / 3] + (i % 3) * stride));
            acc0[i] = V_FMA(ai, b0, acc0[i]);
            acc1[i] = V_FMA(ai, b1, acc1[i]);
        }
#pragma unroll
        for (int j = 0; j < (MR + 2) / 3; j++) base[j] += sizeof(float);
    }
    FN(tile_finish)(MR, acc0, acc1, cols, c, ldc, flags, e, row0, col0);
}

#ifdef DK_PACKED_ROWS
// One k step of the packed tile: two vectors of B against MR broadcasts of A.
static inline __attribute__((always_inline)) ATTR void FN(packed_step)(const int MR, vf *acc0, vf *acc1,
                                                                       const float *a, const float *b) {
    vf b0 = V_LOAD(b), b1 = V_LOAD(b + VL);
#pragma unroll
    for (int i = 0; i < MR; i++) {
        vf ai = V_SET1(a[i]);
        acc0[i] = V_FMA(ai, b0, acc0[i]);
        acc1[i] = V_FMA(ai, b1, acc1[i]);
    }
}

static inline __attribute__((always_inline)) ATTR void
FN(tile_part_packed)(const int MR_, int cols, int kc, const float *a, long lda, const float *b, long ldb, float *c,
                     long ldc, int flags, const dk_epilogue *e, long row0, long col0, const char *pf,
                     const char *pf_end) {
    const int MR = MR_ > DK_PACKED_ROWS ? DK_PACKED_ROWS : MR_;
    vf acc0[DK_PACKED_ROWS], acc1[DK_PACKED_ROWS];
    const int n0 = cols < VL ? cols : VL, n1 = cols - n0;
    FN(tile_start)(MR, acc0, acc1, n0, n1, c, ldc, flags, e, col0);
    // One line of the caller's prefetch range per 4 k steps: spread out, the requests never fill
    // the core's miss buffers (a burst of them stalls the loop).
    int p = 0;
    for (; p + 4 <= kc; p += 4) {
        if (pf < pf_end) {
            __builtin_prefetch(pf, 0, 2);
            pf += 64;
        }
#pragma unroll
        for (int u = 0; u < 4; u++, a += lda, b += ldb) FN(packed_step)(MR, acc0, acc1, a, b);
    }
    for (; p < kc; p++, a += lda, b += ldb) FN(packed_step)(MR, acc0, acc1, a, b);
    FN(tile_finish)(MR, acc0, acc1, cols, c, ldc, flags, e, row0, col0);
}

// `tile` for A packed as `dk_pack_a` lays out a tile of mr ≤ DK_PACKED_ROWS (at most 12) rows;
// the lines of [pf, pf_end) are prefetched into L2 along the way. Only paths whose vectors cover a
// whole panel in one pass (AVX-512) have it.
_Static_assert(DK_HALF == DK_NR, "the packed tile covers a panel in one pass");
static ATTR void FN(tile_packed)(int mr, int nr, int kc, const float *a, long lda, const float *b, long ldb, float *c,
                                 long ldc, int flags, const dk_epilogue *e, long row0, long col0, const char *pf,
                                 const char *pf_end) {
    switch (mr > DK_PACKED_ROWS ? DK_PACKED_ROWS : mr) {
#define DK_PACKED_CASE(R)                                                                                         \
    case R: FN(tile_part_packed)(R, nr, kc, a, lda, b, ldb, c, ldc, flags, e, row0, col0, pf, pf_end); break;
        DK_PACKED_CASE(12) DK_PACKED_CASE(11) DK_PACKED_CASE(10) DK_PACKED_CASE(9) DK_PACKED_CASE(8) DK_PACKED_CASE(7)
        DK_PACKED_CASE(6) DK_PACKED_CASE(5) DK_PACKED_CASE(4) DK_PACKED_CASE(3) DK_PACKED_CASE(2)
#undef DK_PACKED_CASE
    default: FN(tile_part_packed)(1, nr, kc, a, lda, b, ldb, c, ldc, flags, e, row0, col0, pf, pf_end); break;
    }
}
#endif

static ATTR void FN(tile)(int mr, int nr, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                          int flags, const dk_epilogue *e, long row0, long col0) {
    for (int h = 0; h * DK_HALF < nr; h++) {
        int cols = nr - h * DK_HALF;
        if (cols > DK_HALF) cols = DK_HALF;
        const float *bh = b + h * DK_HALF;
        float *ch = c + h * DK_HALF;
        long colh = col0 + h * DK_HALF;
        // Specialised for every row count up to DK_TILE_ROWS (the larger cases are never taken).
        switch (mr > DK_TILE_ROWS ? DK_TILE_ROWS : mr) {
        case 14: FN(tile_part)(14, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 13: FN(tile_part)(13, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 12: FN(tile_part)(12, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 11: FN(tile_part)(11, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 10: FN(tile_part)(10, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 9: FN(tile_part)(9, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 8: FN(tile_part)(8, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 7: FN(tile_part)(7, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 6: FN(tile_part)(6, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 5: FN(tile_part)(5, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 4: FN(tile_part)(4, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 3: FN(tile_part)(3, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        case 2: FN(tile_part)(2, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        default: FN(tile_part)(1, cols, kc, a, lda, bh, ldb, ch, ldc, flags, e, row0, colh); break;
        }
    }
}

// ---- the bf16 GEMM tile without AVX512_BF16 ---------------------------------------------------
//
// B's words hold two bf16 values (k even in the low half, k odd in the high half): a float with
// the low half's bits is the word shifted left 16, a float with the high half's bits is the word
// with its low half cleared. So the bf16 values widen to float in registers, and each pair of k
// steps is two float FMAs with exact products: k even, then k odd, accumulated in float. A comes
// widened already (dk_pack_a_bf16_widened: two floats per row and pair), so each row's values are
// broadcast from memory, as in the float tile.
#ifdef DK_BF16_ROWS
static inline __attribute__((always_inline)) ATTR void
FN(bf16_part)(const int MR_, int cols, int kp, const uint32_t *a, int mr, const uint32_t *b, float *c, long ldc,
              int flags, const dk_epilogue *e, long row0, long col0) {
    const int MR = MR_ > DK_BF16_ROWS ? DK_BF16_ROWS : MR_;
    vf acc0[DK_BF16_ROWS], acc1[DK_BF16_ROWS];
    const int n0 = cols < VL ? cols : VL, n1 = cols - n0;
    FN(tile_start)(MR, acc0, acc1, n0, n1, c, ldc, flags, e, col0);
    const float *aw = (const float *)a;
    for (int q = 0; q < kp; q++, aw += 2 * mr, b += DK_NR) {
        vf w0 = V_LOAD((const float *)b), w1 = V_LOAD((const float *)b + VL);
        vf e0 = V_BF16_LO(w0), o0 = V_BF16_HI(w0), e1 = V_BF16_LO(w1), o1 = V_BF16_HI(w1);
#pragma unroll
        for (int i = 0; i < MR; i++) {
            vf lo = V_SET1(aw[2 * i]), hi = V_SET1(aw[2 * i + 1]);
            acc0[i] = V_FMA(hi, o0, V_FMA(lo, e0, acc0[i]));
            acc1[i] = V_FMA(hi, o1, V_FMA(lo, e1, acc1[i]));
        }
    }
    FN(tile_finish)(MR, acc0, acc1, cols, c, ldc, flags, e, row0, col0);
}

static ATTR void FN(tile_bf16)(int mr, int nr, int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                               int flags, const dk_epilogue *e, long row0, long col0, const char *pf,
                               const char *pf_end) {
    for (; pf < pf_end; pf += 64) __builtin_prefetch(pf, 0, 2);
    for (int h = 0; h * DK_HALF < nr; h++) {
        int cols = nr - h * DK_HALF;
        if (cols > DK_HALF) cols = DK_HALF;
        const uint32_t *bh = b + h * DK_HALF;
        float *ch = c + h * DK_HALF;
        const long colh = col0 + h * DK_HALF;
        switch (mr > DK_BF16_ROWS ? DK_BF16_ROWS : mr) {
#define DK_BF16_CASE(R) \
    case R: FN(bf16_part)(R, cols, kp, a, mr, bh, ch, ldc, flags, e, row0, colh); break;
            DK_BF16_CASE(12) DK_BF16_CASE(11) DK_BF16_CASE(10) DK_BF16_CASE(9) DK_BF16_CASE(8) DK_BF16_CASE(7)
            DK_BF16_CASE(6) DK_BF16_CASE(5) DK_BF16_CASE(4) DK_BF16_CASE(3) DK_BF16_CASE(2)
#undef DK_BF16_CASE
        default: FN(bf16_part)(1, cols, kp, a, mr, bh, ch, ldc, flags, e, row0, colh); break;
        }
    }
}
#endif
