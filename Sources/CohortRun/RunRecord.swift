import CohortBase
import Foundation

/// `config.json`: a run's settings, and how this run was carried out.
public struct RunRecord: Codable, Sendable {
    public var config: TrainingConfig
    public var worldSize: Int
    /// The threads and replicas each rank used (the settings' nil resolved).
    public var threadsPerRank: Int
    public var replicasPerRank: Int
    public var version = cohortVersion

    enum CodingKeys: String, CodingKey {
        case worldSize = "world_size", threadsPerRank = "threads_per_rank", replicasPerRank = "replicas_per_rank"
        case version
    }

    public init(config: TrainingConfig, worldSize: Int, threadsPerRank: Int, replicasPerRank: Int) {
        self.config = config; self.worldSize = worldSize
        self.threadsPerRank = threadsPerRank; self.replicasPerRank = replicasPerRank
    }

    // One flat object: the settings' keys beside the run's own.
    public init(from decoder: Decoder) throws {
        config = try TrainingConfig.completing(JSONValue(from: decoder).objectValue ?? [:])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        worldSize = try container.decode(Int.self, forKey: .worldSize)
        threadsPerRank = try container.decode(Int.self, forKey: .threadsPerRank)
        replicasPerRank = try container.decode(Int.self, forKey: .replicasPerRank)
        version = try container.decode(String.self, forKey: .version)
    }

    public func encode(to encoder: Encoder) throws {
        try config.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(worldSize, forKey: .worldSize)
        try container.encode(threadsPerRank, forKey: .threadsPerRank)
        try container.encode(replicasPerRank, forKey: .replicasPerRank)
        try container.encode(version, forKey: .version)
    }

    public static func path(directory: String) -> String { "\(directory)/config.json" }

    /// The record of the run in `directory`, its settings checked as flags would be.
    public static func read(directory: String) throws -> RunRecord {
        let path = path(directory: directory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CohortError.failure("\(directory): no run there (config.json is missing)")
        }
        let record = try JSONFile.read(RunRecord.self, path: path)
        do { try record.config.validate() } catch let error as CohortError {
            throw CohortError.failure("\(path): \(error.description)")
        }
        return record
    }
}

public let cohortVersion = "0.2.0"
