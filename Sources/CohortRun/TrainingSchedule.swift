import CohortNN
import CohortOptim

/// What the settings make of a run's steps: its schedule, its length in epochs and steps, and
/// its optimizer.
extension TrainingConfig {
    /// The learning rate of every step of this run (`stepsPerEpoch` steps per epoch).
    public func schedule(stepsPerEpoch: Int) -> LearningRateSchedule {
        var schedule = LearningRateSchedule(peak: lr * lrScaling.factor(globalBatch: batchSize, baseBatch: baseBatch),
                                            decay: lrSchedule, warmupEpochs: warmupEpochs, stepEpochs: stepEpochs ?? 1,
                                            gamma: gamma, epochs: epochs, stepsPerEpoch: stepsPerEpoch)
        schedule.floor = minLr
        schedule.fixedWarmupSteps = warmupSteps
        schedule.fixedTotalSteps = steps
        return schedule
    }

    /// The epochs a run of `stepsPerEpoch` steps an epoch takes: `epochs`, or with `steps` as
    /// many as those steps begin.
    public func epochCount(stepsPerEpoch: Int) -> Int {
        guard let steps else { return epochs }
        return (steps + stepsPerEpoch - 1) / max(1, stepsPerEpoch)
    }

    /// The global steps of the run: `steps`, or every step of `epochs` epochs.
    public func totalSteps(stepsPerEpoch: Int) -> Int { steps ?? epochs * stepsPerEpoch }

    /// `--betas B1,B2` as numbers (nil: the optimizer's defaults).
    public var betaValues: (Double, Double)? {
        guard let betas else { return nil }
        let parts = betas.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let b1 = parts[0], let b2 = parts[1] else { return nil }
        return (b1, b2)
    }

    /// The optimizer these settings describe, for the `count` parameters of `network`'s tensors.
    public func makeOptimizer(for tensors: [NamedTensor], count: Int) -> Optimizer {
        let betas = betaValues.map { (Float($0.0), Float($0.1)) }
        return optimizer.make(count: count, learningRate: Float(lr), momentum: Float(momentum), nesterov: nesterov,
                              weightDecay: weightDecay.map(Float.init), betas: betas,
                              decayed: decayOn.ranges(of: tensors.map { ($0.offset..<($0.offset + $0.count), $0.shape) }))
    }
}
