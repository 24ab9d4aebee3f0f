import Foundation

/// A line chart written as a standalone SVG (renders on GitHub and in browsers):
/// axes with rounded ticks, one polyline with markers per series, and a legend.
public struct LineChart {
    public struct Series {
        public var name: String
        public var color: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, color: String, points: [(x: Double, y: Double)]) {
            self.name = name; self.color = color; self.points = points
        }
    }

    public var title: String, xLabel: String, yLabel: String
    public var series: [Series]
    public var width = 640.0, height = 400.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    public func svg() -> String {
        let left = 70.0, right = 20.0, top = 40.0, bottom = 55.0
        let plotW = width - left - right, plotH = height - top - bottom
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xs = Self.niceTicks(finite.map(\.x), fallback: (0, 1))
        let ys = Self.niceTicks(finite.map(\.y), fallback: (0, 1))
        func px(_ x: Double) -> Double { left + (x - xs.low) / (xs.high - xs.low) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (y - ys.low) / (ys.high - ys.low) * plotH }

        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
        viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        for t in ys.ticks {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + plotW))\" y2=\"\(f(py(t)))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        for t in xs.ticks {
            s += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotH))\" stroke=\"#f0f0f0\"/>\n"
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotH + 18))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text transform=\"translate(16 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        for (i, line) in series.enumerated() {
            let pts = line.points.filter { $0.x.isFinite && $0.y.isFinite }
            let path = pts.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            for p in pts {
                s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(line.color)\"/>\n"
            }
            let ly = top + 14 + Double(i) * 18
            s += "<line x1=\"\(f(left + plotW - 120))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + plotW - 100))\" y2=\"\(f(ly - 4))\" stroke=\"\(line.color)\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(f(left + plotW - 94))\" y=\"\(f(ly))\">\(escape(line.name))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// Axis range widened to round numbers, with 4 to 8 ticks.
    static func niceTicks(_ values: [Double], fallback: (Double, Double)) -> (low: Double, high: Double, ticks: [Double]) {
        var low = values.min() ?? fallback.0, high = values.max() ?? fallback.1
        if high - low < 1e-12 { low -= 0.5; high += 0.5 }
        let raw = (high - low) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        low = floor(low / step) * step
        high = ceil(high / step) * step
        let ticks = stride(from: low, through: high + step / 2, by: step).map { $0 }
        return (low, high, ticks)
    }

    static func label(_ v: Double) -> String {
        if abs(v - v.rounded()) < 1e-9 { return String(Int(v.rounded())) }
        return String(format: "%g", (v * 1e6).rounded() / 1e6)
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
