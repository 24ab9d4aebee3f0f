import CohortTensor
import Foundation

/// The one-rank world: every collective is the identity. Running without `mpirun`
/// takes exactly the same code path as N ranks, with this communicator.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localSize: Int { 1 }
    public var timeout = 0.0
    public var position = (epoch: 0, step: 0)
    public func barrier() throws {}
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws {}
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int, format: FloatFormat) throws {}
    public func testReduction(slot: Int) throws -> Bool { true }
    public func waitReduction(slot: Int) throws {}
    public func allreduceSum(_ values: [Double]) throws -> [Double] { values }
    public func abort(code: Int32) -> Never { exit(code) }
    public func finalize() {}
}
