import CohortBase
@testable import CohortSweep
import Foundation
import Testing

/// `results/`: the reference report's grids re-run and kept beside the code. Its Markdown
/// must render on GitHub (every relative link resolves inside the repository), it stays
/// small, both sweeps are complete, and `reference.json` names points the grids run.
@Suite struct ResultsTests {
    let results = repositoryRoot.appendingPathComponent("results")
    let sweeps = ["cifar10-cnn": 12, "mnist-rnn": 24]

    /// Every Markdown file under results/, and the top README that links to it.
    func markdownFiles() throws -> [URL] {
        let all = try #require(FileManager.default.enumerator(at: results, includingPropertiesForKeys: nil))
        return all.compactMap { $0 as? URL }.filter { $0.pathExtension == "md" }
            + [repositoryRoot.appendingPathComponent("README.md")]
    }

    /// Link targets of `[text](target)`, `![alt](target)` and `<img src="target">`.
    static func links(in text: String) -> [String] {
        let patterns = [#"\]\(([^)\s]+)(?:\s+"[^"]*")?\)"#, #"<img[^>]*\ssrc="([^"]+)""#]
        return patterns.flatMap { pattern -> [String] in
            let regex = try! NSRegularExpression(pattern: pattern)
            return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
                String(text[Range($0.range(at: 1), in: text)!])
            }
        }
    }

    @Test func everyRelativeLinkInTheResultsResolves() throws {
        let files = try markdownFiles()
        let names = Set(files.map { $0.path.replacingOccurrences(of: repositoryRoot.path + "/", with: "") })
        #expect(names.isSuperset(of: ["README.md", "results/README.md", "results/cifar10-cnn/report.md", "results/mnist-rnn/report.md"]))
        let root = repositoryRoot.standardizedFileURL.path
        var checked = 0
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for link in Self.links(in: text) where !link.contains("://") && !link.hasPrefix("#") && !link.hasPrefix("mailto:") {
                let path = String(link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0])
                let target = file.deletingLastPathComponent().appendingPathComponent(path.removingPercentEncoding ?? path)
                    .standardizedFileURL.path
                #expect(target.hasPrefix(root + "/"), "\(file.lastPathComponent): \(link) leaves the repository")
                #expect(FileManager.default.fileExists(atPath: target), "\(file.path): \(link) does not resolve")
                checked += 1
            }
        }
        // Each report links its curves (two per run) and the reference.
        #expect(checked > 2 * (12 + 24))
    }

    @Test func theResultsStayUnderTwentyMegabytes() throws {
        let enumerator = try #require(FileManager.default.enumerator(at: results, includingPropertiesForKeys: [.fileSizeKey]))
        let all = enumerator.compactMap { $0 as? URL }
        let bytes = try all.reduce(0) { $0 + (try $1.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0) }
        #expect(bytes > 0 && bytes < 20_000_000, "\(bytes) bytes")
        #expect(all.count > 5 * (12 + 24), "every run's files are there")
        #expect(!all.contains { $0.lastPathComponent == "checkpoints" }, "no checkpoints are kept")
    }

    @Test func bothSweepsRanEveryPoint() throws {
        for (name, count) in sweeps {
            let report = try SweepReport(directory: results.appendingPathComponent(name).path,
                                         referenceFile: results.appendingPathComponent("reference.json").path)
            #expect(report.runs.count == count)
            #expect(report.runs.allSatisfy { $0.summary != nil }, "\(name): every run has summary.json")
            // The best run's model is kept.
            let best = try #require(report.best)
            #expect(FileManager.default.fileExists(atPath: "\(best.directory)/model.safetensors"))
        }
    }

    /// reference.json names points the sweep files run: 7 of the CNN grid's points (the
    /// report shows those) and 4 per recurrent cell.
    @Test func theReferenceFitsTheReportsGrids() throws {
        let reference = try ReferenceResults.read(path: results.appendingPathComponent("reference.json").path)
        for (name, points) in ["cifar10-cnn": 7, "mnist-rnn": 12] {
            let file = try SweepFile(path: repositoryRoot.appendingPathComponent("sweeps/\(name).toml").path)
            let spec = try SweepSpec(name: name, ranks: file.ranks ?? 1, fixed: file.fixed, axes: file.axes)
            let sweep = try reference.sweep(for: spec, file: "reference.json")
            #expect(sweep.points.count == points)
        }
    }
}
