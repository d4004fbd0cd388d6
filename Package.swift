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
        .executable(name: "dinokit", targets: ["dinokit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // System libraries from Debian (see README for the apt-get line).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"])]),
        .systemLibrary(name: "CImageCodecs", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev", "libpng-dev"])]),

        .target(name: "TensorStore", dependencies: [
            .product(name: "OrderedCollections", package: "swift-collections"),
        ]),
        .target(name: "Formats", dependencies: ["TensorStore", "CZip"]),
        .target(name: "Kernels", dependencies: ["TensorStore", "COpenBLAS"]),
        .target(name: "Images", dependencies: ["TensorStore", "CImageCodecs"]),
        .target(name: "DINOv2", dependencies: ["Kernels", "Formats", "TensorStore"]),
        .executableTarget(name: "dinokit", dependencies: [
            "DINOv2", "Formats", "TensorStore", "Kernels", "Images",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .target(name: "TestSupport", dependencies: ["TensorStore", "Formats"], path: "Tests/Support"),
        .testTarget(name: "TensorStoreTests", dependencies: ["TensorStore", "Formats", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TensorStore", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "TestSupport"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "Formats", "TestSupport"]),
        .testTarget(name: "DINOv2Tests", dependencies: ["DINOv2", "Formats", "TestSupport"]),
    ]
)
