import Foundation

/// torchvision's `GaussianBlur(kernel_size, sigma)` on a PIL image (transforms/functional.py
/// `gaussian_blur` → `_functional_tensor.gaussian_blur`): the image becomes a float32 tensor, is
/// padded by reflection (`k / 2` each side), convolved with the outer product of two normalised
/// 1-D Gaussians (float32, taps at `linspace(-(k-1)/2, (k-1)/2, k)`), then rounded half-to-even
/// back to 8 bits. This is not PIL's `ImageFilter.GaussianBlur` (a box-blur approximation):
/// DINOv2's `GaussianBlur` wraps the torchvision transform.
public enum GaussianBlur {
    /// `_get_gaussian_kernel1d(kernel_size, sigma)` in float32.
    public static func kernel1D(size: Int, sigma: Float) -> [Float] {
        let half = Float(size - 1) * 0.5
        let step: Float = size > 1 ? (half - -half) / Float(size - 1) : 0
        var pdf = [Float](repeating: 0, count: size)
        for i in 0..<size {
            // torch.linspace fills the first half from the start and the second from the end.
            let x: Float = i < size / 2 ? -half + Float(i) * step : half - Float(size - 1 - i) * step
            let z = x / sigma
            pdf[i] = Foundation.exp(-0.5 * (z * z))
        }
        var sum: Float = 0
        for v in pdf { sum += v }
        return pdf.map { $0 / sum }
    }

    /// Blurs `img` in place with a `size` x `size` kernel of standard deviation `sigma`.
    public static func apply(_ img: inout CropPixels, size: Int, sigma: Float) {
        let k1 = kernel1D(size: size, sigma: sigma)
        var k2 = [Float](repeating: 0, count: size * size)
        for y in 0..<size { for x in 0..<size { k2[y * size + x] = k1[y] * k1[x] } }
        let w = img.width, h = img.height, r = size / 2
        guard w > 0, h > 0 else { return }
        // Reflection (PyTorch "reflect": the edge pixel is not repeated), folded again for
        // images smaller than the kernel's reach, where torch itself would refuse.
        func reflect(_ i: Int, _ n: Int) -> Int {
            if n == 1 { return 0 }
            let period = 2 * (n - 1)
            var m = i % period
            if m < 0 { m += period }
            return m < n ? m : period - m
        }
        let pw = w + 2 * r, ph = h + 2 * r
        let columns = (0..<pw).map { reflect($0 - r, w) }
        let rows = (0..<ph).map { reflect($0 - r, h) }
        var plane = [Float](repeating: 0, count: pw * ph)
        var out = img.bytes
        for c in 0..<3 {
            img.bytes.withUnsafeBufferPointer { src in
                plane.withUnsafeMutableBufferPointer { p in
                    for y in 0..<ph {
                        let srow = rows[y] * w
                        for x in 0..<pw { p[y * pw + x] = Float(src[(srow + columns[x]) * 3 + c]) }
                    }
                }
            }
            plane.withUnsafeBufferPointer { p in
                k2.withUnsafeBufferPointer { k in
                    out.withUnsafeMutableBufferPointer { o in
                        for y in 0..<h {
                            for x in 0..<w {
                                var acc: Float = 0
                                for ky in 0..<size {
                                    let row = p.baseAddress! + (y + ky) * pw + x
                                    let krow = k.baseAddress! + ky * size
                                    for kx in 0..<size { acc += krow[kx] * row[kx] }
                                }
                                let v = acc.rounded(.toNearestOrEven)
                                o[(y * w + x) * 3 + c] = v <= 0 ? 0 : v >= 255 ? 255 : UInt8(v)
                            }
                        }
                    }
                }
            }
        }
        img.bytes = out
    }
}
