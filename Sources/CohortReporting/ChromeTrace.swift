import CohortBase
import Foundation

/// A Chrome trace event file (opens in Perfetto, ui.perfetto.dev, and chrome://tracing), in
/// the trace event format's JSON array form: `[` then one event object per line. Each span
/// is a complete event `{"ph": "X", "name", "cat", "ts", "dur", "pid", "tid", "args"}`, times
/// in microseconds; `pid` is a process (a rank), `tid` a track within it. Events are
/// buffered and written in blocks; `close` ends the array. A file cut short (a killed run)
/// still opens: the viewers accept an array without its closing bracket.
public final class ChromeTraceWriter {
    public let path: String
    private let handle: FileHandle
    private var pending = ""
    private var first = true
    /// A write that failed while buffering, reported by the next `flush` or `close`.
    private var failure: Error?
    /// Bytes buffered before a write.
    private static let blockBytes = 1 << 16

    public init(path: String) throws {
        self.path = path
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CohortError.failure("\(path): cannot write the trace (\(String(cString: strerror(errno))))")
        }
        self.handle = handle
        pending = "[\n"
    }

    deinit { try? handle.close() }

    /// A span of `track` in `process` from `start` for `duration` (microseconds).
    public func span(_ name: String, category: String, process: Int, track: Int, start: Double, duration: Double,
                     args: [String: Int] = [:]) {
        var event = "{\"ph\":\"X\",\"name\":\(quoted(name)),\"cat\":\(quoted(category)),\"pid\":\(process),\"tid\":\(track),"
            + "\"ts\":\(microseconds(start)),\"dur\":\(microseconds(duration))"
        if !args.isEmpty {
            event += ",\"args\":{" + args.keys.sorted().map { "\(quoted($0)):\(args[$0]!)" }.joined(separator: ",") + "}"
        }
        append(event + "}")
    }

    /// Names `process` (shown as the process's title) and its tracks, ordered by `sortIndex`.
    public func name(process: Int, _ name: String, sortIndex: Int, tracks: [Int: String]) {
        append("{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":\(process),\"args\":{\"name\":\(quoted(name))}}")
        append("{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":\(process),\"args\":{\"sort_index\":\(sortIndex)}}")
        for (track, title) in tracks.sorted(by: { $0.key < $1.key }) {
            append("{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":\(process),\"tid\":\(track),\"args\":{\"name\":\(quoted(title))}}")
        }
    }

    /// Writes what is buffered.
    public func flush() throws {
        if let failure { throw failure }
        guard !pending.isEmpty else { return }
        do { try handle.write(contentsOf: Data(pending.utf8)) } catch {
            throw CohortError.failure("\(path): cannot write the trace (\(error.localizedDescription))")
        }
        pending = ""
    }

    /// Ends the array and the file.
    public func close() throws {
        pending += "\n]\n"
        try flush()
        try handle.close()
    }

    private func append(_ event: String) {
        pending += (first ? "" : ",\n") + event
        first = false
        if pending.utf8.count >= Self.blockBytes {
            do { try flush() } catch {
                failure = error
                pending = ""
            }
        }
    }

    /// Microseconds with nanosecond digits, as the format's viewers read them.
    private func microseconds(_ value: Double) -> String { String(format: "%.3f", value) }

    private func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
