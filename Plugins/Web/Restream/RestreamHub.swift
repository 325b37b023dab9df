public import Camflow
import MediaCache
import NIOCore
import Synchronization

/// The web sink's shared state: each stream's cache and each viewer's queue,
/// under one lock. The pipeline side calls ``publish(_:)`` and never waits;
/// each viewer's connection takes its items with ``next(_:)``.
public final class RestreamHub: Sendable {
    /// One viewer's counters and queue. A reference, touched only under the
    /// hub's lock: a packet updates every viewer's queue in place, without
    /// copying the table of viewers or their queues.
    final class Viewer {
        let id: Int
        /// The stream asked for in the path; nil for the default stream.
        let requested: String?
        let remote: String
        let connectedAt: ContinuousClock.Instant
        var stream: String?
        var queue: ViewerQueue
        /// Between `livestream` and `stop`.
        var playing = false
        var sentFragments: UInt64 = 0
        var sentBytes: UInt64 = 0
        var waiter: CheckedContinuation<ViewerItem?, Never>?
        var closed = false

        init(id: Int, requested: String?, remote: String, stream: String?, queueLimit: Int, connectedAt: ContinuousClock.Instant) {
            self.id = id
            self.requested = requested
            self.remote = remote
            self.connectedAt = connectedAt
            self.stream = stream
            self.queue = ViewerQueue(limit: queueLimit)
        }

        /// Hands the next item to a waiting writer, if both are there: to be
        /// resumed once the hub's lock is released.
        func wake(_ resumptions: inout Resumptions) {
            guard let waiter, let item = queue.pop() else { return }
            self.waiter = nil
            resumptions.add(waiter, item)
        }

        /// Ends the connection of a viewer that does not read what it asked for.
        func cutOff(_ resumptions: inout Resumptions) {
            closed = true
            release(&resumptions)
        }

        /// Ends a waiting writer's wait with nil: its connection ends.
        func release(_ resumptions: inout Resumptions) {
            guard let waiter else { return }
            self.waiter = nil
            resumptions.add(waiter, nil)
        }
    }

    /// Writers to resume, collected under the lock and resumed after it:
    /// a resumed task never runs into a lock its resumer still holds.
    struct Resumptions {
        private var waiters: [(CheckedContinuation<ViewerItem?, Never>, ViewerItem?)] = []

        mutating func add(_ waiter: CheckedContinuation<ViewerItem?, Never>, _ item: ViewerItem?) {
            waiters.append((waiter, item))
        }

        func resumeAll() {
            for (waiter, item) in waiters { waiter.resume(returning: item) }
        }
    }

    struct State {
        var streams: StreamTable<StreamCache>
        /// Stream names in order of first appearance; the first is the default.
        var order: [String] = []
        var viewers: [Int: Viewer] = [:]
        var nextViewer = 1
        var finished = false
        /// Counters of viewers that left, so totals never go down.
        var departedSent: [String: UInt64] = [:]
        var departedDropped: [String: UInt64] = [:]
    }

    /// Bytes a viewer may have queued before it loses GOPs.
    public let viewerQueueLimit: Int
    /// Bytes of the current GOP kept per stream for joiners.
    public let gopCacheLimit: Int
    private let state: Mutex<State>
    /// Fires when the input has ended and the last viewer has left.
    private let viewersLeft = OneShotSignal()

    /// What viewers' connection times are read from.
    private let clock: any PipelineClock
    /// Where each live fragment's time from arrival to a viewer's socket goes; nil without a node.
    private let delivery: DeliveryTimer?

    /// - Parameter node: the web node's id, naming its `camflow_web_delivery_seconds{way="mse"}`; nil records none.
    public init(viewerQueueLimit: Int, gopCacheLimit: Int, maxStreams: Int = 64, node: String? = nil,
                clock: any PipelineClock = SystemClock()) {
        self.clock = clock
        self.delivery = node.map { DeliveryTimer(node: $0, way: "mse") }
        self.viewerQueueLimit = viewerQueueLimit
        self.gopCacheLimit = gopCacheLimit
        self.state = Mutex(State(streams: StreamTable(capacity: maxStreams)))
    }

    // MARK: Pipeline side

