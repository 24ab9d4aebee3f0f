import CohortTensor

/// Which networks keep their feature maps channel-blocked (`ActivationLayout.blocked`), so that
/// their convolutions read and write the layout of oneDNN's kernels without converting.
///
/// A network qualifies when it starts with a convolution on its input, continues with
/// convolutions, batch norms, ReLUs and blocks made of them (residual or plain) up to a global
/// average pooling, and every feature map in between has whole blocks of channels (16 where
/// oneDNN runs AVX-512 kernels, 8 with AVX2): the ResNets. Its maps are then blocked from the
/// first convolution's output to the pooling's input, whose `[C, 1, 1]` output lies the same
/// way in both layouts, so the layers after it and the network's input and output are as
/// always. Every other network (the report's CNN, whose max-pooling and flatten read planar
/// maps; the recurrent models) stays planar, its arithmetic untouched.
enum ChannelBlocking {
    /// Sets the layouts of `layers` (a network's, in order) and returns the block, or returns
    /// nil and leaves them planar.
    static func apply(to layers: [Layer], block: Int? = ActivationLayout.preferredBlock) -> Int? {
        guard let block else { return nil }
        let layout = ActivationLayout.blocked(block)
        guard let first = layers.first as? Conv2D, layout.holds(channels: first.outChannels),
              let pool = layers.firstIndex(where: { $0 is GlobalAvgPool2D }), pool > 0,
              layers[1..<pool].allSatisfy({ keepsBlocked($0, layout) }) else { return nil }
        first.outputLayout = layout
        for layer in layers[1..<pool].flatMap(withSublayers) {
            if let conv = layer as? Conv2D { conv.inputLayout = layout; conv.outputLayout = layout }
            if let norm = layer as? BatchNorm { norm.layout = layout }
        }
        (layers[pool] as! GlobalAvgPool2D).inputLayout = layout
        return block
    }

    /// Whether `layer` can read and write its maps in `layout`.
    private static func keepsBlocked(_ layer: Layer, _ layout: ActivationLayout) -> Bool {
        switch layer {
        case let conv as Conv2D:
            return layout.holds(channels: conv.geometry.channels) && layout.holds(channels: conv.outChannels)
        case let norm as BatchNorm: return norm.inputShape.count == 3 && layout.holds(channels: norm.channels)
        case is ReLU: return true
        case is Residual, is Sequential: return layer.sublayers.allSatisfy { keepsBlocked($0, layout) }
        default: return false
        }
    }
}
