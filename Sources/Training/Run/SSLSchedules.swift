/// The per-iteration schedules of train.py `build_schedulers`, with an epoch of
/// `stepsPerEpoch` iterations (DinoKit: one pass over the data): lr (warm-up from 0, cosine to
/// min_lr), weight decay (cosine), teacher momentum (cosine), teacher temperature (warm-up, then
/// constant) and the last layer's lr (the lr schedule, zeroed for the frozen epochs).
public struct SSLSchedules: Sendable, Equatable {
    public let lr: CosineSchedule
    public let lastLayerLR: CosineSchedule
    public let weightDecay: CosineSchedule
    public let teacherMomentum: CosineSchedule
    public let teacherTemperature: CosineSchedule
    public let totalSteps: Int

    /// Epoch counts are rounded to whole iterations (fractions are a DinoKit extension).
    public static func iterations(_ epochs: Double, stepsPerEpoch: Int) -> Int {
        Int((epochs * Double(stepsPerEpoch)).rounded())
    }

    public init(config c: SSLRunConfig, stepsPerEpoch: Int) throws {
        guard stepsPerEpoch > 0 else { throw SSLRunError.config(file: "schedules", message: "an epoch has no steps") }
        let total = c.epochs * stepsPerEpoch
        let warmup = Swift.min(Self.iterations(c.warmupEpochs, stepsPerEpoch: stepsPerEpoch), total)
        totalSteps = total
        lr = try CosineSchedule(base: c.scaledLR, final: c.minLR, totalIters: total, warmupIters: warmup)
        var last = lr.values
        let frozen = Swift.min(Self.iterations(c.freezeLastLayerEpochs, stepsPerEpoch: stepsPerEpoch), total)
        for i in 0..<frozen { last[i] = 0 }
        lastLayerLR = CosineSchedule(values: last, finalValue: lr.finalValue)
        weightDecay = try CosineSchedule(base: c.weightDecay, final: c.weightDecayEnd, totalIters: total)
        teacherMomentum = try CosineSchedule(base: c.momentumTeacher, final: c.finalMomentumTeacher, totalIters: total)
        let tw = Self.iterations(c.warmupTeacherTempEpochs, stepsPerEpoch: stepsPerEpoch)
        teacherTemperature = try CosineSchedule(base: c.teacherTemp, final: c.teacherTemp, totalIters: tw, warmupIters: tw,
                                                startWarmupValue: c.warmupTeacherTemp)
    }

    /// `apply_optim_scheduler` at iteration `step`.
    public func hyperparameters(step: Int) -> StepHyperparameters {
        StepHyperparameters(lr: lr[step], lastLayerLR: lastLayerLR[step], weightDecay: weightDecay[step],
                            teacherMomentum: teacherMomentum[step], teacherTemperature: teacherTemperature[step])
    }
}

extension CosineSchedule {
    /// A schedule with edited values (the last layer's frozen start).
    init(values: [Double], finalValue: Double) {
        self.values = values
        self.finalValue = finalValue
    }
}
