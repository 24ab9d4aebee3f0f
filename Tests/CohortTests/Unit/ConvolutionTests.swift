import CohortBase
@testable import CohortBench
@testable import CohortLaunch
import CohortNN
@testable import CohortRun
@testable import CohortSweep
import CohortTensor
import Testing

/// The convolution at the CNN's own channel counts, where oneDNN picks its blocked AVX-512
/// kernels (the gradient checks and PyTorch fixtures use a few channels, which take other
/// code paths): forward and every gradient against the definition, computed here in double.
@Suite struct ConvolutionTests {
    /// `y[n, o, i, j] = b[o] + Σ_{c,u,v} W[o, c, u, v] · x[n, c, i - p + u, j - p + v]` (stride 1),
    /// and for `dy`: `dW = Σ dy ⊗ x`, `db = Σ dy`, `dx = Wᵀ ⋆ dy`, all by direct loops.
    struct Reference {
        var y: [Double], dW: [Double], db: [Double], dx: [Double]

        init(x: [Float], w: [Float], b: [Float], dy: [Float], batch: Int, c: Int, o: Int, size: Int, k: Int, p: Int) {
            let s = size
            y = [Double](repeating: 0, count: batch * o * s * s)
            dW = [Double](repeating: 0, count: w.count)
            db = [Double](repeating: 0, count: o)
            dx = [Double](repeating: 0, count: x.count)
            for n in 0..<batch {
                for oc in 0..<o {
                    for i in 0..<s {
                        for j in 0..<s {
                            let out = ((n * o + oc) * s + i) * s + j
                            var sum = Double(b[oc])
                            db[oc] += Double(dy[out])
                            for ic in 0..<c {
                                for u in 0..<k {
                                    let r = i - p + u
                                    guard r >= 0 && r < s else { continue }
                                    for v in 0..<k {
                                        let q = j - p + v
                                        guard q >= 0 && q < s else { continue }
                                        let xi = ((n * c + ic) * s + r) * s + q, wi = ((oc * c + ic) * k + u) * k + v
                                        sum += Double(w[wi]) * Double(x[xi])
                                        dW[wi] += Double(dy[out]) * Double(x[xi])
                                        dx[xi] += Double(w[wi]) * Double(dy[out])
                                    }
                                }
                            }
                            y[out] = sum
                        }
                    }
                }
            }
        }
    }

    /// `|a - b| <= tolerance · max_i |b_i|` for every element.
    func expectClose(_ a: [Float], _ b: [Double], _ what: String, tolerance: Double = 1e-5,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        let scale = b.map(abs).max() ?? 0
        let worst = zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(scale > 0 && worst <= tolerance * scale, "\(what): worst difference \(worst), scale \(scale)",
                sourceLocation: sourceLocation)
    }

    @Test(arguments: [(3, 32, 12, 3), (32, 64, 8, 2)])
    func equalsTheDefinition(inChannels c: Int, outChannels o: Int, size: Int, batch: Int) {
        let conv = Conv2D(inChannels: c, outChannels: o, height: size, width: size, kernel: 5, padding: 2,
                          maxBatch: batch)
        let network = Network(layers: [("conv", conv)], maxBatch: batch)
        network.initializeParameters(seed: 11)
        let x = randomValues(batch * c * size * size, seed: 12), dy = randomValues(batch * o * size * size, seed: 13)
        let parameters = network.parameters.array
        let w = Array(parameters[0..<(o * c * 25)]), b = Array(parameters[(o * c * 25)...])
        let reference = Reference(x: x, w: w, b: b, dy: dy, batch: batch, c: c, o: o, size: size, k: 5, p: 2)

        let y = x.withUnsafeBufferPointer { array(network.forward($0.baseAddress!, batch: batch), dy.count) }
        expectClose(y, reference.y, "y")
        network.zeroGradients()
        let dx = dy.withUnsafeBufferPointer {
            array(network.backward($0.baseAddress!, batch: batch, needsInputGradient: true)!, x.count)
        }
        expectClose(dx, reference.dx, "dx")
        let gradients = network.gradients.array
        expectClose(Array(gradients[0..<w.count]), reference.dW, "dW")
        expectClose(Array(gradients[w.count...]), reference.db, "db")

        // Backward adds into the gradients (the layer contract): a second pass doubles them.
        _ = dy.withUnsafeBufferPointer { network.backward($0.baseAddress!, batch: batch, needsInputGradient: false) }
        let doubled = network.gradients.array == gradients.map { $0 + $0 }
        #expect(doubled, "a second backward did not add to the gradients")
        // The transposed convolution alone is the input gradient.
        let transposed = dy.withUnsafeBufferPointer { array(conv.transposed($0.baseAddress!, batch: batch), x.count) }
        let sameAsBackward = transposed == dx
        #expect(sameAsBackward, "the transposed convolution differs from backward's input gradient")
    }

