import Foundation

/// Seconds on the monotonic clock (CLOCK_MONOTONIC): what every duration DinoKit reports is
/// measured with — benchmarks, forward profiles, training steps, command timings — so they are
/// immune to wall-clock changes and comparable with one another. Here, in the lowest module that
/// times anything, so there is one definition.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
