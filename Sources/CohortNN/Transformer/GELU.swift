import CohortTensor

/// `y = x·Φ(x)` (PyTorch's `nn.GELU()`), or with `tanh` its approximation
/// (`nn.GELU(approximate="tanh")`), elementwise (`geluForward`). Backward reads the saved input.
public final class GELU: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    public let tanh: Bool
    private var input: UnsafePointer<Float>?
    private let output: FloatBuffer, inputGrad: FloatBuffer

    public init(shape: Shape, tanh: Bool = false, maxBatch: Int) {
        inputShape = shape
        self.tanh = tanh
        output = FloatBuffer(count: maxBatch * shape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * shape.elementCount)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        input = x
        geluForward(x, output.pointer, count: batch * inputShape.elementCount, tanh: tanh)
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        guard let x = input else { preconditionFailure("GELU.backward before forward") }
        geluBackward(x, dy, inputGrad.pointer, count: batch * inputShape.elementCount, tanh: tanh)
        return UnsafePointer(inputGrad.pointer)
    }
}
