import CohortBase
import CohortBench
import CohortRun
import Foundation
import Testing

/// The training settings are defined once (`TrainingConfig`: fields, keys, `meaning`, the
/// defining keys) and everything else follows from them: the flags' help and defaults,
/// config.json, `cohort bench`'s settings, the flag table of docs/training.md. `cohort train
/// --help` listing every flag is checked in `CommandLineTests.everySettingIsAFlag`.
@Suite struct SettingsTests {
    /// `batch_size` -> `--batch-size`.
    static func flag(_ key: TrainingConfig.Key) -> String { "--" + TrainingConfig.flagName(key.rawValue) }

    /// The flags that the first column of docs/training.md's flag table names.
    static func documentedFlags() throws -> Set<String> {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/training.md"), encoding: .utf8)
        var flags = Set<String>()
        for line in text.split(separator: "\n") where line.hasPrefix("| `--") {
            // The first cell; `\|` inside it is an escaped bar, not a cell's end.
            let column = String(line.replacingOccurrences(of: "\\|", with: "/").split(separator: "|")[0])
            let regex = try NSRegularExpression(pattern: "`(--[a-z][a-z0-9-]*)")
            for match in regex.matches(in: column, range: NSRange(column.startIndex..., in: column)) {
                flags.insert(String(column[Range(match.range(at: 1), in: column)!]))
            }
        }
        return flags
    }

    @Test func everySettingHasItsRowInTheDocumentedFlagTable() throws {
        let documented = try Self.documentedFlags()
        let settings = Set(TrainingConfig.Key.allCases.map(Self.flag))
        #expect(settings.subtracting(documented).isEmpty,
                "docs/training.md's flag table lacks \(settings.subtracting(documented).sorted())")
        // Besides the settings, the table documents `cohort train`'s own flags.
        let commandFlags: Set<String> = ["--resume"]
        #expect(documented.subtracting(settings).subtracting(commandFlags).isEmpty,
                "docs/training.md documents \(documented.subtracting(settings).subtracting(commandFlags).sorted()), which are no settings")
    }

    /// Every setting's help is a sentence, and its default is `TrainingConfig()`'s, once.
    @Test func everyHelpGivesTheDefaultOfTheSettingsType() throws {
        let defaults = JSONValue(TrainingConfig()).objectValue ?? [:]
        for key in TrainingConfig.Key.allCases {
            let (text, _) = TrainingConfig.help(key)
            #expect(text.hasSuffix("."), "\(key.rawValue): \(text)")
            #expect(text.components(separatedBy: "(default:").count <= 2, "\(key.rawValue): \(text)")
            if let value = TrainingConfig.defaultText(key) {
                #expect(text.contains("(default: \(value))"), "\(key.rawValue): \(text)")
                #expect(defaults[key.rawValue] != nil)
            }
        }
        #expect(TrainingConfig.help(.batchSize).text.hasSuffix("(default: 64)."))
        #expect(TrainingConfig.help(.bucketMb).text.hasSuffix("(default: 25)."))
        #expect(TrainingConfig.help(.lr).text.hasSuffix("(default: 0.01)."))
        #expect(TrainingConfig.help(.nesterov).text == TrainingConfig.meaning(.nesterov).text)
    }

    /// config.json records every setting under its key.
    @Test func configJSONRecordsEverySetting() throws {
        var config = TrainingConfig()
        (config.limit, config.testLimit, config.stepEpochs, config.threads, config.replicas) = (1, 1, 1, 1, 1)
        (config.modelParam, config.weightDecay, config.batchPerRank, config.initWeights) = (["n": 1], 0, 1, "w")
        (config.dataDir, config.trace, config.checkpointSteps, config.targetAccuracy) = ("d", "t", 1, 0.5)
        config.evalEvery = try EvaluationInterval(parsing: "2")
        (config.imageSize, config.valSplit, config.normalize) = ("8x8", 0.1, "0.5/0.5")
        (config.betas, config.clipGradNorm, config.warmupSteps, config.steps) = ("0.9,0.99", 1, 1, 1)
        (config.dataFile, config.targetLoss) = ("f", 1)
        let recorded = Set((JSONValue(config).objectValue ?? [:]).keys)
        #expect(recorded == Set(TrainingConfig.Key.allCases.map(\.rawValue)))
    }

    /// `cohort bench` takes its model and parallel settings as training settings: the same
    /// keys, defaults and checks, and its JSON (a worker's settings, bench.json) flat.
    @Test func benchSettingsAreTrainingSettings() throws {
        let given: [String: JSONValue] = ["batch_size": .int(32), "bucket_mb": .double(0.5), "steps": .int(3)]
        let bench = try BenchSettings.from(given: given)
        #expect(bench.training.batchSize == 32 && bench.training.bucketMb == 0.5 && bench.steps == 3 && bench.warmup == 5)
        let json = JSONValue(bench).objectValue ?? [:]
        #expect(Set(json.keys) == Set(BenchSettings.trainingKeys.map(\.rawValue) + ["steps", "warmup"]).subtracting(
            ["model_param", "threads", "replicas", "trace", "data_dir", "image_size", "val_split", "normalize", "data_file",
             "clip_grad_norm"]))
        #expect(try JSONFile.decode(BenchSettings.self, from: Data(JSONFile.line(bench).utf8), source: "test") == bench)
        expectError(.settings) { _ = try BenchSettings.from(given: ["lr": .double(0.1)]) }
        var tooBig = bench
        tooBig.training.bucketMb = -1
        expectError(.settings) { try tooBig.validate() }
    }
}
