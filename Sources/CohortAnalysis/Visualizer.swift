import CohortBase
import CohortData
import CohortNN
import CohortReporting
import CohortRun
import Foundation

/// What `cohort visualize` makes of a trained model, written to one directory:
/// for the CNN the first convolution's filters, ReLU statistics, deconvnet projections
/// and occlusion maps; for recurrent models the hidden state's statistics per step.
/// `visualize.json` lists it all, and `markdown` turns it into a report section.
public struct Visualization: Codable {
    public var model: String
    public var filtersImage: String?
    public var activations: [ActivationSummary] = []
    /// Per conv layer: its name, the PNG, and the feature maps shown.
    public var deconvnet: [DeconvnetPicture] = []
    public var occlusionImage: String?
    public var hiddenStates: [ActivationSummary] = []
    /// What could not be shown for this model, and why (the deconvnet of a network with batch norm).
    public var notes: [String]?

    public struct DeconvnetPicture: Codable {
        public var layer: String, image: String, maps: [Int]
    }

    enum CodingKeys: String, CodingKey {
        case model, filtersImage = "filters", activations, deconvnet, occlusionImage = "occlusion"
        case hiddenStates = "hidden_states", notes
    }

    public init(model: String) { self.model = model }

    /// A Markdown section; picture links are `prefix` + file name.
    public func markdown(prefix: String, heading: String = "###") -> String {
        var lines: [String] = []
        if let filters = filtersImage {
            lines += ["\(heading) First convolution's filters", "",
                      "Each filter scaled to its own minimum..maximum, enlarged.", "", "![conv1 filters](\(prefix)\(filters))", ""]
        }
        if !activations.isEmpty {
            lines += ["\(heading) Activation statistics (test set)", "", "| activations | mean | std |", "| --- | --- | --- |"]
            lines += activations.map { "| \($0.name) | \(Format.figure($0.mean)) | \(Format.figure($0.std)) |" }
            lines.append("")
        }
        if !deconvnet.isEmpty {
            lines += ["\(heading) Deconvnet (Zeiler & Fergus)", "",
                      "For each feature map shown, the 9 test images that activate it most (lower row, cut to the part "
                      + "the unit sees) and the projection of that strongest activation back to pixel space (upper row): "
                      + "unpooling with the forward pass's switches, rectification, transposed filters. Grey is 0.", ""]
            for d in deconvnet {
                lines += ["**\(d.layer)**, feature maps \(d.maps.map(String.init).joined(separator: ", ")):", "",
                          "![deconvnet \(d.layer)](\(prefix)\(d.image))", ""]
            }
        }
        for note in notes ?? [] { lines += ["*\(note.prefix(1).uppercased() + note.dropFirst()).*", ""] }
        if let occlusion = occlusionImage {
            lines += ["\(heading) Occlusion sensitivity", "",
                      "Each test image and the probability of its true class as a grey square covers each place "
                      + "(dark: low, yellow: high).", "", "![occlusion](\(prefix)\(occlusion))", ""]
        }
        if !hiddenStates.isEmpty {
            lines += ["\(heading) Hidden state per step (test set)", "", "| step | mean | std |", "| --- | --- | --- |"]
            lines += hiddenStates.map { "| \($0.name.dropFirst()) | \(Format.figure($0.mean)) | \(Format.figure($0.std)) |" }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }
}

/// Settings of `cohort visualize`.
public struct VisualizeSettings: Sendable {
    /// Feature maps shown per conv layer in the deconvnet.
    public var maps = 8
    /// Test images in the occlusion picture, and the occluder's size and stride in pixels.
    public var occlusionImages = 4
    public var occlusionSize = 8
    public var occlusionStride = 2
    public init() {}

