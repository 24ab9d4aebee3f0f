import CohortTensor

/// Max pooling with a square window (PyTorch's `F.max_pool2d(x, k)`: stride = k, no padding
/// unless given, and as there at most k/2); the argmax "switches" are kept for backward.
public final class MaxPool2D: Layer {
    public let geometry: ConvGeometry
    public let inputShape: Shape, outputShape: Shape
    private let output: FloatBuffer, inputGrad: FloatBuffer
    public let switches: UnsafeMutablePointer<Int32>

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int? = nil, padding: Int = 0, maxBatch: Int) {
        // Every window holds at least one real input, so every output has a winner.
        geometry = .pooling(channels: channels, height: height, width: width, kernel: kernel, stride: stride,
                            padding: padding)
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

/// Average pooling with a square window (PyTorch's `nn.AvgPool2d(kernel, stride, padding)`, zero
/// padding counted in the mean): `[C, H, W] -> [C, OH, OW]`.
public final class AvgPool2D: Layer {
    public let geometry: ConvGeometry
    public let inputShape: Shape, outputShape: Shape
    private let output: FloatBuffer, inputGrad: FloatBuffer

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int? = nil, padding: Int = 0, maxBatch: Int) {
        geometry = .pooling(channels: channels, height: height, width: width, kernel: kernel, stride: stride,
                            padding: padding)
        inputShape = [channels, height, width]
        outputShape = [channels, geometry.outHeight, geometry.outWidth]
        output = FloatBuffer(count: maxBatch * outputShape.elementCount)
        inputGrad = FloatBuffer(count: maxBatch * inputShape.elementCount)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        averagePoolForward(x, batch: batch, geometry: geometry, into: output.pointer)
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        averagePoolBackward(dy, batch: batch, geometry: geometry, into: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}

/// The mean of each channel's plane: `[C, H, W] -> [C, 1, 1]` (PyTorch's
/// `F.adaptive_avg_pool2d(x, 1)`); backward spreads `dy/(H·W)` over the plane. The input may lie
/// channel-blocked (`inputLayout`); the output `[C, 1, 1]` lies the same way in either layout.
public final class GlobalAvgPool2D: Layer {
    public let inputShape: Shape
    public var outputShape: Shape { [inputShape[0], 1, 1] }
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// How the input and its gradient lie; set by `Network` before the first pass.
    var inputLayout = ActivationLayout.planar

    public init(channels: Int, height: Int, width: Int, maxBatch: Int) {
        inputShape = [channels, height, width]
        output = FloatBuffer(count: maxBatch * channels)
        inputGrad = FloatBuffer(count: maxBatch * inputShape.elementCount)
    }

    private var plane: Int { inputShape[1] * inputShape[2] }

    /// Calls `body(p, first, step)` for each channel `p = n·C + c` of the batch: where its plane's
    /// first value lies and the distance between its values (1 planar, the block blocked).
    private func forEachChannel(batch: Int, _ body: (Int, Int, Int) -> Void) {
        let channels = inputShape[0]
        switch inputLayout {
        case .planar:
            for p in 0..<(batch * channels) { body(p, p * plane, 1) }
        case .blocked(let b):
            for n in 0..<batch {
                for c in 0..<channels {
                    body(n * channels + c, (n * channels + c - c % b) * plane + c % b, b)
                }
            }
        }
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        let scale = 1 / Float(plane)
        forEachChannel(batch: batch) { p, first, step in
            var sum: Float = 0
            for i in 0..<plane { sum += x[first + i * step] }
            output.pointer[p] = sum * scale
        }
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needsInputGradient else { return nil }
        let scale = 1 / Float(plane)
        forEachChannel(batch: batch) { p, first, step in
            let g = dy[p] * scale
            for i in 0..<plane { inputGrad.pointer[first + i * step] = g }
        }
        return UnsafePointer(inputGrad.pointer)
    }
}
