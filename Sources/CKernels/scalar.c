// Portable C versions of every kernel: the fallback for CPUs without AVX2 (and for other
// architectures), and the plain statement of what the SIMD versions compute. GELU and SiLU use
// the C library's erff/expf.
#include <math.h>
#include "internal.h"

static void scalar_tile(int mr, int nr, int kc, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                        int flags, const dk_epilogue *e, long row0, long col0) {
    float acc[DK_MR][DK_NR];
    const float alpha = e ? e->alpha : 1.0f;
    const float *bias = e ? e->bias : 0;
    const int scaled = alpha != 1.0f || (e && e->row_scale);
    for (int i = 0; i < mr; i++) {
        for (int j = 0; j < DK_NR; j++) {
            if (flags & DK_TILE_LOAD_C) acc[i][j] = j < nr ? c[i * ldc + j] : 0.0f;
            else acc[i][j] = (bias && !scaled && j < nr) ? bias[col0 + j] : 0.0f;
        }
    }
    for (int p = 0; p < kc; p++) {
        const float *bp = b + p * ldb;
        for (int i = 0; i < mr; i++) {
            float ai = a[i * lda + p];
            for (int j = 0; j < DK_NR; j++) acc[i][j] += ai * bp[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (!(flags & DK_TILE_FINAL)) {
            for (int j = 0; j < nr; j++) ci[j] = acc[i][j];
            continue;
        }
        for (int j = 0; j < nr; j++) {
            float y = acc[i][j];
            if (scaled) {
                float scale = e->row_scale ? alpha * e->row_scale[row0 + i] : alpha;
                y = y * scale + (bias ? bias[col0 + j] : 0.0f);
            }
            switch (e ? e->kind : DK_EPI_STORE) {
            case DK_EPI_RESIDUAL: {
                float *r = e->residual + (row0 + i) * e->ldr + col0 + j;
                float g = e->gamma ? e->gamma[col0 + j] : 1.0f;
                float prod = g * y;
                *r = *r + prod;
                break;
            }
            case DK_EPI_GELU: {
                float half = y * 0.5f;
                ci[j] = half * (1.0f + erff(y * 0.70710678118654752f));
                break;
            }
            default: ci[j] = y;
            }
        }
    }
}

static void scalar_layernorm(int rows, int cols, const float *x, long ldx, float *y, long ldy, const float *w,
                             const float *b, float eps, float *mean, float *rstd) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * ldx;
        float *yr = y + (long)r * ldy;
        double sum = 0;
        for (int i = 0; i < cols; i++) sum += xr[i];
        double m = sum / cols, sq = 0;
        for (int i = 0; i < cols; i++) {
            double d = (double)xr[i] - m;
            sq += d * d;
        }
        float mf = (float)m, sf = (float)(1.0 / sqrt(sq / cols + (double)eps));
        for (int i = 0; i < cols; i++) {
            float t = (xr[i] - mf) * sf;
            yr[i] = t * w[i] + b[i];
        }
        if (mean) mean[r] = mf;
        if (rstd) rstd[r] = sf;
    }
}

static void scalar_gelu(float *y, const float *x, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i], half = v * 0.5f;
        y[i] = half * (1.0f + erff(v * 0.70710678118654752f));
    }
}

static void scalar_gelu_backward(float *dx, const float *dy, const float *x, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        float pdf = expf(v * v * -0.5f) * 0.39894228040143268f;
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

static inline float scalar_silu_one(float v) { return v / (1.0f + expf(-v)); }

static void scalar_silu(float *y, const float *x, long n) {
    for (long i = 0; i < n; i++) y[i] = scalar_silu_one(x[i]);
}

static void scalar_swiglu(float *y, const float *u, int rows, int hidden) {
    for (int r = 0; r < rows; r++) {
        const float *u1 = u + (long)r * 2 * hidden, *u2 = u1 + hidden;
        for (int i = 0; i < hidden; i++) y[(long)r * hidden + i] = scalar_silu_one(u1[i]) * u2[i];
    }
}

static void scalar_softmax_exp(float *x, int rows, int cols, long ld, float *inv) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (long)r * ld;
        float m = -INFINITY;
        for (int i = 0; i < cols; i++) m = xr[i] > m ? xr[i] : m;
        float sum = 0;
        for (int i = 0; i < cols; i++) {
            xr[i] = expf(xr[i] - m);
            sum += xr[i];
        }
        inv[r] = 1.0f / sum;
    }
}

static void scalar_softmax(float *x, int rows, int cols, long ld) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (long)r * ld, inv;
        scalar_softmax_exp(xr, 1, cols, ld, &inv);
        for (int i = 0; i < cols; i++) xr[i] *= inv;
    }
}

static void scalar_residual(float *x, const float *branch, const float *gamma, int rows, int cols) {
    for (long i = 0; i < (long)rows * cols; i++) {
        float prod = gamma ? gamma[i % cols] * branch[i] : branch[i];
        x[i] = x[i] + prod;
    }
}

