import Datasets
import Evaluation
import Formats
import Foundation
import TestSupport
import XCTest

/// The feature cache reuses features only for the same key and intact files, and writes
/// atomically.
final class FeatureCacheTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = makeTemporaryDirectory("feature-cache") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    let key = FeatureCacheKey(weightsSHA256: "ab", model: "tiny", preprocessing: "Resize(224)", datasetFingerprint: "cd",
                              split: "train", count: 2)
    let features = try! FeatureMatrix(rows: 2, columns: 3, values: [1, 2, 3, 4, 5, 6])

    func testReusesOnlyForTheSameKey() throws {
        let cache = try FeatureCache(directory: directory)
        var calls = 0
        let extract = { () throws -> FeatureMatrix in calls += 1; return self.features }
        let first = try cache.features(for: key, labels: [0, 1], weightsPath: "w", extract: extract)
        XCTAssertFalse(first.reused)
        let second = try cache.features(for: key, labels: [0, 1], weightsPath: "w", extract: extract)
        XCTAssertTrue(second.reused)
        XCTAssertEqual(second.features, features)
        XCTAssertEqual(calls, 1)
        var changes: [FeatureCacheKey] = []
        for change in 0..<6 {
            var k = key
            switch change {
            case 0: k.weightsSHA256 = "other weights"
            case 1: k.model = "other model"
            case 2: k.preprocessing = "Resize(256)"
            case 3: k.datasetFingerprint = "other images"
            case 4: k.precision = "bf16"
            default: k.split = "test"
            }
            changes.append(k)
            _ = try cache.features(for: k, labels: [0, 1], weightsPath: "w", extract: extract)
        }
        XCTAssertEqual(calls, 7)
        XCTAssertEqual(Set(changes.map(\.stem) + [key.stem]).count, 7)
    }

    /// Entries cached before the key had a precision hold f32 features: their manifests (no
    /// "precision") read as f32 and their file names are unchanged, so f32 runs keep reusing them.
    func testEntriesFromBeforeThePrecisionReadAsF32() throws {
        // hashlib.sha256(b"ab\ntiny\nResize(224)\ncd\ntrain\n2") — the digest the stem had then —
        // and with "\nprecision bf16" appended.
        XCTAssertEqual(key.precision, "f32")
        XCTAssertEqual(key.stem, "train-65a7ab5f8050c45d")
        var bf16 = key
        bf16.precision = "bf16"
        XCTAssertEqual(bf16.stem, "train-1001d6fbde7c08e9")

        let cache = try FeatureCache(directory: directory)
        try cache.store(features, labels: [0, 1], key: key, weightsPath: "w")
        let p = cache.paths(for: key)
        var manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: p.manifest))) as? [String: Any])
        var stored = try XCTUnwrap(manifest["key"] as? [String: Any])
        XCTAssertEqual(stored.removeValue(forKey: "precision") as? String, "f32")
        manifest["key"] = stored
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: p.manifest))
        guard case let .hit(reused) = cache.lookup(key) else { return XCTFail("an f32 entry without a precision is not reused") }
        XCTAssertEqual(reused, features)
        guard case .miss = cache.lookup(bf16) else { return XCTFail("f32 features reused for bf16") }
    }

    func testDamagedEntriesAreExtractedAgain() throws {
        let cache = try FeatureCache(directory: directory)
        try cache.store(features, labels: [0, 1], key: key, weightsPath: "w")
        guard case .hit = cache.lookup(key) else { return XCTFail("fresh entry not reused") }
        let p = cache.paths(for: key)

        // Features overwritten (same shape, other values): the digest no longer matches.
        try NPYWriting.write(try FeatureMatrix(rows: 2, columns: 3, values: [0, 0, 0, 0, 0, 0]), to: p.features)
        guard case let .miss(reason) = cache.lookup(key) else { return XCTFail("changed features reused") }
        XCTAssertTrue(reason.contains("changed"), reason)

        // A manifest cut short is not trusted.
        try cache.store(features, labels: [0, 1], key: key, weightsPath: "w")
        let manifest = try Data(contentsOf: URL(fileURLWithPath: p.manifest))
        try manifest.prefix(20).write(to: URL(fileURLWithPath: p.manifest))
        guard case .miss = cache.lookup(key) else { return XCTFail("truncated manifest trusted") }

        // No manifest, no entry (an interrupted write leaves none).
        try FileManager.default.removeItem(atPath: p.manifest)
        guard case .miss = cache.lookup(key) else { return XCTFail("entry without manifest trusted") }

        let again = try cache.features(for: key, labels: [0, 1], weightsPath: "w") { self.features }
        XCTAssertFalse(again.reused)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }, [])
    }

    func testCacheFolderMustBeAFolder() throws {
        let file = directory + "/file"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        XCTAssertThrowsError(try FeatureCache(directory: file))
    }

    func testWeightsDigestIsTheFilesSHA256() throws {
        // hashlib's digests, recorded by Scripts/fixtures/probe.py.
        let reference = try CIFARReference.load()
        for (name, digest) in reference.sha256 {
            XCTAssertEqual(try FeatureCache.weightsDigest(path: fixturePath("cifar/cifar-10-batches-bin/" + name)), digest, name)
        }
        XCTAssertEqual(reference.sha256.count, 7)
    }

    func testSHA256KnownAnswersAndStreaming() throws {
        // FIPS 180-4 examples.
        var empty = SHA256()
        XCTAssertEqual(empty.hexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = SHA256()
        abc.update(Array("abc".utf8))
        XCTAssertEqual(abc.hexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var two = SHA256()
        two.update(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
        XCTAssertEqual(two.hexDigest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Pieces of every size give the digest of the whole.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var whole = SHA256()
        whole.update(data)
        let expected = whole.hexDigest()
        for piece in [1, 3, 63, 64, 65, 200] {
            var h = SHA256()
            var i = 0
            while i < data.count { h.update(Array(data[i..<Swift.min(data.count, i + piece)])); i += piece }
            XCTAssertEqual(h.hexDigest(), expected, "pieces of \(piece)")
        }
    }
}

/// Writes a feature matrix as .npy (through the public NPY writer).
enum NPYWriting {
    static func write(_ m: FeatureMatrix, to path: String) throws {
        try Formats.NPY.write(try m.tensor(), to: path)
    }
}
