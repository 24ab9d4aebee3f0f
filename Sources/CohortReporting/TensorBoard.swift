import CohortBase
import Foundation

/// Scalars in TensorBoard's event-file format, as `torch.utils.tensorboard.SummaryWriter`
/// writes them: a file `events.out.tfevents.<seconds>.<host>.<pid>` of records, each
/// `[length: u64 LE][masked CRC-32C of length: u32 LE][data][masked CRC-32C of data: u32 LE]`,
/// the data an `Event` protocol buffer. The first event names the file version; each
/// later one holds a `Summary` with one `simple_value` per tag at a step.
public final class TensorBoardWriter {
    /// What every event file's name starts with (TensorBoard finds them by it).
    public static let filePrefix = "events.out.tfevents."

    public let path: String
    private let handle: FileHandle

    /// Creates a new event file in `directory` (a resumed run adds a file; TensorBoard reads them all).
    public init(directory: String, wallTime: Double = Date().timeIntervalSince1970) throws {
        path = "\(directory)/\(Self.filePrefix)\(Int(wallTime)).\(shortHostName).\(getpid())"
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        self.handle = handle
        var event = ProtoWriter()
        event.double(1, wallTime)
        event.string(3, "brain.Event:2")
        try append([event.bytes])
    }

    deinit { try? handle.close() }

    /// One event with `scalars` (tag, value) at `step`.
    public func add(step: Int, scalars: [(String, Double)], wallTime: Double = Date().timeIntervalSince1970) throws {
        try add(events: [(step, scalars)], wallTime: wallTime)
    }

    /// One event per (step, scalars), written together and synchronised once.
    public func add(events: [(step: Int, scalars: [(String, Double)])],
                    wallTime: Double = Date().timeIntervalSince1970) throws {
        try append(events.map { step, scalars in
            var summary = ProtoWriter()
            for (tag, value) in scalars {
                var entry = ProtoWriter()
                entry.string(1, tag)
                entry.float(2, Float(value))
                summary.message(1, entry)
            }
            var event = ProtoWriter()
            event.double(1, wallTime)
            event.varint(2, UInt64(bitPattern: Int64(step)))
            event.message(5, summary)
            return event.bytes
        })
    }

    private func append(_ events: [[UInt8]]) throws {
        var records: [UInt8] = []
        for data in events {
            let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
            records += length
            records += littleEndian(CRC32C.masked(length))
            records += data
            records += littleEndian(CRC32C.masked(data))
        }
        try handle.write(contentsOf: records)
        try handle.synchronize()
    }

    private func littleEndian(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

/// The few protocol-buffer encodings an `Event` needs (field key = number << 3 | wire type).
struct ProtoWriter {
    var bytes: [UInt8] = []

    mutating func key(_ field: Int, _ wire: UInt8) { rawVarint(UInt64(field) << 3 | UInt64(wire)) }

    mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ value: UInt64) { key(field, 0); rawVarint(value) }
    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1); withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5); withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }
    mutating func message(_ field: Int, _ value: ProtoWriter) { lengthDelimited(field, value.bytes) }
    mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        key(field, 2); rawVarint(UInt64(payload.count)); bytes += payload
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord files use it, and
/// TensorFlow's mask `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    public static func masked(_ bytes: [UInt8]) -> UInt32 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}