// The bf16 tile: chunks of the packed pairs widened to float (exact), then the float tile over
// them, chunk after chunk through C's partial sums (the k-block path of the GEMM).
static void scalar_tile_bf16(int mr, int nr, int kp, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                             int flags, const dk_epilogue *e, long row0, long col0, const char *pf,
                             const char *pf_end) {
    (void)pf;
    (void)pf_end;
    enum { CH = 32 };
    float aw[DK_MR * 2 * CH], bw[2 * CH * DK_NR];
    if (kp <= 0) {
        scalar_tile(mr, nr, 0, aw, 2 * CH, bw, DK_NR, c, ldc, flags, e, row0, col0);
        return;
    }
    for (int q0 = 0; q0 < kp; q0 += CH) {
        const int qc = kp - q0 < CH ? kp - q0 : CH;
        for (int q = 0; q < qc; q++) {
            for (int i = 0; i < mr; i++) {
                const uint32_t w = a[(long)(q0 + q) * mr + i];
                aw[i * 2 * CH + 2 * q] = dk_bf16_lo(w);
                aw[i * 2 * CH + 2 * q + 1] = dk_bf16_hi(w);
            }
            for (int j = 0; j < DK_NR; j++) {
                const uint32_t w = b[(long)(q0 + q) * DK_NR + j];
                bw[(2 * q) * DK_NR + j] = dk_bf16_lo(w);
                bw[(2 * q + 1) * DK_NR + j] = dk_bf16_hi(w);
            }
        }
        const int f = (q0 > 0 ? DK_TILE_LOAD_C : (flags & DK_TILE_LOAD_C)) | (q0 + qc >= kp ? (flags & DK_TILE_FINAL) : 0);
        scalar_tile(mr, nr, 2 * qc, aw, 2 * CH, bw, DK_NR, c, ldc, f, e, row0, col0);
    }
}

const dk_bf16_ops dk_bf16_ops_scalar = {
    .name = "scalar: bf16 widened to f32",
    .rows = 4,
    .tile = scalar_tile_bf16,
    .pack_a = dk_pack_a_bf16_portable,
    .a_words = 1,
};

// The int8 tile: the quads' int32 sums, then y = (float(acc) · s_a) · s_w + bias written to C and
// the float tile's epilogue over it (from C, so without adding the bias again).
static void scalar_tile_int8(int mr, int nr, int kq, const uint32_t *a, const uint32_t *b, float *c, long ldc,
                             int flags, const dk_epilogue *e, const dk_int8_scales *s, long row0, long col0,
                             const char *pf, const char *pf_end) {
    (void)pf;
    (void)pf_end;
    int32_t acc[DK_MR][DK_NR];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < DK_NR; j++) {
            acc[i][j] = 0;
            if ((flags & DK_TILE_LOAD_C) && j < nr) __builtin_memcpy(&acc[i][j], c + i * ldc + j, 4);
        }
    for (int q = 0; q < kq; q++) {
        for (int i = 0; i < mr; i++) {
            const uint32_t wa = a[(long)q * mr + i];
            for (int j = 0; j < DK_NR; j++) {
                const uint32_t wb = b[(long)q * DK_NR + j];
                int32_t sum = 0;
                for (int t = 0; t < 4; t++) sum += (int32_t)(int8_t)(wa >> (8 * t)) * (int32_t)(int8_t)(wb >> (8 * t));
                acc[i][j] += sum;
            }
        }
    }
    if (!(flags & DK_TILE_FINAL)) {
        for (int i = 0; i < mr; i++) __builtin_memcpy(c + i * ldc, acc[i], 4 * (size_t)nr);
        return;
    }
    const float *bias = e ? e->bias : 0;
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            // One rounding per operation, in this order, as the SIMD tiles (no contraction to FMA).
            float y = (float)acc[i][j] * s->row[row0 + i];
            y = y * s->col[col0 + j];
            c[i * ldc + j] = y + (bias ? bias[col0 + j] : 0.0f);
        }
    float unused;
    scalar_tile(mr, nr, 0, &unused, 0, &unused, DK_NR, c, ldc, DK_TILE_LOAD_C | DK_TILE_FINAL, e, row0, col0);
}

static void scalar_pack_a_int8(uint32_t *dst, const float *a, long lda, const float *scale, int m, int k, int q0,
                               int qc, int mr) {
    dk_pack_a_int8_portable(dst, a, lda, scale, m, k, q0, qc, mr, 0);
}

const dk_int8_ops dk_int8_ops_scalar = {
    .name = "scalar: int8 in int32",
    .rows = 4,
    .quad_align = 1,
    .tile = scalar_tile_int8,
    .pack_a = scalar_pack_a_int8,
    .row_scales = 0,
};

const dk_ops dk_ops_scalar = {
    .rows = 6,
    .tile = scalar_tile,
    .layernorm = scalar_layernorm,
    .gelu = scalar_gelu,
    .gelu_backward = scalar_gelu_backward,
    .silu = scalar_silu,
    .swiglu = scalar_swiglu,
    .softmax = scalar_softmax,
    .softmax_exp = scalar_softmax_exp,
    .residual = scalar_residual,
};
