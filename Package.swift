// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "DinoKit",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "TensorStore", targets: ["TensorStore"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Kernels", targets: ["Kernels"]),
        .library(name: "Images", targets: ["Images"]),
        .library(name: "DINOv2", targets: ["DINOv2"]),
        .library(name: "ONNXExport", targets: ["ONNXExport"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Reporting", targets: ["Reporting"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "Training", targets: ["Training"]),
        .executable(name: "dinokit", targets: ["dinokit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries from Debian (see README for the apt-get line).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        // SHA-256 for the feature cache (Sources/Datasets/SHA256.swift says why not swift-crypto).
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CImageCodecs", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev", "libpng-dev"])]),

        // C code generated once from onnx.proto by protoc-c (Scripts/gen-onnx-proto).
        .target(name: "ONNXProto", dependencies: ["CProtobufC"]),

        .target(name: "TensorStore", dependencies: [
            .product(name: "OrderedCollections", package: "swift-collections"),
        ]),
        .target(name: "Formats", dependencies: ["TensorStore", "CZip",
                                               .product(name: "OrderedCollections", package: "swift-collections")]),
        // SIMD kernels in C, compiled per function for AVX-512 / AVX2 and chosen at run time.
        .target(name: "CKernels"),
        .target(name: "Kernels", dependencies: ["TensorStore", "COpenBLAS", "CKernels"]),
        .target(name: "Images", dependencies: ["TensorStore", "CImageCodecs"]),
        .target(name: "DINOv2", dependencies: ["Kernels", "Formats", "TensorStore"]),
        .target(name: "ONNXExport", dependencies: ["DINOv2", "Formats", "Kernels", "TensorStore", "ONNXProto"]),
        // What Training and Evaluation share sits below both, so neither imports the other:
        // labelled image sets, batch decoding, feature extraction and k-NN (Datasets), and the
        // progress bar, charts and report pictures (Reporting).
        .target(name: "Datasets", dependencies: ["DINOv2", "Images", "Formats", "Kernels", "TensorStore", "CCrypto"]),
        .target(name: "Reporting", dependencies: ["Datasets", "Images"]),
        .target(name: "Training", dependencies: ["DINOv2", "Datasets", "Reporting", "Images", "Formats", "Kernels", "TensorStore",
                                               .product(name: "Yams", package: "Yams")]),
        .target(name: "Evaluation", dependencies: ["DINOv2", "Datasets", "Reporting", "Images", "Formats", "Kernels", "TensorStore"]),
        .executableTarget(name: "dinokit", dependencies: [
            "DINOv2", "Formats", "TensorStore", "Kernels", "Images", "ONNXExport", "Datasets", "Reporting", "Evaluation", "Training",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .target(name: "TestSupport", dependencies: ["TensorStore", "Formats", "Kernels"], path: "Tests/Support"),
        .testTarget(name: "TensorStoreTests", dependencies: ["TensorStore", "Formats", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TensorStore", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "Formats", "TestSupport"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "Formats", "TestSupport"]),
        .testTarget(name: "ONNXExportTests", dependencies: ["ONNXExport", "DINOv2", "Formats", "TestSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Datasets", "Reporting", "DINOv2", "Images", "Formats", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "DINOv2", "Datasets", "Images", "Kernels", "Formats", "TestSupport"]),
        .testTarget(name: "DINOv2Tests", dependencies: ["DINOv2", "Formats", "TestSupport"]),
        // Runs the built dinokit binary (an executable target cannot be imported by tests here).
        // DINOv2 and Formats only to write the inputs (random weights, .npy) the binary is run on.
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "DINOv2", "Formats"]),
    ]
)