    /// `--precision bf16`: the kernels multiply x, W and dy rounded to bfloat16 and add in float.
    /// On inputs that are bf16 values already the results equal the definition's to float
    /// accumulation; on others they carry bf16's rounding (2^-9 of a value), far more than that.
    @Test(.needsBF16Kernels) func bf16KernelsMultiplyRoundedValuesInFloat() throws {
        let (c, o, size, batch) = (32, 64, 8, 2)
        let conv = Conv2D(inChannels: c, outChannels: o, height: size, width: size, kernel: 5, padding: 2,
                          maxBatch: batch, precision: .bf16)
        let network = Network(layers: [("conv", conv)], maxBatch: batch)
        network.initializeParameters(seed: 21)
        let x = randomValues(batch * c * size * size, seed: 22), dy = randomValues(batch * o * size * size, seed: 23)
        let weightCount = o * c * 25
        // Weights rounded in place (the bias is added in float and stays as it is).
        for i in 0..<weightCount { network.parameters.pointer[i] = BFloat16.float(BFloat16.rounded(network.parameters.pointer[i])) }
        let parameters = network.parameters.array
        let w = Array(parameters[0..<weightCount]), b = Array(parameters[weightCount...])

        for (input, gradient, exact) in [(bf16Rounded(x), bf16Rounded(dy), true), (x, dy, false)] {
            let reference = Reference(x: input, w: w, b: b, dy: gradient, batch: batch, c: c, o: o, size: size, k: 5, p: 2)
            let y = input.withUnsafeBufferPointer { array(network.forward($0.baseAddress!, batch: batch), dy.count) }
            network.zeroGradients()
            let dx = gradient.withUnsafeBufferPointer {
                array(network.backward($0.baseAddress!, batch: batch, needsInputGradient: true)!, x.count)
            }
            let gradients = network.gradients.array
            let results: [(String, [Float], [Double])] = [("y", y, reference.y), ("dx", dx, reference.dx),
                                                          ("dW", Array(gradients[0..<weightCount]), reference.dW)]
            for (name, value, expected) in results { expectBF16Agreement(name, value, expected, exact: exact) }
        }
    }

