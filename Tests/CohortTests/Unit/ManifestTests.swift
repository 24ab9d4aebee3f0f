import Foundation
import Testing

/// The manifest says what each target uses: every target declares exactly the modules its
/// sources import (system modules and the package's own targets; products of other packages
/// are left aside).
@Suite struct ManifestTests {
    /// Each target of Package.swift and the names in its `dependencies: [...]`.
    static func declared() throws -> [String: Set<String>] {
        let manifest = try String(contentsOf: repositoryRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let regex = try NSRegularExpression(pattern: #"\.(?:target|executableTarget)\(name: "([^"]+)",\s*dependencies: \[([^\]]*)\]"#)
        var result: [String: Set<String>] = [:]
        for match in regex.matches(in: manifest, range: NSRange(manifest.startIndex..., in: manifest)) {
            let name = String(manifest[Range(match.range(at: 1), in: manifest)!])
            let list = String(manifest[Range(match.range(at: 2), in: manifest)!])
            let quoted = try NSRegularExpression(pattern: #"^\s*"([A-Za-z]+)""#, options: .anchorsMatchLines)
            let names = list.split(separator: ",").compactMap { item -> String? in
                let text = String(item)
                guard let m = quoted.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return nil }
                return String(text[Range(m.range(at: 1), in: text)!])
            }
            result[name] = Set(names)
        }
        return result
    }

    /// The package's own modules that the sources of `target` import.
    static func imported(by target: String, among modules: Set<String>) -> Set<String> {
        let folder = repositoryRoot.appendingPathComponent("Sources/\(target)")
        let files = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String } ?? []
        var names = Set<String>()
        for file in files where file.hasSuffix(".swift") {
            let text = (try? String(contentsOfFile: folder.appendingPathComponent(file).path, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let at = words.firstIndex(of: "import"), at + 1 < words.count, at == 0 || words[0] == "@testable" else { continue }
                let module = String(words[at + 1])
                if modules.contains(module) { names.insert(module) }
            }
        }
        return names
    }

    @Test func everyTargetDeclaresExactlyWhatItImports() throws {
        let targets = try Self.declared()
        #expect(targets.count >= 15, "targets read from Package.swift: \(targets.keys.sorted())")
        let systemModules = ["CBLAS", "CMPI", "CZlib", "CDNNL", "CLinux", "CJPEG"]
        let modules = Set(targets.keys).union(systemModules)
        for (target, dependencies) in targets {
            let imports = Self.imported(by: target, among: modules)
            #expect(imports.subtracting(dependencies).isEmpty,
                    "\(target) imports \(imports.subtracting(dependencies).sorted()) without declaring them")
            #expect(dependencies.subtracting(imports).isEmpty,
                    "\(target) declares \(dependencies.subtracting(imports).sorted()) and imports nothing of them")
        }
    }
}
