import Cohort
import Foundation

// Images of one bright stripe, horizontal (class 0) or vertical (class 1), at a random place
// on a noisy 12x12 background. Every rank makes the same arrays (a seeded generator) and
// trains on its own slice of each batch.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func stripes(count: Int, seed: UInt64) throws -> Dataset {
    var random = SplitMix64(state: seed)
    var pixels: [UInt8] = [], labels: [Int] = []
    for _ in 0..<count {
        let vertical = Bool.random(using: &random), place = Int.random(in: 0..<12, using: &random)
        for row in 0..<12 {
            for column in 0..<12 {
                let onStripe = (vertical ? column : row) == place
                pixels.append(UInt8(Int.random(in: 0..<100, using: &random) + (onStripe ? 155 : 0)))
            }
        }
        labels.append(vertical ? 1 : 0)
    }
    return try Dataset(name: "stripes", pixels: pixels, shape: [1, 12, 12], labels: labels, classes: 2)
}

let world = try World()
do {
    let model = try Model("stripes") {
        Conv2D(filters: 8, kernel: 3, padding: 1, bias: false, name: "conv1")
        BatchNorm(name: "bn1")
        ReLU()
        MaxPool(kernel: 2)
        Residual(name: "block") {
            Conv2D(filters: 8, kernel: 3, padding: 1, bias: false)
            BatchNorm()
            ReLU()
            Conv2D(filters: 8, kernel: 3, padding: 1, bias: false)
            BatchNorm()
        } after: {
            ReLU()
        }
        GlobalAvgPool()
        Flatten()
        Linear(name: "fc")
    }
    var settings = TrainingSettings()
    settings.optimizer = .sgd
    settings.lr = 0.05
    settings.momentum = 0.9
    settings.epochs = 4
    settings.batchSize = 64
    settings.out = CommandLine.arguments.dropFirst().first ?? "runs/stripes"
    let training = try Training(model: model, train: try stripes(count: 2048, seed: 1), test: try stripes(count: 512, seed: 2),
                                settings: settings, world: world)
    let summary = try training.run { epoch in
        print(String(format: "epoch %d: train loss %.4f, test accuracy %.2f%%", epoch.epoch, epoch.trainLoss,
                     100 * epoch.testAccuracy))
    }
    if world.rank == 0 {
        print(String(format: "stripes: %d rank(s), test accuracy %.2f%%, weights in %@/model.safetensors", world.size,
                     100 * summary.final.testAccuracy, settings.out))
    }
    world.finish()
    // A run that did not learn the task fails, so that CI notices.
    exit(world.rank == 0 && summary.final.testAccuracy < 0.9 ? 1 : 0)
} catch {
    print("stripes: rank \(world.rank): \(error)")
    world.abort(code: 1)
}
