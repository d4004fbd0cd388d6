import Foundation
import Training
import XCTest

/// `--config run.yaml` reads the same keys as the JSON form and goes through the same checks.
final class SSLRunConfigYAMLTests: XCTestCase {
    func testYAMLAndJSONGiveTheSameConfig() throws {
        let yaml = """
        # adapt on a small folder
        epochs: 3
        batch_size: 4
        seed: 7
        base_lr: 0.002
        teacher_temp: 0.05
        warmup_epochs: 0.5
        """
        let json = #"{"epochs": 3, "batch_size": 4, "seed": 7, "base_lr": 0.002, "teacher_temp": 0.05, "warmup_epochs": 0.5}"#
        let a = try SSLRunConfig.load(yaml: yaml, file: "run.yaml")
        let b = try SSLRunConfig.load(json: Data(json.utf8), file: "run.json")
        XCTAssertEqual(try a.encoded(), try b.encoded())
        XCTAssertEqual(a.epochs, 3)
        XCTAssertEqual(a.batchSize, 4)
        XCTAssertEqual(a.seed, 7)
        XCTAssertEqual(a.baseLR, 0.002)
        XCTAssertEqual(a.warmupEpochs, 0.5)
        XCTAssertEqual(a.weightDecay, SSLRunConfig().weightDecay, "keys not given keep their defaults")
    }

    func testUnknownKeysAndBadYAMLAreRejectedByName() {
        XCTAssertThrowsError(try SSLRunConfig.load(yaml: "epochs: 3\nbatch_sise: 4\n", file: "run.yaml")) { error in
            XCTAssertTrue("\(error)".contains("batch_sise"), "\(error)")
            XCTAssertTrue("\(error)".contains("run.yaml"), "\(error)")
        }
        XCTAssertThrowsError(try SSLRunConfig.load(yaml: "epochs: [3\n", file: "broken.yaml")) { error in
            XCTAssertTrue("\(error)".contains("broken.yaml"), "\(error)")
        }
        XCTAssertThrowsError(try SSLRunConfig.load(yaml: "- 1\n- 2\n", file: "list.yaml")) { error in
            XCTAssertTrue("\(error)".contains("mapping"), "\(error)")
        }
        XCTAssertThrowsError(try SSLRunConfig.load(yaml: "epochs: three\n", file: "typed.yaml")) { error in
            XCTAssertTrue("\(error)".contains("epochs"), "\(error)")
        }
    }

    func testFileExtensionChoosesTheParser() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yaml-config-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "epochs: 2\n".write(toFile: dir + "/run.yml", atomically: true, encoding: .utf8)
        try #"{"epochs": 5}"#.write(toFile: dir + "/run.json", atomically: true, encoding: .utf8)
        XCTAssertEqual(try SSLRunConfig.load(file: dir + "/run.yml").epochs, 2)
        XCTAssertEqual(try SSLRunConfig.load(file: dir + "/run.json").epochs, 5)
        XCTAssertThrowsError(try SSLRunConfig.load(file: dir + "/missing.yaml"))
    }
}
