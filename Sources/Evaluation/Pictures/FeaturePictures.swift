import Datasets
import Images
import Reporting

/// One image's patch features on its grid, with the 8-bit image the model saw.
public struct PatchFeatures: Sendable {
    public var image: RGBImage
    /// (rows·cols, dim) row-major, patches in grid order.
    public var features: [Float]
    public var rows: Int
    public var cols: Int
    public var dim: Int

    public init(image: RGBImage, features: [Float], rows: Int, cols: Int, dim: Int) {
        self.image = image
        self.features = features
        self.rows = rows
        self.cols = cols
        self.dim = dim
    }
}

/// How `PatchPCAMap` separates foreground from background on the first component.
public enum ForegroundThreshold: Sendable, Equatable {
    /// Otsu's threshold on the first component's values.
    case auto
    /// A fixed value on the oriented first component (see `PatchPCAMap`).
    case value(Double)
}

/// The DINOv2 paper's patch-PCA picture, computed:
///
/// 1. PCA over the patches of all images together; each patch's first component c₁.
/// 2. Orientation: c₁ is a direction without a sign, so it is flipped, if needed, to make the
///    foreground side the positive one. The patches above the Otsu threshold and those below are
///    compared by the share of their patches inside the central box (middle half of each grid
///    side): objects sit in the middle of photos, backgrounds at the borders. The more central
///    side is the foreground; when the shares differ by less than 0.02, the smaller side is.
/// 3. Foreground: oriented c₁ > threshold (Otsu's, or the given value).
/// 4. A second PCA over the foreground patches only; its first three components, each min–max
///    scaled over the foreground, are the red, green and blue of each foreground patch;
///    background patches are black.
public struct PatchPCAMap: Sendable {
    /// Per image, the oriented first component of each patch.
    public var firstComponent: [[Double]]
    public var threshold: Double
    /// Per image, the foreground patches.
    public var foreground: [[Bool]]
    /// Per image, the RGB (0…1) of each patch.
    public var colors: [[(Double, Double, Double)]]

    public init(_ images: [PatchFeatures], threshold mode: ForegroundThreshold = .auto) throws {
        guard let dim = images.first?.dim, images.allSatisfy({ $0.dim == dim && $0.features.count == $0.rows * $0.cols * $0.dim }) else {
            throw EvaluationError.invalidArgument(what: "PCA", detail: "images must have features of one width, rows·cols·dim values each")
        }
        let all = images.flatMap(\.features)
        let n = all.count / Swift.max(1, dim)
        guard n >= 4 else { throw EvaluationError.invalidArgument(what: "PCA", detail: "\(n) patches are too few") }
        let first = PrincipalComponents(all, rows: n, columns: dim, components: 1)
        var c1 = first.project(all, rows: n)[0]
        let otsu = PatchPCAMap.otsuThreshold(c1)

        // Orientation by centrality (step 2).
        var central = [Bool]()
        for im in images {
            for r in 0..<im.rows {
                for c in 0..<im.cols {
                    central.append(4 * r >= im.rows && 4 * r < 3 * im.rows && 4 * c >= im.cols && 4 * c < 3 * im.cols)
                }
            }
        }
        let above = c1.indices.filter { c1[$0] > otsu }, below = c1.indices.filter { c1[$0] <= otsu }
        func centralShare(_ idx: [Int]) -> Double {
            idx.isEmpty ? 0 : Double(idx.filter { central[$0] }.count) / Double(idx.count)
        }
        let difference = centralShare(above) - centralShare(below)
        let flip = abs(difference) < 0.02 ? above.count > below.count : difference < 0
        var t = otsu
        if flip {
            c1 = c1.map { -$0 }
            t = -otsu
        }
        if case let .value(v) = mode { t = v }
        // With the Otsu threshold the boundary patch belongs to the side it was counted with.
        let isForeground = c1.indices.map { flip && mode == .auto ? c1[$0] >= t : c1[$0] > t }

        // Second PCA on the foreground (step 4); all patches when the foreground is tiny.
        let fgIndices = c1.indices.filter { isForeground[$0] }
        let fitIndices = fgIndices.count >= 4 ? fgIndices : Array(c1.indices)
        var fgValues = [Float]()
        fgValues.reserveCapacity(fitIndices.count * dim)
        for i in fitIndices { fgValues += all[(i * dim)..<((i + 1) * dim)] }
        let second = PrincipalComponents(fgValues, rows: fitIndices.count, columns: dim, components: 3)
        let projected = second.project(all, rows: n)
        var lo = [Double](repeating: .infinity, count: 3), hi = [Double](repeating: -.infinity, count: 3)
        for ch in projected.indices {
            for i in fitIndices { lo[ch] = Swift.min(lo[ch], projected[ch][i]); hi[ch] = Swift.max(hi[ch], projected[ch][i]) }
        }
        func scaled(_ ch: Int, _ i: Int) -> Double {
            guard ch < projected.count, hi[ch] > lo[ch] else { return 0.5 }
            return Swift.min(1, Swift.max(0, (projected[ch][i] - lo[ch]) / (hi[ch] - lo[ch])))
        }
        var offset = 0
        var comps: [[Double]] = [], fgs: [[Bool]] = [], cols: [[(Double, Double, Double)]] = []
        for im in images {
            let range = offset..<(offset + im.rows * im.cols)
            comps.append(Array(c1[range]))
            fgs.append(Array(isForeground[range]))
            cols.append(range.map { isForeground[$0] ? (scaled(0, $0), scaled(1, $0), scaled(2, $0)) : (0, 0, 0) })
            offset = range.upperBound
        }
        firstComponent = comps
        threshold = t
        foreground = fgs
        colors = cols
    }

