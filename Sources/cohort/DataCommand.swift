import ArgumentParser
import CohortBase
import CohortData
import CohortFetch
import CohortRun
import Foundation

/// `cohort data`: getting the data sets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data",
                                                    abstract: "Get the data sets, or pack your own.",
                                                    subcommands: [Fetch.self, PackCommand.self])

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a data set, check every file's MD5 and unpack it where --data-dir reads it.",
            discussion: """
            From the data set's official address (MNIST's page, Fashion-MNIST's, the CIFAR-10 page) \
            unless --mirror gives others, tried in the order given (`--mirror official` puts the \
            official address among them). Each file is checked against its published MD5 (or the \
            sums of --checksums, for mirrors that keep repacked copies), written through a \
            temporary file and a rename, and a file already there with the right sum is kept. \
            CIFAR-10's archive is unpacked to DIR/cifar-10-batches-bin and removed.
            """)

        @Argument(help: "cifar10, mnist or fashion-mnist.")
        var dataset: DatasetKind
        @Option(help: "Directory to write (default: data/NAME, where training looks).")
        var to: String?
        @Option(help: ArgumentHelp("An address holding the files, tried in order (repeat it); 'official' for the data set's own.",
                                   valueName: "url"))
        var mirror: [String] = []
        @Option(help: ArgumentHelp("A file of 'MD5  NAME' lines (md5sum's format) to check against instead of the published sums.",
                                   valueName: "file"))
        var checksums: String?
        @Option(help: "Seconds without data before a source is given up.")
        var timeout = 60.0

        func validate() throws {
            guard timeout.isFinite, timeout > 0, timeout <= 86_400 else {
                throw ValidationError("--timeout must be in (0, 86400] seconds, got \(timeout)")
            }
        }

        func run() throws {
            try reportingErrors {
                var catalog = try Catalog.standard(dataset)
                if let checksums {
                    guard let text = try? String(contentsOfFile: checksums, encoding: .utf8) else {
                        throw CohortError.settings("--checksums \(checksums): cannot read the file")
                    }
                    try catalog.useChecksums(text, source: checksums)
                }
                let sources = mirror.isEmpty ? [catalog.official] : mirror.map { $0 == "official" ? catalog.official : $0 }
                var fetcher = Fetcher(catalog: catalog, sources: sources, directory: to ?? "data/\(dataset.rawValue)")
                fetcher.timeout = timeout
                fetcher.report = { say("cohort data fetch: \($0)") }
                try fetcher.run()
                say("cohort data fetch: \(dataset.rawValue) is in \(fetcher.directory) (--data-dir \(fetcher.directory))")
            }
        }
    }
}

extension DataCommand {
    /// `cohort data pack`: the user's own data as shards that training maps (`Pack`).
    struct PackCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pack",
            abstract: "Pack an image folder or arrays into shards of decoded samples that the ranks of a node share.",
            discussion: """
            SOURCE is read as training reads it (--dataset folder or arrays, with --image-size, --val-split, \
            --normalize, --skip-bad-files and --seed); its samples are written decoded, in the order the \
            source lists them, into DIR/train-NNNNN.shard and DIR/test-NNNNN.shard, with DIR/pack.json \
            (shape, classes and their names, the normalisation, each shard's count and CRC-32) written \
            last. Train on it with --dataset pack --data-dir DIR (docs/training.md#packs).
            """)

        @Argument(help: "An image folder (DIR/train/CLASS/IMAGE) or arrays (a directory of .npy files, or an .npz).")
        var source: String
        @Option(help: "The pack's directory (created; it must not hold a pack).")
        var out: String
        @Option(help: "folder or arrays (default: arrays if SOURCE holds x_train.npy or is an .npz, else folder).")
        var from: DatasetKind?
        @Option(help: ArgumentHelp("Bytes of samples per shard, in MiB.", valueName: "MiB"))
        var shardMb = 256.0
        @OptionGroup var reading: DataReadingOptions
        @Option(help: "Seed of --val-split's draw.")
        var seed: UInt64 = 0

        func validate() throws {
            guard shardMb.isFinite, shardMb > 0, shardMb <= 1_048_576 else {
                throw ValidationError("--shard-mb must be in (0, 2^20], got \(shardMb)")
            }
            if let from, from != .folder && from != .arrays { throw ValidationError("--from is folder or arrays, got \(from.rawValue)") }
        }

        func run() throws {
            try reportingErrors {
                var config = try TrainingConfig.from(given: reading.givenSettings)
                config.seed = seed
                let kind = from ?? (source.hasSuffix(".npz") || FileManager.default.fileExists(atPath: "\(source)/x_train.npy")
                    || ((try? FileManager.default.contentsOfDirectory(atPath: source)) ?? []).contains { $0.hasSuffix(".npz") }
                    ? .arrays : .folder)
                let data = try DatasetSource.loadUserData(kind, path: source, options: config.dataOptions())
                for skipped in data.skippedFiles { say("cohort data pack: skipped \(skipped)") }
                let index = try Pack.write(data, to: out, shardBytes: Int(shardMb * 1_048_576)) { say("cohort data pack: \($0)") }
                say("cohort data pack: \(index.train.count) training and \(index.test.count) test samples of \(index.shape) "
                    + "(\(index.classes) classes, \(index.train.shards.count + index.test.shards.count) shards) in \(out); "
                    + "train with --dataset pack --data-dir \(out)")
            }
        }
    }
}
