#ifndef DINOKIT_CKERNELS_H
#define DINOKIT_CKERNELS_H

// DinoKit's CPU hot loops in C: a packed GEMM micro-kernel with fused epilogues, fused attention,
// LayerNorm, GELU/SiLU, softmax. Each exists three times — AVX-512, AVX2+FMA and portable C —
// and the fastest one the CPU supports is chosen at run time (`dk_active_path`), so the package
// needs no compiler flags: the SIMD versions are compiled per function with
// `__attribute__((target(...)))`. `DINOKIT_KERNELS=avx512|avx2|scalar` (read once, at first use)
// or `dk_set_path` force a slower path, for tests and comparisons.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { DK_PATH_SCALAR = 0, DK_PATH_AVX2 = 1, DK_PATH_AVX512 = 2 };

/// The best path this CPU and OS support.
int dk_supported_path(void);
/// What dk_supported_path decides from: CPUID leaf 1 (FMA, OSXSAVE, AVX), leaf 7 (AVX2, AVX-512
/// F/DQ/VL) and XCR0 (which register states the OS saves). Split out so that tests can ask what a
/// CPU without AVX-512 or AVX2, or an OS that does not save ZMM state, would get.
typedef struct {
    int fma, osxsave, avx, avx2, avx512f, avx512dq, avx512vl;
    unsigned long long xcr0;
} dk_cpu_features;
int dk_path_for_cpu(dk_cpu_features features);
/// The path in use: `DINOKIT_KERNELS` if set (and supported), else `dk_supported_path()`.
int dk_active_path(void);
/// Selects a path, clamped to what is supported; returns the path now active. Not for use while
/// kernels run on other threads.
int dk_set_path(int path);

/// Columns per packed panel: the micro-kernel computes tiles of up to DK_MR rows × DK_NR columns.
#define DK_NR 32
#define DK_MR 16
/// Rows per micro-tile on the active path (≤ DK_MR): split rows between threads in multiples of it.
int dk_tile_rows(void);

/// Floats needed to pack a k × n right-hand matrix: ceil(n / DK_NR) panels of k × DK_NR.
size_t dk_packed_count(int n, int k);
/// Packs B = wᵀ for `nn.Linear` weights `w` (n rows of k, row stride `ldw`): panel p holds, for
/// each of the k rows of B, the DK_NR values w[p·DK_NR + j][kk], zero past n.
void dk_pack_transposed(float *dst, const float *w, int n, int k, long ldw);
/// Packs a row-major k × n matrix `b` (row stride `ldb`) into the same panel layout.
void dk_pack(float *dst, const float *b, int k, int n, long ldb);

/// What a GEMM does with each finished tile y = alpha · row_scale[i] · (A·B) + bias (alpha 1,
/// row_scale and bias NULL for none).
enum {
    DK_EPI_STORE = 0,    // c = y
    DK_EPI_GELU = 1,     // c = gelu(y), exact erf GELU
    DK_EPI_RESIDUAL = 2, // residual += gamma ⊙ y (gamma NULL: + y); c is scratch only
};

typedef struct {
    int kind;
    float alpha;            // 1 for none; applied before the bias
    const float *row_scale; // m values (one per row of C), or NULL
    const float *bias;      // n values, or NULL
    const float *gamma;     // DK_EPI_RESIDUAL: n values, or NULL
    float *residual;        // DK_EPI_RESIDUAL: m × n, row stride ldr
    long ldr;
    // Optional, with DK_EPI_RESIDUAL: once a block of rows is final, LayerNorm those residual
    // rows into ln_out (row stride ld_ln) — the next norm, while the rows are still in cache.
    float *ln_out;
    long ld_ln;
    const float *ln_weight, *ln_bias;
    float ln_eps;
} dk_epilogue;

/// C (m × n) ← epilogue(A·B): A row-major m × k (row stride lda, read in place); B packed panels
/// as `dk_pack*` writes them (panel p at bp + p·k·DK_NR); C row stride ldc. `e` NULL = store.
void dk_gemm_packed(int m, int n, int k, const float *a, long lda, const float *bp, float *c, long ldc,
                    const dk_epilogue *e);