    /// Otsu's threshold over a 256-bin histogram of `values` (the bin edge maximising the
    /// between-class variance; the midpoint for constant input).
    public static func otsuThreshold(_ values: [Double]) -> Double {
        guard let lo = values.min(), let hi = values.max(), hi > lo else { return values.first ?? 0 }
        let bins = 256, width = (hi - lo) / Double(bins)
        var hist = [Double](repeating: 0, count: bins)
        for v in values { hist[Swift.min(bins - 1, Int((v - lo) / width))] += 1 }
        let total = Double(values.count)
        let sumAll = (0..<bins).reduce(0.0) { $0 + Double($1) * hist[$1] }
        var w0 = 0.0, sum0 = 0.0, best = -1.0, bestEdge = 1
        for t in 1..<bins {
            w0 += hist[t - 1]
            sum0 += Double(t - 1) * hist[t - 1]
            let w1 = total - w0
            guard w0 > 0, w1 > 0 else { continue }
            let m0 = sum0 / w0, m1 = (sumAll - sum0) / w1
            let between = w0 * w1 * (m0 - m1) * (m0 - m1)
            if between > best { best = between; bestEdge = t }
        }
        return lo + Double(bestEdge) * width
    }
}

/// The pictures of `dinokit pca` and `dinokit attention`.
public enum FeaturePictures {
    /// One row per image: the image the model saw, then its PCA colours (each patch a block of
    /// `patch` pixels).
    public static func pca(_ images: [PatchFeatures], map: PatchPCAMap, patch: Int, title: String) throws -> RGBImage {
        let margin = 12, gap = 8
        let tileW = images.map(\.image.width).max() ?? 0
        // A long title over small tiles is drawn smaller rather than widening the picture.
        let scale = BitmapFont.width(title, scale: 2) <= 2 * tileW + gap ? 2 : 1, charH = BitmapFont.glyphHeight * scale
        let header = margin + charH + 8 + BitmapFont.glyphHeight + 10
        let width = Swift.max(margin * 2 + 2 * tileW + gap, margin * 2 + BitmapFont.width(title, scale: scale))
        let height = header + images.map { $0.image.height + gap }.reduce(0, +) + margin
        var canvas = Canvas(width: width, height: height)
        canvas.text(title, x: margin, y: margin, scale: scale)
        let fgShare = Double(map.foreground.flatMap { $0 }.filter { $0 }.count) / Double(Swift.max(1, map.foreground.flatMap { $0 }.count))
        canvas.text(String(format: "foreground: component 1 > %.3g (%.0f%% of patches); colours: components 1-3 of the foreground", map.threshold, 100 * fgShare),
                    x: margin, y: margin + charH + 8, scale: 1, color: .grey)
        var y = header
        for (n, im) in images.enumerated() {
            canvas.draw(im.image, x: margin, y: y)
            let colors = map.colors[n]
            for r in 0..<im.rows {
                for c in 0..<im.cols {
                    let (red, green, blue) = colors[r * im.cols + c]
                    canvas.fill(x: margin + tileW + gap + c * patch, y: y + r * patch, width: patch, height: patch,
                                color: RGB(r: byte(red), g: byte(green), b: byte(blue)))
                }
            }
            y += im.image.height + gap
        }
        return try canvas.image()
    }

