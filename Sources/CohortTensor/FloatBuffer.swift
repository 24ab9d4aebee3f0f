/// A contiguous, 64-byte aligned block of `Float`s, allocated once and reused.
///
/// Layers, optimizers and the trainer own their storage through these; hot loops
/// work on the raw pointer, so a training step allocates nothing.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Zero-filled storage for `count` floats (at least one, so the pointer is always valid).
    public init(count: Int) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride,
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// A per-sample shape such as `[C, H, W]` or `[T, I]`; the batch dimension is kept apart.
public typealias Shape = [Int]

extension Array where Element == Int {
    /// Number of elements of a tensor of this shape.
    public var elementCount: Int { reduce(1, *) }
}
