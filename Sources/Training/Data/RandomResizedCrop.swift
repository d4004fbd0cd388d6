import Foundation

/// A crop window in image coordinates (torchvision's `i, j, h, w`).
public struct CropWindow: Sendable, Equatable, Codable {
    public var top: Int
    public var left: Int
    public var height: Int
    public var width: Int

    public init(top: Int, left: Int, height: Int, width: Int) {
        self.top = top
        self.left = left
        self.height = height
        self.width = width
    }
}

/// Draws in the precision torch draws them: `torch.empty(1).uniform_(a, b).item()` is a float32
/// value, `torch.randint(lo, hi)` an integer in lo..<hi, `torch.rand(1) < p` a float32 compare.
extension RunRandom {
    mutating func torchUniform(_ lower: Double, _ upper: Double) -> Double {
        Double(Float(lower) + (Float(upper) - Float(lower)) * Float(uniform()))
    }

    mutating func torchRand() -> Float { Float(uniform()) }

    /// An integer in lower...upper (both ends included).
    public mutating func integer(_ lower: Int, _ upper: Int) -> Int {
        guard upper > lower else { return lower }
        return lower + Int(next() % UInt64(upper - lower + 1))
    }
}

/// `torchvision.transforms.RandomResizedCrop.get_params`: ten tries of a target area drawn from
/// `area · U(scale)` and an aspect ratio log-uniform in `ratio`, each accepted when the rounded
/// (half-to-even, as Python's `round`) box fits; otherwise the centre crop clamped to the ratio range.
public enum RandomResizedCrop {
    /// `scale` and `ratio` hold two values each (`MultiCropConfig.validate` checks).
    public static func window(width: Int, height: Int, scale: [Double], ratio: [Double], rng: inout RunRandom) -> CropWindow {
        let area = Double(height * width)
        let logRatio = (Double(Foundation.log(Float(ratio[0]))), Double(Foundation.log(Float(ratio[1]))))
        for _ in 0..<10 {
            let targetArea = area * rng.torchUniform(scale[0], scale[1])
            let aspect = Double(Foundation.exp(Float(rng.torchUniform(logRatio.0, logRatio.1))))
            let w = Int((targetArea * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((targetArea / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0, w <= width, h > 0, h <= height {
                let i = rng.integer(0, height - h)
                let j = rng.integer(0, width - w)
                return CropWindow(top: i, left: j, height: h, width: w)
            }
        }
        let inRatio = Double(width) / Double(height)
        let lowest = min(ratio[0], ratio[1]), highest = max(ratio[0], ratio[1])
        var w = width, h = height
        if inRatio < lowest {
            w = width
            h = Int((Double(w) / lowest).rounded(.toNearestOrEven))
        } else if inRatio > highest {
            h = height
            w = Int((Double(h) * highest).rounded(.toNearestOrEven))
        }
        return CropWindow(top: (height - h) / 2, left: (width - w) / 2, height: h, width: w)
    }
}
