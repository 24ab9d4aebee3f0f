import CohortBase
import CohortOptim
@testable import CohortRun
import Foundation
import Testing

/// The learning rate per step, against PyTorch's schedulers as PyTorch computes them: its
/// chainable forms, each rate from the one before (torch/optim/lr_scheduler.py), where
/// `LearningRateSchedule` uses the closed forms.
@Suite struct ScheduleTests {
    func expectClose(_ a: [Double], _ b: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        for (i, (x, y)) in zip(a, b).enumerated() {
            #expect(abs(x - y) <= 1e-12 * max(1, abs(y)), "step \(i): \(x) against \(y)", sourceLocation: sourceLocation)
        }
    }

    @Test func warmupRisesLinearlyFromZeroToThePeak() {
        let schedule = LearningRateSchedule(peak: 0.4, decay: .constant, warmupEpochs: 0.5, epochs: 2, stepsPerEpoch: 8)
        #expect(schedule.warmupSteps == 4)
        expectClose((0..<16).map(schedule.rate), [0.1, 0.2, 0.3, 0.4] + Array(repeating: 0.4, count: 12))
        let none = LearningRateSchedule(peak: 0.4, decay: .constant, epochs: 2, stepsPerEpoch: 8)
        #expect((0..<16).allSatisfy { none.rate(atStep: $0) == 0.4 })
    }

    /// CosineAnnealingLR(T_max, eta_min = 0), stepped once per step after the warmup.
    @Test func cosineIsPyTorchsCosineAnnealing() {
        let schedule = LearningRateSchedule(peak: 0.05, decay: .cosine, warmupEpochs: 1, epochs: 5, stepsPerEpoch: 7)
        let tMax = 5 * 7 - 7
        var torch: [Double] = [0.05]
        for t in 1..<tMax {
            let lr = torch[t - 1]
            if (t - 1 - tMax) % (2 * tMax) == 0 {
                torch.append(lr + 0.05 * (1 - cos(Double.pi / Double(tMax))) / 2)
            } else {
                torch.append((1 + cos(Double.pi * Double(t) / Double(tMax))) / (1 + cos(Double.pi * Double(t - 1) / Double(tMax))) * lr)
            }
        }
        expectClose((7..<35).map(schedule.rate), torch)
        // The warmup reaches the peak on its last step.
        #expect(schedule.rate(atStep: 6) == 0.05)
    }

    /// StepLR(step_size, gamma), stepped once per step: the rate is cut on every multiple of the period.
    @Test func stepDecayIsPyTorchsStepLR() {
        let schedule = LearningRateSchedule(peak: 0.1, decay: .step, stepEpochs: 2, gamma: 0.5, epochs: 7, stepsPerEpoch: 3)
        var torch: [Double] = [0.1]
        for t in 1..<21 { torch.append(t % 6 == 0 ? torch[t - 1] * 0.5 : torch[t - 1]) }
        expectClose((0..<21).map(schedule.rate), torch)
    }

    @Test func theRateFollowsTheGlobalBatch() {
        #expect(LearningRateScaling.linear.factor(globalBatch: 256, baseBatch: 64) == 4)
        #expect(LearningRateScaling.sqrt.factor(globalBatch: 256, baseBatch: 64) == 2)
        #expect(LearningRateScaling.none.factor(globalBatch: 256, baseBatch: 64) == 1)
        var config = TrainingConfig()
        config.lr = 0.1; config.batchPerRank = 32; config.lrScaling = .linear; config.baseBatch = 64
        config.resolveBatch(worldSize: 4)
        #expect(config.batchSize == 128 && config.schedule(stepsPerEpoch: 10).peak == 0.2)
    }

    /// Settings a run recorded before schedules existed read as the constant rate they had.
    @Test func settingsRecordedWithoutScheduleKeysReadAsConstant() throws {
        let old: [String: JSONValue] = ["model": .string("gru"), "lr": .double(0.05), "batch_size": .int(32)]
        let config = try TrainingConfig.completing(old)
        #expect(config.lrSchedule == .constant && config.warmupEpochs == 0 && config.lrScaling == .none)
        #expect(TrainingConfig.definingSettings(recorded: config.definingSettings) == config.definingSettings)
        let recorded = JSONValue.object((config.definingSettings.objectValue ?? [:]).filter { !$0.key.contains("lr_") })
        #expect(TrainingConfig.definingSettings(recorded: recorded) == config.definingSettings)
    }

    @Test func badScheduleSettingsAreRefused() {
        func refused(_ change: (inout TrainingConfig) -> Void, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
            var config = TrainingConfig()
            change(&config)
            #expect(throws: CohortError.self, sourceLocation: sourceLocation) { try config.validate() }
            do { try config.validate() } catch let error as CohortError {
                #expect(error.kind == .settings && error.description.contains(message), "\(error)", sourceLocation: sourceLocation)
            } catch {}
        }
        refused({ $0.lrSchedule = .step }, "--lr-schedule step needs --step-epochs")
        refused({ $0.stepEpochs = 2 }, "--step-epochs goes with --lr-schedule step")
        refused({ $0.warmupEpochs = 3; $0.epochs = 2 }, "--warmup-epochs must be in 0...--epochs")
        refused({ $0.warmupEpochs = .nan }, "--warmup-epochs")
        refused({ $0.gamma = 0 }, "--gamma must be in (0, 1]")
        refused({ $0.baseBatch = 0 }, "--base-batch must be in 1...2^30")
        refused({ $0.batchPerRank = -1 }, "--batch-per-rank must be in 1...2^30")
        #expect(throws: CohortError.self) {
            _ = try TrainingConfig.from(given: ["batch_size": .int(32), "batch_per_rank": .int(16)])
        }
    }
}
