/// Turning arrays of floats into pictures: channel planes to RGB, per-picture contrast
/// stretching, a colour map for heat maps, and grids of pictures with gaps.
public enum Pictures {
    /// A `[C, H, W]` array (C = 1 or 3) as an image, mapping `low...high` to 0...255
    /// (values outside are clipped); one channel is drawn grey.
    public static func image(planes values: [Float], channels: Int, height: Int, width: Int,
                             low: Float, high: Float) -> RGBImage {
        precondition(channels == 1 || channels == 3, "pictures have 1 or 3 channels, not \(channels)")
        precondition(values.count == channels * height * width)
        var image = RGBImage(width: width, height: height)
        let span = high > low ? high - low : 1
        func byte(_ v: Float) -> UInt8 { UInt8(max(0, min(255, ((v - low) / span * 255).rounded()))) }
        for y in 0..<height {
            for x in 0..<width {
                let p = y * width + x
                let r = byte(values[p])
                image[x, y] = channels == 1 ? (r, r, r)
                    : (r, byte(values[height * width + p]), byte(values[2 * height * width + p]))
            }
        }
        return image
    }

    /// Each picture scaled to its own minimum...maximum (the usual way to show filters).
    public static func stretched(planes values: [Float], channels: Int, height: Int, width: Int) -> RGBImage {
        let low = values.min() ?? 0, high = values.max() ?? 1
        return image(planes: values, channels: channels, height: height, width: width, low: low, high: high)
    }

    /// Centred on grey: 0 -> 128, ±max|v| -> 0 / 255 (deconvnet projections have either sign).
    public static func centred(planes values: [Float], channels: Int, height: Int, width: Int) -> RGBImage {
        let m = max(values.map(abs).max() ?? 0, 1e-12)
        return image(planes: values, channels: channels, height: height, width: width, low: -m, high: m)
    }

    /// A perceptually ordered dark-blue -> teal -> yellow map for `t` in 0...1 (viridis' end points
    /// and middle, interpolated linearly).
    public static func heat(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let stops: [(Float, Float, Float)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
        let u = max(0, min(1, t.isFinite ? t : 0)) * Float(stops.count - 1)
        let i = min(Int(u), stops.count - 2), f = u - Float(i)
        let (a, b) = (stops[i], stops[i + 1])
        func mix(_ x: Float, _ y: Float) -> UInt8 { UInt8((x + (y - x) * f).rounded()) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// A `[rows, columns]` grid of values in 0...1 as a heat map.
    public static func heatMap(_ values: [Float], rows: Int, columns: Int) -> RGBImage {
        precondition(values.count == rows * columns)
        var image = RGBImage(width: columns, height: rows)
        for y in 0..<rows { for x in 0..<columns { image[x, y] = heat(values[y * columns + x]) } }
        return image
    }

    /// Rows of pictures (each enlarged `scale` times) on a white background, `gap` pixels apart.
    public static func grid(_ rows: [[RGBImage]], scale: Int, gap: Int = 2) -> RGBImage {
        let cellWidth = (rows.flatMap { $0 }.map(\.width).max() ?? 1) * scale
        let cellHeight = (rows.flatMap { $0 }.map(\.height).max() ?? 1) * scale
        let columns = max(1, rows.map(\.count).max() ?? 1)
        var canvas = RGBImage(width: gap + columns * (cellWidth + gap), height: gap + max(1, rows.count) * (cellHeight + gap))
        for (r, row) in rows.enumerated() {
            for (c, picture) in row.enumerated() {
                canvas.place(picture, x: gap + c * (cellWidth + gap), y: gap + r * (cellHeight + gap), scale: scale)
            }
        }
        return canvas
    }
}
