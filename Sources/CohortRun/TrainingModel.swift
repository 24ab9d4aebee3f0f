import CohortBase
import CohortNN
import Foundation

/// The model the settings name.
extension TrainingConfig {
    /// The file a resumed run keeps of its model, beside config.json: its own copy, whatever
    /// happened since to the file it was started with.
    public static func modelCopy(directory: String) -> String { "\(directory)/model.toml" }

    /// The model this run trains: `--model` (a built-in or a file) with `--model-param`, and
    /// `--hidden` and `--width` for a file that has those parameters. `resumed`: the run
    /// directory's copy of the file, where there is one.
    public func modelSpec(resumed: Bool = false) throws -> ModelSpec {
        do {
            let copy = Self.modelCopy(directory: out)
            let file = resumed && FileManager.default.fileExists(atPath: copy) ? try ModelFile(path: copy)
                : try ModelFile.named(model)
            return ModelSpec(file: file, hidden: hidden, width: width, parameters: modelParam ?? [:])
        } catch {
            throw CohortError.settings(error.description)
        }
    }
}
