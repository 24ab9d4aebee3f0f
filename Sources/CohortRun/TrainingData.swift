import CohortBase
import CohortData
import CohortNN
import Foundation

/// The settings that say which data a run reads and how: checked, turned into the readers'
/// `DataOptions`, and the data loaded with them.
extension TrainingConfig {
    /// The data settings' own checks (part of `validate`).
    func validateDataSettings() throws {
        _ = try dataOptions()
        if (imageSize != nil || skipBadFiles) && dataset != .folder {
            throw CohortError.settings("--image-size and --skip-bad-files read image files (--dataset folder); a pack's "
                                       + "samples were made when it was packed")
        }
        if valSplit != nil && dataset != .folder && dataset != .arrays {
            throw CohortError.settings("--val-split holds out a part of a folder's or arrays' training samples "
                                       + "(--dataset folder or arrays)")
        }
        guard (0...64).contains(loaderThreads) else {
            throw CohortError.settings("--loader-threads must be in 0...64, got \(loaderThreads)")
        }
        if dataset == .text {
            guard dataFile != nil else { throw CohortError.settings("--dataset text reads the bytes of --data-file FILE") }
            guard dataDir == nil, limit == nil, testLimit == nil, !augment, normalize == nil else {
                throw CohortError.settings("--dataset text takes --data-file, --block-size and --eval-windows (not --data-dir, "
                                           + "--limit, --test-limit, --augment or --normalize)")
            }
        } else if dataFile != nil {
            throw CohortError.settings("--data-file is the text of --dataset text (other data sets read --data-dir)")
        }
        guard (1...(1 << 16)).contains(blockSize) else { throw CohortError.settings("--block-size must be in 1...65536, got \(blockSize)") }
        guard (1...(1 << 20)).contains(evalWindows) else {
            throw CohortError.settings("--eval-windows must be in 1...2^20, got \(evalWindows)")
        }
        if targetLoss != nil && targetAccuracy != nil {
            throw CohortError.settings("give --target-accuracy or --target-loss, not both")
        }
    }

    /// How the data set is read: `--image-size`, `--val-split`, `--normalize`, `--skip-bad-files`, `--seed`.
    public func dataOptions() throws -> DataOptions {
        var size: [Int]?
        if let text = imageSize {
            let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(parts.count), parts.allSatisfy({ ($0 ?? 0) > 0 && $0! <= 8192 }) else {
                throw CohortError.settings("--image-size \(text): expected HxW or S, sizes in 1...8192 (32x32, 224)")
            }
            size = parts.count == 1 ? [parts[0]!, parts[0]!] : [parts[0]!, parts[1]!]
        }
        if let f = valSplit, !(f.isFinite && f > 0 && f < 1) {
            throw CohortError.settings("--val-split is a fraction of the training samples in (0, 1), got \(f)")
        }
        var options = DataOptions(imageSize: size, valSplit: valSplit,
                                  normalize: try normalize.map(InputNormalization.init(parsing:)),
                                  skipBadFiles: skipBadFiles, seed: seed)
        (options.blockSize, options.evalWindows) = (blockSize, evalWindows)
        return options
    }

    /// Loads the data and checks that `spec` builds on it (a mistake in a model file is a
    /// settings error, exit 64), before anything is written.
    public func loadData(for spec: ModelSpec) throws -> DatasetSplits {
        var data = try DatasetSource.load(dataset, dataDirectory: dataset == .text ? dataFile : dataDir, seed: seed,
                                          syntheticShape: spec.syntheticShape,
                                          syntheticCounts: (limit ?? Synthetic.defaultCounts.train,
                                                            testLimit ?? Synthetic.defaultCounts.test),
                                          options: dataOptions())
        if let l = limit { data.train = data.train.prefix(l) }
        if let l = testLimit { data.test = data.test.prefix(l) }
        try check(spec, on: data)
        return data
    }

    /// Checks that `spec` builds on `data`'s images and that a batch fits in its training set.
    /// With `--precision bf16`, the model must have a layer that multiplies in bf16 (a
    /// convolution or a recurrent layer): the linear layers and attention multiply in fp32, so a
    /// transformer would run as it does without the flag.
    public func check(_ spec: ModelSpec, on data: DatasetSplits) throws {
        let train = data.train
        let network: Network
        do {
            network = try spec.build(on: train.sampleFormat, maxBatch: 1)
        } catch {
            let samples = train.windows.map { "windows of \($0.length) tokens of \(train.classes) values" }
                ?? "images \(train.imageShape)"
            throw CohortError.settings("\(error.description) (\(train.name) has \(samples))")
        }
        if precision == .bf16 && !network.allLayers.contains(where: { $0 is Conv2D || $0 is Recurrent }) {
            throw CohortError.settings("--precision bf16: \(spec.name) has no convolution or recurrent layer, the layers "
                                       + "that multiply in bf16 (its linear layers and attention multiply in fp32); "
                                       + "use --precision fp32")
        }
        guard train.count >= batchSize else {
            throw CohortError.failure("--batch-size \(batchSize) is larger than the \(train.count) training samples")
        }
    }
}

extension ImageDataset {
    /// What a model reads and predicts per sample of this set.
    public var sampleFormat: SampleFormat {
        SampleFormat(inputShape: inputShape, classes: classes, vocabulary: vocabulary, targetsPerSample: targetsPerSample)
    }
}
