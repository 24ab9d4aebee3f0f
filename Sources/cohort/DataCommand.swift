import ArgumentParser
import CohortBase
import CohortData
import CohortFetch
import Foundation

/// `cohort data`: getting the data sets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Get the data sets.",
                                                    subcommands: [Fetch.self])

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
