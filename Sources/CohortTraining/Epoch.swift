import CohortBase
import CohortData
import CohortRun
import Foundation

/// One epoch of `Trainer`: its steps, then rank 0's evaluation and files, then a checkpoint.
extension Trainer {
    /// The running sums of the epoch in progress on this rank.
    struct EpochSums {
        var lossSum = 0.0, correct = 0, commSeconds = 0.0, dataWaitSeconds = 0.0, skipped = 0
    }

    /// How an epoch's run ended.
    enum EpochEnd {
        /// Its last step was taken and recorded: the next epoch follows.
        case finished
        /// A signal stopped the run (a checkpoint is written); nothing more is to be done.
        case stopped
        /// An evaluation reached `--target-accuracy` (a checkpoint is written): the run finishes.
        case reachedTarget
    }

    /// Runs `epoch` from its first step (or, resumed, from where it stopped), with the
    /// evaluations `--eval-every` asks for inside it.
    func runEpoch(_ epoch: Int) throws -> EpochEnd {
        let firstStep = epoch == startEpoch ? startStep : 0
        let epochSteps = steps(inEpoch: epoch)
        // A resumed run whose steps were all taken has nothing left of this epoch.
        guard firstStep < epochSteps else { return .finished }
        rank.startEpoch(epoch, data: data.train, steps: firstStep..<epochSteps)
        defer { rank.stopLoading() }
        var sums = EpochSums()
        if firstStep > 0 {
            // A resumed epoch continues this rank's sums (or, on another world size, rank 0 carries the total).
            (sums.lossSum, sums.correct) = RunStart.resumedSums(position.partialSums, rank: communicator.rank,
                                                                world: communicator.size)
            sums.skipped = position.skippedInEpoch
        }
        var start = monotonicSeconds(), seconds = 0.0
        for step in firstStep..<epochSteps {
            guard try takeStep(epoch: epoch, step: step, sums: &sums) else { return .stopped }
            showProgress(epoch: epoch, step: step, firstStep: firstStep, sums: sums, since: start, excluding: seconds)
            guard step + 1 < epochSteps,
                  config.evalEvery?.evaluates(afterStep: step, epoch: epoch, stepsPerEpoch: stepsPerEpoch) == true else {
                continue
            }
            // The epoch's training time leaves its evaluations out.
            seconds += monotonicSeconds() - start
            let evaluation = try evaluateOnTestSet(afterStep: step, of: epoch)
            start = monotonicSeconds()
            if evaluation.reachedTarget {
                let path = try checkpoint(epoch: epoch, step: step + 1, sums: sums)
                progress.line("cohort: stopped at the target; checkpoint \(path ?? "written by rank 0")")
                return .reachedTarget
            }
        }
        seconds += monotonicSeconds() - start
        try rank.timeline?.flush()
        let totals = try communicator.allreduceSum([sums.lossSum, Double(sums.correct)])
        let evaluation = try evaluateOnTestSet(afterStep: epochSteps - 1, of: epoch)
        if let runDirectory {
            try record(epoch: epoch, totals: totals, sums: sums, evaluation: evaluation.record, seconds: seconds,
                       steps: epochSteps, timedSteps: epochSteps - firstStep, in: runDirectory)
        }
        // An epoch that `--steps` stopped part way is checkpointed where it stopped, so that a
        // resume with more steps continues it (and records it again, in its place).
        let path = epochSteps < stepsPerEpoch ? try checkpoint(epoch: epoch, step: epochSteps, sums: sums)
            : try checkpoint(epoch: epoch + 1, step: 0, sums: EpochSums())
        if evaluation.reachedTarget { return .reachedTarget }
        if stopAtEpochEnd && epoch + 1 < config.epochs {
            progress.notice("cohort: stopped by a signal at the end of epoch \(epoch + 1); checkpoint "
                            + "\(path ?? "written by rank 0"); continue with --resume \(config.out)")
            return .stopped
        }
        return .finished
    }

    /// One global step on every rank: gradients reduced, then (if every rank's are finite) the
    /// update. False when a signal asked the run to stop here (a checkpoint is written).
    func takeStep(epoch: Int, step: Int, sums: inout EpochSums) throws -> Bool {
        communicator.position = (epoch + 1, step + 1)
        let (outcome, wait) = try rank.reduceGradients(step: step)
        sums.commSeconds += wait
        sums.dataWaitSeconds += outcome.data
        stepFlags.pointer[0] = stop.isRequested ? 1 : 0
        stepFlags.pointer[1] = outcome.lossSum.isFinite && RankAgreement.allFinite(network.gradients) ? 0 : 1
        try communicator.allreduceSum(stepFlags.pointer, count: 2)
        rank.timeline?.mark("step check")
        if stepFlags.pointer[1] > 0 {
            guard config.onNan == .skip else { throw nonFiniteStop(epoch: epoch, step: step) }
            position.skippedSteps += 1
            sums.skipped += 1
            progress.notice("cohort: skipped epoch \(epoch + 1), step \(step + 1): non-finite loss or gradients")
        } else {
            rank.optimizer.learningRate = Float(schedule.rate(atStep: epoch * stepsPerEpoch + step))
            rank.applyGradients()
            sums.lossSum += outcome.lossSum
            sums.correct += outcome.correct
        }
        rank.timeline?.endStep()
        let globalStep = epoch * stepsPerEpoch + step + 1
        drift?.apply(to: network, rank: communicator.rank, globalStep: globalStep)
        if globalStep % Self.stragglerInterval == 0 { try checkStragglers(through: globalStep) }
        if config.checkEvery > 0 && globalStep % config.checkEvery == 0 {
            _ = try RankAgreement.check(network, communicator: communicator, at: "epoch \(epoch + 1), step \(step + 1)")
        }
        if stepFlags.pointer[0] > 0 {
            // At an epoch's last step the epoch ends first (its metrics, its checkpoint): a
            // checkpoint has no place between an epoch's last step and its record.
            guard step + 1 < steps(inEpoch: epoch) else {
                stopAtEpochEnd = true
                return true
            }
            let path = try checkpoint(epoch: epoch, step: step + 1, sums: sums)
            progress.notice("cohort: stopped by a signal at epoch \(epoch + 1), step \(step + 1); checkpoint "
                            + "\(path ?? "written by rank 0"); continue with --resume \(config.out)")
            return false
        }
        if let k = config.checkpointSteps, globalStep % k == 0, step + 1 < steps(inEpoch: epoch) {
            _ = try checkpoint(epoch: epoch, step: step + 1, sums: sums)
        }
        return true
    }

