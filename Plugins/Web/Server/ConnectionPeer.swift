import Camflow

/// The client end of one connection, as the requests it carries see it: a
/// request that waits without writing (an LL-HLS blocking reload) ends as
/// soon as the client has hung up, instead of holding its place to the end
/// of the wait with nobody to answer.
final class ConnectionPeer: Sendable {
    /// The connection serving the current request.
    @TaskLocal static var current: ConnectionPeer?

    /// Who the per-peer limits count the connection against (see ``PeerGroup``).
    let group: String

    init(group: String) {
        self.group = group
    }

    private let gone = OneShotSignal()

    func hungUp() { gone.fire() }

    var hasHungUp: Bool { gone.isFired }

    /// `body`'s result, or `fallback` as soon as the current request's client hangs up
    /// (`body` is cancelled then).
    static func unlessHungUp<T: Sendable>(_ fallback: T, _ body: @escaping @Sendable () async -> T) async -> T {
        guard let peer = current else { return await body() }
        if peer.hasHungUp { return fallback }
        return await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                await peer.gone.wait()
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? fallback
        }
    }
}
