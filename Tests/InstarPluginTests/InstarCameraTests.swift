import InstarSimulator
import CamflowTesting
import Camflow
import Foundation
@testable import InstarPlugin
import NIOCore
import Testing

/// The camera source against the simulator over real sockets on loopback.
@Suite struct InstarCameraTests {
    @Test func authenticatedStream_deliversParsableFragments() async throws {
        let run = try await withSimulator(simulatorConfiguration()) { urls in
            try await harness.run([
                camera(urls[0], ["channel": "12"]),
                NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"]),
            ], collect: ["cam", "parse"], stopWhen: { ($0["parse"] ?? []).filter { $0.kind == .fragment }.count >= 4 })
        }
        let parsed = run.packets["parse"] ?? []
        #expect(parsed.filter { $0.kind == .initSegment }.count == 1)
        #expect(parsed.filter { $0.kind == .fragment }.count >= 4)
        #expect(events(parsed, named: "parse-error").isEmpty)
        #expect(events(run.packets["cam"] ?? [], named: "connected").count == 1)
        let dts = parsed.filter { $0.kind == .fragment }.compactMap { $0.media?.dts }
        #expect(dts == dts.sorted() && Set(dts).count == dts.count, "timestamps continue across loops: \(dts)")
    }

    @Test func stop_sendsTheStopMessageAndClosesCleanly() async throws {
        let simulator = CameraSimulator(configuration: simulatorConfiguration(), logger: .init(label: "sim"))
        let (urls, continuation) = AsyncStream<[String]>.makeStream()
        let serving = Task { try await simulator.run { continuation.yield($0) } }
        defer { serving.cancel() }
        var iterator = urls.makeAsyncIterator()
        let url = try #require(await iterator.next()?.first)
        _ = try await harness.run([camera(url, ["channel": "13", "keep-alive-interval": "1h"])], collect: ["cam"],
                                  stopWhen: { ($0["cam"] ?? []).contains { $0.kind == .bytes } })
        try await waitUntil("the camera hears 'stop'") { simulator.receivedCommands["stop"] == 1 }
        #expect(simulator.receivedCommands["livestream/13"] == 1)
    }

    @Test func wrongPassword_isAuthFailed_andRetriedWithBackoff() async throws {
        let run = try await withSimulator(simulatorConfiguration()) { urls in
            try await harness.run([camera(urls[0], ["password": "wrong"])], collect: ["cam"],
                                  stopWhen: { events($0["cam"] ?? [], named: "auth-failed").count >= 3 })
        }
        let failures = events(run.packets["cam"] ?? [], named: "auth-failed")
        #expect(failures.count >= 3)
        #expect(failures.allSatisfy { $0["status"] == .int(401) })
        let text = (run.packets["cam"] ?? []).compactMap(\.event).map { "\($0)" }.joined()
        #expect(!text.contains("wrong"), "the password never appears in events")
    }

    @Test func wrongPassword_withLimitedAttempts_failsTheNodeClearly() async throws {
        do {
            _ = try await withSimulator(simulatorConfiguration()) { urls in
                try await harness.run([camera(urls[0], ["password": "wrong", "reconnect-attempts": "1"])], collect: ["cam"])
            }
            Issue.record("the run should fail")
        } catch let failure as PipelineFailure {
            #expect(failure.description.contains("gave up on camera ws://127.0.0.1:"))
            #expect(failure.description.contains("refused the credentials (HTTP 401)"))
            #expect(!failure.description.contains("wrong"))
        }
    }

    @Test(arguments: [11, 12, 13])
    func everyChannel_streams(_ channel: Int) async throws {
        let run = try await withSimulator(simulatorConfiguration()) { urls in
            try await harness.run([camera(urls[0], ["channel": .scalar("\(channel)")])], collect: ["cam"],
                                  stopWhen: { ($0["cam"] ?? []).filter { $0.kind == .bytes }.count >= 2 })
        }
        #expect((run.packets["cam"] ?? []).filter { $0.kind == .bytes }.count >= 2)
    }

