import CohortBase
import Foundation

/// What the network sees of a stored value `v` of channel `c`:
/// `x = (v · u − mean[c]) / std[c]`, with `u` = 1/255 for pixels and 1 for floats, computed as
/// `v · (u / std[c]) + (−mean[c] / std[c])` (torchvision's `ToTensor()` then `Normalize(mean,
/// std)`, one multiply-add). A single mean and std apply to every channel.
public struct InputNormalization: Codable, Equatable, Sendable, CustomStringConvertible {
    public var mean: [Float], std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && !mean.isEmpty, "one std per mean")
        self.mean = mean; self.std = std
    }

    /// The same mean and std for every channel.
    public init(mean: Float, std: Float) { self.init(mean: [mean], std: [std]) }

    /// Values as stored: mean 0, std 1.
    public static let identity = InputNormalization(mean: 0, std: 1)

    /// `MEAN/STD`, each one number or one per channel separated by commas
    /// (`0.5/0.5`, `0.4914,0.4822,0.4465/0.247,0.243,0.261`), or `none` for `identity`.
    public init(parsing text: String) throws {
        if text == "none" { self = .identity; return }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        func numbers(_ part: Substring) -> [Float]? {
            let values = part.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) }
            return values.contains(nil) ? nil : values.map { $0! }
        }
        guard parts.count == 2, let mean = numbers(parts[0]), let std = numbers(parts[1]), mean.count == std.count else {
            throw CohortError.settings("--normalize \(text): expected MEAN/STD, one number or one per channel on each "
                                       + "side (0.5/0.5, or 0.49,0.48,0.45/0.25,0.24,0.26), or none")
        }
        guard mean.allSatisfy(\.isFinite), std.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw CohortError.settings("--normalize \(text): means must be finite and stds positive")
        }
        self.init(mean: mean, std: std)
    }

    public var description: String {
        func list(_ v: [Float]) -> String { v.map { "\($0)" }.joined(separator: ",") }
        return "\(list(mean))/\(list(std))"
    }

    /// Checks that it fits `channels` channels (one value, or one per channel).
    public func check(channels: Int, source: String) throws {
        guard mean.count == 1 || mean.count == channels else {
            throw CohortError.settings("--normalize \(self): \(mean.count) values for \(source)'s \(channels) channels")
        }
    }

    /// Channel `c`'s multiply-add for values of `element`.
    func affine(channel c: Int, element: SampleElement) -> (scale: Float, shift: Float) {
        let m = mean.count == 1 ? mean[0] : mean[c], s = std.count == 1 ? std[0] : std[c]
        // Pixels as `1 / (255 · std)`: the same bits as the IDX and CIFAR-10 readers always gave.
        return (element == .uint8 ? 1 / (255 * s) : 1 / s, -m / s)
    }

    /// The mean and (population) standard deviation of each channel of samples `0..<count` of
    /// `store`, after the unit scale, summed in double precision in sample order (the same
    /// figures on every rank). A constant channel gets std 1.
    public static func measure(_ store: SampleStore, count: Int, channels: Int) throws -> InputNormalization {
        let plane = store.sampleSize / channels
        var sums = [Double](repeating: 0, count: channels), squares = sums
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, store.sampleBytes), alignment: 64)
        defer { scratch.deallocate() }
        for i in 0..<count {
            let p = try store.sample(i, scratch: scratch)
            for c in 0..<channels {
                var s = 0.0, q = 0.0
                switch store.element {
                case .uint8:
                    // Integer sums of a plane are exact.
                    var si = 0, qi = 0
                    let bytes = p.assumingMemoryBound(to: UInt8.self) + c * plane
                    for k in 0..<plane { let v = Int(bytes[k]); si += v; qi += v * v }
                    s = Double(si); q = Double(qi)
                case .float32:
                    let values = p.assumingMemoryBound(to: Float.self) + c * plane
                    for k in 0..<plane { let v = Double(values[k]); s += v; q += v * v }
                }
                sums[c] += s; squares[c] += q
            }
        }
        let n = Double(max(1, count * plane)), unit = Double(store.element.unitScale)
        let mean = sums.map { $0 / n }
        let std = zip(squares, mean).map { q, m in
            let variance = max(0, q / n - m * m)
            return variance > 0 ? variance.squareRoot() * unit : 1
        }
        return InputNormalization(mean: mean.map { Float($0 * unit) }, std: std.map { Float($0) })
    }
}
