// swift-tools-version:6.0
// Cohort: a data-parallel neural-network trainer over MPI.
// Targets follow the layers of docs/architecture.md; each depends only on the layers above it, and
// declares exactly the modules it imports (ManifestTests checks it).
import PackageDescription

// Release builds: no bounds checks. Every build: no errno from sqrt, so loops with a square root
// (optimizer steps) vectorise; the results are the same, sqrt is exact either way.
// COHORT_TARGET_CPU=<cpu> (what `launch/cpu-target` prints for this machine, e.g. skylake-avx512)
// compiles for that CPU's vector units; such a binary runs only on CPUs that have them.
let targetCPU = Context.environment["COHORT_TARGET_CPU"].flatMap { $0.isEmpty ? nil : $0 }
let optimize: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked"] + (targetCPU.map { ["-target-cpu", $0] } ?? []), .when(configuration: .release)),
    .unsafeFlags(["-Xcc", "-fno-math-errno"]),
]

let package = Package(
    name: "Cohort",
    products: [
        .executable(name: "cohort", targets: ["cohort"]),
        // Data-parallel training in a Swift program: `import Cohort` (docs/library.md).
        .library(name: "Cohort", targets: ["Cohort"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // `swift package generate-documentation --target Cohort`: the library's DocC catalogue.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // System modules: thin module maps over Debian's -dev packages.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CLinux"),
        // JPEG decoding over libjpeg-turbo (libjpeg62-turbo-dev), in C for libjpeg's longjmp errors.
        .target(name: "CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),

        // Small things every layer shares: the error type, atomic file writes, hashing, the
        // clock, JSON coding, number formats.
        .target(name: "CohortBase", dependencies: ["CLinux"], swiftSettings: optimize),
        // Tensors and kernels: buffers, GEMM, convolution, pooling, elementwise, RNG.
        .target(name: "CohortTensor", dependencies: ["CBLAS", "CDNNL"], swiftSettings: optimize),
        // Neural network: layers with forward/backward, model files and the networks they build, loss.
        .target(name: "CohortNN", dependencies: ["CohortTensor", .product(name: "TOMLKit", package: "TOMLKit")],
                resources: ["cnn", "rnn", "lstm", "gru", "resnet20", "transformer-rows", "gpt-char"].map { .embedInCode("ModelFile/Builtin/\($0).toml") },
                swiftSettings: optimize),
        // Optimizers over flat parameter and gradient buffers.
        .target(name: "CohortOptim", dependencies: ["CohortTensor"], swiftSettings: optimize),
        // Dataset readers, synthetic data, the sharded sampler, batching.
        .target(name: "CohortData", dependencies: ["CohortBase", "CohortTensor", "CZlib", "CJPEG"], swiftSettings: optimize),
        // Communicators: single-process and MPI (the only code that talks to Open MPI).
        .target(name: "CohortDistributed", dependencies: ["CohortBase", "CohortTensor", "CMPI"], swiftSettings: optimize),
        // Reporting: SVG curves, PNG pictures, TensorBoard event files.
        .target(name: "CohortReporting", dependencies: ["CohortBase", "CZlib"], swiftSettings: optimize),
        // A run's settings and files: config.json, metrics, summary, checkpoints, safetensors.
        .target(name: "CohortRun",
                dependencies: ["CohortBase", "CohortTensor", "CohortNN", "CohortOptim", "CohortData"],
                swiftSettings: optimize),
        // Starting ranks: the only code that knows mpirun and srun command lines, hostfiles, placements.
        .target(name: "CohortLaunch", dependencies: ["CohortBase"], swiftSettings: optimize),
        // The data-parallel loop: replicas, the bucketed gradient reducer, the thread plan, progress.
        .target(name: "CohortTraining",
                dependencies: ["CohortBase", "CohortTensor", "CohortNN", "CohortOptim", "CohortData",
                               "CohortDistributed", "CohortReporting", "CohortRun"],
                swiftSettings: optimize),
        // Speed: the benchmark, the machine's rates, the alpha-beta scaling model.
        .target(name: "CohortBench",
                dependencies: ["CohortBase", "CohortTensor", "CohortNN", "CohortOptim", "CohortData", "CohortDistributed",
                               "CohortReporting", "CohortRun", "CohortLaunch", "CohortTraining"],
                swiftSettings: optimize),
        // What trained models show: filters, activation statistics, the deconvnet, occlusion.
        .target(name: "CohortAnalysis",
                dependencies: ["CohortBase", "CohortTensor", "CohortNN", "CohortData", "CohortRun", "CohortReporting"],
                swiftSettings: optimize),
        // Data sets downloaded: catalogs of files and sums, MD5, tar, the fetcher.
        .target(name: "CohortFetch", dependencies: ["CohortBase", "CohortData"], swiftSettings: optimize),
        // Sweeps: the grid, sweep files, the runner that starts one job per point, the report.
        .target(name: "CohortSweep",
                dependencies: ["CohortBase", "CohortRun", "CohortLaunch", "CohortAnalysis"],
                swiftSettings: optimize),
        // The library's public face: models built in code, data from arrays, a training run.
        .target(name: "Cohort",
                dependencies: ["CohortBase", "CohortNN", "CohortData", "CohortDistributed", "CohortRun", "CohortTraining"],
                swiftSettings: optimize),
        // The command line: one file per command; parses flags and calls the layers above.
        .executableTarget(name: "cohort",
                          dependencies: ["CohortBase", "CohortTensor", "CohortNN", "CohortOptim", "CohortData",
                                         "CohortDistributed", "CohortRun", "CohortLaunch", "CohortTraining", "CohortBench",
                                         "CohortAnalysis", "CohortSweep", "CohortFetch",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: optimize),

        .testTarget(name: "CohortTests",
                    dependencies: ["CohortBase", "CohortTensor", "CohortNN", "CohortOptim", "CohortData", "CohortDistributed",
                                   "CohortReporting", "CohortRun", "CohortLaunch", "CohortTraining", "CohortBench",
                                   "CohortAnalysis", "CohortSweep", "CohortFetch", "Cohort", "CZlib"],
                    exclude: ["Fixtures"]),
    ]
)