    @Test func unknownCommand_isAServerErrorEvent() async throws {
        let run = try await withSimulator(simulatorConfiguration()) { urls in
            try await harness.run([camera(urls[0], ["start-message": "livestream/14"])], collect: ["cam"],
                                  stopWhen: { !events($0["cam"] ?? [], named: "server-error").isEmpty })
        }
        let errors = events(run.packets["cam"] ?? [], named: "server-error")
        #expect(errors.first?["text"] == .string("error: no channel 14; use 11, 12 or 13"))
    }

    /// The camera and the simulator on one manual clock: 6 s of it, more than
    /// twice the simulator's idle limit, moved 100 ms at a time, each step
    /// waiting until the simulator has heard that step's keep-alive.
    @Test func keepAlive_keepsTheConnectionPastTheCameraIdleLimit() async throws {
        let clock = ManualClock()
        let configuration = simulatorConfiguration {
            $0.clientIdleTimeout = .milliseconds(2500)
            $0.clock = clock
        }
        try await withSimulator(configuration) { simulator, urls in
            let run = try ClockedRun([camera(urls[0], ["keep-alive": "0", "keep-alive-interval": "100ms"])],
                                     collect: "cam", clock: clock)
            try await waitUntil("the init segment arrives") { run.packets.contains { $0.kind == .bytes } }
            // The simulator's idle watch and media pacing, and the camera's watchdog.
            try await clock.waitForSleepers(3)
            for step in 1...60 {
                await clock.advance(by: .milliseconds(100))
                try await waitUntil("keep-alive \(step) is heard") {
                    simulator.receivedCommands["keep-alive", default: 0] >= step
                }
                try await clock.waitForSleepers(3)
            }
            #expect(run.events(named: "disconnected").isEmpty)
            #expect(run.events(named: "connected").count == 1)
            #expect(run.packets.filter { $0.kind == .bytes }.count >= 30, "a minute of media at 10x speed flowed")
            try await run.stop()
        }
    }

    /// Without keep-alives the simulator closes the client once its clock
    /// passes the camera's 60 s idle limit, and not before.
    @Test func withoutKeepAlive_theCameraClosesAnIdleClient() async throws {
        let clock = ManualClock()
        let configuration = simulatorConfiguration {
            $0.clientIdleTimeout = .seconds(60)
            $0.stallAfter = .zero
            $0.clock = clock
        }
        try await withSimulator(configuration) { urls in
            let run = try ClockedRun([camera(urls[0], ["keep-alive": "0", "keep-alive-interval": "1h", "idle-timeout": "1h"])],
                                     collect: "cam", clock: clock)
            try await waitUntil("the init segment arrives") { run.packets.contains { $0.kind == .bytes } }
            // The simulator's idle watch and the camera's watchdog (a stalled stream waits on no clock).
            try await clock.waitForSleepers(2)
            await clock.advance(by: .milliseconds(59_900))
            #expect(run.events(named: "disconnected").isEmpty, "not closed before the limit")
            await clock.advance(by: .milliseconds(200))
            try await waitUntil("the simulator closes the idle client") {
                !run.events(named: "disconnected").isEmpty
            }
            try await run.stop()
        }
    }

    @Test func dropEvery_reconnects_andDeliversEachFragmentOnceInOrder() async throws {
        let configuration = simulatorConfiguration { $0.dropEvery = .milliseconds(700) }
        let run = try await withSimulator(configuration) { urls in
            try await harness.run([
                camera(urls[0]),
                NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"]),
            ], collect: ["cam", "parse"], stopWhen: { events($0["cam"] ?? [], named: "connected").count >= 3 && ($0["parse"] ?? []).filter { $0.kind == .fragment }.count >= 6 })
        }
        let parsed = run.packets["parse"] ?? []
        #expect(events(parsed, named: "parse-error").isEmpty)
        let fragments = parsed.filter { $0.kind == .fragment }
        let dts = fragments.compactMap { $0.media?.dts }
        #expect(dts == dts.sorted(), "in order: \(dts)")
        #expect(Set(dts).count == dts.count, "exactly once: \(dts)")
        #expect(events(run.packets["cam"] ?? [], named: "disconnected").count >= 2)
        #expect(parsed.contains { $0.kind == .initSegment && $0.discontinuity }, "the stream after a reconnect is flagged")
    }

