@testable import CohortReporting
import Foundation

/// A decoded TensorBoard event: its step, and a file version or scalars.
struct DecodedEvent {
    var step = 0
    var fileVersion: String?
    var scalars: [String: Float] = [:]
}

func readEvents(_ data: Data) throws -> [DecodedEvent] {
    struct Bad: Error { let why: String }
    let bytes = [UInt8](data)
    var at = 0, events: [DecodedEvent] = []
    func u32(_ i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[i + $1]) << (8 * UInt32($1)) } }
    while at < bytes.count {
        guard at + 12 <= bytes.count else { throw Bad(why: "truncated record header") }
        guard u32(at + 8) == CRC32C.masked(Array(bytes[at..<(at + 8)])) else { throw Bad(why: "length CRC") }
        let declared = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
        guard at + 16 <= bytes.count, declared <= UInt64(bytes.count - at - 16) else { throw Bad(why: "truncated record") }
        let length = Int(declared)
        let body = Array(bytes[(at + 12)..<(at + 12 + length)])
        guard u32(at + 12 + length) == CRC32C.masked(body) else { throw Bad(why: "data CRC") }
        events.append(try decodeEvent(body))
        at += 16 + length
    }
    return events
}

/// Protocol-buffer fields of `bytes`: (field number, wire type, varint or fixed value, payload).
func protoFields(_ bytes: [UInt8]) throws -> [(field: Int, wire: Int, value: UInt64, payload: [UInt8])] {
    var at = 0, fields: [(Int, Int, UInt64, [UInt8])] = []
    func varint() -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true { let b = bytes[at]; at += 1; v |= UInt64(b & 0x7F) << shift; if b < 0x80 { return v }; shift += 7 }
    }
    while at < bytes.count {
        let key = varint(), wire = Int(key & 7), field = Int(key >> 3)
        switch wire {
        case 0: fields.append((field, wire, varint(), []))
        case 1: fields.append((field, wire, (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }, [])); at += 8
        case 5: fields.append((field, wire, (0..<4).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }, [])); at += 4
        case 2:
            let n = Int(varint())
            guard n <= bytes.count - at else { struct Bad: Error {}; throw Bad() }
            fields.append((field, wire, 0, Array(bytes[at..<(at + n)]))); at += n
        default: struct Bad: Error {}; throw Bad()
        }
    }
    return fields
}

func decodeEvent(_ bytes: [UInt8]) throws -> DecodedEvent {
    var event = DecodedEvent()
    for f in try protoFields(bytes) {
        switch f.field {
        case 2: event.step = Int(f.value)
        case 3: event.fileVersion = String(decoding: f.payload, as: UTF8.self)
        case 5:
            for value in try protoFields(f.payload) where value.field == 1 {
                let parts = try protoFields(value.payload)
                guard let tag = parts.first(where: { $0.field == 1 }), let simple = parts.first(where: { $0.field == 2 }) else { continue }
                event.scalars[String(decoding: tag.payload, as: UTF8.self)] = Float(bitPattern: UInt32(simple.value))
            }
        default: break
        }
    }
    return event
}
