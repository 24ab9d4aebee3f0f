/// PyTorch's `torch.nn.utils.clip_grad_norm_(parameters, maxNorm)` over the model's flat gradient
/// buffer: the one L2 norm over every tensor, `‖g‖ = √(Σ g²)` (summed in double), and where it
/// exceeds `maxNorm` every gradient scaled by `maxNorm / (‖g‖ + 1e-6)` (PyTorch's ε). Applied to
/// the reduced gradients, which every rank holds alike, so every rank scales alike.
public enum GradientClipping {
    /// Clips `count` gradients in place; returns their norm before clipping.
    @discardableResult
    public static func clip(_ gradients: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float) -> Double {
        var sum = 0.0
        for i in 0..<count { let g = Double(gradients[i]); sum += g * g }
        let norm = sum.squareRoot()
        let coefficient = maxNorm / (Float(norm) + 1e-6)
        if coefficient < 1 {
            for i in 0..<count { gradients[i] *= coefficient }
        }
        return norm
    }
}
