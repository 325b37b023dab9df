#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Nanoseconds from a monotonic clock: the time base of `Packet.receivedAt`.
public enum MonotonicClock {
    /// The current reading.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// The wall-clock time (seconds since 1970) of a reading taken earlier,
    /// such as a packet's arrival: now, less the time since.
    public static func wallClock(of reading: UInt64) -> Double {
        let elapsed = Double(Int64(bitPattern: now() &- reading)) / 1e9
        return wallNow() - max(0, elapsed)
    }

    /// Seconds since 1970 now (`CLOCK_REALTIME`).
    public static func wallNow() -> Double {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        return Double(wall.tv_sec) + Double(wall.tv_nsec) / 1e9
    }
}
