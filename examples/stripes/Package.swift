// swift-tools-version:6.0
// An example of Cohort as a library: a small network defined in Swift, trained data-parallel
// on arrays the program makes itself.
//
//   swift build && mpirun -np 2 .build/debug/Stripes     (or .build/debug/Stripes alone)
import Foundation
import PackageDescription

// Cohort is the package two folders up (in a program of your own: its path or its git URL).
let cohort = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "Stripes",
    dependencies: [.package(path: cohort.path)],
    targets: [
        .executableTarget(name: "Stripes", dependencies: [.product(name: "Cohort", package: cohort.lastPathComponent)]),
    ]
)
