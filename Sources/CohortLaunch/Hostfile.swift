import CohortBase
import Foundation

/// An Open MPI hostfile: `host [slots=N]` per line, `#` comments.
public struct Hostfile: Sendable {
    public let hosts: [(host: String, slots: Int)]

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw CohortError.settings("--hostfile \(path): cannot read it")
        }
        var hosts: [(String, Int)] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let host = words.first else { continue }
            var slots = 1
            for word in words.dropFirst() {
                let pair = word.split(separator: "=")
                // Bounded, so that no sum of slots overflows.
                if pair.count == 2, pair[0] == "slots", let n = Int(pair[1]), n > 0, n <= 1 << 20 { slots = n; continue }
                if pair.count == 2, pair[0] == "max_slots" { continue }
                throw CohortError.settings("--hostfile \(path):\(number + 1): expected 'host slots=N', got '\(raw)'")
            }
            hosts.append((String(host), slots))
        }
        guard !hosts.isEmpty else { throw CohortError.settings("--hostfile \(path): no hosts") }
        self.hosts = hosts
    }

    public init(hosts: [(host: String, slots: Int)]) { self.hosts = hosts }

    /// The file's text, one `host slots=N` line per host.
    public var text: String { hosts.map { "\($0.host) slots=\($0.slots)\n" }.joined() }

    /// Slots over all hosts.
    public var slotCount: Int { hosts.map(\.slots).reduce(0, +) }

    /// Disjoint groups of `ranks` slots each, filled host by host in file order (a group
    /// may span hosts); the slots left over, fewer than `ranks`, go unused.
    public func groups(of ranks: Int) -> [[(host: String, slots: Int)]] {
        var groups: [[(host: String, slots: Int)]] = [], current: [(host: String, slots: Int)] = []
        var need = ranks
        for (host, slots) in hosts {
            var free = slots
            while free > 0 {
                let take = min(free, need)
                current.append((host, take))
                free -= take; need -= take
                if need == 0 { groups.append(current); current = []; need = ranks }
            }
        }
        return groups
    }

    /// One placement per group of `groups(of: ranks)`; an error when the slots do not hold one.
    public func placements(ranks: Int, iface: String?) throws -> [Placement] {
        let groups = groups(of: ranks)
        guard !groups.isEmpty else { throw CohortError.settings("--ranks \(ranks): the hostfile has only \(slotCount) slots") }
        return groups.map { .hosts($0, iface: iface) }
    }
}
