import Foundation
import Reporting

/// `loss.png` (the loss terms per step) and `knn.png` (k-NN top-1 per epoch) of a run folder,
/// redrawn from metrics.jsonl and knn.json.
public enum RunCurves {
    public static func write(run: String) throws {
        let metrics = MetricsLog.read(run: run)
        guard !metrics.isEmpty else { return }
        func series(_ name: String, _ value: (StepMetrics) -> Double) -> LineChart.Series {
            .init(name: name, points: metrics.map { (Double($0.step + 1), value($0)) })
        }
        var all = [series("total", \.total), series("dino_local", \.dinoLocal), series("dino_global", \.dinoGlobal),
                   series("ibot", \.ibot), series("koleo", \.koleo)]
        all = all.filter { s in s.points.contains { $0.y != 0 } }
        let loss = LineChart(title: "SSL loss (\(metrics.count) steps, epoch \(metrics.last.map { $0.epoch + 1 } ?? 0))",
                             xLabel: "step", yLabel: "loss", series: all)
        try loss.write(to: (run as NSString).appendingPathComponent("loss.png"))
        let knn = SSLRun.readKNN(run: run)
        if !knn.isEmpty {
            var chart = LineChart(title: "k-NN top-1 of the teacher (k=20)", xLabel: "epoch", yLabel: "accuracy %",
                                  series: [.init(name: "k-NN top-1", points: knn.map { (Double($0.epoch), 100 * $0.knn) })])
            let lo = knn.map { 100 * $0.knn }.min() ?? 0, hi = knn.map { 100 * $0.knn }.max() ?? 100
            chart.yRange = Swift.max(0, floor(lo / 10) * 10 - 10)...Swift.min(100, ceil(hi / 10) * 10 + 10)
            try chart.write(to: (run as NSString).appendingPathComponent("knn.png"))
        }
    }
}
