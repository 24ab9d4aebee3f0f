import Foundation

/// The `cohort` binary of this build, run as a user would.
enum CohortBinary {
    /// The `cohort` built beside the test bundle.
    static let path: String = {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [beside.appendingPathComponent("cohort").path]
        if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
            candidates.append(URL(fileURLWithPath: bundle.bundlePath).deletingLastPathComponent()
                .appendingPathComponent("cohort").path)
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }()

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutcome {
        try runProcess(path, arguments, environment: environment)
    }
}
