import CohortTensor

/// One recurrent cell kind (RNN, LSTM, GRU): its per-step equations and what a step
/// must remember for backpropagation through time.
///
/// The sequence driver (`Recurrent`) does the matrix products; a cell sees, for step
/// `t`, the input projection `xw = W_ih x_t + b_ih` and the hidden projection
/// `hw = W_hh h_{t-1} + b_hh` (both `[N, G·H]`, gates in PyTorch's order) and combines them.
public protocol RecurrentCell: AnyObject {
    /// Gate blocks G in `W_ih[G·H, I]` (RNN 1, LSTM 4, GRU 3).
    var gateCount: Int { get }
    /// Step `t`: `xw` row `n` starts at `xw + n·xwStride`; `hw`, `hPrevious`, `h` are `[N, H]`.
    func forwardStep(t: Int, batch: Int, xw: UnsafePointer<Float>, xwStride: Int, hw: UnsafePointer<Float>,
                     hPrevious: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>)
    /// Resets state carried backwards through time (the LSTM's dc).
    func beginBackward(batch: Int)
    /// Step `t` in reverse: from `dh = dL/dh_t` writes the gradients of the pre-activations
    /// `dxw` (w.r.t. `xw`, strided like it) and `dhw` (w.r.t. `hw`, `[N, G·H]`), and the part of
    /// `dL/dh_{t-1}` that does not go through `W_hh` into `dhPrevious` (overwritten).
    func backwardStep(t: Int, batch: Int, dh: UnsafePointer<Float>, hPrevious: UnsafePointer<Float>,
                      h: UnsafePointer<Float>, dxw: UnsafeMutablePointer<Float>, xwStride: Int,
                      dhw: UnsafeMutablePointer<Float>, dhPrevious: UnsafeMutablePointer<Float>)
}

/// The kinds of recurrent cell, named as in the command line.
public enum CellKind: String, CaseIterable, Sendable {
    case rnn, lstm, gru

    func makeCell(hidden: Int, steps: Int, maxBatch: Int) -> RecurrentCell {
        switch self {
        case .rnn: return RNNCell(hidden: hidden)
        case .lstm: return LSTMCell(hidden: hidden, steps: steps, maxBatch: maxBatch)
        case .gru: return GRUCell(hidden: hidden, steps: steps, maxBatch: maxBatch)
        }
    }
}

/// A single-layer recurrent network over `[N, T, I]` (batch first) returning the last
/// hidden state `h_T[N, H]`, with `h_0 = 0` (and `c_0 = 0`), as `nn.RNN/LSTM/GRU(batch_first=True)`
/// followed by `out[:, -1]`.
///
/// Parameters (PyTorch's names and shapes): `weight_ih_l0[G·H, I]`, `weight_hh_l0[G·H, H]`,
/// `bias_ih_l0[G·H]`, `bias_hh_l0[G·H]`, all initialised `U(-1/√H, 1/√H)`.
///
/// Forward projects the inputs of all steps in one GEMM (`XW[N·T, G·H]`), then runs one
/// `[N, H] × [H, G·H]` product per step (`MatrixProductKernel`, `W_hh` converted once).
/// Backward walks the saved steps in reverse, and gathers the weight gradients of all
/// steps in one GEMM each.
///
/// With `precision` bf16 the input projection and the step products, forward and backward,
/// multiply operands rounded to bfloat16 and accumulate in float (oneDNN's kernels); the
/// cells, the hidden states, the weight gradients (one float GEMM per pass) and the
/// parameters stay float.
public final class Recurrent: Layer {
    public let kind: CellKind
    public let inputSize: Int, hidden: Int, steps: Int
    public let inputShape: Shape, outputShape: Shape
    public let precision: FloatFormat
    let cell: RecurrentCell
    private var gates: Int { cell.gateCount * hidden }

    private var weightIH: UnsafeMutablePointer<Float>!, weightHH: UnsafeMutablePointer<Float>!
    private var biasIH: UnsafeMutablePointer<Float>!, biasHH: UnsafeMutablePointer<Float>!
    private var gradWeightIH: UnsafeMutablePointer<Float>!, gradWeightHH: UnsafeMutablePointer<Float>!
    private var gradBiasIH: UnsafeMutablePointer<Float>!, gradBiasHH: UnsafeMutablePointer<Float>!

