import CDNNL

/// How a batch of feature maps `[N, C, H, W]` lies in memory.
///
/// - `planar`: PyTorch's `N C H W`, each channel's plane contiguous.
/// - `blocked(b)`: oneDNN's `nChw{b}c`, `[N, C/b, H, W, b]`: the values of `b` consecutive
///   channels at one position side by side, so that one vector register holds them. Channel
///   `c` of sample `n` at position `p` (of `H·W`) is at `((n·C/b + c/b)·H·W + p)·b + c mod b`.
///   oneDNN's direct convolution kernels work in this layout (b = 16 with AVX-512, 8 with
///   AVX2); a network that keeps its feature maps in it saves the two conversions around each
///   convolution, forward and backward (docs/performance.md has the figures).
///
/// A `[C, 1, 1]` map lies the same way in both (`n·C + c`).
public enum ActivationLayout: Equatable, Sendable {
    case planar
    case blocked(Int)

    /// The block of this CPU's convolution kernels: the layout oneDNN chooses for a convolution's
    /// output when left free (16 with AVX-512, 8 with AVX2), or nil where it chooses neither.
    public static let preferredBlock: Int? = {
        var x = memoryDesc([8, 16, 8, 8], dnnl_format_tag_any), w = memoryDesc([16, 16, 3, 3], dnnl_format_tag_any)
        var y = memoryDesc([8, 16, 8, 8], dnnl_format_tag_any)
        var op = dnnl_convolution_desc_t()
        guard dnnl_convolution_forward_desc_init(&op, dnnl_forward_training, dnnl_convolution_direct, &x, &w, nil, &y,
                                                 [1, 1], [1, 1], [1, 1]) == dnnl_success else { return nil }
        var pd: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&pd, &op, nil, cpuEngine, nil) == dnnl_success, let pd else { return nil }
        defer { dnnl_primitive_desc_destroy(pd) }
        let chosen = pd.md(dnnl_query_dst_md)
        return [16, 8].first { sameLayout(chosen, memoryDesc([8, 16, 8, 8], Self.blocked($0).tag)) }
    }()

    /// Whether `channels` feature maps can lie in this layout (a blocked one needs whole blocks).
    public func holds(channels: Int) -> Bool {
        switch self {
        case .planar: return true
        case .blocked(let b): return channels % b == 0
        }
    }

    /// Channels whose values lie side by side: 1 planar, the block blocked.
    public var channelsPerRun: Int {
        switch self {
        case .planar: return 1
        case .blocked(let b): return b
        }
    }

    /// Calls `body(offset, first)` for each sample's plane of each channel (planar) or of each
    /// block of channels (blocked, `[N, C/b, H·W, b]`), `first` its first channel: either way the
    /// plane starts at `(n·C + first)·H·W` and holds `H·W·channelsPerRun` values. Samples in
    /// order, so that a channel's sums over them are added in the same order in either layout.
    @inline(__always)
    public func forEachPlane(batch: Int, channels: Int, plane: Int, _ body: (_ offset: Int, _ first: Int) -> Void) {
        for n in 0..<batch {
            for first in stride(from: 0, to: channels, by: channelsPerRun) { body((n * channels + first) * plane, first) }
        }
    }

    /// oneDNN's format tag for a 4-D tensor in this layout.
    var tag: dnnl_format_tag_t {
        switch self {
        case .planar: return dnnl_nchw
        case .blocked(16): return dnnl_nChw16c
        case .blocked(8): return dnnl_nChw8c
        case .blocked(let b): preconditionFailure("no oneDNN layout with blocks of \(b) channels")
        }
    }
}
