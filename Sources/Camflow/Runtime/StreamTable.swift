import Metrics

/// Per-stream state of a node, with a bound on how many streams it holds.
///
/// Stream names come from whoever feeds the pipeline (a ZeroMQ peer may
/// name a new stream in every message), so a node that keeps state per
/// stream keeps it here: when a new stream arrives and the table is full,
/// the stream used longest ago is evicted and handed back, for the node to
/// flush and report (``NodeContext/reportEvicted(stream:capacity:)``).
///
/// A value type: nodes own it in their own state, no locks.
///
/// Its methods are inlinable: a node calls them for every packet, and
/// specialised in the node's module they cost no generic metadata lookups.
public struct StreamTable<Value> {
    @usableFromInline
    struct Entry {
        @usableFromInline var value: Value
        @usableFromInline var lastUsed: UInt64

        @inlinable init(value: Value, lastUsed: UInt64) {
            self.value = value
            self.lastUsed = lastUsed
        }
    }

    /// The most streams held at once.
    public let capacity: Int
    @usableFromInline var entries: [String: Entry] = [:]
    @usableFromInline var clock: UInt64 = 0

    @inlinable
    public init(capacity: Int) {
        precondition(capacity > 0, "a stream table holds at least one stream")
        self.capacity = capacity
    }

    /// How many streams are held.
    @inlinable public var count: Int { entries.count }

    /// The names held, sorted (for reports at end of stream).
    public var streams: [String] { entries.keys.sorted() }

    /// The state of `stream`, if held. Reading does not count as use.
    @inlinable public subscript(stream: String) -> Value? { entries[stream]?.value }

    /// Removes and returns the state of `stream`, for a node to work on it
    /// (across suspension points) and ``put(_:for:)`` it back.
    @inlinable
    public mutating func take(_ stream: String) -> Value? {
        entries.removeValue(forKey: stream)?.value
    }

    /// Stores the state of `stream` and marks it used. When that makes one
    /// stream too many, the one used longest ago is removed and returned.
    @inlinable @discardableResult
    public mutating func put(_ value: Value, for stream: String) -> (stream: String, value: Value)? {
        clock += 1
        var evicted: (stream: String, value: Value)?
        if entries.count >= capacity, entries[stream] == nil,
           let oldest = entries.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
            entries.removeValue(forKey: oldest.key)
            evicted = (oldest.key, oldest.value.value)
        }
        entries[stream] = Entry(value: value, lastUsed: clock)
        return evicted
    }

    /// Applies `body` to every held state, in stream order.
    public mutating func updateEach(_ body: (String, inout Value) throws -> Void) rethrows {
        for stream in streams {
            guard var entry = entries[stream] else { continue }
            try body(stream, &entry.value)
            entries[stream] = entry
        }
    }

    /// Removes every stream whose state matches.
    public mutating func removeAll(where shouldRemove: (String, Value) -> Bool) {
        entries = entries.filter { !shouldRemove($0.key, $0.value.value) }
    }
}

extension OptionSpec {
    /// The `max-streams` option every node with per-stream state declares.
    public static func maxStreams(default value: Int = 64) -> OptionSpec {
        OptionSpec("max-streams", .integer, default: String(value), min: "1",
                   "Most streams this node keeps state for; a new stream beyond it evicts the one idle longest (with a 'stream-evicted' event).")
    }
}

extension NodeOptions {
    /// The `max-streams` option (``OptionSpec/maxStreams(default:)`` declares it).
    public func maxStreams() throws -> Int { try integer("max-streams") }
}

extension NodeContext {
    /// Says that `stream`'s state was dropped to make room: a warning, the
    /// `camflow_stream_evictions_total` counter and, when `emitEvent`, a
    /// `stream-evicted` event on that stream.
    public func reportEvicted(stream: String, capacity: Int, emitEvent: Bool = true) async {
        logger.warning("node \(id) holds state for at most \(capacity) streams: evicted '\(UntrustedText.printable(stream, limit: 64))', idle longest")
        Counter(label: "camflow_stream_evictions_total", dimensions: [("node", id)]).increment()
        guard emitEvent else { return }
        await emit(.event(Event("stream-evicted", [("node", .string(id)), ("evicted", .string(stream)),
                                                    ("max-streams", .int(Int64(capacity)))]),
                          stream: stream))
    }
}

extension StreamTable: Sendable where Value: Sendable {}
extension StreamTable.Entry: Sendable where Value: Sendable {}
