import CohortBase
@testable import CohortBench
import CohortDistributed
@testable import CohortLaunch
@testable import CohortRun
@testable import CohortSweep
@testable import CohortTraining
import Foundation
import Testing

extension SystemTests {
    /// Across nodes: the namespace test cluster (root and iproute2 needed, as in .ci/run), the
    /// hostfile launcher and sweeps on it, the Slurm scripts, hostfiles and the scaling model.
    @Suite(.serialized) struct ClusterTests {
        let scratch = ScratchDirectory("cohort-cluster")
        static let root = repositoryRoot.path

        func namespaces() throws -> Set<String> {
            let result = try runProcess("/usr/sbin/ip", ["netns", "list"])
            return Set(result.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        }

        /// `cluster/netns-cluster -k K -- sh -c SCRIPT`, with the debug binary for the launchers.
        func onCluster(nodes: Int, _ script: String) throws -> ProcessOutcome {
            try #require(getuid() == 0, "the namespace cluster needs root")
            return try runProcess("\(Self.root)/cluster/netns-cluster", ["-k", "\(nodes)", "--", "/bin/sh", "-c", script],
                                  environment: ["COHORT_BINARY": CohortBinary.path], timeout: 300)
        }

        @Test func twoNamespaceNodesTrainLikeOneRank() throws {
            let before = try namespaces()
            let flags = "--model cnn --dataset synthetic --limit 384 --test-limit 64 --batch-size 32 --optimizer sgd "
                + "--lr 0.002 --momentum 0.9 --seed 3 --quiet"
            let one = "\(scratch.path)/one", two = "\(scratch.path)/two"
            // 1 rank in 2 replicas sums the 2 ranks' slices in the same tree: the same bits.
            #expect(try CohortBinary.run(["train"] + flags.split(separator: " ").map(String.init)
                                         + ["--threads", "1", "--replicas", "2", "--out", one]).status == 0)
            // The hostfile launcher, over TCP between the namespaces; each rank records where it ran.
            let result = try onCluster(nodes: 2, "\(Self.root)/cluster/train --hostfile $COHORT_CLUSTER_HOSTFILE "
                                       + "--iface $COHORT_CLUSTER_IFACE --threads 1 \(flags) --out \(two)")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try RunSummary.read(directory: two)?.worldSize == 2)
            try DataParallelTests().expectSameBits(two, one)
            #expect(try namespaces() == before, "the cluster's namespaces are gone")
        }

        @Test func theRanksRunInDifferentNamespacesOverTCP() throws {
            let result = try onCluster(nodes: 2, "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun "
                                       + "--hostfile $COHORT_CLUSTER_HOSTFILE -np 2 --mca btl tcp,self "
                                       + "--mca btl_tcp_if_include $COHORT_CLUSTER_IFACE --mca oob_tcp_if_include $COHORT_CLUSTER_IFACE "
                                       + "sh -c 'echo rank $OMPI_COMM_WORLD_RANK $(ip -o -4 addr show eth0 | awk \"{print \\$4}\")'")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("rank 0 198.18.0.1/16") && result.stdout.contains("rank 1 198.18.0.2/16"), "\(result.stdout)")
        }

        @Test func aSweepSpreadsOverFourNodesAndReportsOnce() throws {
            let out = "\(scratch.path)/sweep"
            let result = try onCluster(nodes: 4, "\(CohortBinary.path) sweep --out \(out) --ranks 2 "
                                       + "--hostfile $COHORT_CLUSTER_HOSTFILE --iface $COHORT_CLUSTER_IFACE --threads 1 --no-visualize "
                                       + "--grid lr=0.01,0.001 --grid optimizer=adam,adagrad -- --model cnn --dataset synthetic "
                                       + "--limit 128 --test-limit 32 --batch-size 32 --quiet")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("4 point(s) x 2 rank(s) -> \(out), 2 at a time"), "\(result.stdout)")
            #expect(result.stdout.contains("on group 1 of 2") && result.stdout.contains("on group 2 of 2"))
            let report = try String(contentsOfFile: "\(out)/report.md", encoding: .utf8)
            #expect(report.contains("4 run(s), 4 finished, each with 2 rank(s)"))
            for run in try FileManager.default.contentsOfDirectory(atPath: "\(out)/runs") {
                #expect(try RunSummary.read(directory: "\(out)/runs/\(run)")?.worldSize == 2)
            }
        }

        /// A node whose link goes down mid-run (`ip link set eth0 down` inside it): mpirun notices
        /// the lost daemon and ends the job, and `cluster/train --restarts 1 --min-nodes 2` asks
        /// the nodes, drops the lost one and finishes from the last checkpoint on the two left.
        /// That is an exact resume: a copy of the run directory taken after the link went down
        /// (1 s later, when no checkpoint is being written: the job is stuck in its allreduce),
        /// resumed on 2 local ranks, ends with the same bits.
        @Test func aNodeLostMidRunIsDroppedAndTheRunFinishesOnTheRest() throws {
            let before = try namespaces()
            let flags = "--model cnn --dataset synthetic --limit 960 --test-limit 64 --batch-size 48 --epochs 2 "
                + "--optimizer sgd --lr 0.002 --momentum 0.9 --seed 4 --checkpoint-steps 5 --quiet"
            let out = "\(scratch.path)/lost-node", copy = "\(scratch.path)/lost-node-copy"
            let takeDownNodeThree = "(while ! ls \(out)/checkpoints/step-* >/dev/null 2>&1; do sleep 0.2; done; "
                + "ip -n $COHORT_NETNS_PREFIX-n3 link set eth0 down; echo link down >&2; sleep 1; cp -r \(out) \(copy)) & "
            let result = try onCluster(nodes: 3, takeDownNodeThree + "\(Self.root)/cluster/train --hostfile $COHORT_CLUSTER_HOSTFILE "
                                       + "--iface $COHORT_CLUSTER_IFACE --restarts 1 --min-nodes 2 --threads 1 \(flags) --out \(out)")
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("link down") && result.stderr.contains("lost communication with a remote daemon"),
                    "\(result.stderr)")
            #expect(result.stderr.contains("2 of 3 node(s) answer; dropping 198.18.0.3"), "\(result.stderr)")
            #expect(result.stderr.contains("restart 1 of 1"), "\(result.stderr)")
            #expect(result.stderr.contains("was made with 3 rank(s) x 1 thread(s)"), "resumed from a checkpoint of the 3 nodes")
            let summary = try #require(try RunSummary.read(directory: out))
            #expect(summary.worldSize == 2 && summary.epochs == 2, "\(summary)")
            let mpirun = try #require(MPIRun.executable, "mpirun is not installed (apt-get install openmpi-bin)")
            let local = try runProcess(mpirun, MPIRun.localArguments(ranks: 2)
                                       + [CohortBinary.path, "train", "--resume", copy, "--threads", "1", "--quiet"],
                                       environment: DataParallelTests.environment, timeout: 300)
            #expect(local.status == 0, "\(local.stderr)")
            try DataParallelTests().expectSameBits(out, copy)
            #expect(try namespaces() == before, "the cluster's namespaces are gone")
        }

        /// Before mpirun starts, every node of the hostfile is asked: a node whose link is down,
        /// or a name that does not resolve, is named in one line, exit 1, and no job starts.
        @Test func aNodeThatDoesNotAnswerIsNamedBeforeTheJobStarts() throws {
            let before = try namespaces()
            let flags = "--model cnn --dataset synthetic --limit 64 --test-limit 32 --batch-size 32 --quiet"
            let out = "\(scratch.path)/silent-node"
            let result = try onCluster(nodes: 2, "ip -n $COHORT_NETNS_PREFIX-n2 link set eth0 down; "
                                       + "\(Self.root)/cluster/train --hostfile $COHORT_CLUSTER_HOSTFILE "
                                       + "--iface $COHORT_CLUSTER_IFACE --threads 1 \(flags) --out \(out)")
            #expect(result.status == 1, "\(result.stderr)")
            #expect(result.stderr.contains("1 of 2 node(s) of ") && result.stderr.contains("do not answer: 198.18.0.2 "),
                    "\(result.stderr)")
            #expect(!result.stderr.contains("ORTE"), "Open MPI's own text: \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(out)/config.json"), "a job started")
            #expect(try namespaces() == before, "the cluster's namespaces are gone")

            let hostfile = "\(scratch.path)/unknown-host"
            put(hostfile, Data("localhost slots=1\nno-such-node.invalid slots=1\n".utf8))
            let unknown = try CohortBinary.run(["launch", "--hostfile", hostfile, "--", "train"] + flags.split(separator: " ").map(String.init)
                                               + ["--out", out], environment: DataParallelTests.environment)
            #expect(unknown.status == 1, "\(unknown.stderr)")
            #expect(unknown.stderr.contains("do not answer: no-such-node.invalid"), "\(unknown.stderr)")
        }

        /// The probes of a hostfile's nodes start at once, so each mpirun has a TMPDIR of its own
        /// (sharing one, two of them may race for Open MPI's session directory and fail in
        /// orte_init), removed afterwards; a probe whose mpirun fails is named with its exit
        /// status. An `mpirun` on PATH stands in for Open MPI and records what it was given.
        @Test func probesStartedAtOnceEachHaveATemporaryDirectoryOfTheirOwn() throws {
            let bin = "\(scratch.path)/probe-bin", temporary = "\(scratch.path)/probe-tmp", log = "\(scratch.path)/probe.log"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
            put("\(bin)/mpirun", Data("""
                #!/bin/sh
                # Each probe: its TMPDIR, whether it exists, its host; then, with the others running, its answer.
                echo "$TMPDIR $(test -d "$TMPDIR" && echo exists) $*" >> \(log)
                sleep 0.5
                case "$*" in *node3:1*) exit 7 ;; esac
                """.utf8))
            chmod("\(bin)/mpirun", 0o755)
            let hostfile = "\(scratch.path)/probe-hosts", answering = "\(scratch.path)/probe-answering"
            put(hostfile, Data("node1\nnode2 slots=2\nnode3\n".utf8))
            let path = "\(bin):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"
            let result = try CohortBinary.run(["launch", "--hostfile", hostfile, "--probe-to", answering],
                                              environment: ["PATH": path, "TMPDIR": temporary])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("2 of 3 node(s) answer; dropping node3 (mpirun could not start /bin/true there: exit 7)"),
                    "\(result.stderr)")
            #expect(try String(contentsOfFile: answering, encoding: .utf8) == "node1 slots=1\nnode2 slots=2\n")
            let probes = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
            #expect(probes.count == 3, "\(probes)")
            let directories = probes.map { String($0[0]) }
            #expect(Set(directories).count == 3 && directories.allSatisfy { $0.hasPrefix("\(temporary)/") }, "\(directories)")
            #expect(probes.allSatisfy { $0.count > 1 && $0[1] == "exists" }, "\(probes)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: temporary).isEmpty, "the probes' directories are left")
        }

        @Test func clusterScriptsParseAndDryRun() throws {
            for script in ["cluster/train", "cluster/netns-cluster", "cluster/netns-rsh", "cluster/slurm/train.sbatch",
                           "cluster/slurm/sweep.sbatch", "launch/train", "launch/quickstart"] {
                let result = try runProcess("/bin/bash", ["-n", "\(Self.root)/\(script)"])
                #expect(result.status == 0, "\(script): \(result.stderr)")
            }
            // The scripts ask `cohort launch` for the command; it prints it with --dry-run.
            let binary = CohortBinary.path
            let environment = ["COHORT_DRY_RUN": "1", "COHORT_BINARY": binary, "SLURM_CPUS_PER_TASK": "4"]
            let train = try runProcess("\(Self.root)/cluster/slurm/train.sbatch", ["--model", "cnn", "--out", "runs/x"],
                                       environment: environment)
            #expect(train.stdout == "srun --mpi=pmix --cpu-bind=cores \(binary) train --threads 4 --model cnn --out runs/x\n",
                    "\(train.stdout)")
            let viaMPI = try runProcess("\(Self.root)/cluster/slurm/train.sbatch", ["--out", "runs/x"],
                                        environment: environment.merging(["COHORT_LAUNCHER": "mpirun"]) { $1 })
            let root = getuid() == 0 ? "--allow-run-as-root " : ""
            #expect(viaMPI.stdout.hasPrefix("mpirun \(root)--bind-to none --mca btl tcp,self,vader --mca oob_tcp_keepalive_time 10 "),
                    "\(viaMPI.stdout)")
            #expect(viaMPI.stdout.contains("oob_tcp_keepalive_probes 3 \(binary) train --threads 4"), "\(viaMPI.stdout)")
            let sweep = try runProcess("\(Self.root)/cluster/slurm/sweep.sbatch", ["sweeps/mnist-rnn.toml", "--out", "runs/s"],
                                       environment: environment.merging(["SLURM_ARRAY_TASK_ID": "7", "SLURM_NTASKS": "2"]) { $1 })
            #expect(sweep.stdout.hasPrefix("\(binary) sweep --point 7 --ranks 2 --threads 4 --slurm srun --no-visualize"),
                    "\(sweep.stdout)")
            let noArray = try runProcess("\(Self.root)/cluster/slurm/sweep.sbatch", [], environment: environment)
            #expect(noArray.status != 0 && noArray.stderr.contains("array job"))
            let dry = try runProcess("\(Self.root)/cluster/train", ["--hostfile", "\(Self.root)/cluster/hostfile.example", "--iface",
                                                                   "eth1", "--dry-run", "--model", "cnn"],
                                     environment: ["COHORT_BINARY": binary])
            #expect(dry.status == 0 && dry.stdout.contains("--hostfile") && dry.stdout.contains("btl_tcp_if_include eth1"), "\(dry.stdout)")
            #expect(dry.stdout.contains("--mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5"), "\(dry.stdout)")
            #expect(!dry.stderr.contains("--timeout"), "\(dry.stderr)")
            // A collective timeout shorter than Open MPI's detection of a lost node is pointed out.
            let short = try runProcess("\(Self.root)/cluster/train", ["--hostfile", "\(Self.root)/cluster/hostfile.example",
                                                                     "--dry-run", "--model", "cnn", "--timeout=20"],
                                       environment: ["COHORT_BINARY": binary])
            #expect(short.status == 0 && short.stderr.contains("--timeout 20 s is not longer than the 25 s"), "\(short.stderr)")
            // The sweep's array size, and one point alone.
            let count = try CohortBinary.run(["sweep", "\(Self.root)/sweeps/cifar10-cnn.toml", "--count"])
            #expect(count.stdout == "12\n")
            let bad = try CohortBinary.run(["sweep", "\(Self.root)/sweeps/cifar10-cnn.toml", "--point", "12"])
            #expect(bad.status != 0 && bad.stderr.contains("points 0...11"))
        }

        @Test func hostfilesAndSlotGroups() throws {
            let path = "\(scratch.path)/hosts"
            try Data("# nodes\nnode1 slots=3\nnode2  slots=2 # two\n\nnode3\n".utf8).write(to: URL(fileURLWithPath: path))
            let hostfile = try Hostfile(path: path)
            #expect(hostfile.hosts.map(\.host) == ["node1", "node2", "node3"] && hostfile.hosts.map(\.slots) == [3, 2, 1])
            let groups = hostfile.groups(of: 2).map { $0.map { "\($0.host):\($0.slots)" } }
            #expect(groups == [["node1:2"], ["node1:1", "node2:1"], ["node2:1", "node3:1"]])
            #expect(hostfile.groups(of: 4).count == 1 && hostfile.groups(of: 7).isEmpty)
            try Data("node1 slots=two\n".utf8).write(to: URL(fileURLWithPath: path))
            expectError(.settings) { _ = try Hostfile(path: path) }
        }

        @Test func theScalingModel() {
            let model = ScalingModel(latency: 10e-6, bandwidth: 1.25e9)  // 10 Gbit/s
            // Ring: 2(N-1)/N · s/β + 2(N-1)·α.
            let ring: Double = 1.5 * 4e6 / 1.25e9 + 6 * 10e-6
            #expect(abs(model.allreduceSeconds(ranks: 4, bytes: 4e6) - ring) < 1e-12)
            #expect(model.allreduceSeconds(ranks: 1, bytes: 4e6) == 0)
            #expect(model.reductionSeconds(ranks: 2, buckets: [1_000_000, 3_000_000])
                    == model.allreduceSeconds(ranks: 2, bytes: 1e6) + model.allreduceSeconds(ranks: 2, bytes: 3e6))
            // The fit recovers α and β from exact 2-rank timings (T = s/β + 2α).
            let sizes: [Double] = [4, 65536, 1_048_576, 4_194_304]
            let timings: [(bytes: Double, seconds: Double)] = sizes.map { (bytes: $0, seconds: $0 / 3e9 + 2 * 7e-6) }
            let fitted = ScalingModel.fit(twoRankTimings: timings)
            #expect(abs(fitted.latency - 7e-6) < 1e-12 && abs(fitted.bandwidth / 3e9 - 1) < 1e-9)
            // Weak scaling: efficiency = compute / (compute + comm); the smallest batch reaches the target and one less does not.
            let table = ScalingTable(secondsPerSample: 500e-6, buckets: [400_000], perRankBatch: 64,
                                     models: [("10 Gbit/s", model)], maxNodes: 512)
            #expect(table.nodeCounts == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
            let comm = model.reductionSeconds(ranks: 512, buckets: [400_000])
            let compute64: Double = 64 * 500e-6
            #expect(abs(table.row(512, model).efficiency - compute64 / (compute64 + comm)) < 1e-12)
            let b = table.smallestBatch(nodes: 512, model: model, efficiency: 0.9)
            let efficiency = { (batch: Int) -> Double in
                let compute = Double(batch) * 500e-6
                return compute / (compute + comm)
            }
            #expect(efficiency(b) >= 0.9 && efficiency(b - 1) < 0.9)
        }
    }
}
