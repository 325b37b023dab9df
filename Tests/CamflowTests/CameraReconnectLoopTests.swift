import Camflow
import CamflowTesting
import Synchronization
import Testing

/// The reconnection policy both camera sources share, run in a pipeline
/// with scripted session ends instead of a camera.
@Suite struct CameraReconnectLoopTests {
    /// A camera node whose sessions end as `script` says, in order.
    private struct ScriptedCamera: Node {
        let script: [CameraSessionEnd]
        let record: Record

        final class Record: Sendable {
            let discontinuities = Mutex<[Bool]>([])
            let failure = Mutex<String?>(nil)
        }

        func run(_ context: NodeContext) async throws {
            let loop = CameraReconnectLoop(backoff: ReconnectBackoff(minimum: .milliseconds(1), maximum: .milliseconds(2), maxAttempts: 5),
                                           authRetryAfter: 3, authRetryInterval: .milliseconds(3))
            let next = Mutex(0)
            var sequence: UInt64 = 0
            do {
                try await loop.run(context, endpoint: "rtsp://camera/1") { discontinuity in
                    record.discontinuities.withLock { $0.append(discontinuity) }
                    let index = next.withLock { index in
                        defer { index += 1 }
                        return index
                    }
                    return index < script.count ? script[index] : .stopped
                } emit: { name, fields in
                    await context.emit(.event(Event(name, fields), stream: "cam", sequence: sequence))
                    sequence += 1
                }
            } catch let error as CameraGaveUp {
                record.failure.withLock { $0 = error.message }
            }
        }
    }

    @Test func refusedLogins_slowDown_mediaResetsTheBackoff_andTheAttemptsRunOut() async throws {
        let auth = CameraSessionEnd.authenticationFailed(status: 401, scheme: "RTSP")
        let lost = CameraSessionEnd.ended(reason: "the camera hung up", deliveredMedia: false)
        let script = [auth, auth, auth, auth, .ended(reason: "idle", deliveredMedia: true), lost, lost, lost, lost, lost, lost]
        let record = ScriptedCamera.Record()
        let type = NodeType(name: "scripted-camera", summary: "sessions as scripted", accepts: [], emits: .kinds([.event])) { _ in
            ScriptedCamera(script: script, record: record)
        }
        let run = try await TestHarness(nodeTypes: [type]).run([NodeSpec(id: "cam", type: "scripted-camera")], collect: ["cam"])
        let events = (run.packets["cam"] ?? []).compactMap(\.event)
        // Two refusals told as they come, the third told once with the slower pace, the fourth only at debug level.
        #expect(events.prefix(3).map(\.name) == ["auth-failed", "auth-failed", "auth-failed"])
        #expect(events[1]["retry-every"] == nil && events[2]["retry-every"] == .string("3ms"))
        #expect(events[0]["status"] == .int(401) && events[0]["url"] == .string("rtsp://camera/1"))
        #expect(events.dropFirst(3).map(\.name) == Array(repeating: "disconnected", count: 6))
        // Media reset the backoff: five more attempts after it, then the node gives up.
        #expect(record.discontinuities.withLock { $0 } == [false, false, false, false, false] + Array(repeating: true, count: 5))
        #expect(record.failure.withLock { $0 } == "gave up on camera rtsp://camera/1 after 5 failed attempts: the camera hung up")
    }
}
