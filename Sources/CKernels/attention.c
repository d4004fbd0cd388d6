// Fused attention for one head: K and V are packed once into panels, then DK_ATT_ROWS queries at
// a time go through scores = scale · Q Kᵀ, a row softmax, and out = P V, so only a
// DK_ATT_ROWS × tokens block of scores is ever live (unless the caller keeps the probabilities).
#include "internal.h"

size_t dk_attention_pack_count(int tokens, int head_dim) {
    return dk_packed_count(tokens, head_dim) + dk_packed_count(head_dim, tokens);
}

size_t dk_attention_scratch_count(int tokens, int head_dim) {
    const int rows = tokens < DK_ATT_ROWS ? tokens : DK_ATT_ROWS;
    return dk_attention_pack_count(tokens, head_dim) + (size_t)rows * (size_t)tokens;
}

void dk_attention_head(int n, int hd, const float *q, const float *k, const float *v, long ld, float *out, long ldo,
                       float scale, int q0, int q1, float *probs, float *scores, float *packs) {
    if (n <= 0 || hd <= 0 || q0 >= q1) return;
    if (!packs) {
        packs = dk_scratch(DK_SCRATCH_ATTENTION, dk_attention_pack_count(n, hd));
        if (!packs) return;
    }
    // Scores B = Kᵀ (hd × n): panels of 32 tokens. P V's B = V (n × hd): panels of 32 columns.
    float *kp = packs, *vp = packs + dk_packed_count(n, hd);
    dk_pack_transposed(kp, k, n, hd, ld);
    dk_pack(vp, v, n, hd, ld);
    const dk_ops *ops = dk_current_ops();
    const dk_epilogue scaled = {.kind = DK_EPI_STORE, .alpha = scale};
    // P V is taken with the unnormalised exponentials and each output row is then multiplied by
    // 1 / (row sum), saving a pass over the scores; kept probabilities are normalised after.
    float inv[DK_ATT_ROWS];
    const dk_epilogue normalised = {.kind = DK_EPI_STORE, .alpha = 1.0f, .row_scale = inv};
    for (int r0 = q0; r0 < q1; r0 += DK_ATT_ROWS) {
        const int rows = q1 - r0 < DK_ATT_ROWS ? q1 - r0 : DK_ATT_ROWS;
        float *s = probs ? probs + (long)r0 * n : scores;
        dk_gemm_packed(rows, n, hd, q + (long)r0 * ld, ld, kp, s, n, &scaled);
        ops->softmax_exp(s, rows, n, n, inv);
        dk_gemm_packed(rows, hd, n, s, n, vp, out + (long)r0 * ldo, ldo, &normalised);
        if (probs) {
            for (int r = 0; r < rows; r++) {
                float *row = s + (long)r * n;
                for (int t = 0; t < n; t++) row[t] *= inv[r];
            }
        }
    }
}
