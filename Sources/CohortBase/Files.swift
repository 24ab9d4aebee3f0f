import CLinux
import Foundation

/// This machine's name up to the first dot: part of the names of files that several nodes
/// may write into one directory of a shared file system (temporary files, event files).
public let shortHostName: String =
    ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"

/// Writes `contents` to `path` atomically: a temporary file in the same directory,
/// flushed to disk, then renamed over the target, so a reader never sees half a file.
public func writeAtomically(_ contents: Data, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    // Host and process in the name: writers on other nodes of a shared file system never meet.
    let temporary = "\(directory.isEmpty ? "." : directory)/.\((path as NSString).lastPathComponent).tmp-\(shortHostName)-\(getpid())"
    do {
        try writeDurably(contents, to: temporary, reportedAs: path)
        guard rename(temporary, path) == 0 else {
            throw CohortError.failure("\(path): cannot rename into place (\(String(cString: strerror(errno))))")
        }
    } catch {
        unlink(temporary)
        throw error
    }
}

public func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Data(text.utf8), to: path)
}

/// Writes `contents` to a new file `path` and flushes it to disk (errors name `reportedAs`):
/// for files inside a directory that is itself renamed into place once complete.
public func writeDurably(_ contents: Data, to path: String, reportedAs name: String? = nil) throws {
    let name = name ?? path
    guard FileManager.default.createFile(atPath: path, contents: nil) else {
        throw CohortError.failure("\(name): cannot write (\(String(cString: strerror(errno))))")
    }
    do {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: contents)
        try handle.synchronize()
        try handle.close()
    } catch {
        throw CohortError.failure("\(name): cannot write (\(error.localizedDescription))")
    }
}

/// Swaps two existing paths (files or directories) in one step: a reader sees one or the
/// other, never neither.
public func exchangeAtomically(_ a: String, _ b: String) throws {
    guard renameat2(COHORT_AT_FDCWD, a, COHORT_AT_FDCWD, b, UInt32(COHORT_RENAME_EXCHANGE)) == 0 else {
        throw CohortError.failure("\(b): cannot replace it with \(a) (\(String(cString: strerror(errno))))")
    }
}

/// Flushes a directory's entries (a rename is durable only once its directory is).
public func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
}

/// Creates `path` and its parents, or fails naming it.
public func createDirectory(_ path: String) throws {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw CohortError.failure("\(path): cannot create the directory (\(error.localizedDescription))")
    }
}

/// `path` as seen from `directory` (both relative to the working directory or absolute),
/// e.g. `../reference.json` from `results/cifar10-cnn` to `results/reference.json`: for
/// links in Markdown files that must resolve wherever the repository is.
public func relativePath(from directory: String, to path: String) -> String {
    let from = URL(fileURLWithPath: directory).standardizedFileURL.pathComponents
    let to = URL(fileURLWithPath: path).standardizedFileURL.pathComponents
    let shared = zip(from, to).prefix { $0 == $1 }.count
    let parts = Array(repeating: "..", count: from.count - shared) + to[shared...]
    return parts.isEmpty ? "." : parts.joined(separator: "/")
}