    /// The image, then one heat map per head (cls→patch probability, each head scaled to its own
    /// maximum, patches as blocks of `patch` pixels), then their mean; labelled.
    public static func attention(image: RGBImage, heads: [[Float]], rows: Int, cols: Int, patch: Int,
                                 title: String, columns: Int = 4) throws -> RGBImage {
        let margin = 12, gap = 8
        let scale = BitmapFont.width(title, scale: 2) <= Swift.min(columns, heads.count + 2) * (image.width + gap) ? 2 : 1
        let charH = BitmapFont.glyphHeight * scale
        var maps = heads
        if heads.count > 1 {
            maps.append((0..<(rows * cols)).map { i in heads.reduce(0) { $0 + $1[i] } / Float(heads.count) })
        }
        let labels = heads.indices.map { "head \($0)" } + (heads.count > 1 ? ["mean"] : [])
        let tiles = 1 + maps.count
        let cols0 = Swift.max(1, Swift.min(columns, tiles)), rowsOfTiles = (tiles + cols0 - 1) / cols0
        let tileW = image.width, tileH = image.height + charH + 6
        let header = margin + charH + 8 + BitmapFont.glyphHeight + 10
        let width = Swift.max(margin * 2 + cols0 * (tileW + gap), margin * 2 + BitmapFont.width(title, scale: scale))
        let height = header + rowsOfTiles * (tileH + gap) + margin
        var canvas = Canvas(width: width, height: height)
        canvas.text(title, x: margin, y: margin, scale: scale)
        canvas.text("last block, softmax probability of the cls query on each patch; each map scaled to its own maximum",
                    x: margin, y: margin + charH + 8, scale: 1, color: .grey)
        func origin(_ t: Int) -> (Int, Int) { (margin + (t % cols0) * (tileW + gap), header + (t / cols0) * (tileH + gap)) }
        let (ix, iy) = origin(0)
        canvas.text("image", x: ix, y: iy, scale: scale)
        canvas.draw(image, x: ix, y: iy + charH + 6)
        for (m, values) in maps.enumerated() {
            let (x, y) = origin(m + 1)
            let peak = values.max() ?? 0
            canvas.text(labels[m] + String(format: "  max %.3f", peak), x: x, y: y, scale: scale)
            for r in 0..<rows {
                for c in 0..<cols {
                    let v = peak > 0 ? Double(values[r * cols + c] / peak) : 0
                    canvas.fill(x: x + c * patch, y: y + charH + 6 + r * patch, width: patch, height: patch, color: inferno(v))
                }
            }
        }
        return try canvas.image()
    }

    static func byte(_ v: Double) -> UInt8 { UInt8(Swift.min(255, Swift.max(0, (v * 255).rounded()))) }

    /// A perceptually ordered dark-to-bright colour map (anchors of matplotlib's inferno).
    static func inferno(_ v: Double) -> RGB {
        let anchors: [RGB] = [RGB(r: 0, g: 0, b: 4), RGB(r: 40, g: 11, b: 84), RGB(r: 101, g: 21, b: 110),
                              RGB(r: 159, g: 42, b: 99), RGB(r: 212, g: 72, b: 66), RGB(r: 245, g: 125, b: 21),
                              RGB(r: 250, g: 193, b: 39), RGB(r: 252, g: 255, b: 164)]
        let x = Swift.min(1, Swift.max(0, v.isFinite ? v : 0)) * Double(anchors.count - 1)
        let i = Swift.min(anchors.count - 2, Int(x))
        return anchors[i].mixed(with: anchors[i + 1], x - Double(i))
    }
}

extension FeaturePictures {
    /// The model input for a picture: the image resized (bicubic, as PIL) so its shorter side is
    /// about `shorterSide`, each side rounded to a multiple of `patch` (aspect ratio kept to within
    /// half a patch), so every pixel of the picture is covered by a patch.
    public static func inputSize(width: Int, height: Int, shorterSide: Int, patch: Int) -> ImageSize {
        let scale = Double(shorterSide) / Double(Swift.max(1, Swift.min(width, height)))
        func side(_ v: Int) -> Int { Swift.max(patch, Int((Double(v) * scale / Double(patch)).rounded()) * patch) }
        return ImageSize(height: side(height), width: side(width))
    }
}
