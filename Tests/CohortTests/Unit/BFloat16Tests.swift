import CohortTensor
import Testing

/// bfloat16 conversions: round to nearest, ties to even, as torch.tensor(x).bfloat16() does.
@Suite struct BFloat16Tests {
    @Test func roundsToNearestTiesToEven() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: the tie goes to the even mantissa, 1.
        #expect(BFloat16.float(BFloat16.rounded(1 + 0x1p-8)) == 1)
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: the even one is 1 + 2^-6.
        #expect(BFloat16.float(BFloat16.rounded(1 + 3 * 0x1p-8)) == 1 + 0x1p-6)
        // Just above a tie rounds up, just below down.
        #expect(BFloat16.float(BFloat16.rounded(Float(bitPattern: 0x3F80_8001))) == 1 + 0x1p-7)
        #expect(BFloat16.float(BFloat16.rounded(Float(bitPattern: 0x3F80_7FFF))) == 1)
        // torch.tensor(0.1).bfloat16().item() == 0.10009765625; -3.14159 -> -3.140625.
        #expect(BFloat16.float(BFloat16.rounded(0.1)) == 0.10009765625)
        #expect(BFloat16.float(BFloat16.rounded(-3.14159)) == -3.140625)
    }

    @Test func keepsSpecialValues() {
        #expect(BFloat16.float(BFloat16.rounded(.infinity)) == .infinity)
        #expect(BFloat16.float(BFloat16.rounded(-.infinity)) == -.infinity)
        #expect(BFloat16.float(BFloat16.rounded(.nan)).isNaN)
        #expect(BFloat16.float(BFloat16.rounded(-0.0)).sign == .minus)
        // Beyond the largest bfloat16 (0x7F7F, 3.3895e38), halfway to the next power: infinity.
        #expect(BFloat16.float(BFloat16.rounded(.greatestFiniteMagnitude)) == .infinity)
        #expect(BFloat16.float(BFloat16.rounded(Float(bitPattern: 0x7F7F_0000))) == Float(bitPattern: 0x7F7F_0000))
    }

    @Test func everyBFloat16SurvivesTheRoundTrip() {
        for bits in UInt16.min...UInt16.max {
            let x = BFloat16.float(bits)
            if x.isNaN { #expect(BFloat16.float(BFloat16.rounded(x)).isNaN) } else { #expect(BFloat16.rounded(x) == bits) }
        }
    }
}
