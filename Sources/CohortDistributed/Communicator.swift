/// The collective operations that data-parallel training needs, behind one small
/// interface. Layers and optimizers never see it; only the training loop does.
///
/// Every rank must make the same calls in the same order (MPI's rule for collectives).
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Ranks on this node and this rank's index among them (to share the cores).
    var localSize: Int { get }
    func barrier() throws
    /// Replaces `buffer` on every rank with rank `root`'s.
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) throws
    /// In place: `buffer ← Σ_ranks buffer`.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Starts an in-place sum; the buffer must not be touched until `wait` returns.
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws -> PendingReduction
    /// Sums small metric vectors (loss sums, counts) in double precision, result on every rank.
    func allreduceSum(_ values: [Double]) throws -> [Double]
    /// Ends the whole job with `code` (all ranks), after printing nothing further.
    func abort(code: Int32) -> Never
}

/// A non-blocking reduction in flight.
public protocol PendingReduction: AnyObject {
    func wait() throws
}

/// An error from the communication layer, with the rank and operation it concerns.
public struct CommunicationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
