import CohortBase
@testable import CohortBench
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Testing

/// The recurrent layers' step product on oneDNN's kernel: `C += A · B` against the definition,
/// for B stored as is and transposed, at the recurrent models' shapes and odd ones.
@Suite struct MatrixProductTests {
    @Test(arguments: [(32, 128, 512, true), (32, 512, 128, false), (3, 7, 5, true), (5, 9, 4, false)])
    func addsTheProductToC(m: Int, k: Int, n: Int, transposedB: Bool) {
        let a = randomValues(m * k, seed: 1), b = randomValues(k * n, seed: 2), c = randomValues(m * n, seed: 3)
        // B[i, j] as stored: row-major [K, N], or its transpose [N, K].
        func bAt(_ i: Int, _ j: Int, _ values: [Float]) -> Double {
            Double(transposedB ? values[j * k + i] : values[i * n + j])
        }
        func expected(_ bValues: [Float], _ start: [Float]) -> [Double] {
            (0..<(m * n)).map { index in
                let (row, column) = index.quotientAndRemainder(dividingBy: n)
                return Double(start[index])
                    + (0..<k).reduce(0.0) { $0 + Double(a[row * k + $1]) * bAt($1, column, bValues) }
            }
        }
        let kernel = MatrixProductKernel(m: m, k: k, n: n, transposedB: transposedB)
        var result = c
        // The second round: a changed B takes effect after prepare, and the product adds to what C holds.
        for (round, bValues) in [b, b.map { $0 * 0.5 + 0.25 }].enumerated() {
            let start = result
            bValues.withUnsafeBufferPointer { kernel.prepare(b: $0.baseAddress!) }
            multiplyAdd(kernel, a, &result)
            let worst = zip(result, expected(bValues, start)).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= 1e-5 * Double(k), "round \(round + 1): C += A·B off by \(worst)")
        }
    }

    /// `precision: .bf16`: the kernel multiplies A and B rounded to bfloat16 and adds in float.
    /// On operands that are bf16 values already the result equals the definition's to float
    /// accumulation; on others it carries bf16's rounding (2^-9 of a value), far more than that.
    @Test(.needsBF16Kernels, arguments: [(32, 128, 384, true), (32, 384, 128, false), (896, 28, 384, true)])
    func bf16MultipliesRoundedValuesInFloat(m: Int, k: Int, n: Int, transposedB: Bool) throws {
        let a = randomValues(m * k, seed: 4), b = randomValues(k * n, seed: 5)
        let kernel = MatrixProductKernel(m: m, k: k, n: n, transposedB: transposedB, precision: .bf16)
        for (aValues, bValues, exact) in [(bf16Rounded(a), bf16Rounded(b), true), (a, b, false)] {
            let expected = (0..<(m * n)).map { index in
                let (row, column) = index.quotientAndRemainder(dividingBy: n)
                return (0..<k).reduce(0.0) { sum, i in
                    sum + Double(aValues[row * k + i]) * Double(transposedB ? bValues[column * k + i] : bValues[i * n + column])
                }
            }
            var result = [Float](repeating: 0, count: m * n)
            bValues.withUnsafeBufferPointer { kernel.prepare(b: $0.baseAddress!) }
            multiplyAdd(kernel, aValues, &result)
            expectBF16Agreement("C", result, expected, exact: exact)
        }
    }

    func multiplyAdd(_ kernel: MatrixProductKernel, _ a: [Float], _ c: inout [Float]) {
        a.withUnsafeBufferPointer { x in
            c.withUnsafeMutableBufferPointer { kernel.multiplyAdd(a: x.baseAddress!, c: $0.baseAddress!) }
        }
    }
}
