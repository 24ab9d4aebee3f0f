import ArgumentParser
import CohortBase
import CohortData
import CohortNN
import CohortOptim
import CohortRun
import CohortTensor

extension DatasetKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
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
    @Option(help: ArgumentHelp("A built-in model (cnn: the report's CNN; rnn, lstm, gru: one recurrent layer over the "
                               + "image rows; resnet20) or a model file (docs/models.md) (default: cnn).",
                               valueName: "name-or-file"))
    var model: String?
    @Option(help: ArgumentHelp("Values of the model file's parameters, e.g. n=5,filters=32.", valueName: "name=value,..."))
    var modelParam: ModelParameterValues?
    @Option(help: "Hidden size of rnn, lstm and gru: a model file's parameter `hidden` (default: 128).")
    var hidden: Int?
    @Option(help: ArgumentHelp("Multiplier of the CNN's filters, 32·W and 64·W, a larger model for scaling studies: a "
                               + "model file's parameter `width` (default: 1)."))
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
    @Option(help: "Global batch size, split evenly over the ranks (default: 64).")
    var batchSize: Int?
    @Option(help: "Threads per rank, shared by its replicas (default: cores / ranks on the node).")
    var threads: Int?
    @Option(help: ArgumentHelp("Replicas of the model per rank, each on its own thread with a slice of the rank's batch "
                               + "(default: one per thread, when they can share the batch equally)."))
    var replicas: Int?
    @Option(help: "Gradient bucket size in MiB for the allreduce (default: 25).")
    var bucketMb: Double?
    @Flag(help: "Reduce gradients after backward instead of overlapping with it.")
    var noOverlap = false
    @Option(help: ArgumentHelp("What the gradients are sent as: fp32, or bf16 (half the bytes; each chunk summed in "
                               + "fp32 by one rank) (default: fp32)."))
    var allreduceDtype: FloatFormat?
    @Option(help: ArgumentHelp("What the CNN's convolutions and the recurrent layers' products multiply: fp32, or "
                               + "bf16 with fp32 accumulation; weights, optimizer, loss and checkpoints stay fp32 "
                               + "(default: fp32)."))
    var precision: FloatFormat?
    @Option(help: ArgumentHelp("Write a Chrome trace of every step (open it in Perfetto or chrome://tracing): "
                               + "DIR/rank-R.trace.json per rank, merged into DIR/trace.json.", valueName: "dir"))
    var trace: String?
}

