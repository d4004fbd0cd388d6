import Datasets
import Dispatch
import Foundation
import Images
import Kernels

/// Pixels for full fine-tuning. Training: DINOv2's linear-eval train transform
/// (`make_classification_train_transform`): RandomResizedCrop(size, scale 0.08–1, ratio 3/4–4/3,
/// bicubic) — the window drawn by Training/Data's torchvision port — then a horizontal flip with
/// probability ½, ToTensor, ImageNet normalisation. Evaluation: resize the shorter side, centre
/// crop. Each image's draws come from a generator keyed by (seed, step, slot in the batch), so a
/// batch is a function of the run's seed and step.
struct FinetunePixels {
    let size: Int
    let eval: Preprocess
    let table: [Float]
    let threads: Int

    init(size: Int, resize: Int, threads: Int) throws {
        self.size = size
        eval = .eval(resize: resize, crop: size)
        table = try eval.normalizationTable()
        self.threads = Swift.max(1, threads)
    }

    func train(_ images: any LabeledImages, indices: [Int], seed: UInt64, step: Int) throws -> [Float] {
        let s = size, table = self.table
        return try fill(images, indices: indices) { image, slot, out in
            var rng = RunRandom(seed: seed, 0x4155_4731, UInt64(step), UInt64(slot)) // "AUG1"
            let w = RandomResizedCrop.window(width: image.width, height: image.height, scale: [0.08, 1],
                                             ratio: [3.0 / 4.0, 4.0 / 3.0], rng: &rng)
            let region = Transforms.crop(image, top: w.top, left: w.left, size: ImageSize(height: w.height, width: w.width))
            var resized = try PILResample.resize(region, width: s, height: s, filter: .bicubic)
            if rng.uniform() < 0.5 { resized = try FinetunePixels.mirrored(resized) }
            try Preprocess(resizing: nil, crop: nil, mean: Preprocess.imageNetMean, std: Preprocess.imageNetStd)
                .write(resized, table: table, into: out)
        }
    }

    func eval(_ images: any LabeledImages, indices: [Int]) throws -> [Float] {
        let p = eval, table = self.table
        return try fill(images, indices: indices) { image, _, out in try p.write(image, table: table, into: out) }
    }

    private func fill(_ images: any LabeledImages, indices: [Int],
                      _ body: @escaping @Sendable (RGBImage, Int, UnsafeMutableBufferPointer<Float>) throws -> Void) throws -> [Float] {
        let plane = 3 * size * size, count = indices.count
        var pixels = [Float](repeating: 0, count: count * plane)
        var errors = [String?](repeating: nil, count: count)
        try pixels.withUnsafeMutableBufferPointer { px in
            try errors.withUnsafeMutableBufferPointer { er in
                let slots = PixelSlots(pixels: px.baseAddress!, errors: er.baseAddress!)
                let workers = Swift.max(1, Swift.min(threads, count))
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    for i in stride(from: w, to: count, by: workers) {
                        do {
                            try body(try images.image(at: indices[i]), i,
                                     UnsafeMutableBufferPointer(start: slots.pixels + i * plane, count: plane))
                        } catch {
                            slots.errors[i] = String(describing: error)
                        }
                    }
                }
                if let i = er.firstIndex(where: { $0 != nil }), let message = er[i] {
                    throw TrainingError.stepInput(file: images.source, message: "image \(indices[i]): \(message)")
                }
            }
        }
        return pixels
    }

    static func mirrored(_ image: RGBImage) throws -> RGBImage {
        let w = image.width, h = image.height
        var px = [UInt8](repeating: 0, count: w * h * 3)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<h {
                for x in 0..<w {
                    let s = (y * w + x) * 3, d = (y * w + (w - 1 - x)) * 3
                    px[d] = src[s]
                    px[d + 1] = src[s + 1]
                    px[d + 2] = src[s + 2]
                }
            }
        }
        return try RGBImage(width: w, height: h, pixels: px)
    }
}

/// Batch buffers shared by decode workers; each touches only its own slots.
struct PixelSlots: @unchecked Sendable {
    let pixels: UnsafeMutablePointer<Float>
    let errors: UnsafeMutablePointer<String?>
}
