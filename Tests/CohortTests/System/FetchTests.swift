@testable import CohortData
@testable import CohortFetch
import Foundation
import Testing

extension SystemTests {
    /// `cohort data fetch` against loopback HTTP servers (these machines have no network):
    /// good, truncated and damaged copies of a small MNIST-like set, a server that answers
    /// 503, one that stops in the middle of a file, and none at all; and a CIFAR-10 archive.
    @Suite(.serialized) struct FetchTests {
        let scratch = ScratchDirectory("cohort-fetch")
        static let names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                            "t10k-labels-idx1-ubyte.gz"]
        /// The four gzip-compressed IDX files of a 28x28 set: 600 training and 100 test images.
        static let files: [String: [UInt8]] = {
            let scratch = ScratchDirectory("cohort-fetch-set")
            let contents = [DataTests.idxImages(count: 600, rows: 28, columns: 28),
                            DataTests.idxLabels((0..<600).map { UInt8($0 % 10) }),
                            DataTests.idxImages(count: 100, rows: 28, columns: 28),
                            DataTests.idxLabels((0..<100).map { UInt8($0 % 10) })]
            var files: [String: [UInt8]] = [:]
            for (name, bytes) in zip(names, contents) {
                writeGzip(bytes, to: "\(scratch.path)/\(name)")
                files[name] = [UInt8](FileManager.default.contents(atPath: "\(scratch.path)/\(name)") ?? Data())
            }
            return files
        }()

        /// A running `http_server.py MODE DIR` and its address.
        final class Server {
            let process: BackgroundProcess
            let address: String
            init(_ mode: String, _ directory: String) throws {
                let script = repositoryRoot.appendingPathComponent("Tests/CohortTests/Fixtures/http_server.py").path
                process = try BackgroundProcess(["/usr/bin/python3", script, mode, directory])
                let process = self.process
                try waitFor("the server's port", timeout: 20) { process.stdout.hasPrefix("port ") && process.stdout.contains("\n") }
                let port = process.stdout.split(separator: "\n")[0].dropFirst("port ".count)
                address = "http://127.0.0.1:\(port)/"
            }
            deinit {
                kill(process.pid, SIGKILL)
                _ = process.wait(timeout: 10)
            }
        }