/// `dk_gemm_packed` on up to `threads` threads of the pool, split by columns (panel groups) and,
/// when there are few panels, row blocks, handed out from a counter. The epilogue's LayerNorm
/// (`ln_out`) is not applied: it needs whole rows, so the caller runs it after.
void dk_gemm_packed_columns(int m, int n, int k, const float *a, long lda, const float *bp, float *c, long ldc,
                            const dk_epilogue *e, int threads);

/// The general form: panel p of B starts at b + p·panel_stride, and consecutive rows (k) of a
/// panel are ldb floats apart. Every panel row must have DK_NR readable floats.
void dk_gemm(int m, int n, int k, const float *a, long lda, const float *b, long ldb, long panel_stride,
             float *c, long ldc, const dk_epilogue *e);

/// The general GEMM: C (m × n) = alpha · op(A) · op(B) (+ bias, one value per column, when not
/// accumulating), or C += alpha · op(A) · op(B) with `accumulate`. op(A) is m × k: A row-major
/// with row stride lda, or with `trans_a` A stored k × m (op(A) = Aᵀ). op(B) is k × n: B
/// row-major k × n (row stride ldb), or with `trans_b` stored n × k (op(B) = Bᵀ, as `nn.Linear`
/// weights are). Runs on up to `threads` threads of DinoKit's pool (inline when called from
/// inside a parallel loop); packing buffers are kept per thread. Each element of C is computed
/// the same way whatever the thread count, so results do not depend on it.
void dk_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, long lda, const float *b,
              long ldb, int accumulate, float *c, long ldc, const float *bias, int threads);

/// ---- bf16 GEMM (the packed linear layers at `--precision bf16`) ----------------------------------
///
/// Weights are bfloat16, rounded once (round to nearest even, NaN → 0x7FC0: torch's
/// `.to(torch.bfloat16)`), and packed in pairs of k: panel p holds, for each pair q of the k
/// inputs, DK_NR 32-bit words (bf16 of w[p·DK_NR + j][2q + 1] << 16) | bf16 of w[..][2q], zero past
/// n and past k. The activations (A) are rounded the same way as they are packed for the
/// micro-kernel; products are exact in float and are accumulated in float; the epilogue is the
/// float one. With AMX-BF16 the tile runs TDPBF16PS, with AVX512_BF16 `vdpbf16ps` (not chosen by
/// default on Intel CPUs, which run it slower than the widening tile); other CPUs and paths widen
/// the weights' bf16 values to float in registers (A is packed widened) and use float FMAs (the
/// same products).

/// torch's float → bfloat16 rounding, n values.
void dk_f32_to_bf16(uint16_t *dst, const float *src, long n);
/// bfloat16 → float (exact), n values.
void dk_bf16_to_f32(float *dst, const uint16_t *src, long n);
/// 32-bit words needed to pack an n × k weight as bf16 pairs: ceil(n / DK_NR) · ceil(k / 2) · DK_NR.
size_t dk_packed_bf16_count(int n, int k);
/// Packs `nn.Linear` weights already in bf16 (`w`: n rows of k, row stride ldw) as described above.
/// NaNs are packed as 0x7FC0, as `dk_f32_to_bf16` of their float makes them: weights read from a
/// bf16 file pack as their float32 widening rounded back would.
void dk_pack_transposed_bf16(uint32_t *dst, const uint16_t *w, int n, int k, long ldw);
/// `dk_gemm_packed` with B packed by `dk_pack_transposed_bf16` (A float, rounded to bf16 here).
void dk_gemm_bf16_packed(int m, int n, int k, const float *a, long lda, const uint32_t *bp, float *c, long ldc,
                         const dk_epilogue *e);
/// `dk_gemm_packed_columns` for bf16-packed B (the epilogue's LayerNorm is left to the caller).
void dk_gemm_bf16_packed_columns(int m, int n, int k, const float *a, long lda, const uint32_t *bp, float *c,
                                 long ldc, const dk_epilogue *e, int threads);
