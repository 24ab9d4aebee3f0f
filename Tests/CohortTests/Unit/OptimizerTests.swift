import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortOptim
@testable import CohortRun
@testable import CohortSweep
import Foundation
import Testing

/// One step of every optimizer against its formula written out by hand, and a
/// convergence check on a quadratic.
@Suite struct OptimizerTests {
    let start: [Float] = [0.5, -1.5, 2.0]
    let grad: [Float] = [0.1, -0.4, 3.0]

    func oneStep(_ optimizer: Optimizer) -> [Float] {
        var p = start
        p.withUnsafeMutableBufferPointer { optimizer.step(parameters: $0.baseAddress!, gradients: grad) }
        return p
    }

    @Test func sgdFirstStep() {
        // θ - lr (g + λθ); the first momentum step has b = g.
        let expected = zip(start, grad).map { p, g in p - 0.1 * (g + 0.01 * p) }
        expectClose(oneStep(SGD(count: 3, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)), expected,
                    atol: 1e-7, rtol: 1e-6, "sgd")
        // Nesterov: g + μ b with b = g on the first step.
        let nesterov = zip(start, grad).map { p, g in p - 0.1 * (g + 0.9 * g) }
        expectClose(oneStep(SGD(count: 3, learningRate: 0.1, momentum: 0.9, nesterov: true)), nesterov,
                    atol: 1e-7, rtol: 1e-6, "nesterov")
    }

    @Test func adamFirstStep() {
        // m = 0.1 g, v = 0.001 g², m̂ = g, v̂ = g²: θ - lr g / (|g| + ε).
        let expected = zip(start, grad).map { p, g in p - 0.01 * g / (abs(g) + 1e-8) }
        expectClose(oneStep(Adam(count: 3, learningRate: 0.01)), expected, atol: 1e-6, rtol: 1e-5, "adam")
        // AdamW first shrinks θ by (1 - lr λ).
        let decoupled = zip(start, grad).map { p, g in p * (1 - 0.01 * 0.01) - 0.01 * g / (abs(g) + 1e-8) }
        expectClose(oneStep(OptimizerKind.adamw.make(count: 3, learningRate: 0.01)), decoupled, atol: 1e-6, rtol: 1e-5,
                    "adamw")
    }

    @Test func adagradFirstStep() {
        // s = g²: θ - lr g / (|g| + 1e-10).
        let expected = zip(start, grad).map { p, g in p - 0.1 * g / (abs(g) + 1e-10) }
        expectClose(oneStep(Adagrad(count: 3, learningRate: 0.1)), expected, atol: 1e-7, rtol: 1e-6, "adagrad")
    }

    @Test func rmspropFirstStep() {
        // s = 0.01 g²: θ - lr g / (0.1|g| + ε).
        let expected = zip(start, grad).map { p, g in p - 0.01 * g / ((0.01 * g * g).squareRoot() + 1e-8) }
        expectClose(oneStep(RMSProp(count: 3, learningRate: 0.01)), expected, atol: 1e-6, rtol: 1e-5, "rmsprop")
    }

    /// Each optimizer drives f(θ) = ½‖θ - c‖² towards c.
    @Test(arguments: OptimizerKind.allCases)
    func convergesOnQuadratic(kind: OptimizerKind) {
        let target: [Float] = [1, -2, 0.5, 3]
        var p: [Float] = [0, 0, 0, 0]
        let optimizer = kind.make(count: 4, learningRate: kind == .adagrad ? 0.5 : 0.05, weightDecay: 0)
        for _ in 0..<2000 {
            let g = zip(p, target).map { $0 - $1 }
            p.withUnsafeMutableBufferPointer { optimizer.step(parameters: $0.baseAddress!, gradients: g) }
        }
        let distance = zip(p, target).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        #expect(distance < 0.05, "\(kind) ended \(distance) from the minimum")
        #expect(optimizer.stepCount == 2000)
    }
}
