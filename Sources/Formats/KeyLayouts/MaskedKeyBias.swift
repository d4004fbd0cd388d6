import OrderedCollections
import TensorStore

/// DINOv3's qkv bias as the layouts without a key bias hold it. The official `LinearKMaskedBias`
/// adds `bias · bias_mask`, the mask 1 on the q and v thirds and 0 on the key third, so transformers
/// (`key_bias = False`) and timm (`q_bias`, `v_bias`, a zero `k_bias` buffer) store only the q and v
/// thirds. Going there the key third and the mask are carried (`CarriedTensors`) when they are not
/// the usual ones (zero bytes; 1 0 1), coming back they are restored when they fit, else the usual
/// ones stand in: numerically what those libraries compute.
enum MaskedKeyBias {
    /// Carried names: the key third of block `i`'s bias, and its mask (a whole hub tensor).
    static func keyThird(_ i: Int) -> String { "blocks.\(i).attn.qkv.bias.k" }
    static func mask(_ i: Int) -> String { "blocks.\(i).attn.qkv.bias_mask" }

    /// Block `i`'s q and v bias thirds (views of the hub bias) for `layout`, carrying the key third
    /// and the mask in `metadata` when they are not the usual ones. Without a mask the key bias is
    /// part of the model, and the layout cannot hold it.
    static func split(_ store: TensorStore, block i: Int, for layout: Layout,
                      metadata: inout OrderedDictionary<String, String>) throws -> (q: Tensor, v: Tensor) {
        let name = "blocks.\(i).attn.qkv.bias"
        guard let bias = store[name] else { throw LayoutError.missingTensor(name: name, needed: "the q and v biases") }
        guard bias.shape.rank == 1, bias.shape[0] % 3 == 0 else {
            throw LayoutError.badTensor(name: name, detail: "shape \(bias.shape), expected (3·D)")
        }
        guard let mask = store[mask(i)] else {
            throw LayoutError.unrepresentable(layout: layout, name: name, reason: "no bias_mask zeroes its key third, and the layout has no key bias")
        }
        let d = bias.shape[0] / 3
        let parts = try (0..<3).map { try TensorSurgery.slice(bias, ($0 * d)..<(($0 + 1) * d), axis: 0, name: name) }
        if !isZeroBytes(parts[1]) { CarriedTensors.carry(parts[1], as: keyThird(i), in: &metadata) }
        let isUsual = try mask.shape == bias.shape && mask.bitwiseEqual(usualMask(count: mask.shape[0], dtype: mask.dtype))
        if !isUsual { CarriedTensors.carry(mask, as: self.mask(i), in: &metadata) }
        return (parts[0], parts[2])
    }

    /// Block `i`'s hub bias and mask from the q and v thirds: the key third stored by the layout
    /// (`k`), else the carried one when it fits (q's dtype and shape), else zeros; the carried mask
    /// when it fits (3·D elements), else the usual one in q's dtype.
    static func join(q: (name: String, tensor: Tensor), k: (name: String, tensor: Tensor)?, v: (name: String, tensor: Tensor),
                     block i: Int, metadata: OrderedDictionary<String, String>) throws -> (bias: Tensor, mask: Tensor) {
        for part in [q, v] where part.tensor.shape.rank != 1 {
            throw LayoutError.badTensor(name: part.name, detail: "shape \(part.tensor.shape), expected rank 1")
        }
        let key: (name: String, tensor: Tensor)
        if let k {
            key = k
        } else if let carried = try CarriedTensors.carried(keyThird(i), in: metadata),
                  carried.dtype == q.tensor.dtype, carried.shape == q.tensor.shape {
            key = (CarriedTensors.key(keyThird(i)), carried)
        } else {
            key = (q.name, try TensorSurgery.zeros(like: q.tensor, shape: q.tensor.shape))
        }
        let bias = try TensorSurgery.concatenate([q, key, v], axis: 0)
        if let carried = try CarriedTensors.carried(mask(i), in: metadata), carried.shape == bias.shape {
            return (bias, carried)
        }
        return (bias, try usualMask(count: bias.shape[0], dtype: q.tensor.dtype))
    }

    /// The official mask of `n` = 3·D elements: 1 on the q and v thirds, 0 on the key third.
    static func usualMask(count n: Int, dtype: DType) throws -> Tensor {
        let d = n / 3
        let values = (0..<n).map { $0 >= d && $0 < 2 * d ? Float(0) : Float(1) }
        return try Tensor(shape: [n], floats: values).converted(to: dtype)
    }

    /// Every byte zero: +0.0 throughout (a -0.0 key bias is carried, to come back bit for bit).
    private static func isZeroBytes(_ t: Tensor) -> Bool {
        t.withContiguousBytes { $0.allSatisfy { $0 == 0 } }
    }
}
