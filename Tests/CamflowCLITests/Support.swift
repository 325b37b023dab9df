import CamflowTesting
import Camflow
import Foundation
import Testing

/// The repository root, for the files of this module that do not import CamflowTesting.
let repositoryRoot = CamflowTesting.repositoryRoot

/// The `camflow` binary `make test` built (CamflowTesting finds it).
let camflowBinary = camflowTestBinary

/// A running `camflow` process with its output captured in files.
typealias CamflowProcess = TestProcess

/// Runs camflow to completion.
func camflow(_ arguments: String..., environment: [String: String] = [:]) async throws
    -> (status: Int32, stdout: String, stderr: String)
{
    let process = try CamflowProcess(arguments, environment: environment)
    let status = try await process.waitForExit()
    return (status, process.stdout, process.stderr)
}

/// Writes `text` to a temporary `.yaml` file.
func temporaryPipeline(_ text: String, name: String = "pipeline.yaml") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-yaml-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// The counters of one node row in the summary table printed at exit.
func summaryRow(_ stderr: String, node: String) -> (packetsIn: Int, packetsOut: Int, dropped: Int)? {
    for line in stderr.split(separator: "\n") {
        let cells = line.split(separator: " ", omittingEmptySubsequences: true)
        guard cells.count >= 9, cells[0] == node else { continue }
        // node type in out bytes-in(2 cells) bytes-out(2 cells) pkt/s dropped restarts
        guard let input = Int(cells[2]), let output = Int(cells[3]), let dropped = Int(cells[cells.count - 2]) else {
            continue
        }
        return (input, output, dropped)
    }
    return nil
}
