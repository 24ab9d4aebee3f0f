/// An 8-bit RGB picture, row-major, 3 bytes per pixel.
public struct RGBImage: Equatable, Sendable {
    public let width: Int, height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        precondition(width > 0 && height > 0, "an image needs at least one pixel")
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = fill.0; pixels[3 * i + 1] = fill.1; pixels[3 * i + 2] = fill.2 }
    }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        get { let i = 3 * (y * width + x); return (pixels[i], pixels[i + 1], pixels[i + 2]) }
        set { let i = 3 * (y * width + x); pixels[i] = newValue.0; pixels[i + 1] = newValue.1; pixels[i + 2] = newValue.2 }
    }

    /// Copies `image` with its top-left corner at (x, y), each pixel as a `scale`×`scale` block.
    public mutating func place(_ image: RGBImage, x: Int, y: Int, scale: Int = 1) {
        for sy in 0..<(image.height * scale) where y + sy < height {
            for sx in 0..<(image.width * scale) where x + sx < width {
                self[x + sx, y + sy] = image[sx / scale, sy / scale]
            }
        }
    }
}
