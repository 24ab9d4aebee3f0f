import CZlib
import CohortBase
import Foundation

/// Reads a whole file, inflating it first if it is gzip-compressed (recognised by its
/// magic bytes, not its name). A missing, unreadable, corrupt or truncated file is a
/// `CohortError` that names it.
public func readPossiblyCompressed(_ path: String) throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw CohortError.failure("\(path): no such file")
    }
    guard !isDirectory.boolValue else { throw CohortError.failure("\(path): is a directory, expected a file") }
    guard let data = FileManager.default.contents(atPath: path) else { throw CohortError.failure("\(path): cannot read the file") }
    let bytes = [UInt8](data)
    guard bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B else { return bytes }
    return try gunzip(bytes, path: path)
}

/// Inflates every gzip member of `compressed` (a `.gz` may hold several, concatenated).
private func gunzip(_ compressed: [UInt8], path: String) throws -> [UInt8] {
    var stream = z_stream()
    // windowBits 15 + 16: expect a gzip wrapper, largest window.
    guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw CohortError.failure("\(path): zlib could not start inflating")
    }
    defer { inflateEnd(&stream) }
    var output: [UInt8] = []
    output.reserveCapacity(compressed.count * 4)
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    try compressed.withUnsafeBufferPointer { input in
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!)
        stream.avail_in = uInt(input.count)
        while true {
            let status = chunk.withUnsafeMutableBufferPointer { out -> Int32 in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return inflate(&stream, Z_NO_FLUSH)
            }
            output.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
            switch status {
            case Z_STREAM_END:
                if stream.avail_in == 0 { return }
                inflateReset(&stream)  // another gzip member follows
            case Z_OK:
                continue
            case Z_BUF_ERROR where stream.avail_in == 0:
                throw CohortError.failure("\(path): compressed data ends early, the file is truncated")
            default:
                let reason = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw CohortError.failure("\(path): corrupt gzip data (\(reason))")
            }
        }
    }
    return output
}
