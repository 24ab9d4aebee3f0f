import CohortBase

/// What each training setting means, in one place: `cohort train`'s and `cohort bench`'s help
/// (`help(_:)` adds the default, read from `TrainingConfig()`, so no default is typed twice).
/// The switch names every key, so a new setting does not compile without its text;
/// `SettingsTests` checks that each has its flag and its row in docs/training.md.
extension TrainingConfig {
    public typealias Key = CodingKeys

    /// The setting's meaning and, for an option, the name of its value in the synopsis.
    public static func meaning(_ key: Key) -> (text: String, valueName: String?) {
        switch key {
        case .model:
            return ("A built-in model (cnn: the report's CNN; rnn, lstm, gru: one recurrent layer over the image rows; "
                    + "resnet20) or a model file (docs/models.md).", "name-or-file")
        case .modelParam: return ("Values of the model file's parameters, e.g. n=5,filters=32.", "name=value,...")
        case .hidden: return ("Hidden size of rnn, lstm and gru: a model file's parameter `hidden`.", nil)
        case .width:
            return ("Multiplier of the CNN's filters, 32·W and 64·W, a larger model for scaling studies: a model "
                    + "file's parameter `width`.", nil)
        case .dataset:
            return ("Dataset to train and test on: a built-in one, or your own: folder (DIR/train/CLASS/IMAGE), arrays "
                    + "(x_train.npy ...), pack (cohort data pack), text (the bytes of --data-file).", nil)
        case .dataDir: return ("Directory with the dataset's files (for arrays also one .npz file).", nil)
        case .dataFile:
            return ("The text file of --dataset text: its bytes are the tokens; the first 90% train, the last 10% "
                    + "validate.", "file")
        case .blockSize: return ("Tokens of context in each window of a text (--dataset text).", nil)
        case .evalWindows:
            return ("Fixed windows of the validation text, evenly spaced, whose mean loss is the test loss.", nil)
        case .imageSize:
            return ("Bring every image of a folder to this size: the shorter side resized, then the centre cut, as "
                    + "torchvision's Resize and CenterCrop (default: the one size all images have).", "HxW")
        case .valSplit:
            return ("Without a test split: hold out this fraction of the training samples as one, drawn from --seed.",
                    "fraction")
        case .normalize:
            return ("Inputs as (value/255 - MEAN)/STD per channel, e.g. 0.5/0.5 or 0.49,0.48,0.45/0.25,0.24,0.26; none: "
                    + "as stored (default: the built-in set's own; your own data's measured on its training split).",
                    "MEAN/STD")
        case .skipBadFiles: return ("Leave unreadable image files out, counted in the log and summary.json.", nil)
        case .loaderThreads:
            return ("Threads that read, decode, augment and normalise the next batches while a step computes (0: the "
                    + "step fills its own batch).", nil)
        case .augment:
            return ("Random crops and flips of the training images: CIFAR-10 cropped from a 4-pixel padding and "
                    + "flipped, 28x28 sets shifted by up to 2 pixels; drawn from (seed, epoch, sample).", nil)
        case .limit: return ("Use only the first N training samples.", nil)
        case .testLimit: return ("Evaluate on only the first N test samples.", nil)
        case .optimizer: return ("Optimizer, with PyTorch's defaults.", nil)
        case .lr: return ("Learning rate: the schedule's peak, for --base-batch samples per step.", nil)
        case .lrSchedule: return ("After the warmup: keep the rate, cut it by --gamma every --step-epochs, or cosine to 0.", nil)
        case .warmupEpochs: return ("Epochs (fractions allowed) of linear warmup from 0 to the peak.", nil)
        case .stepEpochs: return ("With --lr-schedule step: epochs between cuts.", nil)
        case .gamma: return ("With --lr-schedule step: the factor of each cut.", nil)
        case .lrScaling:
            return ("Peak for a global batch B: --lr·B/--base-batch (linear), --lr·sqrt(B/--base-batch), or --lr.", nil)
        case .baseBatch: return ("The global batch --lr was chosen for, with --lr-scaling.", nil)
        case .momentum: return ("Momentum (sgd, rmsprop).", nil)
        case .nesterov: return ("Nesterov momentum (sgd).", nil)
        case .weightDecay: return ("Weight decay (default: 0; 0.01 for adamw).", nil)
        case .decayOn:
            return ("Which tensors weight decay applies to: all, or matrices (two or more dimensions: weights, embeddings, "
                    + "positions; not biases or norms), as nanoGPT's AdamW (adam, adamw).", nil)
        case .betas: return ("Adam's and AdamW's β1,β2 (default: 0.9,0.999).", "b1,b2")
        case .clipGradNorm:
            return ("Scale the gradients so that their one L2 norm over every tensor is at most this, after the reduction "
                    + "(torch.nn.utils.clip_grad_norm_).", "norm")
        case .minLr: return ("The floor --lr-schedule cosine ends at (eta_min).", nil)
        case .warmupSteps: return ("Global steps of linear warmup from 0 to the peak, instead of --warmup-epochs.", nil)
        case .epochs: return ("Epochs.", nil)
        case .steps:
            return ("Train this many global steps instead of --epochs: the epochs they need, the last stopping part way; "
                    + "cosine reaches --min-lr at the last.", nil)
        case .batchSize: return ("Global batch size, split evenly over the ranks.", nil)
        case .batchPerRank:
            return ("Samples per rank per step instead of --batch-size: the global batch is this times the ranks (a "
                    + "resumed run keeps its global batch).", nil)
        case .seed: return ("Seed for initialisation, shuffling, dropout and synthetic data.", nil)
        case .initWeights:
            return ("Start from these weights (a .safetensors file with the model's tensor names and shapes, PyTorch's, "
                    + "buffers included) instead of a seeded initialisation.", "file")
        case .syncBatchnorm:
            return ("Batch norm normalises with the statistics of the whole global batch, over every rank and replica "
                    + "(torch.nn.SyncBatchNorm); without it each replica uses its own micro-batch's.", nil)
        case .onNan: return ("On a non-finite loss or gradient: stop the run, or skip that step.", nil)
        case .accumulate:
            return ("Micro-batches per optimizer step, whose gradients add up: 1 rank with --accumulate 4 makes the "
                    + "updates of 4 ranks.", nil)
        case .threads: return ("Threads per rank, shared by its replicas (default: cores / ranks on the node).", nil)
        case .replicas:
            return ("Replicas of the model per rank, each on its own thread with a slice of the rank's batch (default: "
                    + "one per thread, when they can share the batch equally).", nil)
        case .bucketMb: return ("Gradient bucket size in MiB for the allreduce.", nil)
        case .noOverlap: return ("Reduce gradients after backward instead of overlapping with it.", nil)
        case .allreduceDtype:
            return ("What the gradients are sent as: fp32, or bf16 (half the bytes; each chunk summed in fp32 by one rank).", nil)
        case .precision:
            return ("What the convolutions and the recurrent layers' products multiply: fp32, or bf16 with fp32 "
                    + "accumulation; weights, optimizer, loss and checkpoints stay fp32.", nil)
        case .trace:
            return ("Write a Chrome trace of every step (open it in Perfetto or chrome://tracing): DIR/rank-R.trace.json "
                    + "per rank, merged into DIR/trace.json.", "dir")
        case .out: return ("Run directory to write.", nil)
        case .checkpointSteps: return ("Also write a checkpoint every N steps (one ends every epoch regardless).", nil)
        case .checkEvery: return ("Compare a checksum of the parameters across ranks every N steps; 0: only at the end.", nil)
        case .saveInitial: return ("Also write the initial parameters, before the first step, as initial.safetensors.", nil)
        case .timeout:
            return ("Seconds a collective may wait for the other ranks before the job ends with exit code 4, naming the "
                    + "ranks that never arrived; 0: wait for ever.", nil)
        case .labelSmoothing:
            return ("Label smoothing ε of the training loss, as PyTorch's CrossEntropyLoss(label_smoothing=ε); the test "
                    + "loss stays plain.", nil)
        case .tta:
            return ("Test-time augmentation: flip averages each test image's probabilities with its mirror's, for twice "
                    + "the evaluation time.", nil)
        case .targetAccuracy:
            return ("Stop at the first evaluation whose test accuracy reaches this fraction, and record the time, steps "
                    + "and epochs to it in summary.json (time to accuracy).", "fraction")
        case .targetLoss:
            return ("Stop at the first evaluation whose test loss is at or below this, and record the time, steps and "
                    + "epochs to it in summary.json.", "loss")
        case .evalEvery:
            return ("Evaluate also every N steps (a whole number) or every fraction of an epoch (in (0, 1)), besides "
                    + "every epoch's end.", "steps|fraction")
        case .evalOn: return ("Which ranks evaluate: rank0 alone, or all, each on a slice of the test set.", nil)
        }
    }

    /// The setting's default as `TrainingConfig()` holds it, as a flag's value is written
    /// (`0.01`, `cnn`, `25`); nil where it has none (unset, or a flag that is off).
    public static func defaultText(_ key: Key) -> String? {
        switch (JSONValue(TrainingConfig()).objectValue ?? [:])[key.rawValue] {
        case .string(let text): return text
        case .int(let value): return String(value)
        case .double(let value): return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .bool, .null, .array, .object, nil: return nil
        }
    }

    /// `--flag`'s help: the meaning, then `(default: X)` unless the meaning says it already.
    public static func help(_ key: Key) -> (text: String, valueName: String?) {
        let (text, valueName) = meaning(key)
        guard let value = defaultText(key), !text.contains("(default:") else { return (text, valueName) }
        return (text.dropLast() + " (default: \(value)).", valueName)
    }
}
