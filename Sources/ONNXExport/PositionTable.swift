import DINOv2
import Kernels

/// The position grid a fixed-size export bakes: DinoKit's `interpolatePositionEmbedding`
/// (dinov2-spec §1.6) on the stored table, with the same taps (`PositionInterpolation.axes`) and
/// Kernels calls, so the baked values are the ones DinoKit's own forward adds.
enum PositionTable {
    /// The (h·w, D) grid rows for an H × W input, or nil when the official skip applies
    /// (h·w == M² and H == W: the stored table is used as it is).
    static func bakedGrid(table: [Float], grid m: Int, dim d: Int, patchRows h: Int, patchCols w: Int,
                          imageHeight: Int, imageWidth: Int, interpolation: PositionInterpolation) throws -> [Float]? {
        let axes: (rows: ResampleAxis, cols: ResampleAxis)?
        do {
            axes = try interpolation.axes(grid: m, patchRows: h, patchCols: w, imageHeight: imageHeight, imageWidth: imageWidth)
        } catch {
            throw ONNXExportError.invalidSize("\(error) (the official code fails the same way)")
        }
        guard let (rows, cols) = axes else { return nil }
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
