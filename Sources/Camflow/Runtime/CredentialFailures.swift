#if canImport(Glibc)
import Glibc
#endif
public import NIOCore
import Synchronization

/// Wrong credentials per peer (an address, or the group of addresses one
/// host holds), counted in fixed windows: after `maxFailures` in a window,
/// the peer is refused without a check until the window ends, so guessing a
/// password is ten tries a minute, not thousands a second.
///
/// The table is bounded (`maxGroups`). When it is full of peers still in
/// their window, failures of peers it does not list share one count, and once
/// that count is spent every unlisted peer is refused for the window: a spread
/// of addresses trades the availability of new peers for the bound on guesses,
/// never the other way round.
///
/// A value type driven by the caller's time (nanoseconds of a monotonic
/// clock), so its rules are tested without waiting; ``CredentialFailureLimiter``
/// shares one between connections.
public struct CredentialFailures: Sendable {
    /// What a noted failure did.
    public enum Outcome: Sendable, Equatable {
        /// The peer's first failure of its window.
        case first
        /// Counted; the peer may try again.
        case counted
        /// This failure spent the peer's window: it is refused until the window ends.
        case lockedOut
    }

    public let maxFailures: Int
    public let window: UInt64
    public let maxGroups: Int
    private var groups: [String: Count] = [:]
    private var unlisted = Count(failures: 0, since: 0)

    private struct Count {
        var failures: Int
        var since: UInt64
    }

    public init(maxFailures: Int = 10, windowNanoseconds: UInt64 = 60_000_000_000, maxGroups: Int = 4096) {
        precondition(maxFailures > 0 && maxGroups > 0, "a credential failure limit needs room for one failure and one peer")
        self.maxFailures = maxFailures
        self.window = windowNanoseconds
        self.maxGroups = maxGroups
    }

    /// Whether `group` is refused now.
    public func isLockedOut(_ group: String, now: UInt64) -> Bool {
        if let count = groups[group], !expired(count, now) { return count.failures >= maxFailures }
        // Unlisted (or listed long ago): the shared count decides while the table is full.
        return groups.count >= maxGroups && !expired(unlisted, now) && unlisted.failures >= maxFailures
    }

    /// Counts a failure of `group`.
    public mutating func note(_ group: String, now: UInt64) -> Outcome {
        if groups[group] == nil, groups.count >= maxGroups {
            groups = groups.filter { !expired($0.value, now) }
        }
        guard groups[group] != nil || groups.count < maxGroups else {
            if expired(unlisted, now) { unlisted = Count(failures: 0, since: now) }
            return count(&unlisted)
        }
        var entry = groups[group] ?? Count(failures: 0, since: now)
        if expired(entry, now) { entry = Count(failures: 0, since: now) }
        let outcome = count(&entry)
        groups[group] = entry
        return outcome
    }

    private func count(_ entry: inout Count) -> Outcome {
        entry.failures = min(entry.failures + 1, maxFailures + 1)
        if entry.failures == maxFailures { return .lockedOut }
        return entry.failures == 1 ? .first : .counted
    }

    private func expired(_ count: Count, _ now: UInt64) -> Bool {
        now >= count.since && now - count.since >= window
    }
}

/// One ``CredentialFailures`` shared by every connection of a server, read
/// against a ``PipelineClock`` (the pipeline's, so a test moves the window).
public final class CredentialFailureLimiter: Sendable {
    private let state: Mutex<CredentialFailures>
    private let clock: any PipelineClock
    private let origin: ContinuousClock.Instant

    public init(_ failures: CredentialFailures = CredentialFailures(), clock: any PipelineClock = SystemClock()) {
        state = Mutex(failures)
        self.clock = clock
        origin = clock.now
    }

    /// Nanoseconds on the clock since this limiter was made.
    private var now: UInt64 {
        let elapsed = origin.duration(to: clock.now).components
        return UInt64(max(0, elapsed.seconds)) &* 1_000_000_000 &+ UInt64(max(0, elapsed.attoseconds / 1_000_000_000))
    }

    public func isLockedOut(_ group: String) -> Bool {
        let now = self.now
        return state.withLock { $0.isLockedOut(group, now: now) }
    }

    public func note(_ group: String) -> CredentialFailures.Outcome {
        let now = self.now
        return state.withLock { $0.note(group, now: now) }
    }
}

/// Who a per-peer limit counts: an IPv4 address (also when it comes
/// IPv4-mapped on a dual-stack socket), or an IPv6 /64, since one host is
/// usually given a whole /64 and could otherwise take every place.
public enum PeerGroup {
    public static func of(_ address: SocketAddress?) -> String {
        guard case .v6(let v6)? = address else { return address?.ipAddress ?? "?" }
        let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12...].map { String($0) }.joined(separator: ".")
        }
        return stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":") + "::/64"
    }
}
