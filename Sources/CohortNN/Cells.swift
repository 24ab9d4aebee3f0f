import CohortTensor

/// Elman cell with tanh (`nn.RNN`): `h_t = tanh(xw + hw)`.
/// Backward: `da = dh · (1 - h_t²)`, the same for `xw` and `hw`. Nothing to cache but `h_t`.
final class RNNCell: RecurrentCell {
    let hidden: Int
    var gateCount: Int { 1 }
    init(hidden: Int) { self.hidden = hidden }

    func forwardStep(t: Int, batch: Int, xw: UnsafePointer<Float>, xwStride: Int, hw: UnsafePointer<Float>,
                     hPrevious: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>) {
        for n in 0..<batch {
            let a = xw + n * xwStride, b = hw + n * hidden, out = h + n * hidden
            for j in 0..<hidden { out[j] = a[j] + b[j] }
            tanhInPlace(out, count: hidden)
        }
    }

    func beginBackward(batch: Int) {}

    func backwardStep(t: Int, batch: Int, dh: UnsafePointer<Float>, hPrevious: UnsafePointer<Float>,
                      h: UnsafePointer<Float>, dxw: UnsafeMutablePointer<Float>, xwStride: Int,
                      dhw: UnsafeMutablePointer<Float>, dhPrevious: UnsafeMutablePointer<Float>) {
        for n in 0..<batch {
            let d = dh + n * hidden, y = h + n * hidden
            let gx = dxw + n * xwStride, gh = dhw + n * hidden
            for j in 0..<hidden {
                let da = d[j] * (1 - y[j] * y[j])
                gx[j] = da; gh[j] = da
            }
        }
        dhPrevious.update(repeating: 0, count: batch * hidden)
    }
}

/// LSTM cell (`nn.LSTM`), gates in PyTorch's order i, f, g, o:
/// `i = σ(.), f = σ(.), g = tanh(.), o = σ(.)` of `xw + hw`;
/// `c_t = f ⊙ c_{t-1} + i ⊙ g`, `h_t = o ⊙ tanh(c_t)`.
/// Caches per step: the activated gates `[T, N, 4H]`, `c[T + 1, N, H]` and `tanh(c_t)`.
final class LSTMCell: RecurrentCell {
    let hidden: Int
    var gateCount: Int { 4 }
    private let activations: FloatBuffer     // [T, N, 4H]
    private let cells: FloatBuffer           // [T + 1, N, H], cells[0] = c_0 = 0
    private let tanhCells: FloatBuffer       // [T, N, H]
    private let cellGrad: FloatBuffer        // dL/dc_t carried backwards, [N, H]

    init(hidden: Int, steps: Int, maxBatch: Int) {
        self.hidden = hidden
        activations = FloatBuffer(count: steps * maxBatch * 4 * hidden)
        cells = FloatBuffer(count: (steps + 1) * maxBatch * hidden)
        tanhCells = FloatBuffer(count: steps * maxBatch * hidden)
        cellGrad = FloatBuffer(count: maxBatch * hidden)
    }

    func forwardStep(t: Int, batch: Int, xw: UnsafePointer<Float>, xwStride: Int, hw: UnsafePointer<Float>,
                     hPrevious: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>) {
        let H = hidden, nh = batch * H
        if t == 0 { cells.pointer.update(repeating: 0, count: nh) }
        let cPrev = cells.pointer + t * nh, cNext = cells.pointer + (t + 1) * nh
        let act = activations.pointer + t * batch * 4 * H, tc = tanhCells.pointer + t * nh
        for n in 0..<batch {
            let a = xw + n * xwStride, b = hw + n * 4 * H, s = act + n * 4 * H
            for k in 0..<(4 * H) { s[k] = a[k] + b[k] }
            sigmoidInPlace(s, count: 2 * H)           // i, f
            tanhInPlace(s + 2 * H, count: H)          // g
            sigmoidInPlace(s + 3 * H, count: H)       // o
            let c = cNext + n * H, tanhC = tc + n * H
            for j in 0..<H {
                c[j] = s[H + j] * cPrev[n * H + j] + s[j] * s[2 * H + j]
                tanhC[j] = c[j]
            }
            tanhInPlace(tanhC, count: H)
            for j in 0..<H { h[n * H + j] = s[3 * H + j] * tanhC[j] }
        }
    }

    func beginBackward(batch: Int) { cellGrad.pointer.update(repeating: 0, count: batch * hidden) }

