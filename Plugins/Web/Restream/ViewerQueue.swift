public import DequeModule
public import NIOCore

/// What a viewer's connection sends next: text of the camera protocol, an
/// init segment, or a fragment.
public enum ViewerItem: Sendable, Equatable {
    case text(String)
    case initSegment(ByteBuffer)
    /// A fragment; `startsGOP` when its video begins with a keyframe, so a
    /// decoder can start there. `receivedAt` is when its bytes arrived at
    /// camflow (`Packet.receivedAt`), 0 for one sent from the GOP cache to a
    /// joiner: only live fragments count in the delivery time.
    case fragment(ByteBuffer, startsGOP: Bool, receivedAt: UInt64 = 0)

    var bytes: Int {
        switch self {
        case .text(let text): text.utf8.count
        case .initSegment(let buffer), .fragment(let buffer, _, _): buffer.readableBytes
        }
    }
}

/// One viewer's outgoing queue, bounded in bytes. A value type with no
/// locks or tasks, so its policy is tested on its own.
///
/// When a fragment does not fit, whole GOPs go: every queued GOP that has
/// not started to go out is dropped, and so is everything that arrives until
/// the next GOP start, which the viewer then receives first. A decoder thus
/// never sees a GOP without its keyframe. Only a GOP that alone is larger
/// than the queue loses its tail, and the viewer resumes at the next
/// keyframe, still decodable.
public struct ViewerQueue: Sendable {
    /// Most bytes of fragments and init segments held at once.
    public let limit: Int
    public private(set) var items = Deque<ViewerItem>()
    /// Bytes held now.
    public private(set) var bytes = 0
    /// Whether fragments are skipped until the next GOP start.
    public private(set) var skipping = false
    /// Fragments dropped because the viewer fell behind.
    public private(set) var droppedFragments: UInt64 = 0
    /// GOPs that lost fragments because the viewer fell behind.
    public private(set) var droppedGOPs: UInt64 = 0
    /// Whether the GOP in flight already lost its tail (and was counted).
    private var cutInFlight = false
    /// Text messages and init segments queued now.
    public private(set) var controlItems = 0
    /// Most text messages and init segments queued at once. They are never
    /// dropped, so a client that sends commands (each answered) and never
    /// reads would otherwise grow its queue without end: past this it is cut off.
    public static let controlLimit = 64

    public init(limit: Int) {
        self.limit = limit
    }

    /// Adds a text message or an init segment; these are never dropped
    /// (they are small and a decoder needs every init segment).
    /// Returns false, queueing nothing, when ``controlLimit`` are already
    /// waiting: the viewer does not read, and its connection should end.
    @discardableResult
    public mutating func pushControl(_ item: ViewerItem) -> Bool {
        guard controlItems < Self.controlLimit else { return false }
        controlItems += 1
        bytes += item.bytes
        items.append(item)
        return true
    }

    /// Waits for the next GOP start before taking fragments again, without
    /// counting a drop: a new viewer, or a new init segment.
    public mutating func startAtNextGOP() {
        skipping = true
    }

    /// Offers one fragment. Returns whether it was queued.
    @discardableResult
    public mutating func push(fragment: ByteBuffer, startsGOP: Bool, receivedAt: UInt64 = 0) -> Bool {
        if skipping {
            guard startsGOP else {
                droppedFragments &+= 1
                return false
            }
            skipping = false
        }
        let size = fragment.readableBytes
        if bytes + size > limit {
            let droppedQueued = dropQueuedGOPs()
            if startsGOP, bytes + size > limit {
                // What is left is the tail of the GOP in flight and it alone
                // fills the queue: it goes, so the new GOP can start.
                if dropAllFragments() > 0, !cutInFlight { droppedGOPs &+= 1 }
            }
            guard startsGOP, bytes + size <= limit else {
                // This fragment's GOP is incomplete now: skip the rest of it.
                // A non-key fragment belongs to the last GOP dropped (counted
                // there) or, when none was queued, to the one in flight.
                droppedFragments &+= 1
                if startsGOP || !droppedQueued {
                    droppedGOPs &+= 1
                    cutInFlight = !startsGOP
                }
                skipping = true
                return false
            }
        }
        if startsGOP { cutInFlight = false }
        bytes += size
        items.append(.fragment(fragment, startsGOP: startsGOP, receivedAt: receivedAt))
        return true
    }

    /// Takes the next item to send.
    public mutating func pop() -> ViewerItem? {
        guard let item = items.popFirst() else { return nil }
        bytes -= item.bytes
        if case .fragment = item {} else { controlItems -= 1 }
        return item
    }

    /// Drops every queued fragment (on `stop`); text and init segments stay.
    public mutating func clearFragments() {
        _ = removeFragments()
    }

    private mutating func dropAllFragments() -> Int {
        let removed = removeFragments()
        droppedFragments &+= UInt64(removed)
        return removed
    }

    private mutating func removeFragments() -> Int {
        let before = items.count
        items.removeAll { if case .fragment = $0 { true } else { false } }
        bytes = items.reduce(0) { $0 + $1.bytes }
        return before - items.count
    }

    /// Drops the queued GOPs that have not started to go out: everything
    /// from the first queued GOP start on. Fragments before it finish the
    /// GOP in flight, so they stay. Returns whether it dropped any.
    private mutating func dropQueuedGOPs() -> Bool {
        guard let first = items.firstIndex(where: { if case .fragment(_, true, _) = $0 { true } else { false } }) else {
            return false
        }
        var kept = Deque(items[..<first])
        for item in items[first...] {
            switch item {
            case .fragment(_, let starts, _):
                droppedFragments &+= 1
                if starts { droppedGOPs &+= 1 }
            case .text, .initSegment:
                kept.append(item)
            }
        }
        items = kept
        bytes = kept.reduce(0) { $0 + $1.bytes }
        return true
    }
}
