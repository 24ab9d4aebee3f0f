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
    /// The last forward's output, read by backward for the mask.
    private var lastOutput: UnsafePointer<Float>?

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

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        if gradientMaskedByNextLayer { return dy }
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

/// Max pooling with a square window (PyTorch's `F.max_pool2d(x, k)`: stride = k, no padding
/// unless given, and as there at most k/2); the argmax "switches" are kept for backward.
public final class MaxPool2D: Layer {
    public let geometry: ConvGeometry
    public let inputShape: Shape, outputShape: Shape
    private let output: FloatBuffer, inputGrad: FloatBuffer
    public let switches: UnsafeMutablePointer<Int32>

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int? = nil, padding: Int = 0, maxBatch: Int) {
        // Every window then holds at least one real input, so every output has a winner.
        precondition(padding >= 0 && padding <= kernel / 2, "pooling padding must be at most half the window")
        let s = stride ?? kernel
        geometry = ConvGeometry(channels: channels, height: height, width: width, kernelH: kernel, kernelW: kernel,
                                strideH: s, strideW: s, padH: padding, padW: padding)
        precondition(geometry.outHeight > 0 && geometry.outWidth > 0, "pooling window larger than its input")
        inputShape = [channels, height, width]
        outputShape = [channels, geometry.outHeight, geometry.outWidth]
        output = FloatBuffer(count: maxBatch * outputShape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * inputShape.elementCount)
        let switchCount = max(1, maxBatch * outputShape.elementCount)
        switches = .allocate(capacity: switchCount)
        switches.initialize(repeating: 0, count: switchCount)
    }

    deinit { switches.deallocate() }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        maxPoolForward(x, batch: batch, geometry: geometry, into: output.pointer, argmax: switches)
        return UnsafePointer(output.pointer)
    }

    /// Set by `Network` when the input comes from a ReLU: backward then applies the ReLU's mask too.
    var masksReLUGradient = false

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        maxPoolBackward(dy, argmax: switches, batch: batch, geometry: geometry, into: inputGrad.pointer,
                        reluOutput: masksReLUGradient ? UnsafePointer(output.pointer) : nil)
        return UnsafePointer(inputGrad.pointer)
    }

    /// The deconvnet's unpooling: each value goes back to where the last forward's maximum
    /// was (the saved switches), everything else is 0. `[N, C, OH, OW]` -> `[N, C, H, W]`.
    public func unpool(_ y: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        maxPoolBackward(y, argmax: switches, batch: batch, geometry: geometry, into: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}
