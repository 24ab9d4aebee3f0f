/// `y = max(x, 0)` over `count` elements.
public func reluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = x[i] > 0 ? x[i] : 0 }
}

/// `dx = dy * [y > 0]`, from the saved output, as PyTorch's threshold_backward.
public func reluBackward(_ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         _ dx: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] : 0 }
}

/// Adds `bias[j]` to every row of a row-major `[rows, columns]` matrix.
public func addRowBias(_ m: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: UnsafePointer<Float>) {
    for r in 0..<rows {
        let row = m + r * columns
        for j in 0..<columns { row[j] += bias[j] }
    }
}

/// `sums[j] += Σ_r m[r, j]`: bias gradients of row-major activations.
public func accumulateColumnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int,
                                 into sums: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let row = m + r * columns
        for j in 0..<columns { sums[j] += row[j] }
    }
}

/// Transposes a row-major `[rows, columns]` matrix into `[columns, rows]`.
public func transpose(_ a: UnsafePointer<Float>, rows: Int, columns: Int, into b: UnsafeMutablePointer<Float>) {
    let tile = 32
    var r0 = 0
    while r0 < rows {
        var c0 = 0
        let r1 = min(rows, r0 + tile)
        while c0 < columns {
            let c1 = min(columns, c0 + tile)
            for r in r0..<r1 { for c in c0..<c1 { b[c * rows + r] = a[r * columns + c] } }
            c0 = c1
        }
        r0 = r1
    }
}
