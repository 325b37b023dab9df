import Camflow
import Foundation
import NIOCore
import Synchronization

/// Every stream's ``HLSTimeline``, shared between the packet loop (which
/// never waits) and the server's requests, some of which block until a
/// part appears (`_HLS_msn`/`_HLS_part`, preload hints).
final class HLSStore: Sendable {
    private struct Waiter {
        let stream: String
        let ready: @Sendable (HLSTimeline) -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var streams: StreamTable<HLSTimeline>
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
        var finished = false
    }

    let configuration: HLSTimeline.Configuration
    /// Requests blocked at once, all streams together; more are answered 503.
    let maxWaiters: Int
    /// Requests blocked at once on one stream.
    let maxWaitersPerStream: Int
    private let state: Mutex<State>
    /// Times blocked requests out and dates segments.
    private let clock: any PipelineClock

    init(configuration: HLSTimeline.Configuration, maxStreams: Int, maxWaiters: Int = 1024, maxWaitersPerStream: Int = 256,
         clock: any PipelineClock = SystemClock()) {
        self.clock = clock
        self.configuration = configuration
        self.maxWaiters = maxWaiters
        self.maxWaitersPerStream = maxWaitersPerStream
        self.state = Mutex(State(streams: StreamTable(capacity: maxStreams)))
    }

    /// Takes an init segment or fragment. Returns the name of a stream
    /// dropped to make room for this one, if any.
    /// - Parameter wallClock: seconds since 1970; the clock's wall time when nil.
    @discardableResult
    func publish(_ packet: Packet, wallClock: Double? = nil) -> String? {
        guard packet.kind == .initSegment || packet.kind == .fragment else { return nil }
        let wallClock = wallClock ?? clock.wallNow
        var ready: [CheckedContinuation<Bool, Never>] = []
        defer { for continuation in ready { continuation.resume(returning: true) } }
        return state.withLock { state -> String? in
            var timeline = state.streams.take(packet.stream) ?? {
                var fresh = configuration
                // Numbers past any an earlier timeline of this name used: one segment lasts at least a second.
                fresh.firstSequence = Int(wallClock) + 1
                return HLSTimeline(configuration: fresh)
            }()
            var changed = false
            if packet.kind == .initSegment {
                changed = (try? timeline.take(initSegment: packet.payload)) != nil
            } else {
                changed = timeline.take(fragment: packet.payload, discontinuity: packet.discontinuity, wallClock: wallClock)
            }
            let evicted = state.streams.put(timeline, for: packet.stream)?.stream
            if changed {
                for (id, waiter) in state.waiters where waiter.stream == packet.stream && waiter.ready(timeline) {
                    ready.append(waiter.continuation)
                    state.waiters[id] = nil
                }
            }
            return evicted
        }
    }

    /// Reads a stream's timeline.
    func read<T: Sendable>(_ stream: String, _ body: (HLSTimeline) -> T?) -> T? {
        state.withLock { state in state.streams[stream].flatMap(body) }
    }

    /// The names of the streams with a timeline.
    var streams: [String] { state.withLock { $0.streams.streams } }

    /// Waits until `ready` holds for `stream`'s timeline, at most `timeout`.
    /// Returns false on timeout, when the stream has ended, or when too
    /// many requests wait already.
    func wait(for stream: String, timeout: Duration, until ready: @escaping @Sendable (HLSTimeline) -> Bool) async -> Bool {
        let timeout = min(timeout, Self.longestWait)
        let id = Mutex<Int?>(nil)
        return await withTaskCancellationHandler {
            var expiry: Task<Void, Never>?
            let result = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let registered: Int? = state.withLock { state in
                    if let timeline = state.streams[stream], ready(timeline) { return nil }
                    let waitingHere = state.waiters.values.count { $0.stream == stream }
                    if state.finished || state.waiters.count >= maxWaiters || waitingHere >= maxWaitersPerStream || Task.isCancelled {
                        return -1
                    }
                    state.nextWaiter += 1
                    state.waiters[state.nextWaiter] = Waiter(stream: stream, ready: ready, continuation: continuation)
                    return state.nextWaiter
                }
                switch registered {
                case nil: continuation.resume(returning: true)
                case -1: continuation.resume(returning: false)
                case let waiter?:
                    id.withLock { $0 = waiter }
                    // Started once the waiter is registered, so it cannot expire before.
                    let clock = self.clock
                    expiry = Task { [weak self] in
                        guard (try? await clock.sleep(for: timeout)) != nil else { return }
                        self?.expire(waiter)
                    }
                }
            }
            expiry?.cancel()
            return result
        } onCancel: {
            // A client that hung up leaves no waiter behind.
            if let waiter = id.withLock({ $0 }) { expire(waiter) }
        }
    }

    /// However long the target duration, a blocked request waits no longer than this.
    static let longestWait: Duration = .seconds(30)

    /// Requests blocked on `stream` now.
    func waiting(_ stream: String) -> Int {
        state.withLock { state in state.waiters.values.count { $0.stream == stream } }
    }

    /// Requests blocked now, all streams together.
    var waitingTotal: Int { state.withLock { $0.waiters.count } }

    /// Ends every wait: the stream is over.
    func finish() {
        let waiters = state.withLock { state in
            state.finished = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.continuation.resume(returning: false) }
    }

    private func expire(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume(returning: false)
    }
}
