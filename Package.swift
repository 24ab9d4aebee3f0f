// swift-tools-version:6.0
// Cohort: a data-parallel neural-network trainer over MPI.
// Targets follow the layers of DESIGN.md; each depends only on the layers above it.
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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
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

        // Tensors and kernels: buffers, GEMM, convolution, pooling, elementwise, RNG.
        .target(name: "CohortTensor", dependencies: ["CBLAS", "CDNNL"], swiftSettings: optimize),
        // Neural network: layers with forward/backward, models, loss.
        .target(name: "CohortNN", dependencies: ["CohortTensor"], swiftSettings: optimize),
        // Optimizers over flat parameter and gradient buffers.
        .target(name: "CohortOptim", dependencies: ["CohortTensor"], swiftSettings: optimize),
        // Dataset readers, synthetic data, the sharded sampler, batching.
        .target(name: "CohortData", dependencies: ["CohortTensor", "CZlib"], swiftSettings: optimize),
        // Communicators: single-process and MPI (the only code that talks to Open MPI).
        .target(name: "CohortDistributed", dependencies: ["CohortTensor", "CMPI"], swiftSettings: optimize),
        // Reporting: SVG curves, PNG pictures.
        .target(name: "CohortReporting", dependencies: ["CZlib"], swiftSettings: optimize),
        // Training loop, evaluation, run directory, safetensors.
        .target(name: "CohortTraining",
                dependencies: ["CohortTensor", "CohortNN", "CohortOptim", "CohortData",
                               "CohortDistributed", "CohortReporting"],
                swiftSettings: optimize),
        // What trained models and sweeps show: sweep reports, filters, activation statistics,
        // the deconvnet, occlusion.
        .target(name: "CohortAnalysis",
                dependencies: ["CohortTensor", "CohortNN", "CohortData", "CohortTraining", "CohortReporting"],
                swiftSettings: optimize),
        // The command line: thin, parses flags and calls the layers above.
        .executableTarget(name: "cohort",
                          dependencies: ["CohortTraining", "CohortAnalysis",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: optimize),

        .testTarget(name: "CohortTests",
                    dependencies: ["CohortTensor", "CohortNN", "CohortOptim", "CohortData",
                                   "CohortDistributed", "CohortTraining", "CohortReporting", "CohortAnalysis", "CZlib"],
                    exclude: ["Fixtures"]),
    ]
)