    /// A camera that sends its init segment and then nothing: idle once the
    /// pipeline's clock passes the idle timeout, however little real time went
    /// by, and reconnected when the clock passes the backoff, not before.
    @Test func silentCamera_isIdleWhenTheClockPassesTheTimeout_andReconnectsAfterTheBackoff() async throws {
        let configuration = simulatorConfiguration { $0.stallAfter = .zero }
        try await withSimulator(configuration) { urls in
            let run = try ClockedRun([camera(urls[0], ["idle-timeout": "60s", "keep-alive-interval": "1h",
                                                       "reconnect-min": "2s", "reconnect-max": "2s"])],
                                     collect: "cam", clock: ManualClock())
            let clock = run.clock
            // A camera that waited on real time has no sleeper on this clock, and fails here.
            try await waitUntil("the init segment arrives") { run.packets.contains { $0.kind == .bytes } }
            try await clock.waitForSleepers(1)

            await clock.advance(by: .milliseconds(59_900))
            #expect(clock.sleepers == 1 && run.events(named: "disconnected").isEmpty, "not idle before the timeout")
            await clock.advance(by: .milliseconds(200))
            try await waitUntil("the idle session ends") { !run.events(named: "disconnected").isEmpty }
            #expect(run.events(named: "disconnected").first?["reason"] == .string("no media for 1m0s (idle timeout)"))

            // The backoff: 2 s less up to half for jitter, on the same clock.
            try await clock.waitForSleepers(1)
            await clock.advance(by: .milliseconds(900))
            #expect(clock.sleepers == 1 && run.events(named: "connected").count == 1, "no reconnect before the backoff")
            await clock.advance(by: .milliseconds(1200))
            try await waitUntil("media after the reconnect") {
                run.events(named: "connected").count == 2 && run.packets.last?.kind == .bytes
            }
            #expect(run.packets.last?.discontinuity == true, "the stream after a reconnect is flagged")
            try await run.stop()
        }
    }

    @Test func garbage_isReported_andTheStreamGoesOn() async throws {
        let configuration = simulatorConfiguration { $0.garbageEvery = .milliseconds(250) }
        let run = try await withSimulator(configuration) { urls in
            try await harness.run([
                camera(urls[0]),
                NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"]),
            ], collect: ["parse"], stopWhen: {
                let packets = $0["parse"] ?? []
                return events(packets, named: "parse-error").count >= 2 && packets.filter { $0.kind == .fragment }.count >= 4
            })
        }
        let parsed = run.packets["parse"] ?? []
        #expect(events(parsed, named: "parse-error").allSatisfy { $0["code"] == .string("invalid-box-header") })
        #expect(parsed.filter { $0.kind == .fragment }.count >= 4)
    }

    @Test(arguments: [CameraSimulatorConfiguration.Chunking.box, .random])
    func chunking_doesNotChangeWhatIsParsed(_ chunking: CameraSimulatorConfiguration.Chunking) async throws {
        let configuration = simulatorConfiguration { $0.chunking = chunking }
        let run = try await withSimulator(configuration) { urls in
            try await harness.run([
                camera(urls[0]),
                NodeSpec(id: "parse", type: "mp4-parse", inputs: ["cam"], options: ["frames": "true"]),
            ], collect: ["parse"], stopWhen: { ($0["parse"] ?? []).filter { $0.kind == .fragment }.count >= 3 })
        }
        let parsed = run.packets["parse"] ?? []
        #expect(events(parsed, named: "parse-error").isEmpty)
        #expect(parsed.filter { $0.kind == .frame && $0.media?.track == 1 }.count >= 150)
    }

    @Test func reconnectBackoff_doublesWithJitter_andCanGiveUp() {
        var backoff = ReconnectBackoff(minimum: .seconds(1), maximum: .seconds(5), maxAttempts: 4)
        #expect(backoff.next(random: 1) == .seconds(1))
        #expect(backoff.next(random: 1) == .seconds(2))
        #expect(backoff.next(random: 0) == .seconds(2), "jitter takes off up to half")
        #expect(backoff.next(random: 1) == .seconds(5))
        #expect(backoff.next(random: 1) == nil)
        backoff.reset()
        #expect(backoff.next(random: 1) == .seconds(1))
    }
}
