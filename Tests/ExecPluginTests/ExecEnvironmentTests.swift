import Camflow
import CamflowTesting
import ExecPlugin
import FilesPlugin
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MP4Plugin
import Testing

/// What an `exec` child sees of camflow's environment: the shared minimal
/// one (``ChildEnvironment``) and what its declaration adds, no secrets.
@Suite struct ExecEnvironmentTests {
    @Test func minimal_passesOnOnlyTheSearchPathLocaleAndZone_plusWhatIsDeclared() {
        let parent = ["PATH": "/bin", "LANG": "C.UTF-8", "TZ": "UTC", "HOME": "/root",
                      "CAMERA_PASSWORD": "hunter2", "SHARED": "yes"]
        #expect(ChildEnvironment.minimal(from: parent) == ["PATH": "/bin", "LANG": "C.UTF-8", "TZ": "UTC"])
        let child = ChildEnvironment.minimal(declared: ["PATH": "/opt/bin", "MODE": "test"], inheriting: ["SHARED", "ABSENT"],
                                             from: parent)
        #expect(child == ["PATH": "/opt/bin", "LANG": "C.UTF-8", "TZ": "UTC", "MODE": "test", "SHARED": "yes"])
    }

    @Test func anExecChild_seesNoneOfCamflowsSecrets_norItsDescriptors() async throws {
        setenv("CAMFLOW_EXEC_TEST_PASSWORD", "hunter2", 1)
        setenv("CAMFLOW_EXEC_TEST_SHARED", "yes", 1)
        let dump = FileManager.default.temporaryDirectory.appendingPathComponent("camflow-exec-env-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dump) }
        // A socket opened without close-on-exec, as libraries do.
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(socket >= 3)
        defer { close(socket) }
        _ = try await TestHarness(plugins: [FilesPlugin.self, MP4Plugin.self, ExecPlugin.self]).run([
            NodeSpec(id: "cam", type: "file-replay",
                     options: ["path": .scalar(repositoryFile("Tests/Fixtures/h264-baseline.mp4").path)]),
            NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"]),
            // Reads everything, acknowledges nothing: room for the whole clip.
            NodeSpec(id: "child", type: "exec", inputs: ["parse"],
                     options: ["command": ["/bin/sh", "-c", .scalar("env > '\(dump)'; ls -l /proc/$$/fd/ > '\(dump).fds'; cat > /dev/null")],
                               "env": ["MODE=test"], "inherit-env": ["CAMFLOW_EXEC_TEST_SHARED"],
                               "max-unacked": "100000", "max-unacked-bytes": "1GiB"]),
        ], collect: ["child"])
        let environment = try String(contentsOfFile: dump, encoding: .utf8)
        #expect(!environment.contains("hunter2") && !environment.contains("PASSWORD"), "\(environment)")
        #expect(environment.contains("MODE=test\n") && environment.contains("CAMFLOW_EXEC_TEST_SHARED=yes\n"))
        let names = Set(environment.split(separator: "\n").compactMap { $0.split(separator: "=").first.map(String.init) })
        let descriptors = try String(contentsOfFile: dump + ".fds", encoding: .utf8)
        try? FileManager.default.removeItem(atPath: dump + ".fds")
        #expect(!descriptors.contains("socket:"), "the child holds camflow's socket \(socket):\n\(descriptors)")
        #expect(names.isSubset(of: Set(ChildEnvironment.passedOn + ["MODE", "CAMFLOW_EXEC_TEST_SHARED", "PWD", "SHLVL", "_", "OLDPWD"])),
                "\(names)")
    }
}
