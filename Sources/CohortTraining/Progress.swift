import CohortBase
import CohortDistributed
import Foundation

/// How rank 0 shows a run's progress between its epoch lines.
public enum ProgressDisplay: Equatable, Sendable {
    /// Nothing but what must be seen (`--quiet`).
    case quiet
    /// A line redrawn in place a few times a second and replaced by the epoch's line, on
    /// standard output (so that the two keep their order through mpirun): for a person at a
    /// terminal, also when the ranks run under mpirun.
    case live
    /// A plain line on standard output every `seconds` (none when 0), never a carriage return:
    /// for a log file, Slurm's output, a pipe.
    case periodic(seconds: Double)

    /// Seconds between periodic lines unless told otherwise (`--progress-every`).
    public static let defaultPeriod = 30.0

    /// Live where a terminal watches (`Terminal`), else periodic; quiet if asked.
    public static func standard(quiet: Bool, every seconds: Double = defaultPeriod) -> ProgressDisplay {
        if quiet { return .quiet }
        return Terminal.watchesOutput(underLauncher: MPILaunch.isUnderLauncher) ? .live : .periodic(seconds: seconds)
    }
}

/// Progress of a run on rank 0 (`ProgressDisplay`): during each epoch the step, samples/s, the
/// loss so far and the time left in the epoch and the run; a line per epoch; evaluations that
/// take a while announced.
final class ProgressReporter {
    private let display: ProgressDisplay
    private let epochs: Int
    private let isRoot: Bool
    /// When the live line was last drawn, or the last periodic line written.
    private var lastShown = monotonicSeconds()
    /// Live redraws at most this often.
    private static let redrawSeconds = 0.2

    init(epochs: Int, display: ProgressDisplay, isRoot: Bool = true) {
        self.epochs = epochs
        self.display = isRoot ? display : .quiet
        self.isRoot = isRoot
    }

    /// After each step. `epochLeft`, `runLeft`: estimated seconds to the epoch's and the run's end.
    func step(epoch: Int, step: Int, of steps: Int, samplesPerSecond: Double, loss: Double, epochLeft: Double,
              runLeft: Double) {
        let now = monotonicSeconds()
        // Formatted only for a line that is shown.
        var figures: String {
            String(format: "%d/%d  %.0f samples/s  loss %.4f  ETA %@ (run %@)", step, steps, samplesPerSecond, loss,
                   Format.duration(epochLeft), Format.duration(runLeft))
        }
        switch display {
        case .quiet:
            return
        case .live:
            guard now - lastShown >= Self.redrawSeconds || step == steps else { return }
            let width = 20, filled = steps > 0 ? width * step / steps : width
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            draw("epoch \(epoch)/\(epochs) [\(bar)] " + figures)
        case .periodic(let seconds):
            guard seconds > 0, now - lastShown >= seconds else { return }
            say("epoch \(epoch)/\(epochs) step " + figures)
        }
        lastShown = now
    }

    /// Before an evaluation of `samples` test samples, named by `noun` ("images", or a text's
    /// "windows"); `previousSeconds`: what the last one took (nil before the first). Live,
    /// always; in a log, when the last took more than a second.
    func evaluating(epoch: Int, samples: Int, noun: String, previousSeconds: Double?) {
        let text = "epoch \(epoch)/\(epochs) evaluating \(samples) test \(noun)"
            + (previousSeconds.map { " (about \(Format.duration($0)))" } ?? "")
        switch display {
        case .quiet: return
        case .live: draw(text)
        case .periodic: if (previousSeconds ?? .infinity) > 1 { say(text) }
        }
    }

    /// What an operator must see even with --quiet (a damaged checkpoint passed over, a
    /// stop by a signal, skipped steps): on standard error, from rank 0.
    func notice(_ text: String) {
        guard isRoot else { return }
        clearLiveLine()
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// A permanent line (the end of an epoch, a message), in place of the live line.
    func line(_ text: String) {
        guard display != .quiet else { return }
        say((display == .live ? Self.eraseLine : "") + text)
    }

    /// Carriage return, then erase to the end of the line.
    private static let eraseLine = "\r\u{1B}[K"

    /// Replaces the live line.
    private func draw(_ text: String) {
        FileHandle.standardOutput.write(Data((Self.eraseLine + text).utf8))
    }

    private func clearLiveLine() {
        if display == .live { FileHandle.standardOutput.write(Data(Self.eraseLine.utf8)) }
    }
}
