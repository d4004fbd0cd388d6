import Kernels

extension PositionInterpolation {
    /// The separable bicubic `interpolate_pos_encoding` (spec §1.6) applies to the M × M grid for
    /// an H × W input of h × w patches, or nil when the official code uses the table as stored.
    ///
    /// Skipped only when h·w == M² and H == W, exactly the official test; a non-square input is
    /// always resampled, even when h·w == M². A non-zero offset takes F.interpolate's
    /// `scale_factor` branch (factors (h + offset)/M, (w + offset)/M in Double, output size
    /// floor(M · factor), which must come out as h, w — the official assert — and the kernel
    /// samples with 1/factor, not M/h), otherwise the `size` branch. The forward here and the
    /// training backward (Training's `PositionResampling`) both take their taps from this.
    public func axes(grid m: Int, patchRows h: Int, patchCols w: Int,
                     imageHeight: Int, imageWidth: Int) throws -> (rows: ResampleAxis, cols: ResampleAxis)? {
        if h * w == m * m && imageHeight == imageWidth { return nil }
        if offset != 0 {
            let sy = (Double(h) + offset) / Double(m), sx = (Double(w) + offset) / Double(m)
            let oh = BicubicResize.outputSize(inputSize: m, scaleFactor: sy)
            let ow = BicubicResize.outputSize(inputSize: m, scaleFactor: sx)
            guard oh == h, ow == w else { throw DINOv2Error.interpolationSize(got: [oh, ow], expected: [h, w]) }
            return (BicubicResize.axis(inputSize: m, outputSize: h, scaleFactor: sy, antialias: antialias),
                    BicubicResize.axis(inputSize: m, outputSize: w, scaleFactor: sx, antialias: antialias))
        }
        return (BicubicResize.axis(inputSize: m, outputSize: h, antialias: antialias),
                BicubicResize.axis(inputSize: m, outputSize: w, antialias: antialias))
    }
}

/// The official `interpolate_pos_encoding` (spec §1.6): the (1 + M², D) table resampled to the
/// input's h × w patch grid, cls row untouched (`PositionInterpolation.axes` says how). Written
/// into `out`, (1 + h·w, D).
func interpolatePositionEmbedding(out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>,
                                  grid m: Int, dim d: Int, patchRows h: Int, patchCols w: Int,
                                  imageHeight: Int, imageWidth: Int,
                                  interpolation: PositionInterpolation, workspace: Workspace) throws {
    guard let (rows, cols) = try interpolation.axes(grid: m, patchRows: h, patchCols: w,
                                                    imageHeight: imageHeight, imageWidth: imageWidth) else {
        out.update(from: table, count: (1 + m * m) * d)
        return
    }
    out.update(from: table, count: d)
    let scratch = workspace.buffer(.resampleScratch, BicubicResize.scratchCount(rows: rows, cols: cols, channels: d))
    // Rows 1… of the table are the (M, M, D) grid in channels-last order, which is what
    // `reshape(1, M, M, D).permute(0, 3, 1, 2)` views as (1, D, M, M); the output comes back in
    // the (h, w, D) order of the final `permute(0, 2, 3, 1).view(1, -1, D)`.
    BicubicResize.resizeChannelsLast(out: out + d, inp: table + d, channels: d, rows: rows, cols: cols,
                                     scratch: scratch.pointer)
}
