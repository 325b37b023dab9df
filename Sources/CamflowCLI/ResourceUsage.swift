import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What this process has used of the machine, as the kernel counts it.
public enum ResourceUsage {
    /// The most resident memory this process has held, in KiB: `VmHWM` of
    /// /proc/self/status. Not `ru_maxrss`, which also counts the address
    /// space the process had before `exec`: started by a large parent (a
    /// test runner, a supervisor) through vfork, camflow would report that
    /// parent's memory as its own.
    public static func peakResidentKiB() -> Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kib = Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") {
            return kib
        }
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss
    }
}
