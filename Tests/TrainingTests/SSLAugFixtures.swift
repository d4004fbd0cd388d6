import Foundation
import Images
import TestSupport
@testable import Training
import XCTest

/// Reading Fixtures/sslaug/stats.json (made by Scripts/fixtures/ssl_augment.py from the official
/// transforms) and comparing sample statistics with tolerances from their standard errors.
enum SSLAugFixtures {
    static let photos = ["china_320x272_q90_420.jpg", "flower_264x330_q75_444_progressive.jpg", "china_257x171_q60_422.jpg"]

    static func stats() throws -> JSONNode {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("sslaug/stats.json")))
        return JSONNode(try JSONSerialization.jsonObject(with: data))
    }

    static func decodedPhotos() throws -> [RGBImage] {
        try photos.map { try ImageDecoder.decode(path: fixturePath("images/" + $0)) }
    }
}

/// A read-only walk over JSONSerialization's output; a missing key reads as nil, so tests fail
/// on `XCTUnwrap` with the key's name rather than crash.
struct JSONNode {
    let value: Any?
    init(_ value: Any?) { self.value = value }
    subscript(_ key: String) -> JSONNode { JSONNode((value as? [String: Any])?[key]) }
    subscript(_ index: Int) -> JSONNode {
        guard let a = value as? [Any], index >= 0, index < a.count else { return JSONNode(nil) }
        return JSONNode(a[index])
    }
    var double: Double? { (value as? NSNumber)?.doubleValue }
    var int: Int? { (value as? NSNumber)?.intValue }
    var doubles: [Double]? { (value as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } }
    var ints: [Int]? { (value as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } }
}

/// Two-sample checks at `sigmas` standard errors.
enum SampleCheck {
    /// Rates p1 of n1 and p2 of n2: |p1 − p2| within sigmas · sqrt(p(1−p)(1/n1 + 1/n2)), p pooled.
    /// A rate of exactly 0 or 1 on the official side must be matched exactly.
    static func rate(_ p1: Double, _ n1: Int, _ p2: Double, _ n2: Int, sigmas: Double = 4.5, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        if p2 == 0 || p2 == 1 {
            XCTAssertEqual(p1, p2, "\(what): DinoKit \(p1), official exactly \(p2)", file: file, line: line)
            return
        }
        let p = (p1 * Double(n1) + p2 * Double(n2)) / Double(n1 + n2)
        let se = (p * (1 - p) * (1 / Double(n1) + 1 / Double(n2))).squareRoot()
        XCTAssertLessThanOrEqual(abs(p1 - p2), sigmas * se, "\(what): DinoKit \(p1) (n \(n1)), official \(p2) (n \(n2)), se \(se)", file: file, line: line)
    }

    /// Means with the standard deviation `sd` (of one sample's values) common to both.
    static func mean(_ m1: Double, _ n1: Int, _ m2: Double, _ n2: Int, sd: Double, sigmas: Double = 4.5, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        let se = sd * (1 / Double(n1) + 1 / Double(n2)).squareRoot()
        XCTAssertLessThanOrEqual(abs(m1 - m2), sigmas * se + 1e-9, "\(what): DinoKit \(m1) (n \(n1)), official \(m2) (n \(n2)), se \(se)", file: file, line: line)
    }

    /// The official quantiles (at `levels`) against DinoKit's sample: each level should lie between
    /// the fractions of DinoKit's values below and at-or-below the official quantile (both equal
    /// for continuous values; apart where the values have atoms, as masked counts do), within the
    /// binomial error of both samples.
    static func quantiles(_ values: [Double], official: [Double], levels: [Double], officialCount: Int, sigmas: Double = 4.5,
                          _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(official.count, levels.count, "\(what): quantile list", file: file, line: line)
        let n = Double(values.count)
        for (q, level) in zip(official, levels) {
            let below = Double(values.filter { $0 < q - 1e-9 }.count) / n
            let atOrBelow = Double(values.filter { $0 <= q + 1e-9 }.count) / n
            let se = (level * (1 - level) * (1 / n + 1 / Double(officialCount))).squareRoot()
            let slack = sigmas * se + 1 / Double(officialCount)
            XCTAssertTrue(below - slack <= level && level <= atOrBelow + slack,
                          "\(what): \(below)...\(atOrBelow) of DinoKit's values lie below the official \(level) quantile \(q) (slack \(slack))",
                          file: file, line: line)
        }
    }

    static func meanAndSD(_ values: [Double]) -> (mean: Double, sd: Double) {
        let m = values.reduce(0, +) / Double(max(values.count, 1))
        let v = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(values.count - 1, 1))
        return (m, v.squareRoot())
    }
}
