import Foundation
import Kernels

/// The kernel path a test's numbers come from, for its printed results: Scripts/test runs the
/// golden and replay tests once per path (`DINOKIT_KERNELS`), and a log line has to say which run
/// it belongs to.
public var kernelPathLabel: String {
    let forced = ProcessInfo.processInfo.environment["DINOKIT_KERNELS"].map { ", DINOKIT_KERNELS=\($0)" } ?? ""
    return "[kernels \(KernelDispatch.active.rawValue)\(forced)]"
}
