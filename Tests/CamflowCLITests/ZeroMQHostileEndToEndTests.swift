import Camflow
import CamflowTesting
import Foundation
import Testing

@Suite struct ZeroMQHostileEndToEndTests {
    /// libzmq 4.3 aborts a process when a peer leaves a connection whose
    /// input libzmq paused at a full queue and a heartbeat or the peer's
    /// PING is then due. A subscriber whose pipeline is stuck must survive
    /// any number of fast publishers that come and go: what finds no room is
    /// dropped and counted, and the process stops cleanly after.
    @Test func floodingPublishersThatLeave_neverAbortASubscriberWithAStuckPipeline() async throws {
        let port = try #require(Loopback.freePort())
        // The child never reads its input: the pipeline behind the subscriber is stuck at once.
        let pipeline = try temporaryPipeline("""
            nodes:
              sub: { type: zmq-subscribe, endpoint: ["tcp://127.0.0.1:\(port)"], bind: true, rcvhwm: 100,
                     heartbeat: 50ms, heartbeat-timeout: 150ms }
              stuck: { type: exec, inputs: [sub], command: [sleep, "3600"], max-unacked: 1, stop-timeout: 200ms }
            """)
        let subscriber = try CamflowProcess(["run", pipeline, "--shutdown-timeout", "1s"])
        let flood = repositoryRoot.appendingPathComponent("Tests/Peers/zmq_flood.py").path
        // Two publishers in turn (libzmq connects each as soon as the subscriber is bound):
        // each floods, then closes with its PINGs still queued.
        for _ in 0..<2 {
            let publisher = try CamflowProcess([flood, "tcp://127.0.0.1:\(port)", "1.5"], executable: "/usr/bin/python3")
            #expect(try await publisher.waitForExit(timeout: .seconds(30)) == 0, "\(publisher.stderr)")
        }
        // Both floods came and went: a process still alive stops cleanly and says what it dropped.
        #expect(subscriber.process.isRunning, "\(subscriber.stderr)")
        subscriber.process.interrupt()
        let status = try await subscriber.waitForExit(timeout: .seconds(30))
        #expect(subscriber.process.terminationReason == .exit && status == 0, "\(subscriber.stderr)")
        #expect(subscriber.stderr.contains("the pipeline is slower than the publishers: dropped"), "\(subscriber.stderr)")
        #expect((summaryRow(subscriber.stderr, node: "sub")?.dropped ?? 0) > 0, "\(subscriber.stderr)")
        #expect(!subscriber.stderr.contains("Assertion failed"), "\(subscriber.stderr)")
    }
}
