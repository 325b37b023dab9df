#if canImport(Glibc)
import Glibc
#endif

/// What this process has used of the machine, as the kernel counts it.
public enum ResourceUsage {
    /// The most resident memory this process has held, in KiB (`ru_maxrss`).
    public static func peakResidentKiB() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss
    }
}
