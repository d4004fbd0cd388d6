import DINOv2
import Kernels

/// The position grid a fixed-size export bakes: DinoKit's `interpolatePositionEmbedding`
/// (dinov2-spec §1.6) on the stored table, through the same Kernels calls, so the baked values
/// are the ones DinoKit's own forward adds.
enum PositionTable {
    /// The (h·w, D) grid rows for an H × W input, or nil when the official skip applies
    /// (h·w == M² and H == W: the stored table is used as it is).
    static func bakedGrid(table: [Float], grid m: Int, dim d: Int, patchRows h: Int, patchCols w: Int,
                          imageHeight: Int, imageWidth: Int, interpolation: PositionInterpolation) throws -> [Float]? {
        if h * w == m * m && imageHeight == imageWidth { return nil }
        let rows: ResampleAxis, cols: ResampleAxis
        if interpolation.offset != 0 {
            let sy = (Double(h) + interpolation.offset) / Double(m)
            let sx = (Double(w) + interpolation.offset) / Double(m)
            let oh = BicubicResize.outputSize(inputSize: m, scaleFactor: sy)
            let ow = BicubicResize.outputSize(inputSize: m, scaleFactor: sx)
            guard oh == h, ow == w else {
                throw ONNXExportError.invalidSize("scale factors (\(sy), \(sx)) give a \(oh)x\(ow) grid, not \(h)x\(w) (the official code fails the same way)")
            }
            rows = BicubicResize.axis(inputSize: m, outputSize: h, scaleFactor: sy, antialias: interpolation.antialias)
            cols = BicubicResize.axis(inputSize: m, outputSize: w, scaleFactor: sx, antialias: interpolation.antialias)
        } else {
            rows = BicubicResize.axis(inputSize: m, outputSize: h, antialias: interpolation.antialias)
            cols = BicubicResize.axis(inputSize: m, outputSize: w, antialias: interpolation.antialias)
        }
        var out = [Float](repeating: 0, count: h * w * d)
        var scratch = [Float](repeating: 0, count: Swift.max(1, BicubicResize.scratchCount(rows: rows, cols: cols, channels: d)))
        table.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                scratch.withUnsafeMutableBufferPointer { s in
                    // Rows 1… of the table are the (M, M, D) grid, channels last.
                    BicubicResize.resizeChannelsLast(out: dst.baseAddress!, inp: src.baseAddress! + d, channels: d,
                                                     rows: rows, cols: cols, scratch: s.baseAddress!)
                }
            }
        }
        return out
    }
}
