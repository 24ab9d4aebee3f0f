import ArgumentParser
import CohortAnalysis
import CohortBase
import Foundation

/// `cohort generate`: text from a model trained on a text.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt with a language model trained on a text (--dataset text).",
        discussion: """
        Prints the prompt and the bytes the model adds, one at a time, each chosen from its \
        logits at the last of the last --block-size bytes: the largest (greedy, the default), or \
        drawn with --temperature from the --top-k likeliest, from --seed (the same seed, the same text).
        """)

    @Option(name: .customLong("run"), help: "Run directory, one of its checkpoints, or a .safetensors file in either.")
    var path: String
    @Option(help: "Text to continue (default: a newline, as the peer's --sample).")
    var prompt = "\n"
    @Option(help: "Bytes to add.")
    var bytes = 200
    @Option(help: ArgumentHelp("Sample from softmax(logits / T) instead of taking the largest.", valueName: "T"))
    var temperature: Double?
    @Option(help: ArgumentHelp("With --temperature: draw from the K likeliest bytes only.", valueName: "K"))
    var topK: Int?
    @Option(help: "Seed of the draws.")
    var seed: UInt64 = 0

    func validate() throws {
        guard !prompt.isEmpty else { throw ValidationError("--prompt must not be empty") }
        guard (1...1_000_000).contains(bytes) else { throw ValidationError("--bytes must be in 1...1000000, got \(bytes)") }
        if let t = temperature, !(t.isFinite && t > 0) { throw ValidationError("--temperature must be positive, got \(t)") }
        if let k = topK {
            guard temperature != nil else { throw ValidationError("--top-k goes with --temperature") }
            guard k > 0 else { throw ValidationError("--top-k must be positive, got \(k)") }
        }
    }

    func run() throws {
        try reportingErrors {
            let generator = try TextGenerator(path: path)
            let start = Array(prompt.utf8)
            let text = try generator.continuation(of: start, count: bytes,
                                                  sampling: .init(temperature: temperature, topK: topK, seed: seed))
            FileHandle.standardOutput.write(Data(start + text + (text.last == 10 ? [] : [10])))
        }
    }
}
