import CohortBase
@testable import CohortBench
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Foundation
import Testing

/// The vectorised exp, sigmoid and tanh against libm's scalar functions.
@Suite struct ActivationTests {
    /// Points across the useful range, dense near 0, plus the extremes.
    static let points: [Float] = {
        var values: [Float] = [0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.625, -0.625, 0.6249, 88, -88, 100, -100, 1e30, -1e30]
        var rng = SplitMix64(seed: 1)
        for _ in 0..<20_000 { values.append(rng.uniform(-20, 20)) }
        for _ in 0..<5_000 { values.append(rng.uniform(-1, 1)) }
        return values
    }()

    func worstRelativeError(_ f: (UnsafeMutablePointer<Float>, Int) -> Void, _ reference: (Double) -> Double,
                            floor: Double) -> (Double, Float) {
        var values = Self.points
        values.withUnsafeMutableBufferPointer { f($0.baseAddress!, $0.count) }
        var worst = 0.0, at: Float = 0
        for (x, y) in zip(Self.points, values) {
            let exact = reference(Double(x))
            let error = abs(Double(y) - exact) / max(abs(exact), floor)
            if !(error <= worst) { worst = error; at = x }
        }
        return (worst, at)
    }

    @Test func sigmoidMatchesLibm() {
        let (worst, at) = worstRelativeError(sigmoidInPlace, { 1 / (1 + Foundation.exp(-$0)) }, floor: 1e-30)
        #expect(worst < 1e-6, "sigmoid relative error \(worst) at \(at)")
    }

    @Test func tanhMatchesLibm() {
        let (worst, at) = worstRelativeError(tanhInPlace, { Foundation.tanh($0) }, floor: 1e-30)
        #expect(worst < 1e-6, "tanh relative error \(worst) at \(at)")
    }

    @Test func expMatchesLibm() {
        for x in Self.points where abs(x) < 87 {
            let y = exp8(SIMD8(repeating: x))[3]
            let exact = Foundation.exp(Double(x))
            #expect(abs(Double(y) - exact) / exact < 1e-6, "exp(\(x)) = \(y), expected \(exact)")
        }
        #expect(exp8(SIMD8(repeating: -1000))[0] >= 0 && exp8(SIMD8(repeating: 1000))[0].isFinite)
    }

    @Test func tailsUseTheSameFormula() {
        var values: [Float] = [0.1, -2, 3, 0.5, 7, -0.3, 1, 2, 0.25, -4, 5]  // 11: one vector and a tail of 3
        let copy = values
        values.withUnsafeMutableBufferPointer { tanhInPlace($0.baseAddress!, count: $0.count) }
        for (x, y) in zip(copy, values) { #expect(abs(Double(y) - Foundation.tanh(Double(x))) < 1e-7) }
    }
}
