import Foundation

/// The learning rate of step t (0-based) of a run of `totalSteps` optimiser steps: a linear
/// warm-up from 0 over `warmupSteps`, then cosine annealing to `final` —
/// `torch.optim.lr_scheduler.CosineAnnealingLR(T_max = total − warmup, eta_min = final)` stepped
/// once per iteration, in closed form (DINOv2's linear eval anneals per iteration too).
public struct FinetuneLRSchedule: Sendable, Equatable, Codable {
    public var base: Double
    public var final: Double
    public var totalSteps: Int
    public var warmupSteps: Int

    public init(base: Double, final: Double = 0, totalSteps: Int, warmupSteps: Int = 0) {
        self.base = base
        self.final = final
        self.totalSteps = Swift.max(1, totalSteps)
        self.warmupSteps = Swift.max(0, Swift.min(warmupSteps, totalSteps))
    }

    public func value(step t: Int) -> Double {
        if t < warmupSteps { return base * Double(t + 1) / Double(warmupSteps) }
        let span = Swift.max(1, totalSteps - warmupSteps)
        let progress = Double(Swift.min(t - warmupSteps, span)) / Double(span)
        return final + (base - final) * 0.5 * (1 + cos(Double.pi * progress))
    }
}
