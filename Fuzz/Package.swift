// swift-tools-version: 6.0
// libFuzzer targets for DinoKit's readers, one per reader (see README.md). A package of its own so
// the sanitizer flags and unsafeFlags never reach the main package, which must stay usable as a
// dependency. Build (Swift 6.3.1, Linux):
//   swift build --package-path Fuzz -c release --sanitize fuzzer --sanitize address
import PackageDescription

/// Each target is one file defining `LLVMFuzzerTestOneInput` with `@_cdecl`; libFuzzer supplies
/// `main`, so the file is compiled as a library (`-parse-as-library`: no top-level code).
let targets: [(name: String, dependencies: [String])] = [
    ("fuzz-pickle", ["Formats"]),
    ("fuzz-numpy-pickle", ["Formats"]),
    ("fuzz-pth-zip", ["Formats"]),
    ("fuzz-pth-legacy", ["Formats"]),
    ("fuzz-safetensors", ["Formats"]),
    ("fuzz-npy", ["Formats"]),
    ("fuzz-npz", ["Formats"]),
    ("fuzz-onnx", ["Formats"]),
    ("fuzz-hf-config", ["Formats"]),
    ("fuzz-golden", ["DINOv2"]),
    ("fuzz-run-checkpoint", ["Training"]),
    ("fuzz-run-config", ["Training"]),
    ("fuzz-jpeg", ["Images"]),
    ("fuzz-png", ["Images"]),
]

let package = Package(
    name: "DinoKitFuzz",
    dependencies: [.package(name: "DinoKit", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "TensorStore", package: "DinoKit")]),
    ] + targets.map { target in
        .executableTarget(
            name: target.name,
            dependencies: ["FuzzSupport"] + target.dependencies.map { .product(name: $0, package: "DinoKit") },
            swiftSettings: [.unsafeFlags(["-parse-as-library"])])
    }
)
