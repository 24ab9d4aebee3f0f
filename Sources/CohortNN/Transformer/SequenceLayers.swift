import CohortTensor

/// The rows of a one-channel image as a sequence: `[1, T, F] -> [T, F]` (no data moves), so
/// that the layers that work position by position (linear, layer norm, attention) read rows as
/// tokens, as the recurrent layers do.
public final class Rows: Layer {
    public let inputShape: Shape, outputShape: Shape
    public init(shape: Shape) {
        precondition(shape.count == 3 && shape[0] == 1, "rows of a one-channel image")
        inputShape = shape; outputShape = [shape[1], shape[2]]
    }
    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> { x }
    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        needsInputGradient ? dy : nil
    }
}

/// The mean over the positions of a sequence: `[T, d] -> [d]`, `y = (1/T)·Σ_t x[t]` (PyTorch's
/// `x.mean(1)` on `[N, T, d]`). Backward: `dx[t] = dy / T`.
public final class SequenceMean: Layer {
    public let length: Int, dimension: Int
    public let inputShape: Shape, outputShape: Shape
    private let output: FloatBuffer, inputGrad: FloatBuffer

    public init(length: Int, dimension: Int, maxBatch: Int) {
        self.length = length; self.dimension = dimension
        inputShape = [length, dimension]; outputShape = [dimension]
        output = FloatBuffer(count: maxBatch * dimension)
        inputGrad = FloatBuffer(count: maxBatch * length * dimension)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let y = output.pointer, scale = 1 / Float(length)
        for n in 0..<batch {
            let ys = y + n * dimension
            ys.update(repeating: 0, count: dimension)
            for t in 0..<length {
                let xs = x + (n * length + t) * dimension
                for i in 0..<dimension { ys[i] += xs[i] }
            }
            for i in 0..<dimension { ys[i] *= scale }
        }
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        let d = inputGrad.pointer, scale = 1 / Float(length)
        for n in 0..<batch {
            for t in 0..<length {
                let row = d + (n * length + t) * dimension, g = dy + n * dimension
                for i in 0..<dimension { row[i] = g[i] * scale }
            }
        }
        return UnsafePointer(d)
    }
}
