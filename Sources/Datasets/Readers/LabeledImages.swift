import Images

/// Images with integer labels and class names: what the probe extracts features from (a CIFAR-10
/// split, an ImageFolder tree). Images are produced on demand, one at a time, from any thread.
public protocol LabeledImages: Sendable {
    /// Class names; label `i` names `classes[i]`.
    var classes: [String] { get }
    /// One label per image, in `0..<classes.count`.
    var labels: [Int] { get }
    /// The image at `index` as 8-bit RGB (decoded if it lives in a file).
    func image(at index: Int) throws -> RGBImage
    /// Where the images come from, for messages and reports ("cifar-10-batches-bin/ train").
    var source: String { get }
    /// A digest of what the images are (content for CIFAR, paths, sizes and dates for a folder):
    /// cached features are reused only when it matches.
    func fingerprint() throws -> String
}

extension LabeledImages {
    public var count: Int { labels.count }
}
