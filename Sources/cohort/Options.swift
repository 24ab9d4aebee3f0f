import ArgumentParser
import CohortBase
import CohortBench
import CohortData
import CohortNN
import CohortOptim
import CohortRun
import CohortTensor

extension DatasetKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension WeightDecayScope: ExpressibleByArgument {}
extension NonFinitePolicy: ExpressibleByArgument {}
extension LearningRateDecay: ExpressibleByArgument {}
extension LearningRateScaling: ExpressibleByArgument {}
extension FloatFormat: ExpressibleByArgument {}
extension TestTimeAugmentation: ExpressibleByArgument {}
extension EvaluationRanks: ExpressibleByArgument {}

// Option groups whose options are settings: each option's name is the setting's key
// (`--batch-size` is `batch_size`), read by `givenSettings`. Optional, so that a resumed run
// can tell a flag given from a default; the defaults live in the settings types.

/// The model, for `train` and `bench`.
struct ModelOptions: ParsableArguments {
    @Option(help: settingHelp(.model))
    var model: String?
    @Option(help: settingHelp(.modelParam))
    var modelParam: ModelParameterValues?
    @Option(help: settingHelp(.hidden))
    var hidden: Int?
    @Option(help: settingHelp(.width))
    var width: Int?
}

/// `--model-param n=5,filters=32`, recorded as the object `{"n": 5, "filters": 32}`.
struct ModelParameterValues: ExpressibleByArgument, Encodable {
    let values: [String: Int]

    init?(argument: String) {
        guard let values = try? ModelSpec.parseParameters(argument) else { return nil }
        self.values = values
    }

    func encode(to encoder: Encoder) throws { try values.encode(to: encoder) }
}

/// How a step is split over ranks, replicas and gradient buckets, for `train` and `bench`.
struct ParallelOptions: ParsableArguments {
    @Option(help: settingHelp(.batchSize))
    var batchSize: Int?
    @Option(help: settingHelp(.threads))
    var threads: Int?
    @Option(help: settingHelp(.replicas))
    var replicas: Int?
    @Option(help: settingHelp(.bucketMb))
    var bucketMb: Double?
    @Flag(help: settingHelp(.noOverlap))
    var noOverlap = false
    @Option(help: settingHelp(.allreduceDtype))
    var allreduceDtype: FloatFormat?
    @Option(help: settingHelp(.precision))
    var precision: FloatFormat?
    @Option(help: settingHelp(.trace))
    var trace: String?
}

/// How your own data is read (`cohort train`'s, `cohort bench`'s and `cohort data pack`'s).
struct DataReadingOptions: ParsableArguments {
    @Option(help: settingHelp(.imageSize))
    var imageSize: String?
    @Option(help: settingHelp(.valSplit))
    var valSplit: Double?
    @Option(help: settingHelp(.normalize))
    var normalize: String?
    @Flag(help: settingHelp(.skipBadFiles))
    var skipBadFiles = false
}

/// The data and how it is read (`cohort train`'s and `cohort bench`'s).
struct DataFlags: ParsableArguments {
    @Option(help: settingHelp(.dataset))
    var dataset: DatasetKind?
    @Option(help: settingHelp(.dataDir))
    var dataDir: String?
    @Option(help: settingHelp(.dataFile))
    var dataFile: String?
    @Option(help: settingHelp(.blockSize))
    var blockSize: Int?
    @Option(help: settingHelp(.evalWindows))
    var evalWindows: Int?
    @OptionGroup var reading: DataReadingOptions
    @Option(help: settingHelp(.loaderThreads))
    var loaderThreads: Int?
    @Flag(help: settingHelp(.augment))
    var augment = false
}

