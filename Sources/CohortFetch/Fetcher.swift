import CohortBase
import CohortData
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Downloads a data set's files into the layout `--data-dir` reads: each file from the first
/// source that gives it whole (its MD5 the catalog's), kept in memory until checked and then
/// written through a temporary file and a rename, so that an interrupted fetch leaves no file
/// that looks complete. An archive (CIFAR-10) is unpacked the same way, file by file.
public struct Fetcher {
    public var catalog: Catalog
    /// Addresses to try, in order; a file's URL is an address + its name.
    public var sources: [String]
    public var directory: String
    /// Seconds without a byte before a source is given up.
    public var timeout = 60.0
    public var report: (String) -> Void = { _ in }

    public init(catalog: Catalog, sources: [String], directory: String) {
        self.catalog = catalog; self.sources = sources; self.directory = directory
    }

    public func run() throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CohortError.failure("\(directory): cannot create the directory (\(error.localizedDescription))")
        }
        for file in catalog.files {
            let target = "\(directory)/\(file.name)"
            if catalog.isArchive ? unpackedArchiveIsThere() : hasGoodCopy(file, at: target) {
                report("\(file.name): already there")
                continue
            }
            let bytes = try fetch(file)
            try writeAtomically(Data(bytes), to: target)
            if catalog.isArchive { try unpack(target) }
        }
    }

    /// The file from the first source that gives it with the right sum; the reasons of every
    /// source that did not, in one error, when none does.
    func fetch(_ file: Catalog.File) throws -> [UInt8] {
        var failures: [String] = []
        for source in sources {
            let url = source.hasSuffix("/") ? source + file.name : "\(source)/\(file.name)"
            do {
                let bytes = try download(url)
                let sum = MD5.hex(bytes)
                guard sum == file.md5 else {
                    throw CohortError.failure("md5 \(sum), expected \(file.md5): cut short or damaged")
                }
                report("\(file.name): \(bytes.count) bytes from \(url), md5 \(sum) as expected")
                return bytes
            } catch let error as CohortError {
                report("\(file.name): \(url): \(error.description)")
                failures.append("\(url): \(error.description)")
            }
        }
        throw CohortError.failure("\(file.name): no source gave a good copy (\(failures.joined(separator: "; ")))")
    }

    /// One GET, whole: an error for no connection, an HTTP status other than 200, or fewer
    /// bytes than the server announced.
    func download(_ address: String) throws -> [UInt8] {
        guard let url = URL(string: address), let scheme = url.scheme, ["http", "https"].contains(scheme) else {
            throw CohortError.settings("not an http(s) address")
        }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = "GET"
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: (Data?, URLResponse?, Error?) = (nil, nil, nil)
        let task = URLSession.shared.dataTask(with: request) { data, response, error in
            outcome = (data, response, error)
            done.signal()
        }
        task.resume()
        done.wait()
        let (data, response, error) = outcome
        if let error { throw CohortError.failure("cannot download (\(error.localizedDescription))") }
        guard let http = response as? HTTPURLResponse else { throw CohortError.failure("no HTTP response") }
        guard http.statusCode == 200 else {
            throw CohortError.failure("HTTP \(http.statusCode) \(HTTPURLResponse.localizedString(forStatusCode: http.statusCode))")
        }
        let bytes = [UInt8](data ?? Data())
        if http.expectedContentLength >= 0 && Int64(bytes.count) != http.expectedContentLength {
            throw CohortError.failure("cut short: \(bytes.count) of \(http.expectedContentLength) bytes")
        }
        return bytes
    }

    func hasGoodCopy(_ file: Catalog.File, at path: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        return MD5.hex([UInt8](data)) == file.md5
    }

    /// The folder the CIFAR-10 reader takes, unpacked from the archive.
    var unpackedDirectory: String { "\(directory)/cifar-10-batches-bin" }
    static let unpackedNames = CIFAR10.trainFiles + CIFAR10.testFiles + ["batches.meta.txt"]

    func unpackedArchiveIsThere() -> Bool {
        Self.unpackedNames.allSatisfy { FileManager.default.fileExists(atPath: "\(unpackedDirectory)/\($0)") }
    }

    /// Writes the archive's files of `cifar-10-batches-bin/` (by their base names only: no
    /// entry can write outside the folder) in the reader's order, `batches.meta.txt` last, which
    /// marks the folder complete; then removes the archive.
    func unpack(_ archive: String) throws {
        var contents: [String: ArraySlice<UInt8>] = [:]
        for entry in try Tar.files(try readPossiblyCompressed(archive)) {
            contents[(entry.path as NSString).lastPathComponent] = entry.contents
        }
        let missing = Self.unpackedNames.filter { contents[$0] == nil }
        guard missing.isEmpty else { throw CohortError.failure("\(archive): no \(missing.joined(separator: ", ")) in the archive") }
        try FileManager.default.createDirectory(atPath: unpackedDirectory, withIntermediateDirectories: true)
        for name in Self.unpackedNames { try writeAtomically(Data(contents[name]!), to: "\(unpackedDirectory)/\(name)") }
        try FileManager.default.removeItem(atPath: archive)
        report("\(catalog.files[0].name): unpacked to \(unpackedDirectory)")
    }
}