    private var input: UnsafePointer<Float>?
    /// `XW[N·T, G·H]`, rows ordered (n, t) like the input.
    private let inputProjection: FloatBuffer
    /// `HW[N, G·H]` of the current step.
    private let hiddenProjection: FloatBuffer
    /// `hs[T + 1, N, H]`: `hs[0] = 0`, `hs[t + 1] = h_t`.
    let hiddenStates: FloatBuffer
    private let inputProjectionGrad: FloatBuffer   // dXW[N·T, G·H]
    private let hiddenProjectionGrad: FloatBuffer  // dHW[T, N, G·H]
    private let hiddenGradA: FloatBuffer, hiddenGradB: FloatBuffer  // dh ping-pong, [N, H]
    private let output: FloatBuffer, inputGrad: FloatBuffer
    /// The products of one batch size: the per-step products with `W_hh`, on kernels that
    /// convert `W_hh` once per pass instead of once per step (forward `HW += h_{t-1} · W_hhᵀ`,
    /// backward `dh_{t-1} += dHW_t · W_hh`), and in bf16 the input projection `XW += X · W_ihᵀ`
    /// (in float it is one sgemm).
    private struct Products {
        let forward: MatrixProductKernel, backward: MatrixProductKernel
        let inputProjection: MatrixProductKernel?
    }
    private var productsByBatch: [Int: Products] = [:]

    /// `inputShape` may be e.g. `[1, 28, 28]` (an image read row by row): `T·I` elements per sample.
    public init(kind: CellKind, inputSize: Int, hidden: Int, steps: Int, maxBatch: Int, inputShape: Shape? = nil,
                precision: FloatFormat = .fp32) {
        self.kind = kind; self.inputSize = inputSize; self.hidden = hidden; self.steps = steps
        self.precision = precision
        self.inputShape = inputShape ?? [steps, inputSize]
        precondition(self.inputShape.elementCount == steps * inputSize)
        outputShape = [hidden]
        cell = kind.makeCell(hidden: hidden, steps: steps, maxBatch: maxBatch)
        let g = cell.gateCount * hidden
        inputProjection = FloatBuffer(count: maxBatch * steps * g)
        hiddenProjection = FloatBuffer(count: maxBatch * g)
        hiddenStates = FloatBuffer(count: (steps + 1) * maxBatch * hidden)
        inputProjectionGrad = FloatBuffer(count: maxBatch * steps * g)
        hiddenProjectionGrad = FloatBuffer(count: steps * maxBatch * g)
        hiddenGradA = FloatBuffer(count: maxBatch * hidden)
        hiddenGradB = FloatBuffer(count: maxBatch * hidden)
        output = FloatBuffer(count: maxBatch * hidden)
        inputGrad = FloatBuffer(count: maxBatch * steps * inputSize)
    }

