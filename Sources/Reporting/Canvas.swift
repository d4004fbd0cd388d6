import Images

/// An 8-bit RGB colour.
package struct RGB: Equatable {
    package var r: UInt8, g: UInt8, b: UInt8

    package init(r: UInt8, g: UInt8, b: UInt8) { self.r = r; self.g = g; self.b = b }

    package static let white = RGB(r: 255, g: 255, b: 255)
    package static let black = RGB(r: 0, g: 0, b: 0)
    package static let ink = RGB(r: 34, g: 34, b: 34)
    package static let grey = RGB(r: 120, g: 120, b: 120)
    package static let lightGrey = RGB(r: 225, g: 225, b: 225)
    package static let blue = RGB(r: 31, g: 78, b: 160)
    package static let green = RGB(r: 20, g: 120, b: 40)
    package static let red = RGB(r: 190, g: 30, b: 30)

    /// Linear blend from `self` (t = 0) to `other` (t = 1).
    package func mixed(with other: RGB, _ t: Double) -> RGB {
        let t = Swift.min(1, Swift.max(0, t))
        func m(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) * (1 - t) + Double(b) * t).rounded()) }
        return RGB(r: m(r, other.r), g: m(g, other.g), b: m(b, other.b))
    }
}

/// A pixel buffer to draw report pictures on: filled rectangles, 5×7 bitmap text, images.
/// Everything outside the canvas is clipped.
package struct Canvas {
    package let width: Int
    package let height: Int
    private(set) var pixels: [UInt8]

    package init(width: Int, height: Int, background: RGB = .white) {
        self.width = Swift.max(1, width)
        self.height = Swift.max(1, height)
        pixels = [UInt8](repeating: 0, count: self.width * self.height * 3)
        fill(x: 0, y: 0, width: self.width, height: self.height, color: background)
    }

    package mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: RGB) {
        let x0 = Swift.max(0, x), y0 = Swift.max(0, y)
        let x1 = Swift.min(width, x + w), y1 = Swift.min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            for xx in x0..<x1 {
                let i = (yy * width + xx) * 3
                pixels[i] = color.r
                pixels[i + 1] = color.g
                pixels[i + 2] = color.b
            }
        }
    }

    /// A one-pixel-wide rectangle outline (`thickness` pixels inwards).
    package mutating func outline(x: Int, y: Int, width w: Int, height h: Int, color: RGB, thickness: Int = 1) {
        fill(x: x, y: y, width: w, height: thickness, color: color)
        fill(x: x, y: y + h - thickness, width: w, height: thickness, color: color)
        fill(x: x, y: y, width: thickness, height: h, color: color)
        fill(x: x + w - thickness, y: y, width: thickness, height: h, color: color)
    }

    /// Draws `text` with its top-left corner at (x, y), each font pixel `scale`×`scale`.
    package mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, color: RGB = .ink) {
        var cx = x
        for c in text {
            for (row, bits) in BitmapFont.rows(c).enumerated() {
                for col in 0..<BitmapFont.glyphWidth where bits & (1 << UInt8(BitmapFont.glyphWidth - 1 - col)) != 0 {
                    fill(x: cx + col * scale, y: y + row * scale, width: scale, height: scale, color: color)
                }
            }
            cx += BitmapFont.advance * scale
        }
    }

    /// `text` centred horizontally in [x, x + width).
    package mutating func centredText(_ text: String, x: Int, width w: Int, y: Int, scale: Int = 1, color: RGB = .ink) {
        self.text(text, x: x + (w - BitmapFont.width(text, scale: scale)) / 2, y: y, scale: scale, color: color)
    }

    /// Copies `image` with its top-left corner at (x, y).
    package mutating func draw(_ image: RGBImage, x: Int, y: Int) {
        for yy in 0..<image.height where y + yy >= 0 && y + yy < height {
            for xx in 0..<image.width where x + xx >= 0 && x + xx < width {
                let d = ((y + yy) * width + (x + xx)) * 3, s = (yy * image.width + xx) * 3
                pixels[d] = image.pixels[s]
                pixels[d + 1] = image.pixels[s + 1]
                pixels[d + 2] = image.pixels[s + 2]
            }
        }
    }

    package func image() throws -> RGBImage {
        try RGBImage(width: width, height: height, pixels: pixels)
    }

    /// `text` shortened with a trailing "~" to at most `limit` characters.
    package static func clipped(_ text: String, to limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(Swift.max(0, limit - 1))) + "~"
    }
}