    func backwardStep(t: Int, batch: Int, dh: UnsafePointer<Float>, hPrevious: UnsafePointer<Float>,
                      h: UnsafePointer<Float>, dxw: UnsafeMutablePointer<Float>, xwStride: Int,
                      dhw: UnsafeMutablePointer<Float>, dhPrevious: UnsafeMutablePointer<Float>) {
        let H = hidden, nh = batch * H
        let cPrev = cells.pointer + t * nh
        let act = activations.pointer + t * batch * 4 * H, tc = tanhCells.pointer + t * nh
        let dc = cellGrad.pointer
        for n in 0..<batch {
            let s = act + n * 4 * H, gx = dxw + n * xwStride, gh = dhw + n * 4 * H
            for j in 0..<H {
                let k = n * H + j
                let i = s[j], f = s[H + j], g = s[2 * H + j], o = s[3 * H + j], tanhC = tc[k]
                let dhv = dh[k]
                let dcTotal = dc[k] + dhv * o * (1 - tanhC * tanhC)
                let di = dcTotal * g * i * (1 - i)
                let df = dcTotal * cPrev[k] * f * (1 - f)
                let dg = dcTotal * i * (1 - g * g)
                let dO = dhv * tanhC * o * (1 - o)
                dc[k] = dcTotal * f
                gx[j] = di; gx[H + j] = df; gx[2 * H + j] = dg; gx[3 * H + j] = dO
                gh[j] = di; gh[H + j] = df; gh[2 * H + j] = dg; gh[3 * H + j] = dO
            }
        }
        dhPrevious.update(repeating: 0, count: nh)
    }
}

/// GRU cell (`nn.GRU`), gates in PyTorch's order r, z, n; the reset gate multiplies the
/// whole hidden projection of the candidate, bias included:
/// `r = σ(xw_r + hw_r)`, `z = σ(xw_z + hw_z)`, `n = tanh(xw_n + r ⊙ hw_n)`,
/// `h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}`.
/// Caches per step: `r, z, n` and `hw_n`, each `[T, N, H]`.
final class GRUCell: RecurrentCell {
    let hidden: Int
    var gateCount: Int { 3 }
    private let cache: FloatBuffer  // [T, N, 4H]: r, z, n, hw_n

    init(hidden: Int, steps: Int, maxBatch: Int) {
        self.hidden = hidden
        cache = FloatBuffer(count: steps * maxBatch * 4 * hidden)
    }

    func forwardStep(t: Int, batch: Int, xw: UnsafePointer<Float>, xwStride: Int, hw: UnsafePointer<Float>,
                     hPrevious: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>) {
        let H = hidden
        let saved = cache.pointer + t * batch * 4 * H
        for n in 0..<batch {
            let a = xw + n * xwStride, b = hw + n * 3 * H, s = saved + n * 4 * H
            let hp = hPrevious + n * H, out = h + n * H
            for k in 0..<(2 * H) { s[k] = a[k] + b[k] }
            sigmoidInPlace(s, count: 2 * H)           // r, z
            for j in 0..<H {
                let hn = b[2 * H + j]
                s[3 * H + j] = hn
                s[2 * H + j] = a[2 * H + j] + s[j] * hn
            }
            tanhInPlace(s + 2 * H, count: H)          // candidate n
            for j in 0..<H {
                let z = s[H + j]
                out[j] = (1 - z) * s[2 * H + j] + z * hp[j]
            }
        }
    }

    func beginBackward(batch: Int) {}

    func backwardStep(t: Int, batch: Int, dh: UnsafePointer<Float>, hPrevious: UnsafePointer<Float>,
                      h: UnsafePointer<Float>, dxw: UnsafeMutablePointer<Float>, xwStride: Int,
                      dhw: UnsafeMutablePointer<Float>, dhPrevious: UnsafeMutablePointer<Float>) {
        let H = hidden
        let saved = cache.pointer + t * batch * 4 * H
        for n in 0..<batch {
            let s = saved + n * 4 * H, gx = dxw + n * xwStride, gh = dhw + n * 3 * H
            let hp = hPrevious + n * H, d = dh + n * H, dp = dhPrevious + n * H
            for j in 0..<H {
                let r = s[j], z = s[H + j], c = s[2 * H + j], hn = s[3 * H + j]
                let dhv = d[j]
                let dCandidate = dhv * (1 - z) * (1 - c * c)
                let dz = dhv * (hp[j] - c) * z * (1 - z)
                let dr = dCandidate * hn * r * (1 - r)
                gx[j] = dr; gx[H + j] = dz; gx[2 * H + j] = dCandidate
                gh[j] = dr; gh[H + j] = dz; gh[2 * H + j] = dCandidate * r
                dp[j] = dhv * z
            }
        }
    }
}
