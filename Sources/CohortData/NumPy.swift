import CZlib
import CohortBase
import Foundation

/// An array in a NumPy `.npy` file (format 1.0, 2.0 or 3.0), or a member of an `.npz` archive:
/// its dtype, shape and where its C-order data lies, which is mapped, not read.
public struct NumPyArray: Sendable {
    public enum DType: String, Sendable {
        case uint8 = "u1", int8 = "i1", int16 = "i2", uint16 = "u2", int32 = "i4", uint32 = "u4"
        case int64 = "i8", uint64 = "u8", float32 = "f4"

        public var byteCount: Int { Int(rawValue.dropFirst())! }
    }

    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let file: MappedFile
    /// Byte offset of the data in `file`.
    public let offset: Int

    public var count: Int { shape.reduce(1, *) }

    /// The array of the `.npy` file at `path`.
    public init(npy path: String) throws {
        let file = try MappedFile(path: path)
        try self.init(name: path, file: file, at: 0, length: file.size)
    }

    /// The array whose `.npy` bytes are `length` bytes from `start` of `file`.
    init(name: String, file: MappedFile, at start: Int, length: Int) throws {
        func fail(_ why: String) -> CohortError { .failure("\(name): \(why)") }
        guard length >= 10, file.bytes(start..<(start + 6)) == [0x93] + Array("NUMPY".utf8) else {
            throw fail(length == 0 ? "an empty file, not a .npy array" : "not a .npy array (no \\x93NUMPY magic)")
        }
        let major = file.bytes((start + 6)..<(start + 7))[0]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            let b = file.bytes((start + 8)..<(start + 10))
            headerLength = Int(b[0]) | Int(b[1]) << 8; headerStart = start + 10
        case 2, 3:
            guard length >= 12 else { throw fail("the file ends inside its header") }
            let b = file.bytes((start + 8)..<(start + 12))
            headerLength = b.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }; headerStart = start + 12
        default: throw fail(".npy format version \(major) (1 to 3 are read)")
        }
        guard headerStart + headerLength <= start + length else { throw fail("the file ends inside its header") }
        let header = String(decoding: file.bytes(headerStart..<(headerStart + headerLength)), as: UTF8.self)
        let (descr, fortran, shape) = try Self.parseHeader(header, fail: fail)
        guard !fortran else { throw fail("stored in Fortran order; save it with np.ascontiguousarray first") }
        guard let type = descr.first, "<|=".contains(type), let dtype = DType(rawValue: String(descr.dropFirst())) else {
            throw fail("dtype '\(descr)' is not read (uint8 or float32 for x, integers for y; little-endian)")
        }
        if dtype.byteCount > 1 && type == "|" { throw fail("dtype '\(descr)' has no byte order") }
        var bytes = dtype.byteCount
        for size in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: size)
            guard size >= 0, !overflow else { throw fail("shape \(shape) is not a size this machine holds") }
            bytes = product
        }
        let dataStart = headerStart + headerLength
        guard bytes <= start + length - dataStart else {
            throw fail("holds \(start + length - dataStart) bytes of data, its shape \(shape) of \(descr) needs \(bytes) (truncated?)")
        }
        self.name = name; self.dtype = dtype; self.shape = shape; self.file = file; self.offset = dataStart
    }

    /// The header's `descr`, `fortran_order` and `shape` (a Python dict literal).
    static func parseHeader(_ header: String, fail: (String) -> CohortError) throws -> (String, Bool, [Int]) {
        func value(of key: String) -> Substring? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return header[range.upperBound...].drop { $0 == " " }
        }
        guard let d = value(of: "descr"), let quote = d.first, quote == "'" || quote == "\"",
              let end = d.dropFirst().firstIndex(of: quote) else {
            throw fail("its header has no 'descr' (an object array, or not written by NumPy?)")
        }
        let descr = String(d[d.index(after: d.startIndex)..<end])
        guard !descr.contains("O") else { throw fail("dtype object ('\(descr)') holds Python objects, not numbers") }
        let fortran = value(of: "fortran_order")?.hasPrefix("True") ?? false
        guard let s = value(of: "shape"), s.first == "(", let close = s.firstIndex(of: ")") else {
            throw fail("its header has no 'shape'")
        }
        let items = s[s.index(after: s.startIndex)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        let shape = items.compactMap { Int($0.hasSuffix("L") ? String($0.dropLast()) : $0) }
        guard shape.count == items.count else { throw fail("shape (\(items.joined(separator: ", "))) is not a list of sizes") }
        return (descr, fortran, shape)
    }

    /// Every value as an Int (labels), checked to fit.
    public func integers() throws -> [Int] {
        let p = file.base + offset
        switch dtype {
        case .float32: throw CohortError.failure("\(name): float32 values where integer class labels are expected")
        case .uint8: return (0..<count).map { Int(p.load(fromByteOffset: $0, as: UInt8.self)) }
        case .int8: return (0..<count).map { Int(p.load(fromByteOffset: $0, as: Int8.self)) }
        case .int16: return (0..<count).map { Int(Int16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
        case .uint16: return (0..<count).map { Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
        case .int32: return (0..<count).map { Int(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        case .uint32: return (0..<count).map { Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        case .int64: return (0..<count).map { Int(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
        case .uint64:
            return try (0..<count).map {
                let v = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))
                guard v <= UInt64(Int.max) else { throw CohortError.failure("\(name): label \(v) is out of range") }
                return Int(v)
            }
        }
    }
}

/// The members of a `.npz` archive (a ZIP file, as `np.savez` and `np.savez_compressed` write
/// it, ZIP64 included), by name without `.npy`. Stored members are mapped in place; deflated ones
/// are inflated into memory (the one case where an array is copied whole).
public enum NumPyArchive {
    public static func arrays(_ path: String) throws -> [String: NumPyArray] {
        let file = try MappedFile(path: path)
        func fail(_ why: String) -> CohortError { .failure("\(path): \(why)") }
        func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: file.base.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: file.base.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func u64(_ at: Int) -> Int { Int(truncatingIfNeeded: UInt64(littleEndian: file.base.loadUnaligned(fromByteOffset: at, as: UInt64.self))) }
        // The end of central directory record: signature 0x06054b50 in the last 64 KiB + 22 bytes.
        guard file.size >= 22 else { throw fail(file.size == 0 ? "an empty file, not an .npz archive" : "not an .npz (ZIP) archive") }
        var end = file.size - 22
        while end >= max(0, file.size - 22 - 65_535), u32(end) != 0x0605_4b50 { end -= 1 }
        guard end >= 0, u32(end) == 0x0605_4b50 else { throw fail("not an .npz (ZIP) archive: no central directory") }
        var entries = u16(end + 10), directory = u32(end + 16)
        if entries == 0xFFFF || directory == 0xFFFF_FFFF {
            // ZIP64: its end record's locator sits just before.
            let locator = end - 20
            guard locator >= 0, u32(locator) == 0x0706_4b50 else { throw fail("a damaged ZIP64 directory") }
            let record = u64(locator + 8)
            guard record >= 0, record + 56 <= file.size, u32(record) == 0x0606_4b50 else { throw fail("a damaged ZIP64 directory") }
            entries = u64(record + 32); directory = u64(record + 48)
        }
        var arrays: [String: NumPyArray] = [:]
        var at = directory
        for _ in 0..<entries {
            guard at >= 0, at + 46 <= file.size, u32(at) == 0x0201_4b50 else { throw fail("a damaged central directory") }
            let method = u16(at + 10)
            var compressed = u32(at + 20), size = u32(at + 24), local = u32(at + 42)
            let nameLength = u16(at + 28), extraLength = u16(at + 30), commentLength = u16(at + 32)
            guard at + 46 + nameLength + extraLength <= file.size else { throw fail("a damaged central directory") }
            let name = String(decoding: file.bytes((at + 46)..<(at + 46 + nameLength)), as: UTF8.self)
            // ZIP64 extra field (id 1): the 8-byte values of the fields that are 0xFFFFFFFF, in this order.
            var extra = at + 46 + nameLength
            while extra + 4 <= at + 46 + nameLength + extraLength {
                let id = u16(extra), length = u16(extra + 2)
                if id == 1 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = u64(field); field += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = u64(field); field += 8 }
                    if local == 0xFFFF_FFFF { local = u64(field) }
                }
                extra += 4 + length
            }
            at += 46 + nameLength + extraLength + commentLength
            guard local >= 0, local + 30 <= file.size, u32(local) == 0x0403_4b50 else { throw fail("member \(name): a damaged local header") }
            let data = local + 30 + u16(local + 26) + u16(local + 28)
            guard compressed >= 0, data + compressed <= file.size else { throw fail("member \(name) runs past the end (truncated?)") }
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            switch method {
            case 0:
                arrays[key] = try NumPyArray(name: "\(path):\(name)", file: file, at: data, length: compressed)
            case 8:
                let inflated = try inflateRaw(file, at: data, count: compressed, size: size, fail: { fail("member \(name): \($0)") })
                arrays[key] = try NumPyArray(name: "\(path):\(name)", file: inflated, at: 0, length: inflated.size)
            default:
                throw fail("member \(name) uses ZIP compression method \(method) (stored and deflated are read)")
            }
        }
        return arrays
    }

    /// A raw deflate stream inflated into an anonymous memory map of `size` bytes.
    static func inflateRaw(_ file: MappedFile, at start: Int, count: Int, size: Int,
                           fail: (String) -> CohortError) throws -> MappedFile {
        let out = try MappedFile(anonymous: max(size, 0))
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var done = 0, consumed = 0
        while true {
            let chunkIn = min(count - consumed, Int(UInt32.max)), chunkOut = min(size - done, Int(UInt32.max))
            stream.next_in = UnsafeMutablePointer(mutating: (file.base + start + consumed).assumingMemoryBound(to: UInt8.self))
            stream.avail_in = uInt(chunkIn)
            stream.next_out = UnsafeMutableRawPointer(mutating: out.base + done).assumingMemoryBound(to: UInt8.self)
            stream.avail_out = uInt(chunkOut)
            let status = inflate(&stream, Z_NO_FLUSH)
            consumed += chunkIn - Int(stream.avail_in); done += chunkOut - Int(stream.avail_out)
            if status == Z_STREAM_END { break }
            guard status == Z_OK || (status == Z_BUF_ERROR && stream.avail_in > 0 && stream.avail_out > 0) else {
                throw fail(status == Z_BUF_ERROR ? "compressed data ends early (truncated?)" : "corrupt compressed data")
            }
        }
        guard done == size else { throw fail("inflates to \(done) bytes, its directory says \(size)") }
        return out
    }
}
