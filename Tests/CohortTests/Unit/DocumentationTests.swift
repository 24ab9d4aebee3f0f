import Foundation
import Testing

/// docs/ and README.md are the project's source of truth: every file they name, every link
/// they follow and every identifier of the code they quote in backticks exists.
@Suite struct DocumentationTests {
    static let documents: [String] = {
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("docs").path)) ?? []
        return ["README.md"] + docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }
    }()

    static func text(_ document: String) throws -> String {
        try String(contentsOfFile: repositoryRoot.appendingPathComponent(document).path, encoding: .utf8)
    }

    /// Every match of `pattern`'s first group in `text`.
    static func matches(_ pattern: String, in text: String) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        }
    }

    /// All Swift source of the package, to look identifiers up in.
    static let code: String = {
        var all = ""
        for folder in ["Sources", "Tests"] {
            let root = repositoryRoot.appendingPathComponent(folder)
            let files = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
            for file in files where file.hasSuffix(".swift") {
                all += (try? String(contentsOfFile: root.appendingPathComponent(file).path, encoding: .utf8)) ?? ""
            }
        }
        return all
    }()

    @Test func documentsAreFound() {
        #expect(Self.documents.count >= 7, "\(Self.documents)")
    }

    /// Paths in backticks (`Sources/...`, `launch/train`, ...) exist in the repository.
    @Test(arguments: documents)
    func quotedPathsExist(document: String) throws {
        let folders = "Sources|Tests|launch|cluster|bench|interop|results|sweeps|docs|examples|api"
        for path in try Self.matches("`((?:\(folders))/[A-Za-z0-9_./-]*)`", in: try Self.text(document)) {
            #expect(FileManager.default.fileExists(atPath: repositoryRoot.appendingPathComponent(path).path),
                    "\(document) names \(path), which does not exist")
        }
    }

    /// Relative links (`[text](../cluster/train)`, `(training.md#recipes)`) lead to a file.
    @Test(arguments: documents)
    func linksLeadToFiles(document: String) throws {
        let base = repositoryRoot.appendingPathComponent(document).deletingLastPathComponent()
        for target in try Self.matches("\\]\\(([^)#\\s]+)(?:#[^)]*)?\\)", in: try Self.text(document))
        where !target.contains("://") && !target.hasPrefix("mailto:") {
            #expect(FileManager.default.fileExists(atPath: base.appendingPathComponent(target).standardized.path),
                    "\(document) links to \(target), which does not exist")
        }
    }

    /// Test names (`ReliabilityTests.aKilledRank...`) and other identifiers of the code quoted
    /// in backticks (long camel-case words such as `runOnEveryRank`) appear in the code.
    @Test(arguments: documents)
    func quotedIdentifiersExist(document: String) throws {
        let text = try Self.text(document)
        for reference in try Self.matches("`([A-Z][A-Za-z]*Tests\\.[a-z][A-Za-z0-9]*)`", in: text) {
            let parts = reference.split(separator: ".")
            #expect(Self.code.contains("struct \(parts[0])") && Self.code.contains("func \(parts[1])("),
                    "\(document) names the test \(reference), which does not exist")
        }
        for word in try Self.matches("`([a-z][a-z0-9]*[A-Z][A-Za-z0-9]{10,})`", in: text) {
            #expect(Self.code.contains(word), "\(document) names \(word), which is nowhere in Sources or Tests")
        }
    }
}
