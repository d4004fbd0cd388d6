import Foundation
import Images

/// The pictures `probe --report` writes: a confusion matrix and a gallery of misclassified test
/// images with their actual and predicted labels.
public enum ReportPictures {
    /// Rows are actual classes, columns predicted ones; a cell's colour is its share of the row
    /// (white → blue), its number the count. Rows carry "index name", columns the index, and a
    /// last column the per-class accuracy.
    public static func confusionMatrix(_ confusion: ConfusionMatrix, title: String) throws -> RGBImage {
        let k = confusion.classes.count
        let scale = 2, charW = BitmapFont.advance * scale, charH = BitmapFont.glyphHeight * scale
        let names = confusion.classes.enumerated().map { "\($0) " + Canvas.clipped($1, to: 16) }
        let maxCount = confusion.counts.flatMap { $0 }.max() ?? 0
        let cell = Swift.max(44, BitmapFont.width(String(maxCount), scale: scale) + 12)
        let margin = 20
        let labelWidth = (names.map(\.count).max() ?? 1) * charW + 12
        let accuracyWidth = 7 * charW
        let captionY = margin + charH + 16
        let top = captionY + charH + 10 + charH + 8 // title, "predicted", column indices
        let left = margin + labelWidth
        let width = Swift.max(left + k * cell + 12 + accuracyWidth + margin, margin * 2 + BitmapFont.width(title, scale: scale))
        let height = top + k * cell + 16 + charH + margin

        var canvas = Canvas(width: width, height: height)
        canvas.text(title, x: margin, y: margin, scale: scale)
        canvas.centredText("predicted", x: left, width: k * cell, y: captionY, scale: scale, color: .grey)
        canvas.text("actual", x: margin, y: top - charH - 8, scale: scale, color: .grey)
        canvas.text("acc", x: left + k * cell + 12, y: top - charH - 8, scale: scale, color: .grey)
        for j in 0..<k {
            canvas.centredText(String(j), x: left + j * cell, width: cell, y: top - charH - 8, scale: scale, color: .grey)
        }
        for i in 0..<k {
            let y = top + i * cell
            canvas.text(names[i], x: margin, y: y + (cell - charH) / 2, scale: scale)
            let rowTotal = confusion.counts[i].reduce(0, +)
            for j in 0..<k {
                let x = left + j * cell
                let count = confusion.counts[i][j]
                let share = rowTotal > 0 ? Double(count) / Double(rowTotal) : 0
                canvas.fill(x: x, y: y, width: cell, height: cell, color: RGB.white.mixed(with: .blue, share))
                canvas.outline(x: x, y: y, width: cell + 1, height: cell + 1, color: .lightGrey)
                if count > 0 {
                    canvas.centredText(String(count), x: x, width: cell, y: y + (cell - charH) / 2, scale: scale,
                                       color: share > 0.5 ? .white : .ink)
                }
            }
            let acc = confusion.perClassAccuracy[i].map { String(format: "%.1f%%", 100 * $0) } ?? "-"
            canvas.text(acc, x: left + k * cell + 12, y: y + (cell - charH) / 2, scale: scale)
        }
        // Diagonal cells outlined: the correct predictions.
        for i in 0..<k {
            canvas.outline(x: left + i * cell, y: top + i * cell, width: cell + 1, height: cell + 1, color: .ink, thickness: 2)
        }
        canvas.text("cell colour: share of the actual class; outlined: correct", x: margin, y: top + k * cell + 16,
                    scale: 1, color: .grey)
        return try canvas.image()
    }

    /// One misclassified image: the picture and the two labels.
    public struct GalleryItem: Sendable {
        public var image: RGBImage
        public var actual: String
        public var predicted: String
        public init(image: RGBImage, actual: String, predicted: String) {
            self.image = image
            self.actual = actual
            self.predicted = predicted
        }
    }

    /// A grid of thumbnails (small images enlarged by whole pixels, large ones shrunk to fit),
    /// each captioned with the actual label (green) and the predicted one (red).
    public static func gallery(_ items: [GalleryItem], title: String, columns: Int = 8) throws -> RGBImage {
        let thumb = 128, scale = 2, charH = BitmapFont.glyphHeight * scale
        let maxChars = thumb / (BitmapFont.advance * scale)
        let tileW = thumb + 12, tileH = thumb + 8 + 2 * (charH + 6) + 8
        let margin = 20
        let cols = Swift.max(1, Swift.min(columns, items.count))
        let rows = (items.count + cols - 1) / cols
        let header = margin + charH + 10 + charH + 16
        let width = Swift.max(margin * 2 + cols * tileW, margin * 2 + BitmapFont.width(title, scale: scale))
        let height = header + Swift.max(1, rows) * tileH + margin
        var canvas = Canvas(width: width, height: height)
        canvas.text(title, x: margin, y: margin, scale: scale)
        let legendY = margin + charH + 10
        canvas.text("actual", x: margin, y: legendY, scale: scale, color: .green)
        canvas.text("predicted", x: margin + BitmapFont.width("actual  ", scale: scale), y: legendY, scale: scale, color: .red)
        if items.isEmpty {
            canvas.text("no misclassified images", x: margin, y: header, scale: scale, color: .grey)
        }
        for (n, item) in items.enumerated() {
            let x = margin + (n % cols) * tileW, y = header + (n / cols) * tileH
            let small = try fit(item.image, into: thumb)
            canvas.fill(x: x, y: y, width: thumb, height: thumb, color: .lightGrey)
            canvas.draw(small, x: x + (thumb - small.width) / 2, y: y + (thumb - small.height) / 2)
            canvas.text(Canvas.clipped(item.actual, to: maxChars), x: x, y: y + thumb + 8, scale: scale, color: .green)
            canvas.text(Canvas.clipped(item.predicted, to: maxChars), x: x, y: y + thumb + 8 + charH + 6, scale: scale, color: .red)
        }
        return try canvas.image()
    }

    /// Enlarges by a whole factor (nearest neighbour: pixels stay visible, as CIFAR's 32×32
    /// images are) or shrinks with PIL-style bicubic to fit a `side`×`side` box.
    static func fit(_ image: RGBImage, into side: Int) throws -> RGBImage {
        let longest = Swift.max(image.width, image.height)
        if longest <= side {
            let f = Swift.max(1, side / longest)
            guard f > 1 else { return image }
            var px = [UInt8](repeating: 0, count: image.width * f * image.height * f * 3)
            let w = image.width * f
            for y in 0..<(image.height * f) {
                for x in 0..<w {
                    let s = ((y / f) * image.width + x / f) * 3, d = (y * w + x) * 3
                    px[d] = image.pixels[s]
                    px[d + 1] = image.pixels[s + 1]
                    px[d + 2] = image.pixels[s + 2]
                }
            }
            return try RGBImage(width: w, height: image.height * f, pixels: px)
        }
        let w = Swift.max(1, image.width * side / longest), h = Swift.max(1, image.height * side / longest)
        return try Transforms.resize(image, to: .exact(ImageSize(height: h, width: w)), interpolation: .bicubic)
    }
}
