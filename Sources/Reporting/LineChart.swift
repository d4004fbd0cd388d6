import Foundation
import Images

/// A line chart for training curves (`dinokit train ssl` writes loss.png and knn.png with it):
/// title, framed plot area with light grid lines, tick labels on both axes, axis captions and a
/// legend; each series a polyline (and dots when it has few points).
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, points: [(x: Double, y: Double)]) {
            self.name = name
            self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 900
    public var height = 540
    /// Fixed y range (e.g. 0…100 for accuracies); nil: the data's, padded.
    public var yRange: ClosedRange<Double>? = nil

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
    }

    static let palette: [RGB] = [.blue, .red, .green, RGB(r: 200, g: 120, b: 0), RGB(r: 120, g: 40, b: 160),
                                 RGB(r: 0, g: 140, b: 150)]

    public func render() throws -> RGBImage {
        let scale = 2, charH = BitmapFont.glyphHeight * scale
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var xMin = finite.map(\.x).min() ?? 0, xMax = finite.map(\.x).max() ?? 1
        if xMax <= xMin { xMax = xMin + 1 }
        var yMin = finite.map(\.y).min() ?? 0, yMax = finite.map(\.y).max() ?? 1
        if let yRange {
            yMin = yRange.lowerBound
            yMax = yRange.upperBound
        } else {
            if yMax <= yMin { (yMin, yMax) = (yMin - 0.5, yMax + 0.5) }
            let pad = (yMax - yMin) * 0.05
            (yMin, yMax) = (yMin - pad, yMax + pad)
        }
        let yTicks = Self.ticks(yMin, yMax), xTicks = Self.ticks(xMin, xMax)
        let yTickText = yTicks.map { Self.format($0, step: yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1) }
        let left = 24 + charH + 12 + (yTickText.map { BitmapFont.width($0, scale: scale) }.max() ?? 0) + 10
        let top = 20 + charH + 14 + charH + 14 + charH + 8 // title, legend, y caption
        let right = 30, bottom = 10 + charH + 10 + charH + 20
        let plotW = width - left - right, plotH = height - top - bottom
        var c = Canvas(width: width, height: height)
        c.text(title, x: left, y: 20, scale: scale)
        // Legend, one row under the title.
        var lx = left
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            c.fill(x: lx, y: 20 + charH + 14 + charH / 2 - 2, width: 24, height: 4, color: color)
            c.text(s.name, x: lx + 30, y: 20 + charH + 14, scale: scale, color: .ink)
            lx += 30 + BitmapFont.width(s.name, scale: scale) + 24
        }
        func px(_ x: Double) -> Int { left + Int(((x - xMin) / (xMax - xMin) * Double(plotW - 1)).rounded()) }
        func py(_ y: Double) -> Int { top + plotH - 1 - Int(((y - yMin) / (yMax - yMin) * Double(plotH - 1)).rounded()) }
        for (t, text) in zip(yTicks, yTickText) where t >= yMin && t <= yMax {
            let y = py(t)
            c.fill(x: left, y: y, width: plotW, height: 1, color: .lightGrey)
            c.text(text, x: left - 8 - BitmapFont.width(text, scale: scale), y: y - charH / 2, scale: scale, color: .grey)
        }
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        for t in xTicks where t >= xMin && t <= xMax {
            let x = px(t)
            c.fill(x: x, y: top, width: 1, height: plotH, color: .lightGrey)
            let text = Self.format(t, step: xStep)
            c.centredText(text, x: x - 40, width: 80, y: top + plotH + 8, scale: scale, color: .grey)
        }
        c.outline(x: left, y: top, width: plotW, height: plotH, color: .ink)
        c.centredText(xLabel, x: left, width: plotW, y: top + plotH + 10 + charH + 10, scale: scale)
        // The y caption above the axis (vertical text would be unreadable in this font).
        c.text(yLabel, x: 24, y: top - charH - 8, scale: scale, color: .grey)
        for (i, s) in series.enumerated() {
            let color = Self.palette[i % Self.palette.count]
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite && $0.y >= yMin && $0.y <= yMax }
            for (a, b) in zip(pts, pts.dropFirst()) { c.line(px(a.x), py(a.y), px(b.x), py(b.y), color: color) }
            if pts.count <= 40 {
                for p in pts { c.fill(x: px(p.x) - 3, y: py(p.y) - 3, width: 7, height: 7, color: color) }
            }
        }
        return try c.image()
    }

    public func write(to path: String) throws {
        try PNGEncoder.write(try render(), to: path)
    }

    /// About six round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 6
        guard raw > 0, raw.isFinite else { return [lo] }
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var out: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + step * 1e-9, out.count < 50 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    static func format(_ v: Double, step: Double) -> String {
        if abs(v) >= 1e5 || (abs(v) < 1e-3 && v != 0) { return String(format: "%.1e", v) }
        let decimals = Swift.max(0, Swift.min(4, Int(-floor(log10(step)))))
        return String(format: "%.\(decimals)f", v)
    }
}

extension Canvas {
    /// A 2-pixel-wide line (Bresenham, each point a 2×2 square).
    package mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, color: RGB) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            fill(x: x, y: y, width: 2, height: 2, color: color)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }
}
