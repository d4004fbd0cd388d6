// Fused attention for one head, so that only a block of scores for some queries is ever live
// (unless the caller keeps the probabilities). Two forms:
// - by rows (every path): K and V are packed once into panels, then DK_ATT_ROWS queries at a time
//   go through scores = scale · Q Kᵀ, a row softmax, and out = P V;
// - by columns (paths with the packed tile, AVX-512): K is packed once as the A operand (12-token
//   micro-panels) and V into panels, then DK_ATT_ROWS queries at a time go through Sᵀ = scale · K Qᵀ
//   (tokens × queries), a softmax down each column (one vector holds 16 queries: no reductions
//   across lanes), and out = P V with Pᵀ read in place as the packed A of 12-query tiles — so the
//   probabilities are never repacked and every tile is 12 rows tall.
#include "internal.h"

size_t dk_attention_pack_count(int tokens, int head_dim) {
    return dk_packed_count(tokens, head_dim) + dk_packed_count(head_dim, tokens) + dk_packed_count(DK_ATT_ROWS, head_dim);
}

size_t dk_attention_scratch_count(int tokens, int head_dim) {
    const int rows = tokens < DK_ATT_ROWS ? tokens : DK_ATT_ROWS;
    return dk_attention_pack_count(tokens, head_dim) + (size_t)rows * (size_t)tokens;
}

static void dk_attention_head_columns(int n, int hd, const float *q, const float *k, const float *v, long ld,
                                      float *out, long ldo, float scale, int q0, int q1, float *probs, float *scores,
                                      float *packs) {
    const dk_ops *ops = dk_current_ops();
    const int mr = ops->packed_rows;
    float *kp = packs, *vp = kp + dk_packed_count(n, hd), *qp = vp + dk_packed_count(hd, n);
    ops->pack_a(kp, k, ld, n, hd, mr);
    dk_pack(vp, v, n, hd, ld);
    const dk_packed_a keys = {.base = kp, .rows = n, .row0 = 0};
    const dk_epilogue scaled = {.kind = DK_EPI_STORE, .alpha = scale};
    float inv[DK_ATT_ROWS];
    const dk_epilogue normalised = {.kind = DK_EPI_STORE, .alpha = 1.0f, .row_scale = inv};
    const int vpanels = (hd + DK_NR - 1) / DK_NR;
    for (int r0 = q0; r0 < q1; r0 += DK_ATT_ROWS) {
        const int qc = q1 - r0 < DK_ATT_ROWS ? q1 - r0 : DK_ATT_ROWS;
        // Sᵀ (n × qc, row stride qc) = scale · K Qᵀ: B = Qᵀ, the block's queries as panels.
        dk_pack_transposed(qp, q + (long)r0 * ld, qc, hd, ld);
        dk_gemm_run(n, qc, hd, 0, 0, &keys, qp, DK_NR, (long)hd * DK_NR, scores, qc, &scaled, 0);
        ops->softmax_exp_columns(scores, n, qc, qc, inv);
        // out rows r0 + i … = Σ_t Pᵀ[t][i] V[t] / sum_i: Pᵀ's column block i … i + 11 is a packed
        // A with k steps qc floats apart.
        for (int i = 0; i < qc; i += mr) {
            const int rows = qc - i < mr ? qc - i : mr;
            for (int jp = 0; jp < vpanels; jp++) {
                const int cols = hd - jp * DK_NR < DK_NR ? hd - jp * DK_NR : DK_NR;
                ops->tile_packed(rows, cols, n, scores + i, qc, vp + (size_t)jp * n * DK_NR, DK_NR,
                                 out + (long)(r0 + i) * ldo + jp * DK_NR, ldo, DK_TILE_FINAL, &normalised, i,
                                 (long)jp * DK_NR, 0, 0);
            }
        }
        if (probs) {
            for (int i = 0; i < qc; i++) {
                float *row = probs + (long)(r0 + i) * n;
                for (int t = 0; t < n; t++) row[t] = scores[(long)t * qc + i] * inv[i];
            }
        }
    }
}

void dk_attention_head(int n, int hd, const float *q, const float *k, const float *v, long ld, float *out, long ldo,
                       float scale, int q0, int q1, float *probs, float *scores, float *packs) {
    if (n <= 0 || hd <= 0 || q0 >= q1) return;
    if (!packs) {
        packs = dk_scratch(DK_SCRATCH_ATTENTION, dk_attention_pack_count(n, hd));
        if (!packs) return;
    }
    const dk_ops *ops = dk_current_ops();
    if (ops->tile_packed && hd <= DK_KC) { // K packed as one k block
        // With kept probabilities the caller brings no scores buffer: the block of Sᵀ gets one.
        if (!scores) scores = dk_scratch(DK_SCRATCH_ATTENTION_SCORES, (size_t)n * DK_ATT_ROWS);
        if (!scores) return;
        dk_attention_head_columns(n, hd, q, k, v, ld, out, ldo, scale, q0, q1, probs, scores, packs);
        return;
    }
    // Scores B = Kᵀ (hd × n): panels of 32 tokens. P V's B = V (n × hd): panels of 32 columns.
    float *kp = packs, *vp = packs + dk_packed_count(n, hd);
    dk_pack_transposed(kp, k, n, hd, ld);
    dk_pack(vp, v, n, hd, ld);
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
