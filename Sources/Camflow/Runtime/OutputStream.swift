#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file descriptor written with plain `write(2)`: unbuffered, so each
/// line reaches a pipe at once, and safe from any task.
public struct OutputStream: Sendable {
    public let descriptor: Int32

    public static let standardOutput = OutputStream(descriptor: 1)
    public static let standardError = OutputStream(descriptor: 2)

    /// Writes all of `text`, retrying short writes and interrupts.
    public func write(_ text: String) throws(WriteError) {
        var text = text
        let failure = text.withUTF8 { Self.writeAll(descriptor, UnsafeRawBufferPointer($0)) }
        if let failure { throw WriteError(descriptor: descriptor, errno: failure) }
    }

    /// Writes all of `bytes` to a blocking descriptor, retrying short writes
    /// and interrupts: the one such loop in camflow. Returns nil, or the
    /// `errno` of the write that failed (what was written before it stays).
    public static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return nil
    }

    /// Whether the descriptor is a terminal.
    public var isTerminal: Bool { isatty(descriptor) == 1 }

    /// A failed write, with the system's reason.
    public struct WriteError: Error, CustomStringConvertible {
        public let descriptor: Int32
        public let errno: Int32
        public var description: String {
            "write to file descriptor \(descriptor) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Musl)
private let systemWrite = Musl.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