/// The rest of `cohort train`'s settings (`TrainingConfig`).
struct TrainOptions: ParsableArguments {
    @Option(help: settingHelp(.optimizer))
    var optimizer: OptimizerKind?
    @Option(help: settingHelp(.lr))
    var lr: Double?
    @Option(help: settingHelp(.lrSchedule))
    var lrSchedule: LearningRateDecay?
    @Option(help: settingHelp(.warmupEpochs))
    var warmupEpochs: Double?
    @Option(help: settingHelp(.stepEpochs))
    var stepEpochs: Double?
    @Option(help: settingHelp(.gamma))
    var gamma: Double?
    @Option(help: settingHelp(.lrScaling))
    var lrScaling: LearningRateScaling?
    @Option(help: settingHelp(.baseBatch))
    var baseBatch: Int?
    @Option(help: settingHelp(.accumulate))
    var accumulate: Int?
    @Option(help: settingHelp(.batchPerRank))
    var batchPerRank: Int?
    @Option(help: settingHelp(.momentum))
    var momentum: Double?
    @Flag(help: settingHelp(.nesterov))
    var nesterov = false
    @Option(help: settingHelp(.weightDecay))
    var weightDecay: Double?
    @Option(help: settingHelp(.decayOn))
    var decayOn: WeightDecayScope?
    @Option(help: settingHelp(.betas))
    var betas: String?
    @Option(help: settingHelp(.clipGradNorm))
    var clipGradNorm: Double?
    @Option(help: settingHelp(.minLr))
    var minLr: Double?
    @Option(help: settingHelp(.warmupSteps))
    var warmupSteps: Int?
    @Option(help: settingHelp(.epochs))
    var epochs: Int?
    @Option(help: settingHelp(.steps))
    var steps: Int?
    @Option(help: settingHelp(.seed))
    var seed: UInt64?
    @Option(help: settingHelp(.limit))
    var limit: Int?
    @Option(help: settingHelp(.testLimit))
    var testLimit: Int?
    @Option(help: settingHelp(.out))
    var out: String?
    @Option(help: settingHelp(.checkpointSteps))
    var checkpointSteps: Int?
    @Option(help: settingHelp(.onNan))
    var onNan: NonFinitePolicy?
    @Option(help: settingHelp(.checkEvery))
    var checkEvery: Int?
    @Flag(help: settingHelp(.saveInitial))
    var saveInitial = false
    @Option(help: settingHelp(.initWeights))
    var `init`: String?
    @Flag(help: settingHelp(.syncBatchnorm))
    var syncBatchnorm = false
    @Option(help: settingHelp(.timeout))
    var timeout: Double?
    @Option(help: settingHelp(.labelSmoothing))
    var labelSmoothing: Double?
    @Option(help: settingHelp(.tta))
    var tta: TestTimeAugmentation?
    @Option(help: settingHelp(.targetAccuracy))
    var targetAccuracy: Double?
    @Option(help: settingHelp(.targetLoss))
    var targetLoss: Double?
    @Option(help: settingHelp(.evalEvery), transform: { try EvaluationInterval(parsing: $0) })
    var evalEvery: EvaluationInterval?
    @Option(help: settingHelp(.evalOn))
    var evalOn: EvaluationRanks?
}

/// How long `cohort bench` measures.
struct TimingOptions: ParsableArguments {
    @Option(help: "Timed steps per configuration (default: \(BenchSettings().steps)).")
    var steps: Int?
    @Option(help: "Untimed warm-up steps before them (default: \(BenchSettings().warmup)).")
    var warmup: Int?
}

/// A setting's help as `TrainingConfig.help` gives it: its meaning and default in one place.
func settingHelp(_ key: TrainingConfig.Key) -> ArgumentHelp {
    let (text, valueName) = TrainingConfig.help(key)
    return ArgumentHelp(text, valueName: valueName)
}

/// A parsed option or flag as a setting: nil when it was not given.
private protocol GivenSetting {
    var settingValue: JSONValue? { get }
}

extension Option: GivenSetting where Value: Encodable {
    fileprivate var settingValue: JSONValue? {
        let value = JSONValue(wrappedValue)
        return value == .null ? nil : value
    }
}

extension Flag: GivenSetting where Value == Bool {
    fileprivate var settingValue: JSONValue? { wrappedValue ? .bool(true) : nil }
}

private protocol GivenSettingGroup {
    var givenSettings: [String: JSONValue] { get }
}

extension OptionGroup: GivenSettingGroup where Value: ParsableArguments {
    fileprivate var givenSettings: [String: JSONValue] { wrappedValue.givenSettings }
}

extension ParsableArguments {
    /// The options given on the command line, by setting key: `--batch-size 32` is
    /// `["batch_size": 32]`, a flag given is `true`; option groups are read too.
    var givenSettings: [String: JSONValue] {
        var settings: [String: JSONValue] = [:]
        for child in Mirror(reflecting: self).children {
            if let group = child.value as? GivenSettingGroup {
                settings.merge(group.givenSettings) { $1 }
            } else if let name = child.label, let value = (child.value as? GivenSetting)?.settingValue {
                // A property wrapper's storage is `_name`; the key is the name in snake case.
                settings[snakeCase(String(name.drop { $0 == "_" }))] = value
            }
        }
        return settings
    }
}

/// `batchSize` -> `batch_size`.
func snakeCase(_ name: String) -> String {
    name.reduce(into: "") { out, c in out += c.isUppercase ? "_" + c.lowercased() : String(c) }
}
