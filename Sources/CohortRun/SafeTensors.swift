import CohortBase
import CohortNN
import CohortTensor
import Foundation

/// The safetensors format (as `safetensors.torch.save_file` writes it): an 8-byte
/// little-endian header length, a JSON header mapping each tensor name to
/// `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}` (byte offsets into
/// the data that follows; header padded with spaces to a multiple of 8), then the raw
/// little-endian data. Cohort writes its flat parameter buffer and then its buffers (batch
/// norm's running statistics, `num_batches_tracked` as I64) this way, with PyTorch's names,
/// shapes and layouts, so `model.load_state_dict(load_file(path))` works. It reads F32 and I64.
public enum SafeTensors {
    public struct Tensor: Equatable {
        public var shape: [Int]
        public var values: [Float]
    }

    /// Serialises `tensors` (views into `storage`) with optional string metadata.
    public static func encode(tensors: [NamedTensor], storage: UnsafePointer<Float>,
                              metadata: [(String, String)] = []) -> Data {
        encode(tensors.map { ($0, storage) }, metadata: metadata)
    }

    /// A network's parameters, then its buffers.
    public static func encode(_ network: Network, metadata: [(String, String)] = []) -> Data {
        encode(network.tensors.map { ($0, UnsafePointer(network.parameters.pointer)) }
               + network.bufferTensors.map { ($0, UnsafePointer(network.buffers.pointer)) }, metadata: metadata)
    }

    /// Tensors each viewed in its own storage; counts (`NamedTensor.isCount`) as I64.
    static func encode(_ tensors: [(tensor: NamedTensor, storage: UnsafePointer<Float>)],
                       metadata: [(String, String)]) -> Data {
        // Written by hand, not by an encoder: the header's key order (as written, not sorted) is
        // part of the file's bytes, which equal runs must reproduce exactly.
        var entries: [String] = []
        if !metadata.isEmpty {
            entries.append(quote("__metadata__") + ":{" + metadata.map { quote($0.0) + ":" + quote($0.1) }.joined(separator: ",") + "}")
        }
        var offset = 0
        for (t, _) in tensors {
            let bytes = t.count * (t.isCount ? 8 : 4)
            entries.append(quote(t.name) + ":{\"dtype\":\"\(t.isCount ? "I64" : "F32")\",\"shape\":["
                           + t.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var data = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: header)
        for (t, storage) in tensors {
            if t.isCount {
                let counts = (0..<t.count).map { Int64(storage[t.offset + $0]).littleEndian }
                counts.withUnsafeBytes { data.append(contentsOf: $0) }
            } else {
                // Float is IEEE-754 little-endian on every platform Swift runs on here.
                data.append(UnsafeBufferPointer(start: storage + t.offset, count: t.count))
            }
        }
        return data
    }

    public static func write(tensors: [NamedTensor], storage: UnsafePointer<Float>, metadata: [(String, String)] = [],
                             to path: String) throws {
        try writeAtomically(encode(tensors: tensors, storage: storage, metadata: metadata), to: path)
    }

    /// A network's parameters and buffers.
    public static func write(_ network: Network, metadata: [(String, String)] = [], to path: String) throws {
        try writeAtomically(encode(network, metadata: metadata), to: path)
    }

    /// Reads every tensor of a safetensors file of F32 or I64 tensors (I64 as floats), checking the header
    /// against the file: a truncated or malformed file is a `CohortError` naming it.
    public static func read(_ path: String) throws -> [String: Tensor] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CohortError.failure("\(path): cannot read the file") }
        return try decode(data, path: path)
    }

    /// The tensors of a safetensors file already in memory (`path` names it in errors).
    public static func decode(_ data: Data, path: String) throws -> [String: Tensor] {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw CohortError.failure("\(path): too short for a safetensors header") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw CohortError.failure("\(path): header length \(headerLength) exceeds the file size (truncated or not safetensors)")
        }
        let dataStart = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) as? [String: Any] else {
            throw CohortError.failure("\(path): header is not a JSON object")
        }
        var tensors: [String: Tensor] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw CohortError.failure("\(path): tensor \(name) has a malformed header entry")
            }
            guard dtype == "F32" || dtype == "I64" else {
                throw CohortError.failure("\(path): tensor \(name) is \(dtype); Cohort reads F32 and I64 tensors")
            }
            let width = dtype == "I64" ? 8 : 4
            // Hostile headers: negative or overflowing sizes are refused before any arithmetic traps.
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow, product <= bytes.count else {
                    throw CohortError.failure("\(path): tensor \(name) has shape \(shape), larger than the file")
                }
                count = product
            }
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= bytes.count - dataStart,
                  offsets[1] - offsets[0] == count * width else {
                throw CohortError.failure("\(path): tensor \(name) data \(offsets) does not fit shape \(shape) and file size")
            }
            var values = [Float](repeating: 0, count: count)
            bytes.withUnsafeBytes { src in
                let raw = UnsafeRawBufferPointer(rebasing: src[(dataStart + offsets[0])..<(dataStart + offsets[1])])
                if width == 8 {
                    for i in 0..<count { values[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
                } else {
                    values.withUnsafeMutableBytes { $0.copyMemory(from: raw) }
                }
            }
            tensors[name] = Tensor(shape: shape, values: values)
        }
        return tensors
    }

    /// Copies tensors read from `path` into `network`'s parameters and buffers; names and shapes
    /// must match exactly (PyTorch's `load_state_dict(strict=True)`).
    public static func load(_ path: String, into network: Network) throws {
        try assign(try read(path), to: network, source: path, strict: true)
    }

    /// Copies every parameter and buffer of `network` from `tensors` (read from `source`, which
    /// errors name), each of which must be there in the network's shape; `strict`: and nothing else.
    public static func assign(_ tensors: [String: Tensor], to network: Network, source: String, strict: Bool = false) throws {
        let targets = network.tensors.map { ($0, network.parameters.pointer) } + network.bufferTensors.map { ($0, network.buffers.pointer) }
        for (t, storage) in targets {
            guard let saved = tensors[t.name] else { throw CohortError.failure("\(source): no tensor \(t.name) for this model") }
            guard saved.shape == t.shape else {
                throw CohortError.failure("\(source): tensor \(t.name) has shape \(saved.shape), the model needs \(t.shape)")
            }
            (storage + t.offset).update(from: saved.values, count: t.count)
        }
        let extra = Set(tensors.keys).subtracting(targets.map(\.0.name))
        if strict && !extra.isEmpty {
            throw CohortError.failure("\(source): tensors \(extra.sorted()) do not belong to this model")
        }
    }
}

/// `s` as a JSON string literal.
private func quote(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
