import CamflowTesting
import Foundation
import Testing

/// Three hosts in network namespaces, the link between two cut and a broker
/// restarted: `scripts/multihost.py` (also `make multihost`) builds them,
/// measures, and lists what failed; this runs it in the suite.
@Suite struct MultiHostEndToEndTests {
    /// Why network namespaces cannot be made here, or nil when they can.
    static let unavailable: String? = {
        guard getuid() == 0 else { return "network namespaces need root" }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else { return "iproute2's ip is not installed" }
        let probe = "cfprobe\(getpid())"
        guard let made = try? runToolBlocking("/usr/sbin/ip", ["netns", "add", probe]), made.status == 0 else {
            return "cannot create a network namespace here"
        }
        _ = try? runToolBlocking("/usr/sbin/ip", ["netns", "del", probe])
        return nil
    }()

    @Test(.enabled(if: unavailable == nil, "skipped: \(unavailable ?? "")"), .timeLimit(.minutes(5)))
    func aCutLinkAndARestartedBroker_loseNoRecording_andSubscribersResumeWithinAGOP() async throws {
        let venvPython = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: venvPython), "no .venv: run `make test` (or `make venv`) first")
        let report = temporaryFile("multihost.json")
        let script = try CamflowProcess([repositoryRoot.appendingPathComponent("scripts/multihost.py").path,
                                         "--camflow", camflowBinary, "--python", venvPython, "--json", report],
                                        executable: "/usr/bin/python3")
        let status = try await script.waitForExit(timeout: .seconds(240))
        let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(text)\n\(script.stderr)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(script.stdout)")
        #expect((result["failures"] as? [String])?.isEmpty == true, "\(text)")
        let link = try #require(result["link"] as? [String: Any])
        #expect((link["resumeSeconds"] as? Double ?? 99) <= 2.0, "within one GOP of the link's return")
        #expect((link["lostMessages"] as? Int ?? 0) > 0, "the loss is seen in the sequence numbers")
        #expect(link["firstPictureKeyframe"] as? Bool == true)
        let recordings = try #require(result["recordings"] as? [String: Any])
        #expect((recordings["gaps"] as? [Any])?.isEmpty == true && (recordings["undecodable"] as? [Any])?.isEmpty == true)
    }
}
