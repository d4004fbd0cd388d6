#ifndef DINOKIT_CKERNELS_INTERNAL_H
#define DINOKIT_CKERNELS_INTERNAL_H

#include "CKernels.h"

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
    void (*layernorm)(int rows, int cols, const float *x, long ldx, float *y, long ldy, const float *w,
                      const float *b, float eps, float *mean, float *rstd);
    void (*gelu)(float *y, const float *x, long n);
    void (*gelu_backward)(float *dx, const float *dy, const float *x, long n);
    void (*silu)(float *y, const float *x, long n);
    void (*swiglu)(float *y, const float *u, int rows, int hidden);
    void (*softmax)(float *x, int rows, int cols, long ld);
    // exp(x − row max) in place, and 1 / (row sum) into inv: the softmax before its normalisation.
    void (*softmax_exp)(float *x, int rows, int cols, long ld, float *inv);
    void (*residual)(float *x, const float *branch, const float *gamma, int rows, int cols);
} dk_ops;

extern const dk_ops dk_ops_scalar;
#if defined(__x86_64__)
extern const dk_ops dk_ops_avx2;
extern const dk_ops dk_ops_avx512;
#endif

const dk_ops *dk_current_ops(void);

#endif
