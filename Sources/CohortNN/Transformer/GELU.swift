import CohortTensor

/// `y = x·Φ(x)` (PyTorch's `nn.GELU()`), or with `tanh` its approximation
/// (`nn.GELU(approximate="tanh")`), elementwise (`geluForward`). A training forward keeps the
/// derivative at each input, which backward multiplies by.
public final class GELU: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    public let tanh: Bool
    private let output: FloatBuffer, slope: FloatBuffer, inputGrad: FloatBuffer
    private var training = true

    public init(shape: Shape, tanh: Bool = false, maxBatch: Int) {
        inputShape = shape
        self.tanh = tanh
        output = FloatBuffer(count: maxBatch * shape.elementCount)
        slope = FloatBuffer(count: maxBatch * shape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * shape.elementCount)
    }

    public func setTraining(_ training: Bool) { self.training = training }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        geluForward(x, output.pointer, slope: training ? slope.pointer : nil, count: batch * inputShape.elementCount,
                    tanh: tanh)
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        precondition(training, "GELU.backward after an evaluation forward")
        let (d, g, s) = (inputGrad.pointer, dy, slope.pointer)
        for i in 0..<(batch * inputShape.elementCount) { d[i] = g[i] * s[i] }
        return UnsafePointer(inputGrad.pointer)
    }
}