    /// A layer on fewer than 16 input channels (an image's 3) multiplies in fp32 even when bf16
    /// is asked for: the same bits as the fp32 layer. One on 16 runs bf16 and differs.
    @Test(.needsBF16Kernels) func bf16LeavesLayersOnFewChannelsInFloat() throws {
        let (o, size, batch) = (8, 8, 2)
        for (c, staysFloat) in [(3, true), (Conv2D.bf16MinimumInputChannels, false)] {
            let x = randomValues(batch * c * size * size, seed: 24)
            let outputs = [FloatFormat.fp32, .bf16].map { precision in
                let conv = Conv2D(inChannels: c, outChannels: o, height: size, width: size, kernel: 5, padding: 2,
                                  maxBatch: batch, precision: precision)
                let network = Network(layers: [("conv", conv)], maxBatch: batch)
                network.initializeParameters(seed: 25)
                return (conv.precision, x.withUnsafeBufferPointer {
                    array(network.forward($0.baseAddress!, batch: batch), batch * o * size * size)
                })
            }
            #expect(outputs[1].0 == (staysFloat ? .fp32 : .bf16), "\(c) input channels: bf16 asked, \(outputs[1].0) chosen")
            #expect((outputs[0].1 == outputs[1].1) == staysFloat,
                    "\(c) input channels: the bf16-asked layer \(staysFloat ? "differs from" : "equals") fp32")
        }
    }

    /// One layer serves several batch sizes (training's, evaluation's last short chunk): each
    /// sample's output is the same whichever batch it came in, and a repeated call gives the same bits.
    @Test func batchSizesShareALayer() {
        let (c, o, size) = (32, 64, 8), per = c * size * size, outPer = o * size * size
        let conv = Conv2D(inChannels: c, outChannels: o, height: size, width: size, kernel: 5, padding: 2, maxBatch: 4)
        let network = Network(layers: [("conv", conv)], maxBatch: 4)
        network.initializeParameters(seed: 5)
        let x = randomValues(4 * per, seed: 6)
        let four = x.withUnsafeBufferPointer { array(network.forward($0.baseAddress!, batch: 4), 4 * outPer) }
        let one = x.withUnsafeBufferPointer { array(network.forward($0.baseAddress! + 3 * per, batch: 1), outPer) }
        let scale = four.map(abs).max()!
        #expect(zip(one, four[(3 * outPer)...]).allSatisfy { abs($0 - $1) <= 1e-6 * scale })
        let again = x.withUnsafeBufferPointer { array(network.forward($0.baseAddress!, batch: 4), 4 * outPer) }
        let repeated = again == four
        #expect(repeated, "a repeated forward gave other bits")
    }

    /// A ReLU right after a convolution is done by the convolution's kernel: the same output
    /// and gradients as the two layers apart (a ReLU after a pooling keeps its own pass).
    @Test func reluFusedIntoTheConvolution() {
        let (c, o, size, batch) = (32, 64, 8, 2)
        func conv() -> Conv2D {
            Conv2D(inChannels: c, outChannels: o, height: size, width: size, kernel: 5, padding: 2, maxBatch: batch)
        }
        let fused = Network(layers: [("conv", conv()), (nil, ReLU(shape: [o, size, size], maxBatch: batch))],
                            maxBatch: batch)
        let apart = Network(layers: [("conv", conv())], maxBatch: batch)
        fused.initializeParameters(seed: 9)
        apart.initializeParameters(seed: 9)
        let x = randomValues(batch * c * size * size, seed: 10), dy = randomValues(batch * o * size * size, seed: 11)

        let y = x.withUnsafeBufferPointer { array(fused.forward($0.baseAddress!, batch: batch), dy.count) }
        let z = x.withUnsafeBufferPointer { array(apart.forward($0.baseAddress!, batch: batch), dy.count) }
        #expect(y.contains(0) && y.contains { $0 > 0 })
        let rectified = y == z.map { max($0, 0) }
        #expect(rectified, "the fused output is not max(conv, 0)")

        fused.zeroGradients()
        apart.zeroGradients()
        let dxFused = dy.withUnsafeBufferPointer {
            array(fused.backward($0.baseAddress!, batch: batch, needsInputGradient: true)!, x.count)
        }
        let masked = zip(dy, z).map { $1 > 0 ? $0 : 0 }
        let dxApart = masked.withUnsafeBufferPointer {
            array(apart.backward($0.baseAddress!, batch: batch, needsInputGradient: true)!, x.count)
        }
        let sameGradients = dxFused == dxApart && fused.gradients.array == apart.gradients.array
        #expect(sameGradients, "the fused layers' gradients differ from the layers' apart")
    }
}
