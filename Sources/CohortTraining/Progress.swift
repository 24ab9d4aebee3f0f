import CohortBase
import CohortTensor
import Foundation

/// Progress of a run on rank 0: on a terminal, a live line rewritten in place
/// (epoch, steps, samples/s, running loss, ETA); otherwise only a plain line per epoch.
final class ProgressReporter {
    private let enabled: Bool
    private let live: Bool
    private var lastDraw = 0.0
    private let epochs: Int
    private let isRoot: Bool

    init(epochs: Int, enabled: Bool, isRoot: Bool = true) {
        self.epochs = epochs
        self.enabled = enabled && isRoot
        self.isRoot = isRoot
        live = enabled && isRoot && isatty(STDERR_FILENO) != 0
    }

    /// Called after each step; redraws at most 5 times a second.
    func step(epoch: Int, step: Int, of steps: Int, samplesPerSecond: Double, loss: Double, elapsedInRun: Double,
              totalSteps: Int, stepsDone: Int) {
        guard live else { return }
        let now = monotonicSeconds()
        guard now - lastDraw >= 0.2 || step == steps else { return }
        lastDraw = now
        let eta = stepsDone > 0 ? elapsedInRun / Double(stepsDone) * Double(totalSteps - stepsDone) : 0
        let width = 24, filled = steps > 0 ? width * step / steps : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(format: "epoch %d/%d [%@] %d/%d  %.0f samples/s  loss %.4f  ETA %@",
                          epoch, epochs, bar, step, steps, samplesPerSecond, loss, Format.duration(eta))
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    }

    /// What an operator must see even with --quiet (a damaged checkpoint passed over, a
    /// stop by a signal, skipped steps): on standard error, from rank 0.
    func notice(_ text: String) {
        guard isRoot else { return }
        if live { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A permanent line (the end of an epoch, a message).
    func line(_ text: String) {
        guard enabled else { return }
        if live { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