    /// Takes an init segment or fragment; other kinds are ignored. Returns
    /// the name of a stream dropped to make room for a new one (at most
    /// `maxStreams` are cached; the one idle longest goes), if any.
    @discardableResult
    public func publish(_ packet: Packet) -> String? {
        guard packet.kind == .initSegment || packet.kind == .fragment else { return nil }
        var resumptions = Resumptions()
        defer { resumptions.resumeAll() }
        return state.withLock { state -> String? in
            var cache = state.streams.take(packet.stream) ?? StreamCache(name: packet.stream, limit: gopCacheLimit)
            let changed = packet.kind == .initSegment ? cache.take(initSegment: packet) : true
            let starts = packet.kind == .fragment ? cache.take(fragment: packet) : false
            let evicted = state.streams.put(cache, for: packet.stream)?.stream
            if let evicted {
                state.order.removeAll { $0 == evicted }
                state.departedSent[evicted] = nil
                state.departedDropped[evicted] = nil
            }
            if !state.order.contains(packet.stream) {
                state.order.append(packet.stream)
                bindWaitingViewers(&state)
            }
            if packet.kind == .initSegment {
                guard changed else { return evicted }
                for viewer in state.viewers.values where viewer.stream == packet.stream && viewer.playing {
                    guard viewer.queue.pushControl(.initSegment(packet.payload)) else {
                        viewer.cutOff(&resumptions)
                        continue
                    }
                    viewer.queue.startAtNextGOP()
                    viewer.wake(&resumptions)
                }
            } else {
                for viewer in state.viewers.values where viewer.stream == packet.stream && viewer.playing {
                    if viewer.queue.push(fragment: packet.payload, startsGOP: starts, receivedAt: packet.receivedAt) {
                        viewer.wake(&resumptions)
                    }
                }
            }
            return evicted
        }
    }

    /// The input ended: viewers get what is queued, then their connections end.
    public func finish() {
        var resumptions = Resumptions()
        let nobodyLeft = state.withLock { state -> Bool in
            state.finished = true
            // A writer waiting on an empty queue learns that nothing more comes.
            for viewer in state.viewers.values where viewer.queue.items.isEmpty { viewer.release(&resumptions) }
            return state.viewers.isEmpty
        }
        resumptions.resumeAll()
        if nobodyLeft { viewersLeft.fire() }
    }

    /// Ends every viewer's connection now, queued or not.
    public func closeAll() {
        var resumptions = Resumptions()
        state.withLock { state in
            for viewer in state.viewers.values {
                viewer.closed = true
                viewer.release(&resumptions)
            }
        }
        resumptions.resumeAll()
    }

    /// Returns when every viewer has left (after ``finish()``).
    public func waitUntilViewersLeft() async {
        await viewersLeft.wait()
    }

    // MARK: Viewer side

    /// A new connection; `stream` nil asks for the default (first) stream.
    public func attach(stream: String?, remote: String) -> Int {
        let now = clock.now
        return state.withLock { state in
            let id = state.nextViewer
            state.nextViewer += 1
            state.viewers[id] = Viewer(id: id, requested: stream, remote: remote, stream: stream ?? state.order.first,
                                       queueLimit: viewerQueueLimit, connectedAt: now)
            return id
        }
    }

    /// The connection closed.
    public func detach(_ id: Int) {
        var resumptions = Resumptions()
        let lastAfterEnd = state.withLock { state -> Bool in
            guard let viewer = state.viewers.removeValue(forKey: id) else { return false }
            viewer.release(&resumptions)
            let stream = viewer.stream ?? ""
            // Kept for streams the hub holds only: a viewer names its stream
            // in the path, and names that are not streams must not pile up.
            if state.streams[stream] != nil {
                state.departedSent[stream, default: 0] &+= viewer.sentFragments
                state.departedDropped[stream, default: 0] &+= viewer.queue.droppedFragments
            }
            return state.finished && state.viewers.isEmpty
        }
        resumptions.resumeAll()
        if lastAfterEnd { viewersLeft.fire() }
    }

    /// `livestream`: the init segment, then fragments from the latest GOP
    /// start. Returns an error message for the client, or nil.
    public func start(_ id: Int) -> String? {
        var resumptions = Resumptions()
        defer { resumptions.resumeAll() }
        return state.withLock { state -> String? in
            guard let viewer = state.viewers[id] else { return nil }
            if let requested = viewer.requested, !state.order.isEmpty, state.streams[requested] == nil {
                return "error: no stream '\(UntrustedText.printable(requested, limit: 100))'; streams: \(state.order.joined(separator: ", "))"
            }
            viewer.playing = true
            viewer.queue.clearFragments()
            if let name = viewer.stream, let cache = state.streams[name], let initSegment = cache.initSegment {
                guard viewer.queue.pushControl(.initSegment(initSegment)) else {
                    viewer.cutOff(&resumptions)
                    return nil
                }
                if cache.gop.isEmpty {
                    viewer.queue.startAtNextGOP()
                } else {
                    for (index, fragment) in cache.gop.enumerated() {
                        viewer.queue.push(fragment: fragment, startsGOP: index == 0)
                    }
                }
            } else {
                viewer.queue.startAtNextGOP()
            }
            viewer.wake(&resumptions)
            return nil
        }
    }