/// Whether this CPU (and OS) has AVX512_BF16 (`vdpbf16ps`).
int dk_bf16_native_supported(void);
/// Whether this CPU has AMX-BF16 and the OS lets this process use the tiles (Linux: asked once).
int dk_bf16_amx_supported(void);
/// The fastest bf16 tile the AVX-512 path may use: 2 AMX (TDPBF16PS, the default), 1 AVX512_BF16
/// (vdpbf16ps), 0 the widening fallback — so that tests run every one on a CPU that has them.
/// Returns the level of the tile now in use on the active path (0 on other paths). Not for use
/// while kernels run.
int dk_set_bf16_level(int level);
/// Which bf16 tile the active path runs, e.g. "amx_bf16: tdpbf16ps", "avx512_bf16: vdpbf16ps" or
/// "avx2: bf16 widened to f32 FMA".
const char *dk_bf16_kernel_name(void);

/// ---- int8 GEMM (the packed linear layers at `--precision int8`) ----------------------------------
///
/// Weights are quantized once, per output channel: s_w[o] = max_i |w[o][i]| / 127 (1 for an
/// all-zero row), q_w = clamp(rint(w / s_w), -127, 127); panel p holds, for each quad g of the k
/// inputs, DK_NR 32-bit words of the four int8 values q_w[p·DK_NR + j][4g … 4g + 3] (low byte
/// first), zero past n and past k, beside s_w and Σ_k q_w per column. The activations (A) are
/// quantized per row the same way as they are packed (s_a = max_k |x| / 127); the products are
/// summed exactly in int32, and y = (float(acc) · s_a) · s_w + bias enters the float epilogue. With
/// AMX-INT8 the tile runs TDPBSSD, with AVX512_VNNI `vpdpbusd` (A + 128 as its unsigned operand,
/// 128 · Σ_k q_w taken off), else pmaddubsw on |a| and b · sign(a) (AVX2) or plain C: the same
/// int32 sums on every path.

/// An int8-packed `nn.Linear` weight: the panels (`dk_packed_int8_count` words), and per column
/// s_w and Σ_k q_w (ceil(n / DK_NR) · DK_NR of each, 1 and 0 past n).
typedef struct {
    const uint32_t *panels;
    const float *scales;
    const int32_t *sums;
} dk_int8_weights;

/// 32-bit words to pack an n × k weight as int8 quads: ceil(n / DK_NR) · ceil(k / 4) · DK_NR, and
/// a padding the AMX tile may read.
size_t dk_packed_int8_count(int n, int k);
/// Quantizes and packs float `nn.Linear` weights `w` (n rows of k, row stride ldw) as described
/// above; scales and sums have room for ceil(n / DK_NR) · DK_NR values.
void dk_pack_transposed_int8(uint32_t *panels, float *scales, int32_t *sums, const float *w, int n, int k, long ldw);
/// The per-row activation scales s_a of A (m rows of k, row stride lda), as the GEMM computes them.
void dk_int8_row_scales(float *s, const float *a, long lda, int m, int k);
/// The int8 rule on its own (Kernels `Int8Quantization`): each row of the rows × cols row-major x
/// quantized with its own scale, as the GEMM quantizes its input rows and packs weights.
void dk_int8_quantize_rows(int8_t *q, float *scales, const float *x, long rows, long cols);
/// `dk_gemm_packed` with B int8-packed (A float, quantized per row here). The epilogue's alpha
/// must be 1 and row_scale NULL (the int8 scales take their place).
void dk_gemm_int8_packed(int m, int n, int k, const float *a, long lda, const dk_int8_weights *w, float *c, long ldc,
                         const dk_epilogue *e);
/// `dk_gemm_packed_columns` for int8-packed B (the epilogue's LayerNorm is left to the caller).
void dk_gemm_int8_packed_columns(int m, int n, int k, const float *a, long lda, const dk_int8_weights *w, float *c,
                                 long ldc, const dk_epilogue *e, int threads);
