/// What a playing client may send on its RTSP connection as interleaved
/// `$` frames: a token bucket in bytes. Receiver reports are a few hundred
/// bytes every few seconds and a back channel (talk-back audio) tens of
/// KiB/s; a client that pushes more than `rate` bytes a second for longer
/// than `burst` allows is flooding, and reading its frames only to discard
/// them would cost the server a core.
struct InterleavedBudget: Sendable, Equatable {
    /// Bytes a second the bucket refills.
    var rate: Int64 = 1 << 20
    /// Bytes the bucket holds (the longest burst allowed).
    var burst: Int64 = 4 << 20
    private var tokens: Int64
    private var last: Int64?

    init(rate: Int64 = 1 << 20, burst: Int64 = 4 << 20) {
        self.rate = rate
        self.burst = burst
        tokens = burst
    }

    /// Takes `bytes` received at `now` (ns); false once the client sent more than its budget.
    mutating func take(_ bytes: Int, now: Int64) -> Bool {
        if let last, now > last {
            // Overflow-safe refill: a long quiet time fills the bucket, no more.
            let elapsed = now - last
            let refill = elapsed >= 1_000_000_000 * (burst / max(rate, 1) + 1) ? burst : elapsed * rate / 1_000_000_000
            tokens = min(burst, tokens + refill)
        }
        last = max(last ?? now, now)
        tokens -= Int64(bytes)
        return tokens >= 0
    }
}
