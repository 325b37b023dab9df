import NIOCore
import Synchronization

/// One open RTSP connection as the server's sweeper sees it: when it last
/// sent anything (a request, RTCP), on the server's clock.
final class ConnectionHandle: Sendable {
    let id: Int
    let group: String
    let channel: any Channel
    /// Nanoseconds since the server's origin.
    let lastActivity: Atomic<Int64>

    init(id: Int, group: String, channel: any Channel, now: Int64) {
        self.id = id
        self.group = group
        self.channel = channel
        lastActivity = Atomic(now)
    }

    func touch(_ now: Int64) { lastActivity.store(now, ordering: .relaxed) }
}

/// The connections of one server: the caps in total and per client
/// address (an IPv6 /64 counting as one), and the list the sweeper walks
/// to close those silent for the session timeout.
final class ConnectionRegistry: Sendable {
    private struct State {
        var perGroup: [String: Int] = [:]
        var open: [Int: ConnectionHandle] = [:]
    }

    let maxConnections: Int
    let maxPerClient: Int
    private let state = Mutex(State())

    init(maxConnections: Int, maxPerClient: Int) {
        self.maxConnections = maxConnections
        self.maxPerClient = maxPerClient
    }

    /// Takes a place for `handle`; the reason it is refused otherwise.
    func admit(_ handle: ConnectionHandle) -> String? {
        state.withLock { state in
            if state.open.count >= maxConnections { return "max-connections" }
            if state.perGroup[handle.group, default: 0] >= maxPerClient { return "max-connections-per-client" }
            state.open[handle.id] = handle
            state.perGroup[handle.group, default: 0] += 1
            return nil
        }
    }

    func release(_ handle: ConnectionHandle) {
        state.withLock { state in
            guard state.open.removeValue(forKey: handle.id) != nil else { return }
            state.perGroup[handle.group, default: 1] -= 1
            if state.perGroup[handle.group] == 0 { state.perGroup[handle.group] = nil }
        }
    }

    var count: Int { state.withLock { $0.open.count } }

    /// Connections silent since before `cutoff` (ns since the origin).
    func silent(since cutoff: Int64) -> [ConnectionHandle] {
        state.withLock { state in state.open.values.filter { $0.lastActivity.load(ordering: .relaxed) < cutoff } }
    }

    func all() -> [ConnectionHandle] { state.withLock { Array($0.open.values) } }
}

/// The server's UDP ports: pairs (even RTP, odd RTCP) from a configured
/// range, each held by one client's track until its session ends.
final class UDPPortPool: Sendable {
    let range: ClosedRange<Int>
    private let used = Mutex(Set<Int>())

    init(range: ClosedRange<Int>) {
        self.range = range
    }

    /// The next free pair's even port after `after` (to try another when a bind fails), nil when none is free.
    func reserve(after: Int? = nil) -> Int? {
        used.withLock { used in
            var port = max(range.lowerBound + (range.lowerBound & 1), (after ?? range.lowerBound - 2) + 2)
            while port + 1 <= range.upperBound {
                if !used.contains(port) {
                    used.insert(port)
                    return port
                }
                port += 2
            }
            return nil
        }
    }

    func release(_ port: Int) {
        _ = used.withLock { $0.remove(port) }
    }

    var inUse: Int { used.withLock { $0.count } }
}