/// Whether this CPU (and OS) has AVX512_VNNI (`vpdpbusd`) on the AVX-512 path.
int dk_int8_vnni_supported(void);
/// Whether this CPU has AMX-INT8 and the OS lets this process use the tiles.
int dk_int8_amx_supported(void);
/// The fastest int8 tile the AVX-512 path may use: 2 AMX (TDPBSSD, the default), 1 AVX512_VNNI,
/// 0 the pmaddubsw fallback; returns the level now in use there (0 on other paths), as
/// dk_set_bf16_level. Not for use while kernels run.
int dk_set_int8_level(int level);
/// Test hook (measurements, mutation checks): on, every GEMM quantizes its whole A with one scale,
/// max |A| / 127, instead of one per row. Off by default; returns the new setting.
int dk_set_int8_tensor_scale(int on);
/// Which int8 tile the active path runs, e.g. "amx_int8: tdpbssd" or "avx512_vnni: vpdpbusd".
const char *dk_int8_kernel_name(void);

/// LayerNorm over each of `rows` rows of `cols` (biased variance): y = (x − mean)·rstd·w + b.
/// mean/rstd (length rows) may be NULL.
void dk_layernorm(int rows, int cols, const float *x, long ldx, float *y, long ldy, const float *w,
                  const float *b, float eps, float *mean, float *rstd);

/// Exact GELU, 0.5·x·(1 + erf(x/√2)), elementwise (y may equal x).
void dk_gelu(float *y, const float *x, long n);
/// GELU's backward: dx = dy · (Φ(x) + x·φ(x)) elementwise, PyTorch's gelu_backward
/// (approximate='none'); dx may equal dy.
void dk_gelu_backward(float *dx, const float *dy, const float *x, long n);
/// SiLU x / (1 + exp(−x)), elementwise.
void dk_silu(float *y, const float *x, long n);
/// SwiGLU gate: y[r, i] = silu(u[r, i]) · u[r, hidden + i]; u is rows × 2·hidden.
void dk_swiglu(float *y, const float *u, int rows, int hidden);
/// Softmax of each row in place (rows × cols, row stride ld).
void dk_softmax_rows(float *x, int rows, int cols, long ld);
/// x[r, :] += gamma ⊙ branch[r, :] (gamma NULL: + branch) over rows × cols, contiguous.
void dk_residual(float *x, const float *branch, const float *gamma, int rows, int cols);

/// Queries per attention block: scores for this many queries are live at once.
#define DK_ATT_ROWS 64

/// Floats `dk_attention_head` needs in `packs` (the head's K and V, and a block of Q, packed).
size_t dk_attention_pack_count(int tokens, int head_dim);
/// Floats one `dk_attention_head` call needs: packs plus scores for DK_ATT_ROWS queries.
size_t dk_attention_scratch_count(int tokens, int head_dim);

/// One head of softmax(Q Kᵀ · scale) V for query rows [q0, q1): q, k, v point at the head's first
/// column of token 0 and advance `ld` floats per token; out (row stride ldo) receives the query
/// rows. Scores are computed DK_ATT_ROWS queries at a time into `scores` (room for
/// min(DK_ATT_ROWS, tokens) × tokens floats; NULL when `probs` is given), and when `probs` is not
/// NULL the probabilities are written there (tokens × tokens, row stride tokens). `packs` has room
/// for dk_attention_pack_count floats, or is NULL to use a buffer kept per thread. The AVX-512
/// path computes the scores transposed (see attention.c); results do not depend on `probs`.
void dk_attention_head(int tokens, int head_dim, const float *q, const float *k, const float *v, long ld,
                       float *out, long ldo, float scale, int q0, int q1, float *probs, float *scores, float *packs);

/// A task of a parallel loop: `index` in 0..<count.
typedef void (*dk_task_fn)(void *context, int index, int count);
/// Runs fn(context, i, n) for i in 0..<n, i = 0 on the calling thread and the others on DinoKit's
/// worker threads (started on first use, kept spinning briefly between loops, then sleeping);
/// returns when all have finished. Loops do not nest or overlap: a call made while another loop
/// runs (from another thread, or from inside a task) runs its n tasks on the calling thread.
void dk_parallel(int n, dk_task_fn fn, void *context);

/// Atomically adds `delta` to *counter and returns the previous value (work queues of the
/// Swift parallel loops).
long dk_fetch_add(long *counter, long delta);

#ifdef __cplusplus
}
#endif

#endif