    public func validate() throws {
        guard maps > 0 else { throw CohortError.settings("--maps must be positive, got \(maps)") }
        guard occlusionImages >= 0 else { throw CohortError.settings("--occlusion-images must be >= 0, got \(occlusionImages)") }
        guard occlusionSize > 0 else { throw CohortError.settings("--occlusion-size must be positive, got \(occlusionSize)") }
        guard occlusionStride > 0 else { throw CohortError.settings("--occlusion-stride must be positive, got \(occlusionStride)") }
    }
}

public enum Visualizer {
    /// Writes every picture and statistic for `trained` into `directory`, and `visualize.json`.
    public static func run(_ trained: TrainedModel, settings: VisualizeSettings, directory: String,
                           log: (String) -> Void = { _ in }) throws -> Visualization {
        try settings.validate()
        guard trained.test.windows == nil else {
            throw CohortError.settings("\(trained.model.name) reads a text: visualize draws what models of images show "
                                       + "(filters, ReLU and hidden-state statistics, the deconvnet, occlusion); use "
                                       + "cohort evaluate and cohort generate")
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CohortError.failure("\(directory): cannot create (\(error.localizedDescription))")
        }
        let network = trained.network, data = trained.test
        guard data.count > 0 else { throw CohortError.failure("the test set is empty") }
        var result = Visualization(model: trained.model.name)
        // A model with a recurrent layer shows its hidden states; any other (a transformer over
        // the rows among them) what an image model shows, as far as its layers allow.
        if network.allLayers.contains(where: { $0 is Recurrent }) {
            result.hiddenStates = ActivationStatistics.hiddenStates(network, data: data)
            log("visualize: hidden-state statistics over \(data.count) test images")
        } else {
            let convs = network.layers.indices.filter { network.layers[$0] is Conv2D }
            if let first = convs.first, let conv = network.layers[first] as? Conv2D {
                try write(filterPicture(conv, network: network, layer: first), to: "\(directory)/conv1-filters.png")
                result.filtersImage = "conv1-filters.png"
            }
            result.activations = ActivationStatistics.relus(network, data: data)
            log("visualize: filters, ReLU statistics over \(data.count) test images")
            if let obstacle = Deconvnet.obstacle(in: network) {
                result.notes = (result.notes ?? []) + ["no deconvnet: \(obstacle)"]
                log("visualize: no deconvnet: \(obstacle)")
            }
            for (k, index) in convs.enumerated() where Deconvnet.obstacle(in: network) == nil {
                let name = "conv\(k + 1)"
                let (picture, maps) = deconvnetPicture(network, data: data, convIndex: index, maps: settings.maps)
                try write(picture, to: "\(directory)/deconv-\(name).png")
                result.deconvnet.append(.init(layer: name, image: "deconv-\(name).png", maps: maps))
                log("visualize: deconvnet for \(name), maps \(maps)")
            }
            if settings.occlusionImages > 0 {
                let size = min(settings.occlusionSize, data.height, data.width)
                let rows = (0..<min(settings.occlusionImages, data.count)).map { index -> [RGBImage] in
                    let map = Occlusion.map(network, data: data, index: index, size: size, stride: settings.occlusionStride)
                    return [sampleImage(data, index), resized(Pictures.heatMap(map.probabilities, rows: map.rows, columns: map.columns),
                                                              width: data.width, height: data.height)]
                }
                try write(Pictures.grid(rows, scale: 4), to: "\(directory)/occlusion.png")
                result.occlusionImage = "occlusion.png"
                log("visualize: occlusion maps for \(rows.count) test image(s)")
            }
        }
        try JSONFile.write(result, to: "\(directory)/visualize.json")
        try writeAtomically(result.markdown(prefix: "", heading: "##") + "\n", to: "\(directory)/visualize.md")
        return result
    }

    static func write(_ image: RGBImage, to path: String) throws {
        try writeAtomically(image.png(), to: path)
    }

    /// Filters `W[O, C, K, K]` as a grid, 8 per row, each stretched to its own range, ×8.
    static func filterPicture(_ conv: Conv2D, network: Network, layer: Int) -> RGBImage {
        let range = network.layerRanges[layer]
        let spec = conv.parameterSpecs[0]
        let (o, c, kh, kw) = (spec.shape[0], spec.shape[1], spec.shape[2], spec.shape[3])
        let weights = Array(UnsafeBufferPointer(start: network.parameters.pointer + range.lowerBound, count: spec.count))
        let shown = c == 3 ? 3 : 1  // RGB for three input channels, else the first channel in grey
        let pictures = (0..<o).map { f -> RGBImage in
            let filter = Array(weights[(f * c * kh * kw)..<((f * c + shown) * kh * kw)])
            return Pictures.stretched(planes: filter, channels: shown, height: kh, width: kw)
        }
        let rows = stride(from: 0, to: o, by: 8).map { Array(pictures[$0..<min(o, $0 + 8)]) }
        return Pictures.grid(rows, scale: 8, gap: 4)
    }