    /// `stop`: no more fragments until the next `livestream`.
    public func stop(_ id: Int) {
        state.withLock { state in
            guard let viewer = state.viewers[id] else { return }
            viewer.playing = false
            viewer.queue.clearFragments()
        }
    }

    /// Queues a text message for the client (replies, errors).
    public func send(text: String, to id: Int) {
        var resumptions = Resumptions()
        state.withLock { state in
            guard let viewer = state.viewers[id] else { return }
            guard viewer.queue.pushControl(.text(text)) else { return viewer.cutOff(&resumptions) }
            viewer.wake(&resumptions)
        }
        resumptions.resumeAll()
    }

    /// The next item for a viewer; nil when its connection should end
    /// (closed, or the input ended and its queue is empty). Cancellable.
    public func next(_ id: Int) async -> ViewerItem? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<ViewerItem?, Never>) in
                let cancelled = Task.isCancelled
                // nil: parked; else the answer, given once the lock is released.
                let answer = state.withLock { state -> ViewerItem?? in
                    guard let viewer = state.viewers[id], !viewer.closed, !cancelled else { return .some(nil) }
                    if let item = viewer.queue.pop() { return .some(item) }
                    if state.finished { return .some(nil) }
                    viewer.waiter = continuation
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            var resumptions = Resumptions()
            state.withLock { state in
                guard let viewer = state.viewers[id] else { return }
                viewer.closed = true
                viewer.release(&resumptions)
            }
            resumptions.resumeAll()
        }
    }

    /// Records a live fragment's time from its arrival (`receivedAt`) to now,
    /// when its bytes went to a viewer's socket.
    func delivered(since receivedAt: UInt64) {
        delivery?.record(since: receivedAt)
    }

    /// Counts an item as sent (after the socket took it).
    public func sent(_ item: ViewerItem, to id: Int) {
        guard case .fragment(let buffer, _, _) = item else { return }
        state.withLock { state in
            guard let viewer = state.viewers[id] else { return }
            viewer.sentFragments &+= 1
            viewer.sentBytes &+= UInt64(buffer.readableBytes)
        }
    }

    // MARK: Status

    /// Streams and viewers now.
    public func snapshot() -> RestreamSnapshot {
        let now = clock.now
        return state.withLock { state in
            RestreamSnapshot(
                streams: state.order.compactMap { name in
                    guard let cache = state.streams[name] else { return nil }
                    let viewers = state.viewers.values.filter { $0.stream == name }
                    return .init(name: name, codecs: cache.codecs, width: cache.width, height: cache.height,
                                 fragments: cache.fragments, bytes: cache.bytes, gops: cache.gops,
                                 mediaSeconds: cache.mediaSeconds, viewers: viewers.count,
                                 sentFragments: viewers.reduce(state.departedSent[name] ?? 0) { $0 &+ $1.sentFragments },
                                 droppedFragments: viewers.reduce(state.departedDropped[name] ?? 0) { $0 &+ $1.queue.droppedFragments })
                },
                viewers: state.viewers.values.sorted { $0.id < $1.id }.map { viewer in
                    .init(id: viewer.id, stream: viewer.stream, remote: viewer.remote, playing: viewer.playing,
                          sentFragments: viewer.sentFragments, sentBytes: viewer.sentBytes,
                          droppedFragments: viewer.queue.droppedFragments, droppedGOPs: viewer.queue.droppedGOPs,
                          queuedBytes: viewer.queue.bytes,
                          connectedSeconds: (now - viewer.connectedAt).seconds)
                })
        }
    }

    // MARK: Private

    /// Viewers of the default stream that came before any stream did.
    private func bindWaitingViewers(_ state: inout State) {
        guard let first = state.order.first else { return }
        for viewer in state.viewers.values where viewer.stream == nil {
            viewer.stream = first
        }
    }
}

/// Streams and viewers of a web sink at one moment.
public struct RestreamSnapshot: Sendable, Codable {
    public struct Stream: Sendable, Codable {
        public let name: String
        public let codecs: String?
        public let width: Int?
        public let height: Int?
        public let fragments: UInt64
        public let bytes: UInt64
        public let gops: UInt64
        public let mediaSeconds: Double
        public let viewers: Int
        public let sentFragments: UInt64
        public let droppedFragments: UInt64
    }

    public struct Viewer: Sendable, Codable {
        public let id: Int
        public let stream: String?
        public let remote: String
        public let playing: Bool
        public let sentFragments: UInt64
        public let sentBytes: UInt64
        public let droppedFragments: UInt64
        public let droppedGOPs: UInt64
        public let queuedBytes: Int
        public let connectedSeconds: Double
    }

    public let streams: [Stream]
    public let viewers: [Viewer]
}
