/// One peer's ICE as a lite agent sees it (RFC 8445 §2.5, §7.3; RFC 7675):
/// where media goes and whether the peer still consents. Time is the
/// caller's (any monotonic `Duration` since an origin it chooses); only a
/// ``STUNCheckedRequest``, which only ``STUNRequestCheck`` makes, moves it,
/// so unauthenticated packets never change anything.
///
/// Before nomination media goes to the address of the latest check (the
/// browser's first checks carry no USE-CANDIDATE); a check with
/// USE-CANDIDATE selects its address, and a later nominated address
/// replaces it (RFC 8445 §7.3.1.5). Consent is refreshed only by checks
/// from the selected address and expires ``consentTimeout`` after the last
/// (30 s, RFC 7675 §5.1); a peer that never checks expires
/// ``firstCheckTimeout`` after the answer.
public struct ICELiteState<Address: Hashable & Sendable>: Sendable {
    public let consentTimeout: Duration
    public let firstCheckTimeout: Duration
    public let answeredAt: Duration

    /// Where media goes; nil until the first authenticated check.
    public private(set) var selected: Address?
    /// Whether `selected` was nominated (USE-CANDIDATE).
    public private(set) var nominated = false
    /// The last authenticated check from `selected`.
    public private(set) var lastConsent: Duration?
    public private(set) var checks = 0

    public init(answeredAt: Duration, consentTimeout: Duration = .seconds(30), firstCheckTimeout: Duration = .seconds(15)) {
        self.answeredAt = answeredAt
        self.consentTimeout = consentTimeout
        self.firstCheckTimeout = firstCheckTimeout
    }

    /// What a check changed.
    public enum Change: Sendable, Equatable {
        /// Media now goes to this address (first check, nomination, or a newer nominated address).
        case selected(Address)
        /// Consent refreshed or a check from an address not taken; nothing for the sender to do.
        case none
    }

    /// Takes an authenticated check from `source` at `now`. Ignored once expired.
    @discardableResult
    public mutating func receive(_ check: STUNCheckedRequest, from source: Address, at now: Duration) -> Change {
        guard !isExpired(at: now) else { return .none }
        checks += 1
        let change: Change
        if check.useCandidate {
            change = selected == source && nominated ? .none : .selected(source)
            selected = source
            nominated = true
        } else if !nominated && selected != source {
            selected = source
            change = .selected(source)
        } else {
            change = .none
        }
        if source == selected { lastConsent = now }
        return change
    }

    /// When the peer expires unless a check comes first.
    public var deadline: Duration { lastConsent.map { $0 + consentTimeout } ?? answeredAt + firstCheckTimeout }

    public func isExpired(at now: Duration) -> Bool { now >= deadline }

    /// Why the peer expired at `now`, if it did.
    public func expiry(at now: Duration) -> Expiry? {
        guard isExpired(at: now) else { return nil }
        return lastConsent == nil ? .noCheck : .consentExpired
    }

    public enum Expiry: Sendable, Equatable {
        /// No authenticated check within `firstCheckTimeout` of the answer.
        case noCheck
        /// No authenticated check from the selected address within `consentTimeout`.
        case consentExpired
    }
}
