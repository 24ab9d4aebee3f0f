import CohortTensor

/// Random crops and flips of training images, as torchvision's `RandomCrop(size, padding)`
/// then `RandomHorizontalFlip()` make them: the image padded by `pad` zero pixels on every
/// side, a window of its own size cut at a random offset, then mirrored left to right with
/// probability 1/2 if `flip`. Each choice is drawn from (seed, epoch, sample index) alone, so
/// N ranks see the same images as 1 rank, and a resumed run the same as an uninterrupted one.
public struct Augmentation: Sendable, Equatable {
    public let seed: UInt64
    public let pad: Int
    public let flip: Bool

    public init(seed: UInt64, pad: Int, flip: Bool) {
        self.seed = seed; self.pad = pad; self.flip = flip
    }

    /// The usual choice for an image size: photographs of 32x32 (CIFAR-10) are cropped from a
    /// 4-pixel padding and flipped; 28x28 digits and clothes are shifted by up to 2 pixels and
    /// never flipped (a mirrored digit is another glyph).
    public static func standard(channels: Int, seed: UInt64) -> Augmentation {
        channels == 3 ? Augmentation(seed: seed, pad: 4, flip: true) : Augmentation(seed: seed, pad: 2, flip: false)
    }

    /// Sample `sample`'s window offset in the padded image (each in 0...2·pad) and flip, in epoch `epoch`.
    public func choice(epoch: Int, sample: Int) -> (top: Int, left: Int, flip: Bool) {
        var rng = SplitMix64(seed: seed, stream: 4, index: UInt64(epoch) << 32 | UInt64(sample))
        let top = rng.nextIndex(below: 2 * pad + 1), left = rng.nextIndex(below: 2 * pad + 1)
        return (top, left, flip && rng.next() & 1 == 1)
    }

    /// Source pixel of output pixel (y, x) of an H x W image under `choice`, or nil in the
    /// padding: `(y + top - pad, x' + left - pad)` with `x' = W - 1 - x` when flipped.
    @inline(__always)
    static func source(y: Int, x: Int, height: Int, width: Int, pad: Int,
                       choice: (top: Int, left: Int, flip: Bool)) -> (y: Int, x: Int)? {
        let sy = y + choice.top - pad, sx = (choice.flip ? width - 1 - x : x) + choice.left - pad
        return sy >= 0 && sy < height && sx >= 0 && sx < width ? (sy, sx) : nil
    }
}
