import CohortTensor

/// `y = max(x, 0)`; backward `dx = dy · [y > 0]`, from the saved output.
public final class ReLU: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { inputShape }
    private let maxBatch: Int
    /// Allocated on first use: `output` is unused when the input is already rectified (the
    /// ReLU fused into the convolution before it), `inputGrad` when the next layer masks the gradient.
    private lazy var output = FloatBuffer(count: maxBatch * inputShape.elementCount)
    private lazy var inputGrad = FloatBuffer(count: maxBatch * inputShape.elementCount)
    /// The last forward's output, read by backward for the mask (and by activation statistics).
    public private(set) var lastOutput: UnsafePointer<Float>?

    public init(shape: Shape, maxBatch: Int) {
        inputShape = shape
        self.maxBatch = maxBatch
    }

    /// Set by `Network` when the layer before writes `max(y, 0)` itself (a convolution with the
    /// ReLU fused in): the input is then the output, passed on unchanged.
    var inputAlreadyRectified = false

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        if inputAlreadyRectified {
            lastOutput = x
            return x
        }
        reluForward(x, output.pointer, count: batch * inputShape.elementCount)
        lastOutput = UnsafePointer(output.pointer)
        return UnsafePointer(output.pointer)
    }

    /// Set by `Network` when a max-pooling follows and applies this mask in its own backward.
    var gradientMaskedByNextLayer = false
    /// Set by `Network` when the layer before (a batch norm) applies this mask in its own backward.
    var gradientMaskedByPreviousLayer = false

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        if gradientMaskedByNextLayer || gradientMaskedByPreviousLayer { return dy }
        guard let y = lastOutput else { preconditionFailure("ReLU.backward before forward") }
        reluBackward(dy, output: y, inputGrad.pointer, count: batch * inputShape.elementCount)
        return UnsafePointer(inputGrad.pointer)
    }
}

/// `[C, H, W] -> [C·H·W]` in row-major order (PyTorch's `flatten(1)`): no data moves.
public final class Flatten: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { [inputShape.elementCount] }
    public init(shape: Shape) { inputShape = shape }
    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> { x }
    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        needsInputGradient ? dy : nil
    }
}