    public var forwardFLOPsPerSample: Int { 2 * steps * gates * (inputSize + hidden) }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec("weight_ih_l0", [gates, inputSize]), ParameterSpec("weight_hh_l0", [gates, hidden]),
         ParameterSpec("bias_ih_l0", [gates]), ParameterSpec("bias_hh_l0", [gates])]
    }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        let ih = gates * inputSize, hh = gates * hidden
        weightIH = parameters; weightHH = parameters + ih
        biasIH = parameters + ih + hh; biasHH = parameters + ih + hh + gates
        gradWeightIH = gradients; gradWeightHH = gradients + ih
        gradBiasIH = gradients + ih + hh; gradBiasHH = gradients + ih + hh + gates
    }

    public func initializeParameters(using rng: inout SplitMix64) {
        let bound = 1 / Float(hidden).squareRoot()
        fillUniform(weightIH, count: gates * (inputSize + hidden + 2), bound: bound, rng: &rng)
    }

    /// `h_t[N, H]` of the last forward, for `t` in 1...steps (hidden-state statistics).
    public func hiddenState(step t: Int, batch: Int) -> UnsafePointer<Float> {
        precondition(t >= 1 && t <= steps, "steps run from 1 to \(steps)")
        return UnsafePointer(hiddenStates.pointer + t * batch * hidden)
    }

    private func products(batch: Int) -> Products {
        if let p = productsByBatch[batch] { return p }
        let p = Products(
            forward: MatrixProductKernel(m: batch, k: hidden, n: gates, transposedB: true, precision: precision),
            backward: MatrixProductKernel(m: batch, k: gates, n: hidden, transposedB: false, precision: precision),
            inputProjection: precision == .fp32 ? nil
                : MatrixProductKernel(m: batch * steps, k: inputSize, n: gates, transposedB: true, precision: precision))
        productsByBatch[batch] = p
        return p
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int) -> UnsafePointer<Float> {
        input = x
        let g = gates, nh = batch * hidden
        let xw = inputProjection.pointer, hw = hiddenProjection.pointer, hs = hiddenStates.pointer
        let kernels = products(batch: batch)
        for r in 0..<(batch * steps) { (xw + r * g).update(from: biasIH, count: g) }
        if let projection = kernels.inputProjection {
            projection.prepare(b: weightIH)
            projection.multiplyAdd(a: x, c: xw)
        } else {
            sgemm(transB: true, m: batch * steps, n: g, k: inputSize, a: x, b: weightIH, beta: 1, c: xw)
        }
        hs.update(repeating: 0, count: nh)
        let product = kernels.forward
        product.prepare(b: weightHH)
        for t in 0..<steps {
            for n in 0..<batch { (hw + n * g).update(from: biasHH, count: g) }
            if t > 0 {
                product.multiplyAdd(a: hs + t * nh, c: hw)
            }
            cell.forwardStep(t: t, batch: batch, xw: xw + t * g, xwStride: steps * g, hw: hw,
                             hPrevious: hs + t * nh, h: hs + (t + 1) * nh)
        }
        output.pointer.update(from: hs + steps * nh, count: nh)
        return UnsafePointer(output.pointer)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Recurrent.backward before forward") }
        let g = gates, nh = batch * hidden, hs = hiddenStates.pointer
        let dxw = inputProjectionGrad.pointer, dhw = hiddenProjectionGrad.pointer
        var dh = hiddenGradA.pointer, dhPrevious = hiddenGradB.pointer
        dh.update(from: dy, count: nh)
        cell.beginBackward(batch: batch)
        let product = products(batch: batch).backward
        product.prepare(b: weightHH)
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let dhwStep = dhw + t * batch * g
            cell.backwardStep(t: t, batch: batch, dh: dh, hPrevious: hs + t * nh, h: hs + (t + 1) * nh,
                              dxw: dxw + t * g, xwStride: steps * g, dhw: dhwStep, dhPrevious: dhPrevious)
            if t > 0 {
                // dL/dh_{t-1} += dHW_t · W_hh
                product.multiplyAdd(a: dhwStep, c: dhPrevious)
            }
            swap(&dh, &dhPrevious)
        }
        // dW_hh += Σ_t dHW_tᵀ · h_{t-1}: one GEMM over all T·N rows (h_{-1} = 0 adds nothing).
        sgemm(transA: true, m: g, n: hidden, k: steps * batch, a: dhw, b: hs, beta: 1, c: gradWeightHH)
        accumulateColumnSums(dhw, rows: steps * batch, columns: g, into: gradBiasHH)
        // dW_ih += dXWᵀ · X over all N·T rows.
        sgemm(transA: true, m: g, n: inputSize, k: batch * steps, a: dxw, b: x, beta: 1, c: gradWeightIH)
        accumulateColumnSums(dxw, rows: batch * steps, columns: g, into: gradBiasIH)
        guard needsInputGradient else { return nil }
        sgemm(m: batch * steps, n: inputSize, k: g, a: dxw, b: weightIH, c: inputGrad.pointer)
        return UnsafePointer(inputGrad.pointer)
    }
}