    /// The stop for a non-finite loss or gradient, naming the last good checkpoint (only rank 0
    /// holds the run directory: other nodes may not see it).
    func nonFiniteStop(epoch: Int, step: Int) -> CohortError {
        let lastGood = runDirectory.map { run in
            Checkpoint.list(run: run.path).first.map { "its last good checkpoint is \(Checkpoint.directory(run: run.path))/\($0)" }
                ?? "before its first checkpoint"
        } ?? "rank 0 names its last good checkpoint"
        return .stopped("non-finite loss or gradients at epoch \(epoch + 1), step \(step + 1) (lr \(config.lr)); "
                        + "the run stops here, \(lastGood) (--on-nan skip would skip such steps)")
    }

    /// Rank 0's files at the end of an epoch of `steps` steps, with the evaluation that ended it.
    func record(epoch: Int, totals: [Double], sums: EpochSums, evaluation: EvaluationRecord, seconds: Double,
                steps: Int, timedSteps: Int, in runDirectory: RunDirectory) throws {
        // Loss and accuracy per target: per sample, or per position of a text's windows.
        let targets = Double((steps - sums.skipped) * config.batchSize * data.train.targetsPerSample)
        let (testLoss, testAccuracy) = (evaluation.testLoss, evaluation.testAccuracy)
        let metrics = EpochMetrics(epoch: epoch + 1, trainLoss: totals[0] / targets, trainAccuracy: totals[1] / targets,
                                   testLoss: testLoss, testAccuracy: testAccuracy, seconds: seconds,
                                   samplesPerSecond: Double(timedSteps * config.batchSize) / seconds,
                                   commSeconds: sums.commSeconds, worldSize: communicator.size,
                                   evalSeconds: lastEvaluationSeconds,
                                   learningRate: schedule.rate(atStep: epoch * stepsPerEpoch + steps - 1),
                                   dataWaitSeconds: sums.dataWaitSeconds)
        position.history.removeAll { $0.epoch == metrics.epoch }
        position.history.append(metrics)
        try tensorBoard?.add(events: RunStart.learningRateEvents(epoch: epoch, schedule: schedule))
        try tensorBoard?.add(step: metrics.epoch, scalars: metrics.tensorBoardScalars)
        try runDirectory.writeEpochs(position.history)
        try EpochCurves.write(position.history, title: "\(model.name) on \(data.train.name)", in: runDirectory)
        progress.line(String(format: "epoch %d/%d  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  "
                             + "%.1f s  %.0f samples/s", epoch + 1, config.epochs, metrics.trainLoss,
                             100 * metrics.trainAccuracy, testLoss, 100 * testAccuracy, seconds, metrics.samplesPerSecond))
        epochEnded?(metrics)
    }

    /// Rank 0 writes where the run stands (collective: every rank's partial sums are gathered).
    func checkpoint(epoch: Int, step: Int, sums: EpochSums) throws -> String? {
        var slots = [Double](repeating: 0, count: 2 * communicator.size)
        slots[2 * communicator.rank] = sums.lossSum
        slots[2 * communicator.rank + 1] = Double(sums.correct)
        position.partialSums = try communicator.allreduceSum(slots)
        position.epoch = epoch; position.step = step; position.optimizerSteps = rank.optimizer.stepCount
        position.skippedInEpoch = sums.skipped
        (position.elapsedSeconds, position.evalSeconds) = (elapsedSeconds, evaluationSeconds)
        position.evaluations = evaluations
        guard let runDirectory else { return nil }
        return try Checkpoint.write(run: runDirectory.path, network: network, optimizer: rank.optimizer, position: position,
                                    settings: config.definingSettings, execution: rank.execution)
    }

    /// The progress line after a step: `start` is when the epoch's training last resumed, after
    /// `excluded` seconds of it (its evaluations left out).
    func showProgress(epoch: Int, step: Int, firstStep: Int, sums: EpochSums, since start: Double, excluding excluded: Double) {
        guard isRoot else { return }
        let elapsed = excluded + monotonicSeconds() - start, done = step + 1 - firstStep
        let startGlobalStep = startEpoch * stepsPerEpoch + startStep, globalStep = epoch * stepsPerEpoch + step + 1
        let runDone = globalStep - startGlobalStep, runTotal = totalSteps - startGlobalStep
        let runElapsed = monotonicSeconds() - runStart
        progress.step(epoch: epoch + 1, step: step + 1, of: steps(inEpoch: epoch),
                      samplesPerSecond: Double(done * config.batchSize) / max(elapsed, 1e-9),
                      loss: sums.lossSum / Double(max(1, step + 1 - sums.skipped) * rank.localBatch
                                                  * data.train.targetsPerSample),
                      epochLeft: elapsed / Double(done) * Double(steps(inEpoch: epoch) - step - 1),
                      runLeft: runElapsed / Double(runDone) * Double(runTotal - runDone))
    }
}
