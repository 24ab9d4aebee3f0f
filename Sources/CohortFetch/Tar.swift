import CohortBase
import Foundation

/// The regular files of a tar archive (POSIX ustar, as GNU tar writes it): each a 512-byte
/// header (name at 0, octal size at 124, type at 156, ustar name prefix at 345) followed by its
/// data padded to 512 bytes; two zero blocks end it.
enum Tar {
    static func files(_ archive: [UInt8]) throws -> [(path: String, contents: ArraySlice<UInt8>)] {
        var files: [(String, ArraySlice<UInt8>)] = []
        var offset = 0
        while offset + 512 <= archive.count {
            let header = archive[offset..<(offset + 512)]
            if header.allSatisfy({ $0 == 0 }) { return files }
            let name = text(header, 0, 100), prefix = text(header, 345, 155)
            let sizeField = text(header, 124, 12).trimmingCharacters(in: .whitespaces)
            guard let size = Int(sizeField, radix: 8), size >= 0, size <= archive.count - offset - 512 else {
                throw CohortError.failure("the archive is damaged: entry \(name) has size '\(sizeField)'")
            }
            let type = header[header.startIndex + 156]
            if type == UInt8(ascii: "0") || type == 0 {
                files.append((prefix.isEmpty ? name : "\(prefix)/\(name)", archive[(offset + 512)..<(offset + 512 + size)]))
            }
            offset += 512 + (size + 511) / 512 * 512
        }
        throw CohortError.failure("the archive is cut short (no end-of-archive blocks)")
    }

    private static func text(_ header: ArraySlice<UInt8>, _ at: Int, _ length: Int) -> String {
        let field = header[(header.startIndex + at)..<(header.startIndex + at + length)]
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }
}