        /// A directory of the set's files, each passed through `change`.
        func copies(_ name: String, _ change: (inout [UInt8]) -> Void = { _ in }) throws -> String {
            let directory = "\(scratch.path)/\(name)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in Self.names {
                var bytes = try #require(Self.files[file])
                change(&bytes)
                try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/\(file)"))
            }
            return directory
        }

        /// `md5sum`'s lines for the files of `directory`: an independent check of the sums.
        func checksums(of directory: String) throws -> String {
            let result = try runProcess("/usr/bin/md5sum", Self.names.map { "\(directory)/\($0)" })
            #expect(result.status == 0)
            let path = "\(scratch.path)/sums-\(UUID().uuidString)"
            try result.stdout.replacingOccurrences(of: "\(directory)/", with: "").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func fetch(_ arguments: [String]) throws -> ProcessOutcome {
            try CohortBinary.run(["data", "fetch"] + arguments)
        }

        @Test func goodFilesAreVerifiedAndKept() throws {
            let good = try copies("good"), sums = try checksums(of: good)
            let server = try Server("files", good)
            let target = "\(scratch.path)/fetched-good"
            let result = try fetch(["mnist", "--to", target, "--mirror", server.address, "--checksums", sums])
            #expect(result.status == 0, "\(result.stderr)")
            for file in Self.names {
                #expect(FileManager.default.contents(atPath: "\(target)/\(file)") == FileManager.default.contents(atPath: "\(good)/\(file)"))
            }
            #expect(try IDX.load(images: "\(target)/t10k-images-idx3-ubyte.gz", labels: "\(target)/t10k-labels-idx1-ubyte.gz",
                                 name: "mnist").count == 100)
            let again = try fetch(["mnist", "--to", target, "--mirror", "http://127.0.0.1:1/", "--checksums", sums])
            #expect(again.status == 0 && again.stdout.components(separatedBy: "already there").count == 5, "\(again.stdout)")
        }

        @Test func truncatedAndDamagedFilesAreRefusedWithBothSums() throws {
            let good = try copies("reference"), sums = try checksums(of: good)
            let expected = try String(contentsOfFile: sums, encoding: .utf8).split(separator: "\n")
                .first { $0.hasSuffix(Self.names[0]) }.map { String($0.prefix(32)) }
            for (name, change) in [("truncated", { (b: inout [UInt8]) in b = Array(b.prefix(b.count / 2)) }),
                                   ("damaged", { (b: inout [UInt8]) in b[b.count / 2] ^= 0x10 })] {
                let served = try copies(name, change)
                let server = try Server("files", served)
                let target = "\(scratch.path)/fetched-\(name)"
                let result = try fetch(["mnist", "--to", target, "--mirror", server.address, "--checksums", sums])
                let got = MD5.hex([UInt8](FileManager.default.contents(atPath: "\(served)/\(Self.names[0])")!))
                #expect(result.status == 1, "\(name): \(result.stdout)")
                #expect(result.stderr.contains("\(Self.names[0]): no source gave a good copy"), "\(result.stderr)")
                #expect(result.stderr.contains("md5 \(got), expected \(try #require(expected))"), "\(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: "\(target)/\(Self.names[0])"))
            }
        }

        @Test func a503ThenAWorkingMirrorSucceeds() throws {
            let good = try copies("mirror"), sums = try checksums(of: good)
            let unavailable = try Server("503", good), working = try Server("files", good)
            let target = "\(scratch.path)/fetched-mirror"
            let result = try fetch(["mnist", "--to", target, "--mirror", unavailable.address, "--mirror", working.address,
                                    "--checksums", sums])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("\(unavailable.address)\(Self.names[0]): HTTP 503"), "\(result.stdout)")
            #expect(result.stdout.contains("from \(working.address)\(Self.names[0])"))
        }

        @Test func noServerIsAOneLineError() throws {
            let result = try fetch(["fashion-mnist", "--to", "\(scratch.path)/none", "--mirror", "http://127.0.0.1:1/"])
            #expect(result.status == 1)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("Error: train-images-idx3-ubyte.gz: no source gave a good copy")
                    && lines[0].contains("cannot download"), "\(result.stderr)")
        }

        /// A fetch killed in the middle of a file leaves no file that looks complete.
        @Test func aFetchKilledMidFileLeavesNothingComplete() throws {
            let good = try copies("slow"), sums = try checksums(of: good)
            let server = try Server("slow", good)
            let target = "\(scratch.path)/fetched-killed"
            let job = try BackgroundProcess([CohortBinary.path, "data", "fetch", "mnist", "--to", target, "--mirror", server.address,
                                             "--checksums", sums])
            try waitFor("half of the first file", timeout: 30) { server.process.stdout.contains("sent half") }
            kill(job.pid, SIGKILL)
            _ = job.wait(timeout: 10)
            let left = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
            #expect(!left.contains { Self.names.contains($0) }, "\(left)")
        }

        /// CIFAR-10's archive is checked, unpacked where the reader looks, and removed.
        @Test func theCIFARArchiveIsUnpacked() throws {
            let served = "\(scratch.path)/cifar-archive"
            try FileManager.default.createDirectory(atPath: "\(served)/cifar-10-batches-bin", withIntermediateDirectories: true)
            for name in CIFAR10.trainFiles + CIFAR10.testFiles {
                try Data(DataTests.cifarRecords([1, 2, 3])).write(to: URL(fileURLWithPath: "\(served)/cifar-10-batches-bin/\(name)"))
            }
            try Data("airplane\n".utf8).write(to: URL(fileURLWithPath: "\(served)/cifar-10-batches-bin/batches.meta.txt"))
            let pack = try runProcess("/bin/tar", ["-czf", "\(served)/cifar-10-binary.tar.gz", "-C", served, "cifar-10-batches-bin"])
            #expect(pack.status == 0, "\(pack.stderr)")
            let sum = MD5.hex([UInt8](FileManager.default.contents(atPath: "\(served)/cifar-10-binary.tar.gz")!))
            let sums = "\(scratch.path)/cifar-sums"
            try "\(sum)  cifar-10-binary.tar.gz\n".write(toFile: sums, atomically: true, encoding: .utf8)
            let server = try Server("files", served)
            let target = "\(scratch.path)/fetched-cifar"
            let result = try fetch(["cifar10", "--to", target, "--mirror", server.address, "--checksums", sums])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(try CIFAR10.loadSplits(directory: target).train.count == 15)
            #expect(!FileManager.default.fileExists(atPath: "\(target)/cifar-10-binary.tar.gz"))
        }
    }
}
