/// `y = max(x, 0)` over `count` elements.
public func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = x[i] > 0 ? x[i] : 0 }
}

/// `dx = dy * [y > 0]`, from the saved output, as PyTorch's threshold_backward.
public func reluBackward(_ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] : 0 }
}

/// `sums[j] += Σ_r m[r, j]`: bias gradients of row-major activations.
public func accumulateColumnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int,
                                 into sums: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let row = m + r * columns
        for j in 0..<columns { sums[j] += row[j] }
    }
}