    /// The deconvnet picture of conv layer `convIndex`: for each of the `maps` maps whose 9th
    /// strongest image activates them most, a row of projections above a row of the images,
    /// both cut to the part of the image the unit sees (as Zeiler & Fergus show them).
    static func deconvnetPicture(_ network: Network, data: ImageDataset, convIndex: Int, maps: Int) -> (RGBImage, [Int]) {
        let feature = Deconvnet.featureLayer(after: convIndex, in: network)
        let top = Deconvnet.topSamples(network, data: data, featureLayer: feature)
        let chosen = top.indices.sorted { a, b in
            let (x, y) = (top[a].last?.activation ?? 0, top[b].last?.activation ?? 0)
            return x != y ? x > y : a < b
        }.prefix(maps).sorted()
        let input = UnsafeMutablePointer<Float>.allocate(capacity: data.sampleSize)
        defer { input.deallocate() }
        var label: Int32 = 0
        var projections: [[(pixels: [Float], sample: Int, box: Box)]] = []
        for map in chosen {
            projections.append(top[map].map { sample, _ in
                data.fillDecoded(indices: [sample], x: input, y: &label)
                let pixels = Deconvnet.project(network, input: input, featureLayer: feature, map: map).pixels
                return (pixels, sample, Box(nonzeroOf: pixels, channels: data.channels, height: data.height, width: data.width))
            })
        }
        // One window size for the layer: the largest field any projection reaches.
        let all = projections.flatMap { $0 }.map(\.box)
        let (h, w) = (all.map(\.height).max() ?? data.height, all.map(\.width).max() ?? data.width)
        var rows: [[RGBImage]] = []
        for row in projections {
            var upper: [RGBImage] = [], lower: [RGBImage] = []
            for (pixels, sample, box) in row {
                let window = box.centred(height: h, width: w, within: (data.height, data.width))
                upper.append(Pictures.centred(planes: window.crop(pixels, channels: data.channels, width: data.width),
                                              channels: data.channels, height: h, width: w))
                lower.append(Pictures.image(planes: window.crop(samplePlanes(data, sample), channels: data.channels, width: data.width),
                                            channels: data.channels, height: h, width: w, low: 0, high: 255))
            }
            rows += [upper, lower]
        }
        return (Pictures.grid(rows, scale: max(2, 64 / max(h, w))), Array(chosen))
    }

    /// A rectangle of an image: rows `y..<y+height`, columns `x..<x+width`.
    struct Box {
        var y: Int, x: Int, height: Int, width: Int

        /// The smallest box holding every nonzero value of `[C, H, W]` (the whole image if none).
        init(nonzeroOf values: [Float], channels: Int, height: Int, width: Int) {
            var (top, left, bottom, right) = (height, width, -1, -1)
            for c in 0..<channels {
                for yy in 0..<height {
                    for xx in 0..<width where values[(c * height + yy) * width + xx] != 0 {
                        top = min(top, yy); bottom = max(bottom, yy); left = min(left, xx); right = max(right, xx)
                    }
                }
            }
            if bottom < 0 { (top, left, bottom, right) = (0, 0, height - 1, width - 1) }
            self.init(y: top, x: left, height: bottom - top + 1, width: right - left + 1)
        }

        init(y: Int, x: Int, height: Int, width: Int) { self.y = y; self.x = x; self.height = height; self.width = width }

        /// A `height`×`width` box with the same centre, moved inside the image if needed.
        func centred(height h: Int, width w: Int, within size: (height: Int, width: Int)) -> Box {
            let cy = y + height / 2, cx = x + width / 2
            return Box(y: max(0, min(size.height - h, cy - h / 2)), x: max(0, min(size.width - w, cx - w / 2)), height: h, width: w)
        }

        /// The box's part of `[C, H, W]` values, as `[C, height, width]`.
        func crop(_ values: [Float], channels: Int, width imageWidth: Int) -> [Float] {
            let imageHeight = values.count / (channels * imageWidth)
            var out: [Float] = []
            out.reserveCapacity(channels * height * width)
            for c in 0..<channels {
                for yy in y..<(y + height) {
                    let row = (c * imageHeight + yy) * imageWidth
                    out += values[(row + x)..<(row + x + width)]
                }
            }
            return out
        }
    }

    /// Sample `index`'s values as `[C, H, W]` floats (pixels 0...255).
    static func samplePlanes(_ data: ImageDataset, _ index: Int) -> [Float] {
        try! data.values(index)  // the analyses read decoded sets: reading cannot fail
    }

    static func sampleImage(_ data: ImageDataset, _ index: Int) -> RGBImage {
        Pictures.image(planes: samplePlanes(data, index), channels: data.channels, height: data.height, width: data.width,
                       low: 0, high: 255)
    }

    /// Nearest-neighbour resampling to `width`×`height`.
    static func resized(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        var out = RGBImage(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width { out[x, y] = image[x * image.width / width, y * image.height / height] }
        }
        return out
    }
}
