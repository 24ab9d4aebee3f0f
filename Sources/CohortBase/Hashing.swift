import Foundation

/// 64-bit FNV-1a over bytes: a cheap fingerprint to compare parameters across ranks and to
/// find damaged checkpoint files (not a defence against deliberate tampering).
public func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}

/// FNV-1a of `data` as 16 hex digits, as checkpoints record it.
public func fnv1aHex(_ data: Data) -> String {
    String(format: "%016llx", data.withUnsafeBytes { fnv1a($0) })
}
