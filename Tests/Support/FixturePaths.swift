import Foundation

/// The repository root, found from this source file's location (Tests/Support/FixturePaths.swift).
public let repositoryRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

/// Absolute path of a file under Fixtures/.
public func fixturePath(_ relative: String) -> String {
    repositoryRoot + "/Fixtures/" + relative
}

/// A fresh temporary directory for one test; removed by the caller or left for the OS.
public func makeTemporaryDirectory(_ label: String = "dinokit-test") -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
