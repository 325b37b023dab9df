/// The items of a stream's current GOP, from its start, within a byte
/// bound: what a joiner is sent first. Generic, so a restreamer keeps what
/// it sends (fMP4 fragments, RTP packets already made) rather than what it
/// would have to make again for each joiner. Items before the first GOP
/// start, and the rest of a GOP that outgrew the bound, are not kept.
public struct GOPBuffer<Element: Sendable>: Sendable {
    /// Most bytes kept; past it the buffer waits for the next GOP start.
    public let limit: Int
    public private(set) var items: [Element] = []
    public private(set) var bytes = 0
    /// GOPs that outgrew the bound (their joiners waited for the next one).
    public private(set) var overflows: UInt64 = 0
    private var collecting = false

    public init(limit: Int) {
        self.limit = limit
    }

    /// Takes the next item of the stream, `size` bytes; `startsGOP` for the
    /// first item of a keyframe.
    public mutating func append(_ item: Element, size: Int, startsGOP: Bool) {
        if startsGOP {
            items.removeAll(keepingCapacity: true)
            bytes = 0
            collecting = true
        }
        guard collecting else { return }
        guard bytes + size <= limit else {
            items.removeAll()
            bytes = 0
            collecting = false
            overflows &+= 1
            return
        }
        items.append(item)
        bytes += size
    }

    /// Forgets everything (a new init segment, the end of the stream).
    public mutating func clear() {
        items.removeAll()
        bytes = 0
        collecting = false
    }
}