/// The rest of `cohort train`'s settings (`TrainingConfig`).
struct TrainOptions: ParsableArguments {
    @Option(help: "Dataset to train and test on (default: synthetic).")
    var dataset: DatasetKind?
    @Option(help: "Directory with the dataset's files.")
    var dataDir: String?
    @Option(help: "Optimizer, with PyTorch's defaults (default: adagrad).")
    var optimizer: OptimizerKind?
    @Option(help: "Learning rate: the schedule's peak, for --base-batch samples per step (default: 0.01).")
    var lr: Double?
    @Option(help: "After the warmup: keep the rate, cut it by --gamma every --step-epochs, or cosine to 0 (default: constant).")
    var lrSchedule: LearningRateDecay?
    @Option(help: "Epochs (fractions allowed) of linear warmup from 0 to the peak (default: 0).")
    var warmupEpochs: Double?
    @Option(help: "With --lr-schedule step: epochs between cuts.")
    var stepEpochs: Double?
    @Option(help: "With --lr-schedule step: the factor of each cut (default: 0.1).")
    var gamma: Double?
    @Option(help: ArgumentHelp("Peak for a global batch B: --lr·B/--base-batch (linear), --lr·sqrt(B/--base-batch), "
                               + "or --lr (default: none)."))
    var lrScaling: LearningRateScaling?
    @Option(help: "The global batch --lr was chosen for, with --lr-scaling (default: 64).")
    var baseBatch: Int?
    @Option(help: ArgumentHelp("Micro-batches per optimizer step, whose gradients add up: 1 rank with --accumulate 4 "
                               + "makes the updates of 4 ranks (default: 1)."))
    var accumulate: Int?
    @Option(help: ArgumentHelp("Samples per rank per step instead of --batch-size: the global batch is this times the "
                               + "ranks (a resumed run keeps its global batch)."))
    var batchPerRank: Int?
    @Option(help: "Momentum (sgd, rmsprop; default: 0).")
    var momentum: Double?
    @Flag(help: "Nesterov momentum (sgd).")
    var nesterov = false
    @Option(help: "Weight decay (default 0; 0.01 for adamw).")
    var weightDecay: Double?
    @Option(help: "Epochs (default: 1).")
    var epochs: Int?
    @Option(help: "Seed for initialisation, shuffling and synthetic data (default: 0).")
    var seed: UInt64?
    @Flag(help: ArgumentHelp("Random crops and flips of the training images: CIFAR-10 cropped from a 4-pixel padding and "
                             + "flipped, 28x28 sets shifted by up to 2 pixels; drawn from (seed, epoch, sample)."))
    var augment = false
    @Option(help: "Use only the first N training samples.")
    var limit: Int?
    @Option(help: "Evaluate on only the first N test samples.")
    var testLimit: Int?
    @Option(help: "Run directory to write.")
    var out: String?
    @Option(help: "Also write a checkpoint every N steps (one ends every epoch regardless).")
    var checkpointSteps: Int?
    @Option(help: "On a non-finite loss or gradient: stop the run, or skip that step (default: stop).")
    var onNan: NonFinitePolicy?
    @Option(help: "Compare a checksum of the parameters across ranks every N steps; 0: only at the end (default: 100).")
    var checkEvery: Int?
    @Flag(help: "Also write the initial parameters, before the first step, as initial.safetensors.")
    var saveInitial = false
    @Option(help: ArgumentHelp("Start from these weights (a .safetensors file with the model's tensor names and shapes, "
                               + "PyTorch's, buffers included) instead of a seeded initialisation.", valueName: "file"))
    var `init`: String?
    @Flag(help: ArgumentHelp("Batch norm normalises with the statistics of the whole global batch, over every rank and "
                             + "replica (torch.nn.SyncBatchNorm); without it each replica uses its own micro-batch's."))
    var syncBatchnorm = false
    @Option(help: ArgumentHelp("Seconds a collective may wait for the other ranks before the job ends with exit code 4, "
                               + "naming the ranks that never arrived; 0: wait for ever (default: 300)."))
    var timeout: Double?
    @Option(help: ArgumentHelp("Label smoothing ε of the training loss, as PyTorch's "
                               + "CrossEntropyLoss(label_smoothing=ε); the test loss stays plain (default: 0)."))
    var labelSmoothing: Double?
    @Option(help: ArgumentHelp("Test-time augmentation: flip averages each test image's probabilities with its "
                               + "mirror's, for twice the evaluation time (default: none)."))
    var tta: TestTimeAugmentation?
    @Option(help: ArgumentHelp("Stop at the first evaluation whose test accuracy reaches this fraction, and record "
                               + "the time, steps and epochs to it in summary.json (time to accuracy).",
                               valueName: "fraction"))
    var targetAccuracy: Double?
    @Option(help: ArgumentHelp("Evaluate also every N steps (a whole number) or every fraction of an epoch (in "
                               + "(0, 1)), besides every epoch's end.", valueName: "steps|fraction"),
            transform: { try EvaluationInterval(parsing: $0) })
    var evalEvery: EvaluationInterval?
    @Option(help: ArgumentHelp("Which ranks evaluate: rank0 alone, or all, each on a slice of the test set "
                               + "(default: rank0)."))
    var evalOn: EvaluationRanks?
}

/// How long `cohort bench` measures.
struct TimingOptions: ParsableArguments {
    @Option(help: "Timed steps per configuration (default: 30).")
    var steps: Int?
    @Option(help: "Untimed warm-up steps before them (default: 5).")
    var warmup: Int?
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
