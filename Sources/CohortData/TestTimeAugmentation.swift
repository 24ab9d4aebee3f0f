/// Test-time augmentation (`--tta`): the views of each test image whose class probabilities
/// evaluation averages. `flip` adds the image mirrored left to right, the flip that training
/// augmentation makes, for twice the evaluation's forward passes.
public enum TestTimeAugmentation: String, CaseIterable, Codable, Sendable {
    case none, flip

    /// Views per image, the original first.
    public var views: Int { self == .flip ? 2 : 1 }

    /// Turns `count` images `x[count, C, H, W]` into view `view` of themselves, in place:
    /// view 1 of `flip` mirrors every row (`x[n, c, h, w] <-> x[n, c, h, W-1-w]`).
    public func makeView(_ view: Int, of x: UnsafeMutablePointer<Float>, count: Int, channels: Int, height: Int,
                         width: Int) {
        guard self == .flip, view == 1 else { return }
        for row in 0..<(count * channels * height) {
            let start = x + row * width
            var (left, right) = (0, width - 1)
            while left < right {
                swap(&start[left], &start[right])
                left += 1; right -= 1
            }
        }
    }
}
