import CohortBase
import CohortRun
import Foundation

/// `Trainer`'s evaluations on the test set: at every epoch's end and wherever `--eval-every`
/// asks, each recorded with the run's clocks, and the `--target-accuracy` and `--target-loss` checks.
extension Trainer {
    struct Evaluation {
        var record: EvaluationRecord
        /// The test accuracy reached `--target-accuracy`, or the test loss `--target-loss`.
        var reachedTarget: Bool
    }

    /// Wall-clock seconds from the run's first step, across a resumed run's processes.
    var elapsedSeconds: Double { elapsedBefore + monotonicSeconds() - runStart }

    /// Evaluates after step `step` (0-based) of `epoch` on every rank (collective: `--eval-on`
    /// says which ranks compute), records it, and says whether it reached the target.
    func evaluateOnTestSet(afterStep step: Int, of epoch: Int) throws -> Evaluation {
        // The last evaluation's seconds, from the records (which a resumed run carries on).
        let previous = evaluations.last.map { $0.evalSeconds - (evaluations.dropLast().last?.evalSeconds ?? 0) }
        progress.evaluating(epoch: epoch + 1, samples: data.test.count, noun: data.test.windows == nil ? "images" : "windows",
                            previousSeconds: previous)
        let start = monotonicSeconds()
        let (loss, accuracy) = try rank.evaluate(on: data.test, ranks: config.evalOn, augmentation: config.tta)
        lastEvaluationSeconds = monotonicSeconds() - start
        evaluationSeconds += lastEvaluationSeconds
        let globalStep = epoch * stepsPerEpoch + step + 1
        let record = EvaluationRecord(step: globalStep, epoch: Double(globalStep) / Double(stepsPerEpoch), testLoss: loss,
                                      testAccuracy: accuracy, seconds: elapsedSeconds, evalSeconds: evaluationSeconds)
        evaluations.append(record)
        try runDirectory?.writeEvaluations(evaluations)
        if step + 1 < steps(inEpoch: epoch) || data.test.windows != nil {
            // A text's loss also in bits per byte: its mean cross-entropy in nats over ln 2.
            let bits = data.test.windows == nil ? "" : String(format: " (%.4f bits per byte)", loss / log(2))
            progress.line(String(format: "epoch %d/%d step %d/%d  test loss %.4f%@ acc %.2f%%  (evaluated in %.1f s)",
                                 epoch + 1, config.epochs, step + 1, steps(inEpoch: epoch), loss, bits, 100 * accuracy,
                                 lastEvaluationSeconds))
        }
        let reached = config.targetAccuracy.map { accuracy >= $0 } ?? config.targetLoss.map { loss <= $0 } ?? false
        return Evaluation(record: record, reachedTarget: reached)
    }
}
