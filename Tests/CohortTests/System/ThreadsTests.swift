import CohortBase
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortTraining
import Foundation
import Testing

extension SystemTests {
    /// Threads on many-core nodes and under a launcher's binding.
    @Suite struct ThreadsTests {
        let scratch = ScratchDirectory("cohort-threads")

        /// The default plan of a 64-core node, one replica per thread, on any machine: every
        /// model, a small one too (hidden 8: fewer parameters per replica stretch).
        @Test(arguments: ["cnn", "rnn", "lstm", "gru"])
        func sixtyFourReplicasTrain(model: String) throws {
            let out = "\(scratch.path)/\(model)"
            let result = try CohortBinary.run(["train", "--model", model, "--hidden", "8", "--dataset", "synthetic",
                                               "--limit", "640", "--test-limit", "64", "--batch-size", "64",
                                               "--threads", "64", "--replicas", "64", "--quiet", "--out", out])
            #expect(result.status == 0, "\(result.stderr)")
            let record = try RunRecord.read(directory: out)
            #expect(record.threadsPerRank == 64 && record.replicasPerRank == 64)
            if usableCPUCount < 64 {
                #expect(result.stderr.contains("64 threads on \(usableCPUCount) CPU(s)"), "\(result.stderr)")
            }
        }

        /// `mpirun -np 1 cohort train`: Open MPI binds the rank to its cores, and the rank uses
        /// as many threads as it has CPUs (read from the rank's own /proc status).
        @Test func aBoundRankUsesTheCPUsItIsBoundTo() throws {
            let mpirun = try #require(MPIRun.executable, "mpirun is not installed (apt-get install openmpi-bin)")
            let probe = try runProcess(mpirun, ["-np", "1", "/bin/grep", "Cpus_allowed_list", "/proc/self/status"],
                                       environment: DataParallelTests.environment)
            #expect(probe.status == 0, "\(probe.stderr)")
            let list = try #require(probe.stdout.split(separator: ":").last).trimmingCharacters(in: .whitespacesAndNewlines)
            let cpus = list.split(separator: ",").map { part -> Int in
                let bounds = part.split(separator: "-").compactMap { Int($0) }
                return bounds.count == 2 ? bounds[1] - bounds[0] + 1 : 1
            }.reduce(0, +)
            let out = "\(scratch.path)/bound"
            let result = try runProcess(mpirun, ["-np", "1", CohortBinary.path, "train", "--model", "gru", "--hidden", "8",
                                                 "--dataset", "synthetic", "--limit", "128", "--test-limit", "32",
                                                 "--batch-size", "32", "--quiet", "--out", out],
                                        environment: DataParallelTests.environment)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try RunRecord.read(directory: out).threadsPerRank == cpus, "bound to \(list)")
        }
    }
}
